"""What the Starlette/FastAPI tests share: the secret, clients over ASGI, and a plain echo app."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from messages_integrations.testing import Delivery

SECRET = "whsec_starlette_tests"


def asgi_client(app: ASGIApp, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    """An httpx client that calls ``app`` in process, streaming request bodies chunk by chunk."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def post_delivery(
    client: httpx.AsyncClient, delivery: Delivery, path: str = "/webhooks"
) -> httpx.Response:
    """POST a signed delivery, as Messages.dev sends it."""
    return await client.post(path, content=delivery.body, headers=delivery.headers)


def minutes_ago(minutes: float) -> int:
    """A unix-millisecond timestamp ``minutes`` in the past."""
    return int((time.time() - minutes * 60) * 1000)


class CountingBody:
    """An async request body of ``total`` bytes that counts how many bytes were pulled from it."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total = total
        self.chunk = chunk
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            piece = min(self.chunk, self.total - self.pulled)
            self.pulled += piece
            yield b"x" * piece


class EchoApp:
    """A plain ASGI app that answers with what it received, and remembers every scope."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Echo an HTTP request's method, path and body; accept and echo a websocket."""
        self.scopes.append(scope)
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            message = await receive()
            await send({"type": "websocket.send", "text": f"echo: {message.get('text')}"})
            await send({"type": "websocket.close"})
            return
        assert scope["type"] == "http"
        body = bytearray()
        more_body = True
        while more_body:
            message = await receive()
            body += message.get("body", b"")
            more_body = message.get("more_body", False)
        headers = [
            (b"x-echo-method", scope["method"].encode()),
            (b"x-echo-path", scope["path"].encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": bytes(body)})

    def http_paths(self) -> list[Any]:
        """The paths of the HTTP requests that reached this app."""
        return [scope["path"] for scope in self.scopes if scope["type"] == "http"]


async def websocket_session(app: ASGIApp, path: str, *texts: str) -> list[Message]:
    """Connect to ``app`` at ``path``, send ``texts``, disconnect; return what the app sent."""
    inbox: list[Message] = [
        {"type": "websocket.connect"},
        *({"type": "websocket.receive", "text": text} for text in texts),
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
        "subprotocols": [],
    }
    await app(scope, receive, send)
    return sent


@contextlib.asynccontextmanager
async def lifespan_running(app: ASGIApp) -> AsyncIterator[None]:
    """Send ``app`` the lifespan startup before the block and the shutdown after it."""
    to_app, app_inbox = anyio.create_memory_object_stream[Message](4)
    app_outbox, from_app = anyio.create_memory_object_stream[Message](4)
    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    async with to_app, app_inbox, app_outbox, from_app, anyio.create_task_group() as tasks:

        async def run() -> None:
            await app(scope, app_inbox.receive, app_outbox.send)

        tasks.start_soon(run)
        await to_app.send({"type": "lifespan.startup"})
        assert (await from_app.receive())["type"] == "lifespan.startup.complete"
        yield
        await to_app.send({"type": "lifespan.shutdown"})
        assert (await from_app.receive())["type"] == "lifespan.shutdown.complete"
