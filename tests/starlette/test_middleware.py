"""MessagesWebhookMiddleware as an ASGI middleware: what only a pure ASGI adapter does.

The HTTP table itself is checked for the middleware in tests/contract. Here: webhook requests never
reach the wrapped application, bodies are read as they arrive and stop at the limit, handlers
never block the event loop, the path (relative to a root path), the options and a client gone
mid-body.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import httpx
import pytest
from starlette.types import Message, Scope

from messages_integrations import (
    ConfigurationError,
    Event,
    InMemoryDeliveryStore,
    MessageReceived,
    WebhookRouter,
)
from messages_integrations.starlette import MessagesWebhookMiddleware
from messages_integrations.testing import Recorder, build_delivery

from .helpers import SECRET, CountingBody, EchoApp, asgi_client, post_delivery

pytestmark = pytest.mark.anyio


@pytest.fixture
def downstream() -> EchoApp:
    return EchoApp()


def middleware(downstream: EchoApp, router: WebhookRouter, **options: Any) -> Any:
    options.setdefault("secret", SECRET)
    return MessagesWebhookMiddleware(downstream, router=router, **options)


async def test_deliveries_are_answered_by_the_middleware_and_never_reach_the_app(
    downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    texts: list[str | None] = []
    router.on("message.received")(lambda event: texts.append(event.data.text))
    delivery = build_delivery("message.received", secret=SECRET)

    async with asgi_client(middleware(downstream, router)) as client:
        response = await post_delivery(client, delivery)
        forged = await post_delivery(client, build_delivery("message.sent", secret="whsec_x"))

    assert (response.status_code, forged.status_code) == (200, 401)
    assert isinstance(recorder.events[0], MessageReceived)
    assert texts == [delivery.parsed().data.text]
    assert downstream.scopes == []


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
async def test_other_methods_on_the_webhook_path_get_405_and_never_reach_the_app(
    method: str, downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    async with asgi_client(middleware(downstream, router)) as client:
        response = await client.request(method, "/webhooks")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert recorder.count() == 0
    assert downstream.scopes == []


async def test_declared_oversized_body_gets_413_without_being_read(
    downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    body = CountingBody(4 * 1024 * 1024)

    async with asgi_client(middleware(downstream, router, max_body_size=1024)) as client:
        response = await client.post(
            "/webhooks", content=body, headers={"content-length": str(body.total)}
        )

    assert response.status_code == 413
    assert response.headers["connection"] == "close"
    assert body.pulled <= body.chunk
    assert recorder.count() == 0


async def test_chunked_oversized_body_gets_413_and_the_rest_is_never_read(
    downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    body = CountingBody(64 * 1024 * 1024)

    async with asgi_client(middleware(downstream, router)) as client:
        response = await client.post("/webhooks", content=body)

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert response.headers["connection"] == "close"
    # One chunk past the 1 MiB default at most: the other 63 MiB stay unread.
    assert body.pulled <= 1024 * 1024 + body.chunk
    assert recorder.count() == 0


async def test_chunked_delivery_of_exactly_max_body_size_is_accepted(
    downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    delivery = build_delivery("receipt.read", secret=SECRET)

    async def pieces() -> Any:
        for start in range(0, len(delivery.body), 7):
            yield delivery.body[start : start + 7]

    exact = middleware(downstream, router, max_body_size=len(delivery.body))
    async with asgi_client(exact) as client:
        response = await client.post("/webhooks", content=pieces(), headers=delivery.headers)

    assert "content-length" not in response.request.headers
    assert response.status_code == 200
    assert recorder.count() == 1


async def test_sync_handler_runs_in_a_worker_thread_without_blocking_the_loop(
    downstream: EchoApp, router: WebhookRouter
) -> None:
    started, release = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    @router.on("message.received")
    def blocking(event: Event[Any]) -> None:
        seen["thread"] = threading.get_ident()
        started.set()
        seen["released_before_timeout"] = release.wait(timeout=30)

    async with asgi_client(middleware(downstream, router)) as client:
        responses: list[int] = []

        async def deliver() -> None:
            delivery = build_delivery("message.received", secret=SECRET)
            responses.append((await post_delivery(client, delivery)).status_code)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(deliver)
            assert await anyio.to_thread.run_sync(started.wait, 30)
            # The handler is blocked; the loop must still serve other requests meanwhile.
            other = await client.get("/elsewhere")
            release.set()

    assert other.status_code == 200
    assert seen["released_before_timeout"] is True
    assert seen["thread"] != threading.get_ident()
    assert responses == [200]


async def test_async_handler_is_awaited_on_the_event_loop(
    downstream: EchoApp, router: WebhookRouter
) -> None:
    seen: list[int] = []

    @router.on("typing.stopped")
    async def on_loop(event: Event[Any]) -> None:
        await anyio.sleep(0)
        seen.append(threading.get_ident())

    async with asgi_client(middleware(downstream, router)) as client:
        response = await post_delivery(client, build_delivery("typing.stopped", secret=SECRET))

    assert response.status_code == 200
    assert seen == [threading.get_ident()]


async def test_a_shared_store_deduplicates_across_instances(
    downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    store = InMemoryDeliveryStore()
    delivery = build_delivery("message.received", secret=SECRET)

    async with asgi_client(middleware(downstream, router, store=store)) as client:
        first = await post_delivery(client, delivery)
    async with asgi_client(middleware(downstream, router, store=store)) as client:
        second = await post_delivery(client, delivery)

    assert second.json()["status"] == "duplicate"
    assert (first.status_code, second.status_code) == (200, 200)
    assert recorder.count() == 1


async def test_custom_path_is_answered_and_the_default_passes_through(
    downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)

    async with asgi_client(middleware(downstream, router, path="/hooks/messages")) as client:
        answered = await post_delivery(client, delivery, "/hooks/messages")
        passed = await post_delivery(client, delivery, "/webhooks")

    assert answered.status_code == 200
    assert passed.headers["x-echo-path"] == "/webhooks"
    assert recorder.count() == 1


@pytest.mark.parametrize(
    ("path", "answered"),
    [("/api/webhooks", True), ("/api/orders", False), ("/apix/webhooks", False)],
)
async def test_path_is_relative_to_the_servers_root_path(
    downstream: EchoApp, router: WebhookRouter, recorder: Recorder, path: str, answered: bool
) -> None:
    # As uvicorn --root-path /api passes it on: the root path is part of scope["path"] too.
    transport = httpx.ASGITransport(app=middleware(downstream, router), root_path="/api")
    delivery = build_delivery("message.received", secret=SECRET)

    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await post_delivery(client, delivery, path)

    assert response.status_code == 200
    assert recorder.count() == (1 if answered else 0)
    assert downstream.http_paths() == ([] if answered else [path])


async def test_secrets_from_the_environment_comma_separated(
    monkeypatch: pytest.MonkeyPatch, downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", "whsec_old, whsec_new")
    app = MessagesWebhookMiddleware(downstream, router=router)

    async with asgi_client(app) as client:
        old = await post_delivery(client, build_delivery("message.sent", secret="whsec_old"))
        new = await post_delivery(client, build_delivery("message.sent", secret="whsec_new"))

    assert (old.status_code, new.status_code) == (200, 200)
    assert recorder.count() == 2


async def test_explicit_secret_takes_precedence_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, downstream: EchoApp, router: WebhookRouter
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", "whsec_from_env")
    app = MessagesWebhookMiddleware(downstream, router=router, secret=["whsec_a", "whsec_b"])

    async with asgi_client(app) as client:
        from_env = await post_delivery(
            client, build_delivery("message.sent", secret="whsec_from_env")
        )
        explicit = await post_delivery(client, build_delivery("message.sent", secret="whsec_b"))

    assert (from_env.status_code, explicit.status_code) == (401, 200)


def test_missing_secret_raises_when_the_middleware_is_built(
    monkeypatch: pytest.MonkeyPatch, downstream: EchoApp
) -> None:
    monkeypatch.delenv("MESSAGES_WEBHOOK_SECRET", raising=False)

    with pytest.raises(ConfigurationError, match="MESSAGES_WEBHOOK_SECRET"):
        MessagesWebhookMiddleware(downstream)


def test_bad_option_from_the_environment_raises_naming_it(
    monkeypatch: pytest.MonkeyPatch, downstream: EchoApp
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_MAX_BODY_SIZE", "1 MB")

    with pytest.raises(ConfigurationError, match="MESSAGES_WEBHOOK_MAX_BODY_SIZE"):
        MessagesWebhookMiddleware(downstream, secret=SECRET)


def test_path_must_be_absolute(downstream: EchoApp) -> None:
    with pytest.raises(ValueError, match="path"):
        MessagesWebhookMiddleware(downstream, secret=SECRET, path="webhooks")


async def test_client_gone_mid_body_is_refused_as_unreadable(
    downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    half = len(delivery.body) // 2
    incoming: list[Message] = [
        {"type": "http.request", "body": delivery.body[:half], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [(k.lower().encode(), v.encode()) for k, v in delivery.headers.items()]
    scope: Scope = {"type": "http", "method": "POST", "path": "/webhooks", "headers": headers}
    await middleware(downstream, router)(scope, receive, send)

    assert sent[0]["status"] == 400
    assert recorder.count() == 0
