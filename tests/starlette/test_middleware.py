"""The HTTP table of CONTRACT.md, answered by MessagesWebhookMiddleware in process."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest
from starlette.types import Message

from messages_integrations import (
    ConfigurationError,
    Event,
    InMemoryDeliveryStore,
    MessageReceived,
    WebhookRouter,
    sign_webhook,
)
from messages_integrations.starlette import MessagesWebhookMiddleware
from messages_integrations.testing import Recorder, build_delivery

from .helpers import SECRET, CountingBody, EchoApp, asgi_client, minutes_ago, post_delivery

pytestmark = pytest.mark.anyio


@pytest.fixture
def downstream() -> EchoApp:
    return EchoApp()


def middleware(downstream: EchoApp, router: WebhookRouter, **options: Any) -> Any:
    options.setdefault("secret", SECRET)
    return MessagesWebhookMiddleware(downstream, router=router, **options)


async def test_valid_delivery_runs_typed_handlers_and_answers_200(
    downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    texts: list[str | None] = []
    router.on("message.received")(lambda event: texts.append(event.data.text))
    delivery = build_delivery("message.received", secret=SECRET)

    async with asgi_client(middleware(downstream, router)) as client:
        response = await post_delivery(client, delivery)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "status": "ok",
        "event": "message.received",
        "delivery_id": delivery.delivery_id,
    }
    assert isinstance(recorder.events[0], MessageReceived)
    assert texts == [delivery.parsed().data.text]
    assert downstream.scopes == []


async def test_delivery_without_matching_handlers_answers_200(
    downstream: EchoApp, router: WebhookRouter
) -> None:
    reactions: list[Event[Any]] = []
    router.on("reaction.added")(reactions.append)

    async with asgi_client(middleware(downstream, router)) as client:
        response = await post_delivery(client, build_delivery("message.sent", secret=SECRET))

    assert response.status_code == 200
    assert reactions == []


async def test_unknown_event_runs_only_wildcard_handlers(
    downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    messages: list[Event[Any]] = []
    router.on("message.received")(messages.append)
    delivery = build_delivery("contact.updated", {"id": "con_1"}, secret=SECRET)

    async with asgi_client(middleware(downstream, router)) as client:
        response = await post_delivery(client, delivery)

    assert response.status_code == 200
    assert [event.event for event in recorder.events] == ["contact.updated"]
    assert messages == []


async def test_duplicate_delivery_runs_handlers_once(
    downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    delivery = build_delivery("reaction.added", secret=SECRET)

    async with asgi_client(middleware(downstream, router)) as client:
        first = await post_delivery(client, delivery)
        second = await post_delivery(client, delivery)

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["status"] == "duplicate"
    assert recorder.count() == 1


async def test_copy_arriving_while_first_is_handled_gets_409(
    downstream: EchoApp, router: WebhookRouter
) -> None:
    started, release = anyio.Event(), anyio.Event()
    calls: list[str] = []

    @router.on("typing.started")
    async def slow(event: Event[Any]) -> None:
        calls.append(event.event)
        started.set()
        await release.wait()

    delivery = build_delivery("typing.started", secret=SECRET)
    statuses: list[int] = []
    async with asgi_client(middleware(downstream, router)) as client:

        async def first_copy() -> None:
            statuses.append((await post_delivery(client, delivery)).status_code)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(first_copy)
                await started.wait()
                second = await post_delivery(client, delivery)
                release.set()

    assert second.status_code == 409
    assert second.headers["retry-after"] == "5"
    assert statuses == [200]
    assert calls == ["typing.started"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_on_the_webhook_path_get_405(
    method: str, downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)

    async with asgi_client(middleware(downstream, router)) as client:
        response = await client.request(
            method, "/webhooks", content=delivery.body, headers=delivery.headers
        )

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "method_not_allowed"
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


async def test_body_of_exactly_max_body_size_is_accepted(
    downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    delivery = build_delivery("receipt.read", secret=SECRET)
    exact = middleware(downstream, router, max_body_size=len(delivery.body))
    one_short = middleware(downstream, router, max_body_size=len(delivery.body) - 1)

    async with asgi_client(exact) as client:
        accepted = await post_delivery(client, delivery)
    async with asgi_client(one_short) as client:
        refused = await post_delivery(client, delivery)

    assert (accepted.status_code, refused.status_code) == (200, 413)
    assert recorder.count() == 1


def _unsigned(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != "X-Webhook-Signature"}


def _tampered(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "X-Webhook-Signature": "0" * 64}


@pytest.mark.parametrize("alter", [_unsigned, _tampered], ids=["no-signature", "wrong-signature"])
async def test_unauthenticated_request_gets_401(
    alter: Any, downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)

    async with asgi_client(middleware(downstream, router)) as client:
        response = await client.post(
            "/webhooks", content=delivery.body, headers=alter(delivery.headers)
        )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert recorder.count() == 0


async def test_delivery_signed_with_another_secret_gets_401(
    downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    delivery = build_delivery("message.received", secret="whsec_someone_else")

    async with asgi_client(middleware(downstream, router)) as client:
        response = await post_delivery(client, delivery)

    assert response.status_code == 401
    assert SECRET not in response.text
    assert recorder.count() == 0


async def test_replay_window_follows_tolerance(
    downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    old = build_delivery("message.received", secret=SECRET, timestamp=minutes_ago(10))

    async with asgi_client(middleware(downstream, router)) as client:
        refused = await post_delivery(client, old)
    async with asgi_client(middleware(downstream, router, tolerance=None)) as client:
        accepted = await post_delivery(client, old)

    assert (refused.status_code, accepted.status_code) == (401, 200)
    assert recorder.count() == 1


@pytest.mark.parametrize(
    "body", [b"[1, 2]", b"not json", b'{"event": "message.received", "data": {}}']
)
async def test_authenticated_but_invalid_payload_gets_400(
    body: bytes, downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    timestamp = minutes_ago(0)
    headers = {
        "X-Webhook-Signature": sign_webhook(SECRET, timestamp, body),
        "X-Webhook-Timestamp": str(timestamp),
    }

    async with asgi_client(middleware(downstream, router)) as client:
        response = await client.post("/webhooks", content=body, headers=headers)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_payload"
    assert recorder.count() == 0


async def test_failing_handler_gets_500_after_every_handler_ran_and_retry_runs_again(
    downstream: EchoApp, router: WebhookRouter, recorder: Recorder
) -> None:
    failures = ["database is down: password=hunter2"]

    @router.on("reaction.removed")
    def flaky(event: Event[Any]) -> None:
        if failures:
            raise RuntimeError(failures.pop())

    delivery = build_delivery("reaction.removed", secret=SECRET)
    async with asgi_client(middleware(downstream, router)) as client:
        failed = await post_delivery(client, delivery)
        retried = await post_delivery(client, delivery)
        again = await post_delivery(client, delivery)

    assert failed.status_code == 500
    assert "hunter2" not in failed.text
    assert "Traceback" not in failed.text
    assert (retried.status_code, again.status_code) == (200, 200)
    assert again.json()["status"] == "duplicate"
    # The "*" recorder ran for the failed attempt and for the retry.
    assert recorder.count() == 2


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
    scope = {"type": "http", "method": "POST", "path": "/webhooks", "headers": headers}
    await middleware(downstream, router)(scope, receive, send)

    assert sent[0]["status"] == 400
    assert recorder.count() == 0
