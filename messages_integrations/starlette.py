"""Receive Messages.dev webhooks in any ASGI application: Starlette, FastAPI, Django, and others.

``app.add_middleware(MessagesWebhookMiddleware, path="/webhooks")`` answers deliveries at
``path`` and hands every other request, websocket and lifespan event to the application untouched.
"""

from __future__ import annotations

import functools
from typing import Unpack

from starlette.types import ASGIApp, Receive, Scope, Send

from ._config import EndpointOptions
from ._handling import WebhookResponse
from ._startup import build_receiver

__all__ = ["MessagesWebhookMiddleware"]


class _ClientDisconnected(OSError):
    """The client went away before its body was read (the core answers that as unreadable)."""


class MessagesWebhookMiddleware:
    """A pure ASGI middleware that answers Messages.dev deliveries at ``path``.

    Every option (``secret``, ``router``, ``tolerance``, ``max_body_size``, ``store``,
    ``dedup_ttl``, ``lease``, ``queue``, ``on_store_error``) is the argument when given, else the
    environment variable ``MESSAGES_WEBHOOK_<NAME>``, else the default. No secret at all raises
    :class:`~messages_integrations.ConfigurationError` when the middleware is built, that is
    when the application starts.
    """

    def __init__(
        self, app: ASGIApp, *, path: str = "/webhooks", **options: Unpack[EndpointOptions]
    ) -> None:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', not {path!r}")
        self.app = app
        self.path = path
        self.receiver = build_receiver(options, path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a request for ``path``; pass anything else to the wrapped application."""
        if scope["type"] != "http" or _route_path(scope) != self.path:
            await self.app(scope, receive, send)
            return
        answer = await self.receiver.ahandle(scope["method"], scope["headers"], BodyChunks(receive))
        await send_answer(answer, send)


def _route_path(scope: Scope) -> str:
    # Servers started with a root path (and Starlette's Mount) include it in scope["path"]; the
    # webhook path, like the application's own routes, is relative to it.
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


class BodyChunks:
    """The request body, one ASGI message at a time, so the core can stop at the limit.

    An iterator rather than an async generator: nothing is left to close when the core stops
    early.
    """

    __slots__ = ("_more", "_receive")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._more = True

    def __aiter__(self) -> BodyChunks:
        return self

    async def __anext__(self) -> bytes:
        if not self._more:
            raise StopAsyncIteration
        message = await self._receive()
        if message["type"] == "http.disconnect":
            raise _ClientDisconnected
        self._more = message.get("more_body", False)
        body: bytes = message.get("body", b"")
        return body


@functools.lru_cache(maxsize=64)
def _encoded(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[bytes, bytes], ...]:
    # The answers' headers come from a handful of fixed sets: each is encoded once.
    return tuple((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers)


async def send_answer(answer: WebhookResponse, send: Send) -> None:
    """Send the core's answer as an ASGI response."""
    headers = [*_encoded(answer.asgi_headers), (b"content-length", b"%d" % len(answer.body))]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
