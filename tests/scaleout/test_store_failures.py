"""A store that fails after the handlers ran, and ``on_store_error="handle"``, in the core.

Marking a delivery done can fail after its handlers succeeded (the store went away meanwhile):
the work is done, so the answer is still 200, and an ERROR says that a retry may run the handlers
again. With ``on_store_error="handle"`` an unreachable store does not stop the handlers: each
copy runs, without de-duplication, and the log says so. Every case runs through ``handle``
(sync) and ``ahandle`` (async).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

import pytest

from messages_integrations import (
    Claim,
    Event,
    InMemoryDeliveryStore,
    WebhookReceiver,
    WebhookResponse,
    WebhookRouter,
)
from messages_integrations.stores import RedisDeliveryStore, store_from_url
from messages_integrations.testing import Delivery, Recorder, build_delivery
from tests.support.servers import free_port
from tests.support.services import Service

SECRET = "whsec_store_failures"
NOT_DONE = "could not be marked done; a retry may run its handlers again"
WITHOUT = "handling the delivery WITHOUT de-duplication"

Post = Callable[[WebhookReceiver, Delivery], WebhookResponse]


def _sync(receiver: WebhookReceiver, delivery: Delivery) -> WebhookResponse:
    return receiver.handle("POST", delivery.headers, delivery.body)


def _async(receiver: WebhookReceiver, delivery: Delivery) -> WebhookResponse:
    return asyncio.run(receiver.ahandle("POST", delivery.headers, delivery.body))


@pytest.fixture(params=[_sync, _async], ids=["handle", "ahandle"])
def post(request: pytest.FixtureRequest) -> Post:
    """One of the two entry points."""
    fn: Post = request.param
    return fn


class FailsWhenMarkingDone(InMemoryDeliveryStore):
    """Claims, extends and releases as the in-memory store; marking done fails as an outage."""

    def complete(self, key: str, token: str, *, ttl: float) -> bool:
        """Fail, as a store that went away while the handlers ran."""
        raise ConnectionError("the store went away")


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]


def _outcomes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.outcome for r in caplog.records if hasattr(r, "outcome")]


def test_handlers_done_but_not_marked_done_answers_200_and_says_a_retry_may_run_again(
    post: Post, router: WebhookRouter, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = WebhookReceiver(
        secret=SECRET, router=router, store=FailsWhenMarkingDone(), lease=0.3
    )
    delivery = build_delivery("message.received", secret=SECRET)
    with caplog.at_level(logging.INFO, logger="messages_integrations"):
        answer = post(receiver, delivery)
    assert (answer.status, answer.json()["status"]) == (200, "ok")
    assert recorder.count() == 1
    [error] = _errors(caplog)
    assert NOT_DONE in error
    assert str(delivery.delivery_id) in error
    assert _outcomes(caplog) == ["ok"]

    # What the ERROR warns about: the lease still keeps a copy off while it lasts (409), but once
    # it has run out, a copy of the delivery runs the handlers again.
    assert post(receiver, delivery).status == 409
    time.sleep(0.5)
    assert post(receiver, delivery).status == 200
    assert recorder.count() == 2


def test_redis_stopping_while_the_handlers_run_still_answers_200(
    redis_server: Service,
    redis_url: str,
    router: WebhookRouter,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The real thing: the handler stops the Redis that the delivery was claimed in.
    router.on("*")(lambda event: redis_server.stop())
    store = store_from_url(redis_url)
    receiver = WebhookReceiver(secret=SECRET, router=router, store=store)
    delivery = build_delivery("reaction.added", secret=SECRET)
    with caplog.at_level(logging.INFO, logger="messages_integrations"):
        answer = receiver.handle("POST", delivery.headers, delivery.body)
    _close(store)
    assert redis_server.process is None
    assert (answer.status, answer.json()["status"]) == (200, "ok")
    assert recorder.count() == 1
    assert any(NOT_DONE in message for message in _errors(caplog))


def test_redis_stopping_while_async_handlers_run_still_answers_200(
    redis_server: Service,
    redis_url: str,
    router: WebhookRouter,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    @router.on("*")
    async def stop_redis(event: Event[Any]) -> None:
        redis_server.stop()

    store = store_from_url(redis_url)
    receiver = WebhookReceiver(secret=SECRET, router=router, store=store)
    delivery = build_delivery("reaction.added", secret=SECRET)

    async def scenario() -> WebhookResponse:
        try:
            return await receiver.ahandle("POST", delivery.headers, delivery.body)
        finally:
            await _aclose(store)

    with caplog.at_level(logging.INFO, logger="messages_integrations"):
        answer = asyncio.run(scenario())
    assert (answer.status, answer.json()["status"]) == (200, "ok")
    assert recorder.count() == 1
    assert any(NOT_DONE in message for message in _errors(caplog))


def _unreachable_store() -> tuple[RedisDeliveryStore, str]:
    password = "pa55-in-the-store-url"
    store = store_from_url(f"redis://:{password}@127.0.0.1:{free_port()}/0")  # nothing listens
    assert isinstance(store, RedisDeliveryStore)
    return store, password


def _close(store: Any) -> None:
    if store.sync_client is not None:
        store.sync_client.close()


async def _aclose(store: Any) -> None:
    if store.async_client is not None:
        await store.async_client.aclose()
    _close(store)


def _run_then_close(store: RedisDeliveryStore, work: Callable[[], Any]) -> Any:
    try:
        return work()
    finally:
        _close(store)


def test_on_store_error_handle_runs_every_copy_without_de_duplication(
    post: Post, router: WebhookRouter, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    store, password = _unreachable_store()
    receiver = WebhookReceiver(secret=SECRET, router=router, store=store, on_store_error="handle")
    delivery = build_delivery("message.received", secret=SECRET)
    with caplog.at_level(logging.INFO, logger="messages_integrations"):
        answers = _run_then_close(store, lambda: [post(receiver, delivery) for _ in range(2)])
    assert [(a.status, a.json()["status"]) for a in answers] == [(200, "ok")] * 2
    assert recorder.count() == 2  # both copies ran: nothing remembered the first
    assert sum(WITHOUT in message for message in _errors(caplog)) == 2
    assert _outcomes(caplog) == ["ok", "ok"]
    assert password not in caplog.text


def test_by_default_an_unreachable_store_refuses_with_503(
    post: Post, router: WebhookRouter, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    store, password = _unreachable_store()
    receiver = WebhookReceiver(secret=SECRET, router=router, store=store)
    delivery = build_delivery("message.received", secret=SECRET)
    with caplog.at_level(logging.INFO, logger="messages_integrations"):
        answer = _run_then_close(store, lambda: post(receiver, delivery))
    assert (answer.status, answer.json()["error"]) == (503, "store_unavailable")
    assert dict(answer.headers).get("retry-after")
    assert recorder.count() == 0
    assert _outcomes(caplog) == ["store_failed"]
    assert password not in caplog.text


def test_a_store_from_a_url_recovers_at_once_when_redis_restarts(
    redis_server: Service, redis_url: str
) -> None:
    # Connections pooled before the restart are dead: each fails once, and is replaced at once,
    # so no delivery is answered 503 once Redis is back.
    store = store_from_url(redis_url)
    keys = iter(f"delivery:restart-{n}" for n in range(100))

    def claims(count: int) -> list[Claim]:
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(lambda key: store.claim(key, "t", lease=5), islice(keys, count)))

    async def aclaims(count: int) -> list[Claim]:
        return list(
            await asyncio.gather(*(store.aclaim(k, "t", lease=5) for k in islice(keys, count)))
        )

    async def scenario() -> list[Claim]:
        assert await aclaims(8) == [Claim.NEW] * 8  # eight pooled asyncio connections
        redis_server.stop()
        redis_server.start()
        try:
            return await aclaims(8)
        finally:
            await _aclose(store)

    assert claims(8) == [Claim.NEW] * 8  # eight pooled sync connections
    assert asyncio.run(scenario()) == [Claim.NEW] * 8
    assert claims(8) == [Claim.NEW] * 8
    _close(store)
