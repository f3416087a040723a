"""The Starlette middleware under uvicorn, instrumented by opentelemetry-instrumentation-asgi.

Everything comes from the environment, as a Starlette deployment has no settings module:
``MESSAGES_WEBHOOK_SECRET``, ``_STORE``, ``_ROUTER``, ``_QUEUE``, ``_MAX_BODY_SIZE``, and
``MESSAGES_WEBHOOK_PROMETHEUS=1`` / ``MESSAGES_WEBHOOK_OTEL=1`` for the exporters.
"""

from __future__ import annotations

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from messages_integrations import prometheus
from messages_integrations.starlette import MessagesWebhookMiddleware

from . import telemetry

telemetry.setup()


async def metrics(request: Request) -> Response:
    """The Prometheus figures of this process."""
    body, content_type = prometheus.exposition()
    return Response(body, headers={"content-type": content_type})


app = OpenTelemetryMiddleware(
    Starlette(
        routes=[Route("/metrics", metrics)],
        middleware=[Middleware(MessagesWebhookMiddleware, path="/webhooks")],
    )
)
