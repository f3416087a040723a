"""A FastAPI dependency that hands your own route the verified, typed Messages.dev event.

The route runs after the router's ``@on`` handlers, only for a verified delivery not handled
before; every refusal is answered with the same status and JSON as every other adapter.
"""

# No `from __future__ import annotations`: older FastAPI releases cannot resolve string
# annotations on a callable instance's __call__, and would take `request` for a query parameter.

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, Unpack

from fastapi import HTTPException, Request
from fastapi.responses import Response

from ._config import EndpointOptions
from ._events import Event
from ._handling import Refused, WebhookResponse
from ._startup import build_receiver
from .starlette import BodyChunks

__all__ = ["MessagesWebhook", "WebhookAnswer"]


class WebhookAnswer(HTTPException):
    """A refusal (or a duplicate) answered before the route runs, with the core's JSON body."""

    def __init__(self, answer: WebhookResponse) -> None:
        headers = {name: value for name, value in answer.asgi_headers if name != "content-type"}
        super().__init__(answer.status, detail=answer.json(), headers=headers or None)
        self.answer = answer


async def _answer(request: Request, exc: Exception) -> Response:
    answer = exc.answer if isinstance(exc, WebhookAnswer) else None
    assert answer is not None
    return Response(answer.body, answer.status, dict(answer.asgi_headers))


class MessagesWebhook:
    """A dependency that yields the event of a verified delivery not yet handled.

    ::

        verified_event = MessagesWebhook()  # options as the middleware's, or from the environment

        @app.post("/webhooks")
        async def receive(event: Annotated[Event[Any], Depends(verified_event)]) -> dict[str, str]:
            ...

    The router's handlers (``router=``, the default router unless given) run first. The delivery
    counts as handled once the route returns; if the route raises (or is cancelled), the delivery
    is released so that the sender's retry runs it again. Give the middleware and the dependency
    the same ``store`` to share de-duplication between them. The route can read the verified
    body again (``await request.body()``).
    """

    def __init__(self, *, path: str = "(FastAPI dependency)", **options: Unpack[EndpointOptions]):
        self.receiver = build_receiver(options, path)

    async def __call__(self, request: Request) -> AsyncIterator[Event[Any]]:
        """Yield the verified event to the route, then record whether the route succeeded."""
        _install_answer_handler(request)
        delivery = self.receiver.aaccept(request.method, request.scope["headers"], _body(request))
        route_ran = False
        try:
            # Leaving the block counts every exit, cancellation too: a lease left behind
            # would answer 409 to every retry until it expires.
            async with delivery as event:
                request._body = delivery.body  # the route may read the body again
                await delivery.adispatch()
                route_ran = True
                yield event
        except Refused as refused:
            raise WebhookAnswer(refused.response) from None
        except Exception:
            if route_ran:
                raise  # the route's own error: FastAPI answers it as for any route
            assert delivery.response is not None  # a handler failed: the library's 500
            raise WebhookAnswer(delivery.response) from None


def _install_answer_handler(request: Request) -> None:
    # FastAPI answers an HTTPException as {"detail": ...}; webhook refusals keep the JSON of every
    # other adapter. Starlette keeps the app's handlers in the scope from 0.32 on.
    handlers = request.scope.get("starlette.exception_handlers")
    if handlers and WebhookAnswer not in handlers[0]:
        handlers[0][WebhookAnswer] = _answer


def _body(request: Request) -> AsyncIterable[bytes]:
    # Straight from the server's messages, unless something before the route has read them:
    # then Starlette's stream gives the body it kept, or its own error if it kept none.
    if hasattr(request, "_body") or request._stream_consumed:
        return request.stream()
    return BodyChunks(request.receive)
