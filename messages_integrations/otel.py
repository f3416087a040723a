"""OpenTelemetry spans for every webhook delivery (the ``otel`` extra: opentelemetry-api only).

``messages_integrations.otel.enable()`` once at start-up. Each delivery gets a span
``process {event}`` (kind CONSUMER), a child of the current span (your server
instrumentation's), with ``messaging.system = "messages_dev"``, ``messaging.operation.type =
"process"``, ``messaging.message.id`` (the delivery id) and ``messages.webhook.outcome``; each
handler run a child span named after the handler, current while it runs. A span's status is an
error only for a handler failure or a store failure, never for a refusal. Your application
chooses the SDK and exporter; without one configured the API does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from . import __version__, _outcomes
from ._outcomes import DeliveryRecord, set_tracing

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider

__all__ = ["disable", "enable", "is_enabled"]

_ERRORS: Final = frozenset({"handler_failed", "store_failed"})


class _DeliverySpan:
    """The open span of one delivery."""

    def __init__(self, span: Span) -> None:
        self.span = span

    def conclude(self, record: DeliveryRecord) -> None:
        from opentelemetry.trace import Status, StatusCode

        span = self.span
        span.update_name(f"process {record.event or 'unknown'}")
        span.set_attribute("messages.webhook.outcome", record.outcome)
        span.set_attribute("http.response.status_code", record.http_status)
        if record.event is not None:
            span.set_attribute("messages.webhook.event", record.event)
        if record.delivery_id is not None:
            span.set_attribute("messaging.message.id", record.delivery_id)
        if record.secret_position is not None:
            span.set_attribute("messages.webhook.secret_position", record.secret_position)
        if record.outcome in _ERRORS:
            span.set_status(Status(StatusCode.ERROR, record.outcome))


class _Tracing:
    """Opens the spans; the library calls it only while enabled."""

    def __init__(self, provider: TracerProvider | None) -> None:
        from opentelemetry import trace

        self.provider = provider
        # Without a provider, a proxy tracer: it follows the global provider, even one set later.
        self.tracer = trace.get_tracer("messages_integrations", __version__, provider)

    def destination(self) -> str:
        """Where the spans go, for the check commands."""
        if self.provider is not None:
            return f"to the {type(self.provider).__name__} given to enable()"
        from opentelemetry import trace

        provider = type(trace.get_tracer_provider()).__name__
        if provider == "ProxyTracerProvider":
            return "to the global tracer provider, not set yet in this process"
        return f"to the global {provider}"

    @contextmanager
    def delivery(self) -> Iterator[_DeliverySpan]:
        from opentelemetry.trace import SpanKind

        attributes: dict[str, Any] = {
            "messaging.system": "messages_dev",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
        }
        with self.tracer.start_as_current_span(
            "process", kind=SpanKind.CONSUMER, attributes=attributes, record_exception=False
        ) as span:
            yield _DeliverySpan(span)

    @contextmanager
    def handler(self, event: str, handler: str) -> Iterator[None]:
        attributes = {"messages.webhook.event": event, "code.function.name": handler}
        with self.tracer.start_as_current_span(handler, attributes=attributes):
            yield


def enable(tracer_provider: TracerProvider | None = None) -> None:
    """Trace every delivery and handler of every endpoint in this process.

    Spans go to ``tracer_provider``, else to the global provider your SDK set up.
    """
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        raise ImportError(
            "opentelemetry-api is not installed: pip install 'messages-integrations[otel]'"
        ) from None
    set_tracing(_Tracing(tracer_provider))


def disable() -> None:
    """Stop tracing deliveries."""
    if is_enabled():
        set_tracing(None)


def is_enabled() -> bool:
    """Whether :func:`enable` is in effect."""
    return isinstance(_outcomes.tracing, _Tracing)
