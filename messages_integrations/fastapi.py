"""A FastAPI dependency that hands your own route the verified, typed Messages.dev event.

For handlers registered with ``@on(...)``, use
:class:`messages_integrations.starlette.MessagesWebhookMiddleware` instead.
"""

# No `from __future__ import annotations`: older FastAPI releases cannot resolve string
# annotations on a callable instance's __call__, and would take `request` for a query parameter.

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import anyio
from fastapi import HTTPException, Request
from starlette.requests import ClientDisconnect

from ._config import resolve_secret
from ._events import Event
from ._handling import DEFAULT_MAX_BODY_SIZE, DEFAULT_TOLERANCE, WebhookReceiver, WebhookResponse
from ._signing import SecretsInput
from ._store import DeliveryStore
from .starlette import _ClientDisconnected

__all__ = ["MessagesWebhook"]


class MessagesWebhook:
    """A dependency that yields the event of a verified delivery not yet handled.

    ::

        verified_event = MessagesWebhook()  # the secret from MESSAGES_WEBHOOK_SECRET

        @app.post("/webhooks")
        async def receive(event: Annotated[Event[Any], Depends(verified_event)]) -> dict[str, str]:
            ...

    A refusal or an already handled delivery is answered without running the route, as an
    :class:`~fastapi.HTTPException` whose ``detail`` is the answer's JSON object (the status codes
    of the middleware). The delivery counts as handled once the route returns; if the route
    raises, the delivery is released so that the sender's retry runs it again.
    """

    def __init__(
        self,
        *,
        secret: SecretsInput | None = None,
        tolerance: float | None = DEFAULT_TOLERANCE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        store: DeliveryStore | None = None,
    ) -> None:
        self.receiver = WebhookReceiver(
            secret=resolve_secret(secret),
            tolerance=tolerance,
            max_body_size=max_body_size,
            store=store,
        )

    async def __call__(self, request: Request) -> AsyncIterator[Event[Any]]:
        """Yield the verified event to the route, then record whether the route succeeded."""
        async with aclosing(_body_chunks(request)) as body:
            outcome = await self.receiver.areceive(request.method, request.headers.raw, body)
        if isinstance(outcome, WebhookResponse):
            raise _as_exception(outcome)
        error: BaseException | None = None
        try:
            yield outcome.event
        except BaseException as exc:
            error = exc
            raise
        finally:
            # Every exit counts, cancellation too: a lease left behind would answer 409 to every
            # retry until it expires.
            with anyio.CancelScope(shield=True):
                await self.receiver.afinish(outcome, error)


async def _body_chunks(request: Request) -> AsyncGenerator[bytes, None]:
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise _ClientDisconnected from None


def _as_exception(answer: WebhookResponse) -> HTTPException:
    headers = {name: value for name, value in answer.asgi_headers if name != "content-type"}
    return HTTPException(answer.status, detail=answer.json(), headers=headers or None)
