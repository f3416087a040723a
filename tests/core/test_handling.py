"""WebhookReceiver beyond the HTTP table (tests/contract has that): body sources, concurrency,
cancellation, logs, and the scoped delivery of ``accept``.

Every case runs through both entry points, ``handle`` (sync) and ``ahandle`` (async).
"""

from __future__ import annotations

import asyncio
import io
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


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "١٢"])
def test_malformed_content_length_gets_400(
    call: Call, receiver: WebhookReceiver, length: str
) -> None:
    assert call(receiver, "POST", {"Content-Length": length}, b"{}").status == 400


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


# --- stores ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_store_without_async_methods_is_run_in_a_thread() -> None:
    class SyncOnly(DeliveryStore):
        def __init__(self) -> None:
            self.threads: list[threading.Thread] = []
            self.inner = InMemoryDeliveryStore()

        def claim(self, key: str, token: str, *, lease: float) -> Claim:
            self.threads.append(threading.current_thread())
            return self.inner.claim(key, token, lease=lease)

        def extend(self, key: str, token: str, *, lease: float) -> bool:
            return self.inner.extend(key, token, lease=lease)

        def complete(self, key: str, token: str, *, ttl: float) -> bool:
            return self.inner.complete(key, token, ttl=ttl)

        def release(self, key: str, token: str) -> bool:
            return self.inner.release(key, token)

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
