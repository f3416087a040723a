"""FastAPI: the middleware at /webhooks, the dependency at /dependency, a hand-written route at
/bare and a hand-written dependency at /bare-dependency, one process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from shared import OK, SECRET, UNAUTHORIZED, async_router, floor, handle_bare

from messages_integrations import Event
from messages_integrations.fastapi import MessagesWebhook
from messages_integrations.starlette import MessagesWebhookMiddleware

app = FastAPI()
app.add_middleware(MessagesWebhookMiddleware, path="/webhooks", secret=SECRET, router=async_router)
verified_event = MessagesWebhook(secret=SECRET, router=async_router)


@app.post("/bare")
async def bare(request: Request) -> Response:
    """The floor's work by hand."""
    document = floor(request.headers, await request.body())
    if document is None:
        return Response(UNAUTHORIZED, 401, media_type="application/json")
    handle_bare(document)
    return Response(OK, media_type="application/json")


@app.post("/dependency")
async def dependency(event: Annotated[Event[Any], Depends(verified_event)]) -> Response:
    """The dependency: the router's handler has run; the route answers as the bare one does."""
    return Response(OK, media_type="application/json")


async def hand_written(request: Request) -> AsyncIterator[dict[str, Any]]:
    """The floor's work as a dependency, with a `yield` (as the library's, which needs one to
    release a delivery whose route fails)."""
    document = floor(request.headers, await request.body())
    if document is None:
        raise HTTPException(401, "invalid_signature")
    handle_bare(document)
    yield document


@app.post("/bare-dependency")
async def bare_dependency(document: Annotated[dict[str, Any], Depends(hand_written)]) -> Response:
    """A route behind the hand-written dependency, answering as the bare one does."""
    return Response(OK, media_type="application/json")
