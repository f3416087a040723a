"""WebhookReceiver: CONTRACT.md's whole HTTP table, without any web framework.

Every case runs through both entry points, ``handle`` (sync) and ``ahandle`` (async).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

import pytest

from messages_integrations import (
    Claim,
    DeliveryStore,
    Event,
    InMemoryDeliveryStore,
    WebhookReceiver,
    WebhookResponse,
    WebhookRouter,
    sign_webhook,
)
from messages_integrations.testing import Delivery, Recorder, build_delivery

SECRET = "whsec_handling_secret"


class Call(Protocol):
    def __call__(
        self, receiver: WebhookReceiver, method: str, headers: Any, body: Any
    ) -> WebhookResponse: ...


def _sync(receiver: WebhookReceiver, method: str, headers: Any, body: Any) -> WebhookResponse:
    return receiver.handle(method, headers, body)


def _async(receiver: WebhookReceiver, method: str, headers: Any, body: Any) -> WebhookResponse:
    return asyncio.run(receiver.ahandle(method, headers, body))


@pytest.fixture(params=[_sync, _async], ids=["handle", "ahandle"])
def call(request: pytest.FixtureRequest) -> Call:
    fn: Call = request.param
    return fn


@pytest.fixture
def receiver(router: WebhookRouter) -> WebhookReceiver:
    return WebhookReceiver(secret=SECRET, router=router)


def post(call: Call, receiver: WebhookReceiver, delivery: Delivery) -> WebhookResponse:
    return call(receiver, "POST", delivery.headers, delivery.body)


# --- 200 ------------------------------------------------------------------------------------------


def test_valid_delivery_is_answered_200_and_handled(
    call: Call, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    response = post(call, receiver, delivery)
    assert response.status == 200
    assert response.json() == {
        "status": "ok",
        "event": "message.received",
        "delivery_id": delivery.delivery_id,
    }
    assert ("content-type", "application/json") in response.headers
    assert [e.delivery_id for e in recorder.events] == [delivery.delivery_id]


def test_valid_delivery_without_matching_handlers_is_answered_200(call: Call) -> None:
    receiver = WebhookReceiver(secret=SECRET, router=WebhookRouter())
    response = post(call, receiver, build_delivery("typing.stopped", secret=SECRET))
    assert response.status == 200


def test_unknown_event_runs_only_wildcard_handlers(call: Call) -> None:
    router = WebhookRouter()
    seen: list[str] = []
    router.on("message.received")(lambda event: seen.append("specific"))
    router.on("*")(lambda event: seen.append(event.event))
    delivery = build_delivery("chat.renamed", {"chat_id": "cht_1"}, secret=SECRET)
    response = post(call, WebhookReceiver(secret=SECRET, router=router), delivery)
    assert response.status == 200
    assert seen == ["chat.renamed"]


def test_headers_are_found_in_any_case_and_as_asgi_pairs(
    call: Call, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    first = build_delivery("reaction.added", secret=SECRET)
    lower = {name.lower(): value for name, value in first.headers.items()}
    assert call(receiver, "POST", lower, first.body).status == 200
    second = build_delivery("reaction.added", secret=SECRET)
    pairs = [(name.upper().encode(), value.encode()) for name, value in second.headers.items()]
    assert call(receiver, "post", pairs, second.body).status == 200
    assert recorder.count() == 2


def test_body_may_be_a_file_or_chunks(
    call: Call, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    file_delivery = build_delivery("receipt.read", secret=SECRET)
    assert (
        call(receiver, "POST", file_delivery.headers, io.BytesIO(file_delivery.body)).status == 200
    )
    chunk_delivery = build_delivery("receipt.read", secret=SECRET)
    chunks = [chunk_delivery.body[i : i + 7] for i in range(0, len(chunk_delivery.body), 7)]
    assert call(receiver, "POST", chunk_delivery.headers, iter(chunks)).status == 200
    assert recorder.count("receipt.read") == 2


@pytest.mark.anyio
async def test_ahandle_reads_an_async_stream_of_chunks(
    receiver: WebhookReceiver, recorder: Recorder
) -> None:
    delivery = build_delivery("message.sent", secret=SECRET)

    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(delivery.body), 100):
            yield delivery.body[i : i + 100]

    response = await receiver.ahandle("POST", delivery.headers, stream())
    assert response.status == 200
    assert recorder.count("message.sent") == 1


# --- de-duplication -------------------------------------------------------------------------------


def test_duplicate_delivery_runs_handlers_once(
    call: Call, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    delivery = build_delivery("reaction.added", secret=SECRET)
    assert post(call, receiver, delivery).status == 200
    again = post(call, receiver, delivery)
    assert again.status == 200
    assert again.json()["status"] == "duplicate"
    assert recorder.count() == 1


def test_delivery_still_being_handled_is_answered_409(call: Call) -> None:
    router = WebhookRouter()
    started, release = threading.Event(), threading.Event()

    @router.on("message.received")
    def slow(event: Event[Any]) -> None:
        started.set()
        release.wait(10)

    receiver = WebhookReceiver(secret=SECRET, router=router)
    delivery = build_delivery("message.received", secret=SECRET)
    first = threading.Thread(target=receiver.handle, args=("POST", delivery.headers, delivery.body))
    first.start()
    try:
        assert started.wait(10)
        response = post(call, receiver, delivery)
        assert response.status == 409
        assert response.json()["error"] == "in_progress"
    finally:
        release.set()
        first.join(10)
    assert post(call, receiver, delivery).json()["status"] == "duplicate"


def test_failed_delivery_is_not_marked_and_its_retry_runs_in_full(call: Call) -> None:
    router = WebhookRouter()
    attempts: list[int] = []

    @router.on("reaction.removed")
    def flaky(event: Event[Any]) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("database unavailable")

    receiver = WebhookReceiver(secret=SECRET, router=router)
    delivery = build_delivery("reaction.removed", secret=SECRET)
    assert post(call, receiver, delivery).status == 500
    assert post(call, receiver, delivery).status == 200
    assert len(attempts) == 2


def test_body_delivery_id_is_the_key_and_a_changed_header_cannot_dodge_it(
    call: Call, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    delivery = build_delivery("reaction.added", secret=SECRET)
    assert post(call, receiver, delivery).status == 200
    replay = {**delivery.headers, "X-Webhook-Delivery-Id": "dlv_forged"}
    assert call(receiver, "POST", replay, delivery.body).json()["status"] == "duplicate"
    assert recorder.count() == 1


def test_header_delivery_id_is_the_key_when_the_body_has_none(
    call: Call, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    body = json.dumps(
        {
            "event": "typing.started",
            "data": build_delivery("typing.started", secret=SECRET).json()["data"],
            "timestamp": 1_767_225_600_000,
        }
    ).encode()
    now = 1_767_225_600.0
    receiver = WebhookReceiver(secret=SECRET, router=receiver.router, clock=lambda: now)
    headers = {
        "X-Webhook-Signature": sign_webhook(SECRET, 1_767_225_600_000, body),
        "X-Webhook-Timestamp": "1767225600000",
        "X-Webhook-Delivery-Id": "dlv_header_only",
    }
    first = call(receiver, "POST", headers, body)
    assert first.json() == {
        "status": "ok",
        "event": "typing.started",
        "delivery_id": "dlv_header_only",
    }
    assert call(receiver, "POST", headers, body).json()["status"] == "duplicate"
    assert recorder.count() == 1


def test_exact_replay_without_any_delivery_id_is_caught_by_its_signature(
    call: Call, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    body = (
        b'{"event":"receipt.read","data":{"id":"rcp_1","chat_id":"cht_1","handle":"+1555",'
        b'"last_read_at":1},"timestamp":1767225600000}'
    )
    headers = {"X-Webhook-Signature": sign_webhook(SECRET, None, body, scheme="body")}
    receiver = WebhookReceiver(secret=SECRET, router=receiver.router, tolerance=None)
    assert call(receiver, "POST", headers, body).status == 200
    assert call(receiver, "POST", headers, body).json()["status"] == "duplicate"
    assert recorder.count() == 1


def test_concurrent_copies_of_one_delivery_run_handlers_exactly_once() -> None:
    router = WebhookRouter()
    runs: list[int] = []
    router.on("*")(lambda event: runs.append(1))
    receiver = WebhookReceiver(secret=SECRET, router=router)
    delivery = build_delivery("message.received", secret=SECRET)
    statuses: list[int] = []
    barrier = threading.Barrier(16)

    def send() -> None:
        barrier.wait()
        statuses.append(receiver.handle("POST", delivery.headers, delivery.body).status)

    threads = [threading.Thread(target=send) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(runs) == 1
    assert set(statuses) <= {200, 409}
    assert statuses.count(200) >= 1


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
def test_other_methods_get_405_with_allow_post(
    call: Call, receiver: WebhookReceiver, recorder: Recorder, method: str
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    response = call(receiver, method, delivery.headers, delivery.body)
    assert response.status == 405
    assert ("allow", "POST") in response.headers
    assert response.json()["error"] == "method_not_allowed"
    assert recorder.count() == 0


class CountingStream(io.RawIOBase):
    """An endless request body that counts what was read from it."""

    def __init__(self) -> None:
        self.read_total = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        assert size > 0, "the receiver must never read an unbounded amount"
        self.read_total += size
        return b"x" * size


def test_declared_oversized_body_gets_413_without_reading(call: Call, recorder: Recorder) -> None:
    router = WebhookRouter()
    router.on("*")(recorder)
    receiver = WebhookReceiver(secret=SECRET, router=router, max_body_size=1000)
    stream = CountingStream()
    response = call(receiver, "POST", {"Content-Length": "1001"}, stream)
    assert response.status == 413
    assert response.close_connection
    assert stream.read_total == 0


def test_undeclared_oversized_body_gets_413_reading_at_most_the_limit_plus_one(
    call: Call,
) -> None:
    receiver = WebhookReceiver(secret=SECRET, max_body_size=100_000)
    stream = CountingStream()
    assert call(receiver, "POST", {"Transfer-Encoding": "chunked"}, stream).status == 413
    assert stream.read_total == 100_001


def test_oversized_chunked_stream_stops_at_the_limit(call: Call) -> None:
    receiver = WebhookReceiver(secret=SECRET, max_body_size=1000)
    pulled: list[int] = []

    def endless() -> Iterator[bytes]:
        while True:
            pulled.append(1)
            yield b"x" * 300

    assert call(receiver, "POST", {}, endless()).status == 413
    assert len(pulled) == 4  # 1200 bytes: the first chunk past the limit ends the read


def test_body_exactly_at_the_limit_is_accepted(call: Call, recorder: Recorder) -> None:
    delivery = build_delivery("reaction.added", secret=SECRET)
    router = WebhookRouter()
    router.on("*")(recorder)
    receiver = WebhookReceiver(secret=SECRET, router=router, max_body_size=len(delivery.body))
    assert post(call, receiver, delivery).status == 200


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "١٢"])
def test_malformed_content_length_gets_400(
    call: Call, receiver: WebhookReceiver, length: str
) -> None:
    assert call(receiver, "POST", {"Content-Length": length}, b"{}").status == 400


def test_missing_signature_gets_401(
    call: Call, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    headers = {k: v for k, v in delivery.headers.items() if k != "X-Webhook-Signature"}
    response = call(receiver, "POST", headers, delivery.body)
    assert response.status == 401
    assert response.json()["error"] == "invalid_signature"
    assert recorder.count() == 0


def test_wrong_signature_gets_401(
    call: Call, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    response = post(call, receiver, build_delivery("message.received", secret="whsec_wrong"))
    assert response.status == 401
    assert recorder.count() == 0


def test_stale_delivery_gets_401(call: Call, router: WebhookRouter, recorder: Recorder) -> None:
    delivery = build_delivery("message.received", secret=SECRET, timestamp=1_767_225_600_000)
    receiver = WebhookReceiver(secret=SECRET, router=router, clock=lambda: 1_767_225_600 + 301)
    response = post(call, receiver, delivery)
    assert response.status == 401
    assert "replay window" in response.json()["message"]
    assert recorder.count() == 0


def test_authenticated_non_object_gets_400(call: Call, receiver: WebhookReceiver) -> None:
    body = b"[1, 2, 3]"
    headers = {"X-Webhook-Signature": sign_webhook(SECRET, 5, body), "X-Webhook-Timestamp": "5"}
    receiver = WebhookReceiver(secret=SECRET, router=receiver.router, tolerance=None)
    response = call(receiver, "POST", headers, body)
    assert response.status == 400
    assert response.json()["error"] == "invalid_payload"


def test_authenticated_delivery_missing_a_required_field_gets_400_naming_it(
    call: Call, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    data = build_delivery("message.received", secret=SECRET).json()["data"]
    del data["sender"]
    response = post(call, receiver, build_delivery("message.received", data, secret=SECRET))
    assert response.status == 400
    assert "data.sender" in response.json()["message"]
    assert recorder.count() == 0


def test_handler_error_gets_500_after_every_handler_ran(call: Call, caplog: Any) -> None:
    router = WebhookRouter()
    seen: list[str] = []

    @router.on("message.received")
    def broken(event: Event[Any]) -> None:
        raise RuntimeError("secret internal detail")

    router.on("message.received")(lambda event: seen.append("second"))
    router.on("*")(lambda event: seen.append("wildcard"))
    receiver = WebhookReceiver(secret=SECRET, router=router)
    delivery = build_delivery("message.received", secret=SECRET)
    with caplog.at_level(logging.ERROR, logger="messages_integrations"):
        response = post(call, receiver, delivery)
    assert response.status == 500
    assert seen == ["second", "wildcard"]
    assert b"secret internal detail" not in response.body
    assert b"Traceback" not in response.body
    # The handler's own exception is logged with its traceback, the delivery id and event name.
    record = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert delivery.delivery_id in record.getMessage()
    assert "message.received" in record.getMessage()
    assert record.exc_info is not None


# --- what never leaks -----------------------------------------------------------------------------


def test_no_response_or_log_line_contains_the_secret_or_expected_signature(
    call: Call, caplog: Any
) -> None:
    router = WebhookRouter()
    router.on("reaction.added")(lambda event: 1 / 0)
    receiver = WebhookReceiver(secret=SECRET, router=router, max_body_size=5_000)
    good = build_delivery("reaction.added", secret=SECRET)
    forged = build_delivery("reaction.added", secret="whsec_attacker")
    requests: list[tuple[str, Any, Any]] = [
        ("POST", good.headers, good.body),
        ("POST", forged.headers, forged.body),
        ("GET", {}, b""),
        ("POST", {"Content-Length": "999999"}, b""),
        ("POST", {}, b"{}"),
        ("POST", {**good.headers, "X-Webhook-Timestamp": "1"}, good.body),
    ]
    expected_for_forged = sign_webhook(SECRET, forged.timestamp, forged.body)
    with caplog.at_level(logging.DEBUG, logger="messages_integrations"):
        responses = [call(receiver, *request) for request in requests]
    for response in responses:
        assert isinstance(response.json(), dict)
        assert SECRET.encode() not in response.body
        assert expected_for_forged.encode() not in response.body
        assert b"Traceback" not in response.body
    logged = caplog.text
    assert SECRET not in logged
    assert expected_for_forged not in logged
    assert repr(receiver).count(SECRET) == 0


def test_matching_secret_position_is_logged_at_debug(call: Call, caplog: Any) -> None:
    receiver = WebhookReceiver(secret=["whsec_old", SECRET], router=WebhookRouter())
    delivery = build_delivery("typing.started", secret=SECRET)
    with caplog.at_level(logging.DEBUG, logger="messages_integrations"):
        assert post(call, receiver, delivery).status == 200
    expected = "(typing.started) verified by the secret at position 1 of 2"
    assert f"delivery {delivery.delivery_id} {expected}" in caplog.text


def test_refusals_are_logged_with_the_delivery_id(
    call: Call, receiver: WebhookReceiver, caplog: Any
) -> None:
    forged = build_delivery("reaction.added", secret="whsec_attacker", delivery_id="dlv_forged")
    with caplog.at_level(logging.WARNING, logger="messages_integrations"):
        post(call, receiver, forged)
    assert "refused delivery dlv_forged: signature does not match" in caplog.text


# --- stores ---------------------------------------------------------------------------------------


class FailingStore(DeliveryStore):
    def claim(self, key: str, *, lease: float) -> Claim:
        raise ConnectionError("store down")

    def complete(self, key: str, *, ttl: float) -> None:
        raise AssertionError("not reached")

    def release(self, key: str) -> None:
        raise AssertionError("not reached")


def test_store_outage_is_a_500_without_running_handlers(
    call: Call, router: WebhookRouter, recorder: Recorder
) -> None:
    receiver = WebhookReceiver(secret=SECRET, router=router, store=FailingStore())
    response = post(call, receiver, build_delivery("message.sent", secret=SECRET))
    assert response.status == 500
    assert b"store down" not in response.body
    assert recorder.count() == 0


@pytest.mark.anyio
async def test_a_store_without_async_methods_is_run_in_a_thread() -> None:
    class SyncOnly(DeliveryStore):
        def __init__(self) -> None:
            self.threads: list[threading.Thread] = []
            self.inner = InMemoryDeliveryStore()

        def claim(self, key: str, *, lease: float) -> Claim:
            self.threads.append(threading.current_thread())
            return self.inner.claim(key, lease=lease)

        def complete(self, key: str, *, ttl: float) -> None:
            self.inner.complete(key, ttl=ttl)

        def release(self, key: str) -> None:
            self.inner.release(key)

    store = SyncOnly()
    receiver = WebhookReceiver(secret=SECRET, router=WebhookRouter(), store=store)
    delivery = build_delivery("message.sent", secret=SECRET)
    assert (await receiver.ahandle("POST", delivery.headers, delivery.body)).status == 200
    assert store.threads
    assert store.threads[0] is not threading.current_thread()


# --- construction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs", [{"max_body_size": 0}, {"tolerance": -1}, {"secret": ""}, {"secret": []}]
)
def test_receiver_refuses_nonsense_configuration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must|required"):
        WebhookReceiver(**{"secret": SECRET, **kwargs})


def test_receive_and_finish_let_a_view_handle_the_event_itself() -> None:
    from messages_integrations import Accepted

    receiver = WebhookReceiver(secret=SECRET, router=WebhookRouter())
    delivery = build_delivery("reaction.added", secret=SECRET)
    accepted = receiver.receive("POST", delivery.headers, delivery.body)
    assert isinstance(accepted, Accepted)
    assert accepted.event.event == "reaction.added"
    assert isinstance(receiver.receive("POST", delivery.headers, delivery.body), WebhookResponse)
    assert receiver.finish(accepted).status == 200
    duplicate = receiver.receive("POST", delivery.headers, delivery.body)
    assert isinstance(duplicate, WebhookResponse)
    assert duplicate.json()["status"] == "duplicate"


def test_a_body_source_may_report_a_framework_limit_as_413(call: Call) -> None:
    from messages_integrations import BodyTooLarge

    class LimitedByFramework:
        def read(self, size: int = -1, /) -> bytes:
            raise BodyTooLarge

    receiver = WebhookReceiver(secret=SECRET, router=WebhookRouter())
    response = call(receiver, "POST", {}, LimitedByFramework())
    assert response.status == 413
    assert response.json()["error"] == "payload_too_large"


@pytest.mark.anyio
async def test_a_cancelled_delivery_is_released_so_its_retry_runs() -> None:
    router = WebhookRouter()
    started = asyncio.Event()
    runs: list[int] = []

    @router.on("message.received")
    async def slow(event: Event[Any]) -> None:
        runs.append(1)
        if len(runs) == 1:
            started.set()
            await asyncio.sleep(60)

    receiver = WebhookReceiver(secret=SECRET, router=router)
    delivery = build_delivery("message.received", secret=SECRET)
    first = asyncio.ensure_future(receiver.ahandle("POST", delivery.headers, delivery.body))
    await started.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    retry = await receiver.ahandle("POST", delivery.headers, delivery.body)
    assert retry.status == 200
    assert retry.json()["status"] == "ok"
    assert len(runs) == 2


def test_a_blank_content_length_counts_as_none(
    call: Call, receiver: WebhookReceiver, recorder: Recorder
) -> None:
    delivery = build_delivery("typing.started", secret=SECRET)
    response = call(receiver, "POST", {**delivery.headers, "Content-Length": " "}, delivery.body)
    assert response.status == 200
    assert recorder.count() == 1
