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

import itertools
import os
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

from . import _outcomes
from ._events import EVENT_NAMES
from ._outcomes import Outcome, set_metering
from ._router import Handler, handler_name

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["disable", "enable", "exposition", "is_enabled", "multiprocess_dir"]

#: Event names as labels: the seven known ones; any other is "other" (the label set stays small).
_KNOWN_EVENTS: Final = frozenset(EVENT_NAMES)
_DELIVERIES: Final = ("messages_webhook_deliveries", "Messages.dev webhook deliveries received.")
_DURATION: Final = (
    "messages_webhook_handler_duration_seconds",
    "Time each webhook handler took, by event, handler and outcome (ok or failed).",
)
_IN_PROGRESS: Final = (
    "messages_webhook_in_progress",
    "Webhook deliveries whose handlers are running now.",
)
_lock = threading.Lock()
_metrics: _LocalMetrics | _SharedMetrics | None = None


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


def _registry_name(registry: CollectorRegistry) -> str:
    from prometheus_client import REGISTRY

    return "default registry" if registry is REGISTRY else "own registry"


class _LocalMetrics:
    """The metrics of one process, kept here and read by prometheus-client at each scrape.

    Each delivery is counted without a lock and each handler run timed under one; the metric
    families are built only when ``/metrics`` is read. prometheus-client's own Counter and
    Histogram would take several Python calls and locks per update, more than the rest of what
    observing costs.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Histogram

        self.registry = registry
        self._bounds: tuple[float, ...] = tuple(Histogram.DEFAULT_BUCKETS)
        self._lock = threading.Lock()
        self._acquire, self._release = self._lock.acquire, self._lock.release
        # Counts are itertools.count objects, each counting by drawing its next number: one call
        # into C, atomic, no lock. A scrape reads one by drawing a number too, less the numbers
        # earlier scrapes drew (_drawn, see _read()).
        self.started: Callable[[], int] = itertools.count().__next__
        self._finish: Callable[[], int] = itertools.count().__next__
        # Per (event, outcome), keyed by the event name as received: signed bodies only, so the
        # set stays small.
        self._tallies: dict[tuple[str | None, str], Callable[[], int]] = {}
        self._drawn: dict[object, int] = {}
        #: per (event, handler, failed): a count per bucket, then the sum of the durations; keyed
        #: by the handler itself (its name is only needed at a scrape)
        self._timings: dict[tuple[str, Handler | str, bool], list[float]] = {}
        registry.register(self)

    def handler_ran(self, event: str, handler: Handler, failed: bool, duration_s: float) -> None:
        """Time one handler run."""
        bucket = bisect_left(self._bounds, duration_s)
        key: tuple[str, Handler | str, bool] = (event, handler, failed)
        # acquire()/release() rather than `with`: half the cost, on every handler run.
        self._acquire()
        try:
            try:
                slots = self._timings.get(key)
            except TypeError:  # a callable object that cannot be a key: keyed by its name
                key = (event, handler_name(handler), failed)
                slots = self._timings.get(key)
            if slots is None:
                slots = self._timings[key] = [0.0] * (len(self._bounds) + 1)
            slots[bucket] += 1
            slots[-1] += duration_s
        finally:
            self._release()

    def delivered(self, event: str | None, outcome: Outcome, started: bool) -> None:
        """Count one delivery (and, if its handlers ran, no longer as in progress)."""
        tally = self._tallies.get((event, outcome))
        if tally is None:
            with self._lock:  # two threads meeting a new pair share one count
                tally = self._tallies.setdefault((event, outcome), itertools.count().__next__)
        tally()
        if started:
            self._finish()

    def _read(self, key: object, draw: Callable[[], int]) -> int:
        # Under the lock: the number drawn now, less the numbers earlier scrapes drew.
        drawn = self._drawn.get(key, 0)
        self._drawn[key] = drawn + 1
        return draw() - drawn

    def collect(self) -> Iterator[Any]:
        """The three metric families, for prometheus-client's exposition."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )
        from prometheus_client.utils import floatToGoString

        with self._lock:
            counts = {key: self._read(key, tally) for key, tally in self._tallies.items()}
            timings = {key: list(slots) for key, slots in self._timings.items()}
            # Finished first: a delivery that starts and ends between the two draws is counted
            # as running, never as less than none.
            finished = self._read("finished", self._finish)
            running = self._read("started", self.started) - finished
        deliveries = CounterMetricFamily(*_DELIVERIES, labels=["event", "outcome"])
        totals: dict[tuple[str, str], int] = {}
        for (event, outcome), count in counts.items():
            counted = (_event_label(event), outcome)
            totals[counted] = totals.get(counted, 0) + count
        for counted, count in sorted(totals.items()):
            deliveries.add_metric(counted, count)
        durations = HistogramMetricFamily(*_DURATION, labels=["event", "handler", "outcome"])
        merged: dict[tuple[str, str, str], list[float]] = {}
        for (event, handler, failed), slots in timings.items():
            name = handler if isinstance(handler, str) else handler_name(handler)
            timed = (_event_label(event), name, "failed" if failed else "ok")
            into = merged.setdefault(timed, [0.0] * len(slots))
            for index, amount in enumerate(slots):
                into[index] += amount
        for timed, slots in sorted(merged.items()):
            cumulative, buckets = 0.0, []
            for bound, runs in zip(self._bounds, slots, strict=False):
                cumulative += runs
                buckets.append((floatToGoString(bound), cumulative))  # type: ignore[no-untyped-call]
            durations.add_metric(timed, buckets, slots[-1])
        in_progress = GaugeMetricFamily(*_IN_PROGRESS, value=running)
        return iter((deliveries, durations, in_progress))

    def destination(self) -> str:
        """Where the figures are kept, for the check commands."""
        return _registry_name(self.registry)


