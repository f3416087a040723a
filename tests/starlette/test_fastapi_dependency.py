"""MessagesWebhook: the verified event inside the user's own FastAPI route.

The HTTP table itself is checked for the dependency in tests/contract; here, what only a
dependency does: the router's handlers before the route, the route's own answer and errors,
FastAPI's dependency scopes, and a request body read as a stream.
"""

# No `from __future__ import annotations`: FastAPI must see the routes' Depends(...) annotations,
# which refer to local variables.

import inspect
from typing import Annotated, Any

import anyio
import pytest
from fastapi import Depends, FastAPI, HTTPException, Request

from messages_integrations import (
    Claim,
    ConfigurationError,
    DeliveryStore,
    Event,
    InMemoryDeliveryStore,
    ReactionAdded,
    WebhookRouter,
)
from messages_integrations.fastapi import MessagesWebhook
from messages_integrations.testing import build_delivery, sample_data

from .helpers import SECRET, CountingBody, asgi_client, post_delivery

pytestmark = pytest.mark.anyio

# FastAPI 0.121 added Depends(scope=...): "function" closes the dependency before the response is
# sent, "request" (the default since 0.118) after it. Both must record the outcome correctly.
DEPENDENCY_SCOPES: list[Any] = [None]
if "scope" in inspect.signature(Depends).parameters:
    DEPENDENCY_SCOPES += ["function", "request"]


def make_app(
    verified_event: MessagesWebhook, calls: list[Event[Any]], scope: Any = None
) -> FastAPI:
    """An app whose own route receives the event, fails when asked, and returns the event name."""
    app = FastAPI()
    depends = Depends(verified_event) if scope is None else Depends(verified_event, scope=scope)

    @app.post("/webhooks")
    async def receive(event: Annotated[Event[Any], depends]) -> dict[str, str]:
        calls.append(event)
        if event.raw["data"].get("fail") == "crash":
            raise RuntimeError("the handler crashed: token=abc123")
        if event.raw["data"].get("fail") == "http":
            raise HTTPException(503, "try later")
        return {"handled": event.event}

    return app


@pytest.fixture(params=DEPENDENCY_SCOPES, ids=lambda scope: f"scope={scope}")
def scope(request: pytest.FixtureRequest) -> Any:
    return request.param


@pytest.fixture
def calls() -> list[Event[Any]]:
    return []


@pytest.fixture
def app(calls: list[Event[Any]], scope: Any, router: WebhookRouter) -> FastAPI:
    return make_app(MessagesWebhook(secret=SECRET, router=router), calls, scope)


async def test_route_receives_the_typed_event_and_its_answer_is_sent(
    app: FastAPI, calls: list[Event[Any]]
) -> None:
    delivery = build_delivery("reaction.added", secret=SECRET)

    async with asgi_client(app) as client:
        response = await post_delivery(client, delivery)

    assert response.status_code == 200
    assert response.json() == {"handled": "reaction.added"}
    assert isinstance(calls[0], ReactionAdded)
    assert calls[0].data.type == delivery.parsed().data.type


async def test_router_handlers_run_before_the_route(
    router: WebhookRouter, calls: list[Event[Any]], scope: Any
) -> None:
    order: list[str] = []
    router.on("message.received")(lambda event: order.append(f"handler:{len(calls)}"))
    app = make_app(MessagesWebhook(secret=SECRET, router=router), calls, scope)

    async with asgi_client(app) as client:
        response = await post_delivery(client, build_delivery("message.received", secret=SECRET))

    assert response.json() == {"handled": "message.received"}
    # The handler ran while the route had not been called yet.
    assert order == ["handler:0"]
    assert len(calls) == 1


async def test_failing_handler_answers_500_without_running_the_route_and_the_retry_runs_both(
    router: WebhookRouter, calls: list[Event[Any]], scope: Any
) -> None:
    attempts: list[str] = []

    @router.on("reaction.removed")
    def flaky(event: Event[Any]) -> None:
        attempts.append(event.event)
        if len(attempts) == 1:
            raise RuntimeError("database password is hunter2")

    app = make_app(MessagesWebhook(secret=SECRET, router=router), calls, scope)
    delivery = build_delivery("reaction.removed", secret=SECRET)

    async with asgi_client(app) as client:
        failed = await post_delivery(client, delivery)
        assert calls == []
        retried = await post_delivery(client, delivery)

    assert failed.status_code == 500
    assert failed.json() == {
        "error": "handler_failed",
        "message": "a handler failed; the delivery may be retried",
    }
    assert retried.json() == {"handled": "reaction.removed"}
    assert (len(attempts), len(calls)) == (2, 1)


