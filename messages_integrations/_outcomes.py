"""One outcome per delivery: the fixed vocabulary, the immutable records, and their observers.

Every delivery ends in one :class:`DeliveryRecord` (logged on the ``messages_integrations``
logger with its fields as record attributes) and every handler run in one :class:`HandlerRecord`;
your callbacks (:class:`Observers`) receive both. The exporters plug in beside them, without
records: a :class:`Tracing` (OpenTelemetry) and a :class:`Metering` (Prometheus), each one
process-wide hook that costs nothing while it is off.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, Final, Literal, Protocol, get_args

import msgspec

__all__ = [
    "GLOBAL_OBSERVERS",
    "OUTCOMES",
    "DeliveryRecord",
    "DeliverySpan",
    "HandlerRecord",
    "HandlersStarted",
    "Metering",
    "Observer",
    "Observers",
    "Outcome",
    "Record",
    "Tracing",
    "describe_hooks",
    "metering",
    "observe",
    "set_metering",
    "set_tracing",
    "tracing",
]

logger = logging.getLogger("messages_integrations")

Outcome = Literal[
    "ok",
    "duplicate",
    "in_progress",
    "queued",
    "handler_failed",
    "store_failed",
    "not_configured",
    "refused_signature",
    "refused_stale",
    "refused_payload",
    "refused_size",
    "refused_method",
]
#: Every outcome a delivery can end in.
OUTCOMES: Final[tuple[Outcome, ...]] = get_args(Outcome)


# Records are msgspec Structs rather than frozen dataclasses: as immutable, and built in a tenth
# of the time, which matters on a path that builds one per delivery and one per handler run.


class DeliveryRecord(msgspec.Struct, frozen=True, gc=False):
    """How one delivery ended. ``secret_position`` counts from 1 (the first secret configured)."""

    outcome: Outcome
    http_status: int
    event: str | None
    delivery_id: str | None
    duration_s: float
    secret_position: int | None = None
    reason: str = ""
    #: Whether its handlers started (the outcomes ok, queued and handler_failed, or a store
    #: failure after them): a callback counting deliveries in progress counts it down.
    handled: bool = False

    def log_extra(self) -> dict[str, Any]:
        """The fields as ``extra`` for a log record (``record.outcome``, ...)."""
        return msgspec.structs.asdict(self)


class HandlerRecord(msgspec.Struct, frozen=True, gc=False):
    """How one handler run ended: ``outcome`` is ``"ok"`` or ``"failed"``."""

    event: str
    handler: str
    delivery_id: str | None
    duration_s: float
    outcome: Literal["ok", "failed"]
    error_type: str | None = None
    background: bool = False


class HandlersStarted(msgspec.Struct, frozen=True, gc=False):
    """A delivery was claimed and its handlers are about to run."""

    event: str
    delivery_id: str | None


#: A callback given every record; it may be a plain or an ``async`` function.
Record = DeliveryRecord | HandlerRecord | HandlersStarted
Observer = Callable[[Record], object]

_PENDING: set[asyncio.Task[Any]] = set()


class Observers:
    """Callbacks called with every record; a failing one is logged and never changes an answer."""

    def __init__(self, parent: Observers | None = None) -> None:
        self._callbacks: tuple[Observer, ...] = ()
        self._parent = parent
        self._lock = threading.Lock()

    def add(self, callback: Observer) -> Observer:
        """Register ``callback`` (usable as a decorator)."""
        with self._lock:
            self._callbacks = (*self._callbacks, callback)
        return callback

    def remove(self, callback: Observer) -> None:
        """Unregister ``callback``."""
        with self._lock:
            self._callbacks = tuple(c for c in self._callbacks if c is not callback)

    def current(self) -> tuple[Observer, ...]:
        """The callbacks to call now: this registry's, then its parent's."""
        if self._parent is None:
            return self._callbacks
        return self._callbacks + self._parent._callbacks

    def notify(self, record: Record, callbacks: tuple[Observer, ...]) -> None:
        """Call each callback with ``record``; an async one is scheduled on the running loop."""
        for callback in callbacks:
            try:
                result = callback(record)
                # Most callbacks return None: skip the awaitable check for them.
                if result is not None and inspect.isawaitable(result):
                    _schedule(result)
            except Exception:
                logger.warning("an outcome observer failed: %r", callback, exc_info=True)


def _schedule(awaitable: Awaitable[Any]) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        from asgiref.sync import async_to_sync

        async_to_sync(_await)(awaitable)
        return
    task = loop.create_task(_await(awaitable))
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)


async def _await(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:
        logger.warning("an outcome observer failed", exc_info=True)


#: Observers of every receiver in the process (the exporters' ``enable()`` registers here).
GLOBAL_OBSERVERS: Final = Observers()


def observe(callback: Observer) -> Observer:
    """Call ``callback`` with the outcome record of every delivery in this process."""
    return GLOBAL_OBSERVERS.add(callback)


def describe_hooks(observers: Observers) -> dict[str, str]:
    """What watches one receiver's deliveries: ``prometheus``, ``opentelemetry``, ``callbacks``.

    For the check commands: each value is one short line (``"off"``, ``"none"``, or what is on).
    """
    callbacks = [_callable_name(callback) for callback in observers.current()]
    meter, tracer = metering, tracing
    return {
        "prometheus": "off" if meter is None else f"on ({meter.destination()})",
        "opentelemetry": "off" if tracer is None else f"on ({tracer.destination()})",
        "callbacks": ", ".join(callbacks) if callbacks else "none",
    }


def _callable_name(function: object) -> str:
    name = getattr(function, "__qualname__", None) or type(function).__qualname__
    return f"{getattr(function, '__module__', None) or type(function).__module__}.{name}"


class Tracing(Protocol):
    """What a tracer (``messages_integrations.otel``) plugs in: a span around each delivery and
    each handler, current while they run, so that spans a handler opens are its children."""

    def delivery(self) -> AbstractContextManager[DeliverySpan]:
        """A span for one delivery, from its first byte to its answer."""
        ...

    def handler(self, event: str, handler: str) -> AbstractContextManager[None]:
        """A span around one handler run (its error, if any, propagates through it)."""
        ...

    def destination(self) -> str:
        """Where the spans go, in a few words (for the check commands)."""
        ...


class DeliverySpan(Protocol):
    """The open span of one delivery."""

    def conclude(self, record: DeliveryRecord) -> None:
        """Name and annotate the span from the delivery's outcome (before it ends)."""
        ...


