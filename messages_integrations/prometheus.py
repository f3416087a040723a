"""Prometheus metrics for every webhook endpoint in the process (the ``prometheus`` extra).

``messages_integrations.prometheus.enable()`` once at start-up, then serve :func:`exposition`
(or prometheus-client's own ``make_wsgi_app``/``make_asgi_app``) at ``/metrics``:

- ``messages_webhook_deliveries_total{event,outcome}``: one per delivery, by outcome;
- ``messages_webhook_handler_duration_seconds{event,handler,outcome}``: each handler run;
- ``messages_webhook_in_progress``: deliveries whose handlers are running now.

Under gunicorn (several worker processes) set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder
before the workers start; :func:`exposition` then adds up every worker's figures.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Final

from ._events import EVENT_NAMES
from ._outcomes import (
    GLOBAL_OBSERVERS,
    DeliveryRecord,
    HandlerRecord,
    HandlersStarted,
    Record,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["disable", "enable", "exposition", "is_enabled"]

#: Event names as labels: the seven known ones; any other is "other" (the label set stays small).
_KNOWN_EVENTS: Final = frozenset(EVENT_NAMES)
_lock = threading.Lock()
_metrics: _Metrics | None = None


def _event_label(name: str | None) -> str:
    if name is None:
        return "unknown"  # refused before the body was authenticated and decoded
    return name if name in _KNOWN_EVENTS else "other"


class _Metrics:
    """The three metrics, and the observer that feeds them."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        where = REGISTRY if registry is None else registry
        self.deliveries = Counter(
            "messages_webhook_deliveries",
            "Messages.dev webhook deliveries received, by event and outcome.",
            ["event", "outcome"],
            registry=where,
        )
        self.handler_duration = Histogram(
            "messages_webhook_handler_duration_seconds",
            "Time each webhook handler took, by event, handler and outcome (ok or failed).",
            ["event", "handler", "outcome"],
            registry=where,
        )
        self.in_progress = Gauge(
            "messages_webhook_in_progress",
            "Webhook deliveries whose handlers are running now.",
            registry=where,
            multiprocess_mode="livesum",
        )
        # labels() takes a lock and builds a key; one child per label set is kept here instead.
        self._counters: dict[tuple[str, str], Any] = {}

    def __call__(self, record: Record) -> None:
        if isinstance(record, DeliveryRecord):
            key = (_event_label(record.event), record.outcome)
            child = self._counters.get(key)
            if child is None:
                child = self._counters[key] = self.deliveries.labels(*key)
            child.inc()
            if record.handled:
                self.in_progress.dec()
        elif isinstance(record, HandlersStarted):
            self.in_progress.inc()
        elif isinstance(record, HandlerRecord):
            self.handler_duration.labels(
                _event_label(record.event), record.handler, record.outcome
            ).observe(record.duration_s)


def enable(registry: CollectorRegistry | None = None) -> None:
    """Count every delivery and time every handler of every endpoint in this process.

    Metrics go to prometheus-client's default registry unless ``registry`` is given. Calling it
    again changes nothing.
    """
    global _metrics  # one set of metrics per process, as prometheus-client expects
    with _lock:
        if _metrics is None:
            _metrics = _Metrics(registry)
            GLOBAL_OBSERVERS.add(_metrics)


def disable() -> None:
    """Stop feeding the metrics (they stay registered, with their last values)."""
    with _lock:
        if _metrics is not None:
            GLOBAL_OBSERVERS.remove(_metrics)


def is_enabled() -> bool:
    """Whether :func:`enable` is in effect."""
    return _metrics is not None and _metrics in GLOBAL_OBSERVERS.current()


def exposition(registry: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The text to serve at ``/metrics`` and its content type.

    With ``PROMETHEUS_MULTIPROC_DIR`` set (several worker processes), the figures of every
    worker, read from that folder; otherwise those of ``registry`` (the default registry).
    """
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        REGISTRY,
        CollectorRegistry,
        generate_latest,
        multiprocess,
    )

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
        return generate_latest(collected), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY if registry is None else registry), CONTENT_TYPE_LATEST
