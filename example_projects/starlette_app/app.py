"""A Starlette app that receives Messages.dev webhooks at /webhooks.

The signing secret comes from the MESSAGES_WEBHOOK_SECRET environment variable.
GET /received shows what the handlers received so far; GET /metrics the Prometheus figures
(with MESSAGES_WEBHOOK_PROMETHEUS=1).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from messages_integrations import MessageReceived, ReactionAdded, on, prometheus
from messages_integrations.starlette import MessagesWebhookMiddleware
from messages_integrations.testing import Recorder

recorder = Recorder()
on("*")(recorder)


@on("message.received")
async def greet(event: MessageReceived) -> None:
    """Async handlers are awaited on the event loop."""
    print(f"{event.data.sender} wrote in {event.data.chat_id}: {event.data.text!r}")


@on("reaction.added")
def thank(event: ReactionAdded) -> None:
    """Plain handlers run in a worker thread, so they may block."""
    print(f"{event.data.sender} reacted with {event.data.type} to {event.data.message_id}")


async def received(request: Request) -> JSONResponse:
    """What the handlers have received so far."""
    return JSONResponse(recorder.summary())


async def metrics(request: Request) -> Response:
    """Prometheus figures, when MESSAGES_WEBHOOK_PROMETHEUS=1 is set."""
    if not prometheus.is_enabled():
        return JSONResponse({"error": "set MESSAGES_WEBHOOK_PROMETHEUS=1"}, status_code=404)
    body, content_type = prometheus.exposition()
    return Response(body, headers={"content-type": content_type})


app = Starlette(
    routes=[Route("/received", received), Route("/metrics", metrics)],
    middleware=[Middleware(MessagesWebhookMiddleware, path="/webhooks")],
)
