"""What every observed test server shares: handlers, a recording queue, and the three exporters.

Imported by each app of this folder inside its server process. Everything it records goes where
the test reads it back:

- log records of the ``messages_integrations`` logger: one JSON object per line on stderr (the
  server log), formatted by :class:`DeliveryJSON`, the formatter ``docs/observability.md`` shows;
- every record an observer receives: one JSON object per line in ``$OBS_CALLBACKS``;
- every finished span (the SDK, through the server's instrumentation): ``$OBS_SPANS``;
- every job the recording queue accepted: ``$OBS_JOBS``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import msgspec
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from messages_integrations import Event, WebhookRouter, observe
from messages_integrations.queues import Job, TaskQueue

__all__ = ["DeliveryJSON", "queue", "router", "setup"]


class DeliveryJSON(logging.Formatter):
    """One JSON object per delivery, with every field the library attaches to its record."""

    FIELDS = (
        "outcome",
        "http_status",
        "event",
        "delivery_id",
        "duration_s",
        "secret_position",
        "reason",
    )

    def format(self, record: logging.LogRecord) -> str:
        fields = {name: getattr(record, name, None) for name in self.FIELDS}
        return json.dumps(
            {"level": record.levelname, **fields, "message": record.getMessage()},
            ensure_ascii=False,
        )


def is_delivery(record: logging.LogRecord) -> bool:
    """Only the per-delivery records carry an outcome."""
    return hasattr(record, "outcome")


class _Lines:
    """Appends JSON lines to a file, one whole line per write, from any thread or process."""

    def __init__(self, variable: str) -> None:
        self.path = os.environ[variable]
        self._lock = threading.Lock()

    def write(self, item: dict[str, Any]) -> None:
        line = json.dumps(item, ensure_ascii=False) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as file:
            file.write(line)


class FileSpanExporter(SpanExporter):
    """Writes each finished span as a JSON line: names, ids, parent, kind, status, attributes."""

    def __init__(self) -> None:
        self.lines = _Lines("OBS_SPANS")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            context = span.get_span_context()
            assert context is not None
            self.lines.write(
                {
                    "name": span.name,
                    "kind": span.kind.name,
                    "trace_id": f"{context.trace_id:032x}",
                    "span_id": f"{context.span_id:016x}",
                    "parent_id": None if span.parent is None else f"{span.parent.span_id:016x}",
                    "status": span.status.status_code.name,
                    "attributes": dict(span.attributes or {}),
                    "events": [event.name for event in span.events],
                }
            )
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release: every line is written at once."""


_callbacks: _Lines | None = None


def record_callback(record: object) -> None:
    """The observer registered in every app: each record, with its type and this process id."""
    assert _callbacks is not None
    fields = msgspec.structs.asdict(record)  # type: ignore[arg-type]
    _callbacks.write({"type": type(record).__name__, "pid": os.getpid(), **fields})


class RecordingQueue(TaskQueue):
    """An in-process task queue that accepts every job and writes it down."""

    def enqueue(self, job: Job) -> None:
        _Lines("OBS_JOBS").write({"pid": os.getpid(), **job.to_dict()})


# --- the handlers --------------------------------------------------------------------------------

router = WebhookRouter()
queue = RecordingQueue()
tracer = trace.get_tracer("tests.observability")


@router.on("reaction.added")
def thank(event: Event[Any]) -> None:
    """A plain handler that opens a span of its own: it must nest under the handler's span."""
    with tracer.start_as_current_span("look up the message"):
        pass


@router.on("reaction.added")
async def count(event: Event[Any]) -> None:
    """An async handler, beside the plain one."""
    await asyncio.sleep(0)


@router.on("typing.started")
def explode(event: Event[Any]) -> None:
    """A broken handler."""
    raise RuntimeError("a bug in a handler")


@router.on("typing.started")
def still_runs(event: Event[Any]) -> None:
    """Runs after the broken one: every handler of the event runs."""


@router.on("message.received")
def linger(event: Event[Any]) -> None:
    """Takes as many seconds as a text of the form ``linger 2.5`` asks, like slow real work."""
    text = event.data.text or ""
    if text.startswith("linger "):
        time.sleep(float(text.split()[1]))


@router.on("receipt.read", background=True)
def archive(event: Event[Any]) -> None:
    """The only handler of receipt.read runs in a worker: the request answers 202."""


# --- the exporters -------------------------------------------------------------------------------

_done = False


def setup(*, logs: bool = True) -> None:
    """Configure the callback observer, the OpenTelemetry SDK and (unless the framework's own
    settings do it: Django's ``LOGGING``) the JSON log lines; once per process."""
    global _done, _callbacks
    if _done:
        return
    _done = True
    _callbacks = _Lines("OBS_CALLBACKS")
    observe(record_callback)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter()))
    trace.set_tracer_provider(provider)
    if logs:
        _log_json_lines()


def _log_json_lines() -> None:
    deliveries = logging.StreamHandler(sys.stderr)
    deliveries.setFormatter(DeliveryJSON())
    deliveries.addFilter(is_delivery)
    others = logging.StreamHandler(sys.stderr)
    others.addFilter(lambda record: not is_delivery(record))
    logger = logging.getLogger("messages_integrations")
    logger.handlers[:] = [deliveries, others]
    logger.setLevel(logging.DEBUG)  # refused_method is logged at DEBUG
    logger.propagate = False