class _SharedMetrics:
    """prometheus-client's own metrics, which its multiprocess mode writes to shared files."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.registry = registry
        self.deliveries = Counter(*_DELIVERIES, ["event", "outcome"], registry=registry)
        self.durations = Histogram(*_DURATION, ["event", "handler", "outcome"], registry=registry)
        # The sum over the worker processes alive now: a dead worker's runs are over.
        gauge = Gauge(*_IN_PROGRESS, registry=registry, multiprocess_mode="livesum")
        self.started: Callable[[], None] = gauge.inc
        self._finished = gauge.dec
        # labels() validates, takes a lock and builds a key on every call: each label set's
        # child method is kept here instead.
        self._counted: dict[tuple[str | None, str], Callable[[], None]] = {}
        self._timed: dict[tuple[str, Handler | str, bool], Callable[[float], None]] = {}

    def handler_ran(self, event: str, handler: Handler, failed: bool, duration_s: float) -> None:
        """Time one handler run."""
        key: tuple[str, Handler | str, bool] = (event, handler, failed)
        try:
            observe = self._timed.get(key)
        except TypeError:  # a callable object that cannot be a key: keyed by its name
            key = (event, handler_name(handler), failed)
            observe = self._timed.get(key)
        if observe is None:
            outcome = "failed" if failed else "ok"
            child = self.durations.labels(_event_label(event), handler_name(handler), outcome)
            observe = self._timed[key] = child.observe
        observe(duration_s)

    def delivered(self, event: str | None, outcome: Outcome, started: bool) -> None:
        """Count one delivery (and, if its handlers ran, no longer as in progress)."""
        count = self._counted.get((event, outcome))
        if count is None:
            child = self.deliveries.labels(_event_label(event), outcome)
            count = self._counted[(event, outcome)] = child.inc
        count()
        if started:
            self._finished()

    def destination(self) -> str:
        """Where the figures are kept, for the check commands."""
        return f"multiprocess, {multiprocess_dir()}"


def enable(registry: CollectorRegistry | None = None) -> None:
    """Count every delivery and time every handler of every endpoint in this process.

    Metrics go to prometheus-client's default registry unless ``registry`` is given (at the
    first call: the metrics are created once per process). Calling it again, or after
    :func:`disable`, feeds the same metrics again.
    """
    global _metrics  # one set of metrics per process, as prometheus-client expects
    with _lock:
        if _metrics is None:
            try:
                from prometheus_client import REGISTRY
            except ImportError:
                raise ImportError(
                    "prometheus-client is not installed: "
                    "pip install 'messages-integrations[prometheus]'"
                ) from None
            where = REGISTRY if registry is None else registry
            # Several worker processes: only prometheus-client's own metrics reach the files.
            shared = multiprocess_dir() is not None
            _metrics = _SharedMetrics(where) if shared else _LocalMetrics(where)
        set_metering(_metrics)


def disable() -> None:
    """Stop feeding the metrics (they stay registered, with their last values)."""
    with _lock:
        if _metrics is not None and _outcomes.metering is _metrics:
            set_metering(None)


def is_enabled() -> bool:
    """Whether :func:`enable` is in effect."""
    return _metrics is not None and _outcomes.metering is _metrics


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
