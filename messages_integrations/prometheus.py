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

__all__ = ["disable", "enable", "exposition", "is_enabled", "multiprocess_dir"]

#: Event names as labels: the seven known ones; any other is "other" (the label set stays small).
_KNOWN_EVENTS: Final = frozenset(EVENT_NAMES)
_lock = threading.Lock()
_metrics: _Metrics | None = None


def _event_label(name: str | None) -> str:
    if name is None:
        return "unknown"  # refused before the body was authenticated and decoded
    return name if name in _KNOWN_EVENTS else "other"


def multiprocess_dir() -> str | None:
    """The folder prometheus-client's multiprocess mode writes to, or None (one process)."""
    # prometheus-client still honours the lower-case name of its older releases.
    found = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get(
        "prometheus_multiproc_dir"  # noqa: SIM112 - prometheus-client's own older name
    )
    return found or None


class _Metrics:
    """The three metrics, and the observer that feeds them."""

    #: How ``messages-integrations check`` and the framework checks name this observer.
    exporter = "prometheus"

    def __init__(self, registry: CollectorRegistry | None) -> None:
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        where = REGISTRY if registry is None else registry
        self.registry = where
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
            # The sum over the worker processes alive now: a dead worker's runs are over.
            multiprocess_mode="livesum",
        )
        # labels() validates, takes a lock and builds a key on every call; each label set's
        # child is looked up here instead (a dict read, safe without a lock under the GIL).
        self._counted: dict[tuple[str, str], Any] = {}
        self._timed: dict[tuple[str, str, str], Any] = {}

    def __call__(self, record: Record) -> None:
        if isinstance(record, DeliveryRecord):
            key = (_event_label(record.event), record.outcome)
            child = self._counted.get(key)
            if child is None:
                child = self._counted[key] = self.deliveries.labels(*key)
            child.inc()
            if record.handled:
                self.in_progress.dec()
        elif isinstance(record, HandlerRecord):
            timed = (_event_label(record.event), record.handler, record.outcome)
            child = self._timed.get(timed)
            if child is None:
                child = self._timed[timed] = self.handler_duration.labels(*timed)
            child.observe(record.duration_s)
        elif isinstance(record, HandlersStarted):
            self.in_progress.inc()

    def describe(self) -> str:
        """Where the figures are kept, for the check commands."""
        folder = multiprocess_dir()
        if folder is not None:
            return f"multiprocess, {folder}"
        from prometheus_client import REGISTRY

        return "default registry" if self.registry is REGISTRY else "own registry"

    def __repr__(self) -> str:
        return "<messages_integrations.prometheus metrics>"


def _require(module: str, extra: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise ImportError(
            f"{module} is not installed: pip install 'messages-integrations[{extra}]'"
        ) from None


def enable(registry: CollectorRegistry | None = None) -> None:
    """Count every delivery and time every handler of every endpoint in this process.

    Metrics go to prometheus-client's default registry unless ``registry`` is given (at the
    first call: the metrics are created once per process). Calling it again, or after
    :func:`disable`, feeds the same metrics again.
    """
    global _metrics  # one set of metrics per process, as prometheus-client expects
    with _lock:
        if _metrics is None:
            _require("prometheus_client", "prometheus")
            _metrics = _Metrics(registry)
        if _metrics not in GLOBAL_OBSERVERS.current():
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

    folder = multiprocess_dir()
    if folder is not None and registry is None:
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected, path=folder)  # type: ignore[no-untyped-call]
        return generate_latest(collected), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY if registry is None else registry), CONTENT_TYPE_LATEST
