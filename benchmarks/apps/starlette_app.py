"""Starlette: the middleware at /webhooks, a hand-written endpoint at /bare, one process."""

from __future__ import annotations

from shared import OK, SECRET, UNAUTHORIZED, async_router, floor, handle_bare
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from messages_integrations.starlette import MessagesWebhookMiddleware


async def bare(request: Request) -> Response:
    """The floor's work by hand."""
    document = floor(request.headers, await request.body())
    if document is None:
        return Response(UNAUTHORIZED, 401, media_type="application/json")
    handle_bare(document)
    return Response(OK, media_type="application/json")


app = Starlette(
    routes=[Route("/bare", bare, methods=["POST"])],
    middleware=[
        Middleware(MessagesWebhookMiddleware, path="/webhooks", secret=SECRET, router=async_router)
    ],
)
