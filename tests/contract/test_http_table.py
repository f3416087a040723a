"""The HTTP table, once, against every adapter: the same request gets the same answer everywhere.

Each test runs against the core receiver (sync and async), the Starlette middleware, the FastAPI
dependency, the Flask blueprint and Django's view (WSGI, ASGI) and decorator.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from messages_integrations import (
    Claim,
    DeliveryStore,
    Event,
    InMemoryDeliveryStore,
    WebhookRouter,
    sign_webhook,
)
from messages_integrations.queues import Job, TaskQueue
from messages_integrations.testing import Delivery, Recorder, build_delivery
from tests.contract.conftest import SECRET
from tests.contract.endpoints import Answer, Endpoint


def send(endpoint: Endpoint, delivery: Delivery, **changes: str) -> Answer:
    headers = {**delivery.headers, **changes}
    return endpoint.post(delivery.body, list(headers.items()))


def signed(body: bytes, *, timestamp: int | None = None) -> list[tuple[str, str]]:
    stamp = int(time.time() * 1000) if timestamp is None else timestamp
    return [
        ("Content-Type", "application/json"),
        ("X-Webhook-Signature", sign_webhook(SECRET, stamp, body)),
        ("X-Webhook-Timestamp", str(stamp)),
    ]


def assert_refused(answer: Answer, status: int, error: str) -> None:
    assert answer.status == status
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"] == error


# --- 200 ------------------------------------------------------------------------------------


def test_valid_delivery_is_answered_200_and_handled(endpoint: Endpoint, recorder: Recorder) -> None:
    delivery = build_delivery("reaction.added", secret=SECRET)
    answer = send(endpoint, delivery)
    assert answer.status == 200
    assert answer.json()["status"] == "ok"
    assert [event.event for event in recorder.events] == ["reaction.added"]
    assert recorder.events[0].delivery_id == delivery.delivery_id


def test_valid_delivery_without_matching_handlers_is_answered_200(make: Any) -> None:
    router = WebhookRouter()
    endpoint = make(router=router)
    assert send(endpoint, build_delivery("typing.started", secret=SECRET)).status == 200


def test_unknown_event_runs_only_wildcard_handlers(make: Any) -> None:
    router = WebhookRouter()
    seen: list[str] = []
    router.on("message.received")(lambda event: seen.append("specific"))
    router.on("*")(lambda event: seen.append(event.event))
    endpoint = make(router=router)
    delivery = build_delivery("chat.renamed", {"id": "cht_1"}, secret=SECRET)
    assert send(endpoint, delivery).status == 200
    assert seen == ["chat.renamed"]


def test_duplicate_delivery_runs_handlers_once_and_says_so(
    endpoint: Endpoint, recorder: Recorder
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    assert send(endpoint, delivery).status == 200
    again = send(endpoint, delivery)
    assert again.status == 200
    assert again.json() == {
        "status": "duplicate",
        "event": "message.received",
        "delivery_id": delivery.delivery_id,
    }
    assert recorder.count() == 1


def test_the_key_is_the_signed_body_id_never_the_header(
    endpoint: Endpoint, recorder: Recorder
) -> None:
    delivery = build_delivery("message.sent", secret=SECRET)
    assert send(endpoint, delivery).status == 200
    replay = send(endpoint, delivery, **{"X-Webhook-Delivery-Id": "dlv_changed_by_an_attacker"})
    assert replay.json()["status"] == "duplicate"
    assert recorder.count() == 1


def test_a_body_without_an_id_is_keyed_by_its_signature(
    endpoint: Endpoint, recorder: Recorder
) -> None:
    body = b'{"event":"typing.stopped","data":{"id":"typ_1","chat_id":"cht_1","handle":"+1"},'
    body += b'"timestamp":' + str(int(time.time() * 1000)).encode() + b"}"
    headers = signed(body)
    assert endpoint.post(body, headers).status == 200
    replay = endpoint.post(body, [*headers, ("X-Webhook-Delivery-Id", "dlv_new_each_time")])
    assert replay.json()["status"] == "duplicate"
    assert recorder.count() == 1


# --- 409 ------------------------------------------------------------------------------------


def test_a_delivery_still_being_handled_elsewhere_gets_409(make: Any, recorder: Recorder) -> None:
    store = InMemoryDeliveryStore()
    endpoint = make(store=store)
    delivery = build_delivery("message.received", secret=SECRET)
    # Another process holds the lease on this delivery.
    assert store.claim(f"delivery:{delivery.delivery_id}", "another-holder", lease=60) is Claim.NEW
    answer = send(endpoint, delivery)
    assert_refused(answer, 409, "in_progress")
    assert "retry-after" in answer.headers
    assert recorder.count() == 0


# --- 405, 413 -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_get_405_with_allow_post(
    endpoint: Endpoint, recorder: Recorder, method: str
) -> None:
    answer = endpoint.post(b"", [], method=method)
    assert answer.status == 405
    assert "POST" in answer.headers["allow"]
    if not endpoint.own_405:
        assert answer.json()["error"] == "method_not_allowed"
    assert recorder.count() == 0


def test_a_declared_oversized_body_gets_413(make: Any, recorder: Recorder) -> None:
    endpoint = make(max_body_size=500)
    delivery = build_delivery("message.received", secret=SECRET)
    assert len(delivery.body) > 500
    assert_refused(send(endpoint, delivery), 413, "payload_too_large")
    assert recorder.count() == 0


def test_a_body_at_the_limit_is_accepted(make: Any, recorder: Recorder) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    endpoint = make(max_body_size=len(delivery.body))
    assert send(endpoint, delivery).status == 200
    assert recorder.count() == 1


def pieces(body: bytes, size: int = 100) -> list[bytes]:
    return [body[start : start + size] for start in range(0, len(body), size)]


def test_a_chunked_body_over_the_limit_gets_413(make: Any, recorder: Recorder) -> None:
    endpoint = make(max_body_size=500)
    delivery = build_delivery("message.received", secret=SECRET)
    answer = endpoint.post_chunked(pieces(delivery.body), list(delivery.headers.items()))
    assert_refused(answer, 413, "payload_too_large")
    assert recorder.count() == 0


def test_a_chunked_body_at_the_limit_is_accepted(make: Any, recorder: Recorder) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    endpoint = make(max_body_size=len(delivery.body))
    answer = endpoint.post_chunked(pieces(delivery.body), list(delivery.headers.items()))
    assert answer.status == 200
    assert recorder.count() == 1


# --- 401 ------------------------------------------------------------------------------------


def test_no_signature_gets_401(endpoint: Endpoint, recorder: Recorder) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    headers = [(k, v) for k, v in delivery.headers.items() if k != "X-Webhook-Signature"]
    answer = endpoint.post(delivery.body, headers)
    assert_refused(answer, 401, "invalid_signature")
    assert "missing" in answer.json()["message"]
    assert recorder.count() == 0


def test_a_wrong_signature_gets_401(endpoint: Endpoint, recorder: Recorder) -> None:
    delivery = build_delivery("message.received", secret="whsec_someone_else")
    assert_refused(send(endpoint, delivery), 401, "invalid_signature")
    assert recorder.count() == 0


@pytest.mark.parametrize("order", ["good_first", "bad_first"])
def test_two_signature_headers_are_refused_whatever_their_order(
    endpoint: Endpoint, recorder: Recorder, order: str
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    good = delivery.headers["X-Webhook-Signature"]
    pair = [good, "0" * 64] if order == "good_first" else ["0" * 64, good]
    headers = [(k, v) for k, v in delivery.headers.items() if k != "X-Webhook-Signature"]
    headers += [("X-Webhook-Signature", value) for value in pair]
    answer = endpoint.post(delivery.body, headers)
    assert_refused(answer, 401, "invalid_signature")
    assert "several X-Webhook-Signature headers" in answer.json()["message"]
    assert recorder.count() == 0


def test_a_stale_delivery_gets_401(endpoint: Endpoint, recorder: Recorder) -> None:
    ten_minutes_ago = int((time.time() - 600) * 1000)
    delivery = build_delivery("message.received", secret=SECRET, timestamp=ten_minutes_ago)
    answer = send(endpoint, delivery)
    assert_refused(answer, 401, "invalid_signature")
    assert "replay window" in answer.json()["message"]
    assert recorder.count() == 0


# --- 400 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2, 3]",
        b'{"event": "message.received", "timestamp": 1}',
        b'{"event":"message.received","data":{"id":"\\ud800"},"timestamp":1}',
        b'{"event":"message.received","data":{"id":"\xed\xa0\x80"},"timestamp":1}',
        b'{"event":"message.received","data":{"id":"\xff"},"timestamp":1}',
    ],
    ids=["not-an-object", "no-data", "escaped-surrogate", "raw-surrogate", "invalid-utf8"],
)
def test_authenticated_but_invalid_bodies_get_400(
    make: Any, recorder: Recorder, body: bytes
) -> None:
    endpoint = make(tolerance=None)
    answer = endpoint.post(body, signed(body, timestamp=1))
    assert_refused(answer, 400, "invalid_payload")
    assert recorder.count() == 0


def test_a_missing_required_field_is_named(endpoint: Endpoint) -> None:
    data = {"id": "rxn_1", "chat_id": "cht_1", "type": "love"}
    answer = send(endpoint, build_delivery("reaction.added", data, secret=SECRET))
    assert_refused(answer, 400, "invalid_payload")
    assert "message_id" in answer.json()["message"]


# --- 500 ------------------------------------------------------------------------------------


def test_a_failing_handler_gets_500_after_every_handler_ran_and_its_retry_runs(
    make: Any,
) -> None:
    router = WebhookRouter()
    ran: list[str] = []
    attempts: list[int] = []

    @router.on("message.received")
    def flaky(event: Event[Any]) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("whsec_contract_tests must never be shown")

    router.on("*")(lambda event: ran.append("after"))
    endpoint = make(router=router)
    delivery = build_delivery("message.received", secret=SECRET)
    answer = send(endpoint, delivery)
    assert_refused(answer, 500, "handler_failed")
    assert b"whsec" not in answer.body
    assert b"Traceback" not in answer.body
    assert ran == ["after"]
    retry = send(endpoint, delivery)
    assert retry.status == 200
    assert len(attempts) == 2


# --- 202 ------------------------------------------------------------------------------------


class ListQueue(TaskQueue):
    """A task queue whose broker is a list in this process; ``down`` makes it refuse jobs."""

    def __init__(self, *, down: bool = False) -> None:
        self.jobs: list[Job] = []
        self.down = down

    def enqueue(self, job: Job) -> None:
        if self.down:
            raise ConnectionError("broker unreachable at redis://:p4ssw0rd@10.0.0.2")
        self.jobs.append(job)


def background_router(ran: list[str]) -> WebhookRouter:
    router = WebhookRouter()
    router.on("message.received", background=True)(lambda event: ran.append(event.event))
    return router


def test_a_delivery_whose_handlers_all_run_in_the_background_gets_202_queued(make: Any) -> None:
    ran: list[str] = []
    queue = ListQueue()
    endpoint = make(router=background_router(ran), queue=queue)
    delivery = build_delivery("message.received", secret=SECRET)
    answer = send(endpoint, delivery)
    if endpoint.own_success_body:
        assert answer.status == 200  # the user's own route or view answered
    else:
        assert answer.status == 202
        assert answer.json() == {
            "status": "queued",
            "event": "message.received",
            "delivery_id": delivery.delivery_id,
        }
    assert ran == []  # a worker runs them, not the request
    assert [(job.event, job.body) for job in queue.jobs] == [
        ("message.received", delivery.body.decode())
    ]
    assert send(endpoint, delivery).json()["status"] == "duplicate"
    assert len(queue.jobs) == 1


# --- 503 ------------------------------------------------------------------------------------


class DownStore(DeliveryStore):
    """A store whose server is unreachable."""

    def claim(self, key: str, token: str, *, lease: float) -> Claim:
        raise ConnectionError("store unreachable at redis://:p4ssw0rd@10.0.0.1")

    def extend(self, key: str, token: str, *, lease: float) -> bool:
        raise ConnectionError

    def complete(self, key: str, token: str, *, ttl: float) -> bool:
        raise ConnectionError

    def release(self, key: str, token: str) -> bool:
        raise ConnectionError


def test_a_store_outage_gets_503_with_retry_after_and_runs_no_handler(
    make: Any, recorder: Recorder
) -> None:
    endpoint = make(store=DownStore())
    answer = send(endpoint, build_delivery("message.received", secret=SECRET))
    assert_refused(answer, 503, "store_unavailable")
    assert answer.headers["retry-after"].isdigit()
    assert b"p4ssw0rd" not in answer.body
    assert recorder.count() == 0


def test_a_broker_outage_gets_503_with_retry_after_and_releases_the_delivery(make: Any) -> None:
    ran: list[str] = []
    queue = ListQueue(down=True)
    endpoint = make(router=background_router(ran), queue=queue)
    delivery = build_delivery("message.received", secret=SECRET)
    answer = send(endpoint, delivery)
    assert_refused(answer, 503, "queue_unavailable")
    assert answer.headers["retry-after"].isdigit()
    assert b"p4ssw0rd" not in answer.body
    # The claim was released: the sender's retry is queued, neither a duplicate nor a 409.
    queue.down = False
    retry = send(endpoint, delivery)
    assert retry.status in (200, 202)
    assert retry.json()["status"] != "duplicate"
    assert len(queue.jobs) == 1
    assert ran == []


def test_no_answer_ever_contains_the_secret_or_the_expected_signature(
    endpoint: Endpoint,
) -> None:
    delivery = build_delivery("message.received", secret="whsec_other")
    expected = sign_webhook(SECRET, delivery.timestamp, delivery.body)
    for answer in (send(endpoint, delivery), endpoint.post(b"{}", [])):
        assert SECRET.encode() not in answer.body
        assert expected.encode() not in answer.body