#: The tracer in use in this process, or None (the default: no cost).
tracing: Tracing | None = None


def set_tracing(tracer: Tracing | None) -> None:
    """Install (or remove, with None) the process's tracer."""
    global tracing  # one process-wide hook, read once per delivery
    tracing = tracer


class Metering(Protocol):
    """What a metrics exporter (``messages_integrations.prometheus``) plugs in.

    Called directly on the path every delivery takes, with the few values it counts: no record
    is built for it, so metrics stay cheap when no callback reads records.
    """

    def started(self) -> object:
        """A delivery's handlers are about to run (what it returns is ignored)."""
        ...

    def handler_ran(
        self, event: str, handler: Callable[[Any], object], failed: bool, duration_s: float
    ) -> None:
        """One handler run ended (``failed``: it raised)."""
        ...

    def delivered(self, event: str | None, outcome: Outcome, started: bool) -> None:
        """A delivery ended; ``started``: this meter was told its handlers started."""
        ...

    def destination(self) -> str:
        """Where the figures go, in a few words (for the check commands)."""
        ...


#: The metrics exporter in use in this process, or None (the default: no cost).
metering: Metering | None = None


def set_metering(meter: Metering | None) -> None:
    """Install (or remove, with None) the process's metrics exporter."""
    global metering  # one process-wide hook, read a few times per delivery
    metering = meter