async def test_duplicate_delivery_does_not_run_the_route_again(
    app: FastAPI, calls: list[Event[Any]]
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)

    async with asgi_client(app) as client:
        first = await post_delivery(client, delivery)
        second = await post_delivery(client, delivery)

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["status"] == "duplicate"
    assert len(calls) == 1


async def test_route_reads_the_verified_body_again(router: WebhookRouter) -> None:
    verified_event = MessagesWebhook(secret=SECRET, router=router)
    app = FastAPI()

    @app.post("/webhooks")
    async def receive(
        event: Annotated[Event[Any], Depends(verified_event)], request: Request
    ) -> dict[str, Any]:
        body, document = await request.body(), await request.json()
        return {"event": event.event, "body": body.decode(), "json": document["event"]}

    delivery = build_delivery("reaction.added", secret=SECRET)
    async with asgi_client(app) as client:
        response = await post_delivery(client, delivery)

    assert response.status_code == 200
    assert response.json() == {
        "event": "reaction.added",
        "body": delivery.body.decode(),
        "json": "reaction.added",
    }


async def test_body_read_by_an_earlier_dependency_is_verified(router: WebhookRouter) -> None:
    verified_event = MessagesWebhook(secret=SECRET, router=router)
    app = FastAPI()
    sizes: list[int] = []

    async def body_size(request: Request) -> int:
        sizes.append(len(await request.body()))
        return sizes[-1]

    @app.post("/webhooks", dependencies=[Depends(body_size)])
    async def receive(event: Annotated[Event[Any], Depends(verified_event)]) -> dict[str, str]:
        return {"handled": event.event}

    good = build_delivery("reaction.added", secret=SECRET)
    forged = build_delivery("reaction.added", secret="not the secret")
    # The body is not read from the server twice: that would wait for more of it forever.
    with anyio.fail_after(10):
        async with asgi_client(app) as client:
            accepted = await post_delivery(client, good)
            refused = await post_delivery(client, forged)

    assert (accepted.status_code, accepted.json()) == (200, {"handled": "reaction.added"})
    assert refused.status_code == 401
    assert sizes == [len(good.body), len(forged.body)]


@pytest.mark.parametrize("failure", ["crash", "http"])
async def test_route_that_raises_releases_the_delivery_so_a_retry_is_handled(
    failure: str, app: FastAPI, calls: list[Event[Any]]
) -> None:
    data = sample_data("reaction.added")
    failing = build_delivery("reaction.added", {**data, "fail": failure}, secret=SECRET)
    # The sender retries the very same delivery id; this time the route succeeds.
    retry = build_delivery("reaction.added", data, secret=SECRET, delivery_id=failing.delivery_id)

    async with asgi_client(app, raise_app_exceptions=False) as client:
        failed = await post_delivery(client, failing)
        retried = await post_delivery(client, retry)
        again = await post_delivery(client, retry)

    # The route's own error is answered as FastAPI answers it for any route.
    assert failed.status_code == (500 if failure == "crash" else 503)
    assert "abc123" not in failed.text
    assert retried.json() == {"handled": "reaction.added"}
    assert again.json()["status"] == "duplicate"
    assert len(calls) == 2


async def test_sync_route_is_supported(calls: list[Event[Any]], router: WebhookRouter) -> None:
    app = FastAPI()
    verified_event = MessagesWebhook(secret=SECRET, router=router)

    @app.post("/hooks")
    def receive(event: Annotated[Event[Any], Depends(verified_event)]) -> dict[str, str]:
        calls.append(event)
        return {"handled": event.event}

    delivery = build_delivery("typing.started", secret=SECRET)
    async with asgi_client(app) as client:
        first = await post_delivery(client, delivery, "/hooks")
        second = await post_delivery(client, delivery, "/hooks")

    assert first.json() == {"handled": "typing.started"}
    assert second.json()["status"] == "duplicate"
    assert len(calls) == 1


