"""One outcome per delivery: the log record, the callbacks, the handler records; and ``accept``."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from messages_integrations import (
    OUTCOMES,
    Claim,
    ConfigurationError,
    DeliveryRecord,
    Event,
    HandlerRecord,
    HandlersStarted,
    InMemoryDeliveryStore,
    Refused,
    WebhookReceiver,
    WebhookRouter,
    observe,
)
from messages_integrations._handling import not_configured
from messages_integrations._outcomes import GLOBAL_OBSERVERS
from messages_integrations.testing import build_delivery
from tests.contract.test_http_table import DownStore

SECRET = "whsec_outcome_tests"


def deliveries_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if hasattr(record, "outcome")]


def run(receiver: WebhookReceiver, headers: Any, body: bytes, method: str = "POST") -> int:
    return receiver.handle(method, headers, body).status


@pytest.fixture
def records(router: WebhookRouter) -> list[Any]:
    return []


@pytest.fixture
def receiver(router: WebhookRouter, records: list[Any]) -> WebhookReceiver:
    built = WebhookReceiver(secret=["whsec_old", SECRET], router=router)
    built.observers.add(records.append)
    return built


def _outcome_cases(receiver: WebhookReceiver) -> dict[str, tuple[Any, bytes, str]]:
    good = build_delivery("reaction.added", secret=SECRET)
    stale = build_delivery(
        "reaction.added", secret=SECRET, timestamp=int(time.time() * 1000) - 10**6
    )
    forged = build_delivery("reaction.added", secret="whsec_forger")
    return {
        "ok": (good.headers, good.body, "POST"),
        "refused_signature": (forged.headers, forged.body, "POST"),
        "refused_stale": (stale.headers, stale.body, "POST"),
        "refused_payload": (
            {**good.headers, "Content-Length": "x"},
            good.body,
            "POST",
        ),
        "refused_size": ({**good.headers, "Content-Length": str(10**9)}, good.body, "POST"),
        "refused_method": ({}, b"", "GET"),
    }


@pytest.mark.parametrize(
    ("outcome", "status", "level"),
    [
        ("ok", 200, logging.INFO),
        ("refused_signature", 401, logging.INFO),
        ("refused_stale", 401, logging.INFO),
        ("refused_payload", 400, logging.INFO),
        ("refused_size", 413, logging.INFO),
        ("refused_method", 405, logging.DEBUG),
    ],
)
def test_each_delivery_ends_in_one_log_record_and_one_callback(
    receiver: WebhookReceiver,
    records: list[Any],
    caplog: pytest.LogCaptureFixture,
    outcome: str,
    status: int,
    level: int,
) -> None:
    headers, body, method = _outcome_cases(receiver)[outcome]
    with caplog.at_level(logging.DEBUG, logger="messages_integrations"):
        assert run(receiver, headers, body, method) == status
    [logged] = deliveries_logged(caplog)
    assert logged.outcome == outcome  # type: ignore[attr-defined]
    assert logged.http_status == status  # type: ignore[attr-defined]
    assert logged.levelno == level
    assert logged.duration_s >= 0  # type: ignore[attr-defined]
    [record] = [r for r in records if isinstance(r, DeliveryRecord)]
    assert record.outcome == outcome
    assert record.http_status == status


def test_the_record_names_the_delivery_event_and_secret_position_never_the_secret(
    receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    delivery = build_delivery("reaction.added", secret=SECRET)
    with caplog.at_level(logging.INFO, logger="messages_integrations"):
        run(receiver, delivery.headers, delivery.body)
    [logged] = deliveries_logged(caplog)
    assert logged.delivery_id == delivery.delivery_id  # type: ignore[attr-defined]
    assert logged.event == "reaction.added"  # type: ignore[attr-defined]
    # The second secret configured matched: positions count from 1.
    assert logged.secret_position == 2  # type: ignore[attr-defined]
    assert "verified by secret 2 of 2, timestamped scheme" in logged.getMessage()
    assert SECRET not in caplog.text


def test_duplicate_in_progress_handler_failed_and_store_failed(
    router: WebhookRouter, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[DeliveryRecord] = []
    store = InMemoryDeliveryStore()
    receiver = WebhookReceiver(secret=SECRET, router=router, store=store)
    receiver.observers.add(lambda r: seen.append(r) if isinstance(r, DeliveryRecord) else None)
    delivery = build_delivery("message.received", secret=SECRET)
    run(receiver, delivery.headers, delivery.body)
    run(receiver, delivery.headers, delivery.body)
    held = build_delivery("message.received", secret=SECRET)
    store.claim(f"delivery:{held.delivery_id}", "elsewhere", lease=60)
    run(receiver, held.headers, held.body)
    router.on("typing.started")(lambda event: 1 / 0)
    failing = build_delivery("typing.started", secret=SECRET)
    run(receiver, failing.headers, failing.body)
    down = WebhookReceiver(secret=SECRET, router=router, store=DownStore())
    down.observers.add(lambda r: seen.append(r) if isinstance(r, DeliveryRecord) else None)
    run(down, delivery.headers, delivery.body)
    assert [r.outcome for r in seen] == [
        "ok",
        "duplicate",
        "in_progress",
        "handler_failed",
        "store_failed",
    ]
    assert [r.http_status for r in seen] == [200, 200, 409, 500, 503]


def test_not_configured_is_an_outcome_too(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Any] = []
    callback = observe(seen.append)
    try:
        with caplog.at_level(logging.INFO, logger="messages_integrations"):
            answer = not_configured(ConfigurationError("set MESSAGES_WEBHOOK_SECRET"))
    finally:
        GLOBAL_OBSERVERS.remove(callback)
    assert answer.status == 500
    assert answer.json()["error"] == "not_configured"
    assert [r.outcome for r in seen] == ["not_configured"]
    assert any(
        r.levelno == logging.ERROR and "MESSAGES_WEBHOOK_SECRET" in r.getMessage()
        for r in caplog.records
    )


def test_every_handler_run_is_recorded_with_its_name_duration_and_error(
    router: WebhookRouter, records: list[Any], receiver: WebhookReceiver
) -> None:
    def thank(event: Event[Any]) -> None:
        time.sleep(0.01)

    def broken(event: Event[Any]) -> None:
        raise KeyError("x")

    router.on("reaction.added")(thank)
    router.on("reaction.added")(broken)
    delivery = build_delivery("reaction.added", secret=SECRET)
    assert run(receiver, delivery.headers, delivery.body) == 500
    runs = [r for r in records if isinstance(r, HandlerRecord)]
    assert [(r.handler.rsplit(".", 1)[-1], r.outcome, r.error_type) for r in runs] == [
        ("thank", "ok", None),
        ("broken", "failed", "KeyError"),
    ]
    assert runs[0].duration_s >= 0.01
    assert any(isinstance(r, HandlersStarted) for r in records)
    [delivered] = [r for r in records if isinstance(r, DeliveryRecord)]
    assert delivered.handled


def test_a_failing_callback_never_changes_the_answer(
    receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(record: object) -> None:
        raise RuntimeError("observer bug")

    receiver.observers.add(explode)
    delivery = build_delivery("reaction.added", secret=SECRET)
    assert run(receiver, delivery.headers, delivery.body) == 200


@pytest.mark.anyio
async def test_async_callbacks_are_awaited_on_the_loop(receiver: WebhookReceiver) -> None:
    got: list[str] = []

    async def collect(record: object) -> None:
        if isinstance(record, DeliveryRecord):
            got.append(record.outcome)

    receiver.observers.add(collect)
    delivery = build_delivery("reaction.added", secret=SECRET)
    assert (await receiver.ahandle("POST", delivery.headers, delivery.body)).status == 200
    await asyncio.sleep(0.01)
    assert got == ["ok"]


def test_the_vocabulary_is_fixed() -> None:
    assert set(OUTCOMES) == {
        "ok",
        "duplicate",
        "in_progress",
        "queued",
        "handler_failed",
        "store_failed",
        "not_configured",
        "refused_signature",
        "refused_stale",
        "refused_payload",
        "refused_size",
        "refused_method",
    }


# --- accept(): one scoped delivery ----------------------------------------------------------


def test_accept_marks_the_delivery_done_when_the_block_succeeds(router: WebhookRouter) -> None:
    store = InMemoryDeliveryStore()
    receiver = WebhookReceiver(secret=SECRET, router=router, store=store)
    delivery = build_delivery("message.received", secret=SECRET)
    scope = receiver.accept("POST", delivery.headers, delivery.body)
    with scope as event:
        assert event.event == "message.received"
    assert scope.response is not None
    assert scope.response.status == 200
    assert store.claim(f"delivery:{delivery.delivery_id}", "t", lease=1) is Claim.DONE
    with pytest.raises(Refused) as refused:
        receiver.accept("POST", delivery.headers, delivery.body).__enter__()
    assert refused.value.outcome == "duplicate"


def test_accept_releases_the_delivery_when_the_block_raises(router: WebhookRouter) -> None:
    store = InMemoryDeliveryStore()
    receiver = WebhookReceiver(secret=SECRET, router=router, store=store)
    delivery = build_delivery("message.received", secret=SECRET)
    scope = receiver.accept("POST", delivery.headers, delivery.body)
    with pytest.raises(ValueError, match="view failed"), scope:
        raise ValueError("view failed")
    assert scope.response is not None
    assert scope.response.status == 500
    assert store.claim(f"delivery:{delivery.delivery_id}", "retry", lease=1) is Claim.NEW


@pytest.mark.anyio
async def test_async_accept_refuses_with_the_answer_to_send(router: WebhookRouter) -> None:
    receiver = WebhookReceiver(secret=SECRET, router=router)
    forged = build_delivery("message.received", secret="whsec_forger")
    with pytest.raises(Refused) as refused:
        async with receiver.aaccept("POST", forged.headers, forged.body):
            pytest.fail("a forged delivery must not enter the block")
    assert refused.value.response.status == 401
    assert refused.value.outcome == "refused_signature"
