"""Receive Messages.dev webhooks in any ASGI application: Starlette, FastAPI, Django, and others.

``app.add_middleware(MessagesWebhookMiddleware, path="/webhooks")`` answers deliveries at
``path`` and hands every other request, websocket and lifespan event to the application untouched.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from starlette.types import ASGIApp, Receive, Scope, Send

from ._config import resolve_secret
from ._handling import DEFAULT_MAX_BODY_SIZE, DEFAULT_TOLERANCE, WebhookReceiver, WebhookResponse
from ._router import WebhookRouter
from ._signing import SecretsInput
from ._store import DeliveryStore

__all__ = ["MessagesWebhookMiddleware"]


class _ClientDisconnected(OSError):
    """The client went away before its body was read (the core answers that as unreadable)."""


class MessagesWebhookMiddleware:
    """A pure ASGI middleware that answers Messages.dev deliveries at ``path``.

    ``secret`` defaults to ``MESSAGES_WEBHOOK_SECRET`` from the environment (comma-separated for
    several); none at all raises :class:`~messages_integrations.ConfigurationError` when the
    middleware is built, that is when the application starts. Handlers come from ``router``
    (``default_router`` unless given); ``store`` remembers delivery ids (this process's memory
    unless given: pass a shared store when several processes receive the same webhook).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str = "/webhooks",
        secret: SecretsInput | None = None,
        router: WebhookRouter | None = None,
        tolerance: float | None = DEFAULT_TOLERANCE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        store: DeliveryStore | None = None,
    ) -> None:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', not {path!r}")
        self.app = app
        self.path = path
        self.receiver = WebhookReceiver(
            secret=resolve_secret(secret),
            router=router,
            tolerance=tolerance,
            max_body_size=max_body_size,
            store=store,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a request for ``path``; pass anything else to the wrapped application."""
        if scope["type"] != "http" or _route_path(scope) != self.path:
            await self.app(scope, receive, send)
            return
        async with aclosing(_body_chunks(receive)) as body:
            answer = await self.receiver.ahandle(scope["method"], scope["headers"], body)
        await _send(answer, send)


def _route_path(scope: Scope) -> str:
    # Servers started with a root path (and Starlette's Mount) include it in scope["path"]; the
    # webhook path, like the application's own routes, is relative to it.
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


async def _body_chunks(receive: Receive) -> AsyncGenerator[bytes, None]:
    # One ASGI message at a time, so the core can stop as soon as the limit is passed.
    more_body = True
    while more_body:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientDisconnected
        more_body = message.get("more_body", False)
        yield message.get("body", b"")


async def _send(answer: WebhookResponse, send: Send) -> None:
    headers = [
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.asgi_headers
    ]
    headers.append((b"content-length", str(len(answer.body)).encode("ascii")))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