async def test_copy_arriving_while_the_route_runs_gets_409(router: WebhookRouter) -> None:
    app = FastAPI()
    started, release = anyio.Event(), anyio.Event()
    verified_event = MessagesWebhook(secret=SECRET, router=router)

    @app.post("/webhooks")
    async def slow(event: Annotated[Event[Any], Depends(verified_event)]) -> str:
        started.set()
        await release.wait()
        return "done"

    delivery = build_delivery("message.received", secret=SECRET)
    first: list[int] = []
    async with asgi_client(app) as client:

        async def first_copy() -> None:
            first.append((await post_delivery(client, delivery)).status_code)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(first_copy)
                await started.wait()
                second = await post_delivery(client, delivery)
                release.set()

    assert second.status_code == 409
    assert second.json()["error"] == "in_progress"
    assert second.headers["retry-after"] == "5"
    assert first == [200]


async def test_oversized_bodies_get_413_without_being_read(
    calls: list[Event[Any]], router: WebhookRouter
) -> None:
    app = make_app(MessagesWebhook(secret=SECRET, router=router, max_body_size=4096), calls)
    chunked, declared = CountingBody(64 * 1024 * 1024), CountingBody(1024 * 1024)

    async with asgi_client(app) as client:
        without_length = await client.post("/webhooks", content=chunked)
        with_length = await client.post(
            "/webhooks", content=declared, headers={"content-length": str(declared.total)}
        )

    assert (without_length.status_code, with_length.status_code) == (413, 413)
    assert without_length.json()["error"] == "payload_too_large"
    assert without_length.headers["connection"] == "close"
    assert chunked.pulled <= 4096 + chunked.chunk
    assert declared.pulled <= declared.chunk
    assert calls == []


def test_missing_secret_raises_when_the_dependency_is_created(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MESSAGES_WEBHOOK_SECRET", raising=False)

    with pytest.raises(ConfigurationError, match="MESSAGES_WEBHOOK_SECRET"):
        MessagesWebhook()


async def test_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, calls: list[Event[Any]], router: WebhookRouter
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", "whsec_env_one,whsec_env_two")
    app = make_app(MessagesWebhook(router=router), calls)

    async with asgi_client(app) as client:
        response = await post_delivery(
            client, build_delivery("receipt.read", secret="whsec_env_two")
        )

    assert response.status_code == 200
    assert len(calls) == 1


class NetworkStore(DeliveryStore):
    """A store with a native async client: every operation waits for a round trip first."""

    def __init__(self) -> None:
        self.memory = InMemoryDeliveryStore()

    def claim(self, key: str, token: str, *, lease: float) -> Claim:
        return self.memory.claim(key, token, lease=lease)

    def extend(self, key: str, token: str, *, lease: float) -> bool:
        return self.memory.extend(key, token, lease=lease)

    def complete(self, key: str, token: str, *, ttl: float) -> bool:
        return self.memory.complete(key, token, ttl=ttl)

    def release(self, key: str, token: str) -> bool:
        return self.memory.release(key, token)

    async def aclaim(self, key: str, token: str, *, lease: float) -> Claim:
        await anyio.sleep(0)
        return self.claim(key, token, lease=lease)

    async def acomplete(self, key: str, token: str, *, ttl: float) -> bool:
        await anyio.sleep(0)
        return self.complete(key, token, ttl=ttl)

    async def arelease(self, key: str, token: str) -> bool:
        await anyio.sleep(0)
        return self.release(key, token)


async def test_cancelled_route_releases_the_delivery_so_a_retry_is_handled(
    router: WebhookRouter,
) -> None:
    app = FastAPI()
    verified_event = MessagesWebhook(secret=SECRET, router=router, store=NetworkStore())
    started = anyio.Event()
    calls: list[Event[Any]] = []

    @app.post("/webhooks")
    async def hangs_once(event: Annotated[Event[Any], Depends(verified_event)]) -> str:
        calls.append(event)
        if len(calls) == 1:
            started.set()
            await anyio.sleep_forever()
        return "done"

    delivery = build_delivery("message.received", secret=SECRET)
    async with asgi_client(app) as client:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(post_delivery, client, delivery)
                await started.wait()
                # What a server does when it shuts down mid-request.
                tasks.cancel_scope.cancel()
            retried = await post_delivery(client, delivery)

    assert retried.status_code == 200
    assert len(calls) == 2
