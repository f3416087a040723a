"""CONTRACT.md's HTTP table, through Django's test client (WSGI) and async client (ASGI).

Every request goes through CsrfViewMiddleware with checks enforced and LoginRequiredMiddleware.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from django.core.handlers.asgi import ASGIHandler
from django.test import AsyncClient, Client, override_settings

from messages_integrations import sign_webhook
from messages_integrations.testing import build_delivery

from . import urls
from .conftest import SECRET, Answer, Send
from .webhook_app.messages_webhooks import messages, received

WEBHOOK = "/webhooks/messages"
ONE_MIB = 1024 * 1024


def post(
    send: Send,
    path: str,
    event: str = "message.received",
    *,
    data: dict[str, Any] | None = None,
    secret: str = SECRET,
    timestamp: int | None = None,
) -> Answer:
    delivery = build_delivery(event, data, secret=secret, timestamp=timestamp)
    return send(path, delivery.body, delivery.headers)


def test_the_webhook_is_protected_by_csrf_and_login_middleware_otherwise(send: Send) -> None:
    assert send("/form").status == 403
    assert send("/private", method="GET").status == 302


def test_valid_delivery_runs_handlers_and_answers_200(send: Send) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    answer = send(WEBHOOK, delivery.body, delivery.headers)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {
        "status": "ok",
        "event": "message.received",
        "delivery_id": delivery.delivery_id,
    }
    assert [e.delivery_id for e in received.events] == [delivery.delivery_id]
    assert messages.count() == 1


def test_delivery_without_matching_handlers_answers_200(send: Send) -> None:
    answer = post(send, WEBHOOK, "typing.stopped")
    assert answer.status == 200
    assert received.count("typing.stopped") == 1
    assert messages.count() == 0


def test_unknown_event_runs_only_wildcard_handlers(send: Send) -> None:
    answer = post(send, WEBHOOK, "chat.archived", data={"id": "cht_1", "future": True})
    assert answer.status == 200
    assert [e.event for e in received.events] == ["chat.archived"]
    assert messages.count() == 0


def test_duplicate_delivery_runs_handlers_once(send: Send) -> None:
    delivery = build_delivery("reaction.added", secret=SECRET)
    first = send(WEBHOOK, delivery.body, delivery.headers)
    second = send(WEBHOOK, delivery.body, delivery.headers)
    assert (first.status, second.status) == (200, 200)
    assert second.json()["status"] == "duplicate"
    assert received.count() == 1


def test_delivery_still_in_progress_answers_409(send: Send) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    first: list[Answer] = []
    worker = threading.Thread(
        target=lambda: first.append(send("/webhooks/slow", delivery.body, delivery.headers))
    )
    worker.start()
    try:
        assert urls.entered.wait(timeout=30)
        second = send("/webhooks/slow", delivery.body, delivery.headers)
    finally:
        urls.gate.set()
        worker.join(timeout=30)
    assert second.status == 409
    assert second.headers["Retry-After"] == "5"
    assert first[0].status == 200
    assert urls.slow_seen.count() == 1


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_answer_405_with_allow_post(send: Send, method: str) -> None:
    answer = send(WEBHOOK, method=method)
    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"
    assert answer.json()["error"] == "method_not_allowed"
    assert received.count() == 0


def test_head_answers_405(send: Send) -> None:
    answer = send(WEBHOOK, method="HEAD")
    assert (answer.status, answer.headers["Allow"]) == (405, "POST")


def test_body_over_max_body_size_answers_413(send: Send) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    padded = delivery.body[:-1] + b" " * (ONE_MIB + 1 - len(delivery.body)) + b"}"
    answer = send(WEBHOOK, padded, delivery.headers)
    assert answer.status == 413
    assert answer.json()["error"] == "payload_too_large"
    assert received.count() == 0


def test_declared_length_over_max_body_size_answers_413_unread(send: Send) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    # Only the head is sent: the answer must not wait for a body it will refuse anyway.
    headers = {**delivery.headers, "Content-Length": str(50 * ONE_MIB)}
    assert send(WEBHOOK, b"", headers).status == 413


def wsgi_environ(stream: io.BytesIO) -> dict[str, Any]:
    """What gunicorn hands Django for a chunked request: no CONTENT_LENGTH, a terminated stream."""
    return {"wsgi.input": stream, "wsgi.input_terminated": True}


def test_chunked_body_over_max_body_size_answers_413_under_wsgi() -> None:
    stream = io.BytesIO(b"x" * (2 * ONE_MIB))
    response = Client(enforce_csrf_checks=True).generic(
        "POST",
        WEBHOOK,
        b"",
        headers={"X-Webhook-Signature": "0" * 64},
        **wsgi_environ(stream),
    )
    assert response.status_code == 413
    assert stream.tell() <= ONE_MIB + 64 * 1024


def test_chunked_delivery_is_accepted_under_wsgi() -> None:
    delivery = build_delivery("message.sent", secret=SECRET)
    response = Client(enforce_csrf_checks=True).generic(
        "POST",
        WEBHOOK,
        b"",
        headers=delivery.headers,
        **wsgi_environ(io.BytesIO(delivery.body)),
    )
    assert response.status_code == 200
    assert received.count("message.sent") == 1


async def _stream(body: bytes, piece: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), piece):
        yield body[start : start + piece]


@pytest.mark.anyio
async def test_streamed_bodies_without_content_length_under_asgi() -> None:
    delivery = build_delivery("reaction.removed", secret=SECRET)
    transport = httpx.ASGITransport(app=ASGIHandler())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        oversized = await client.post(
            WEBHOOK, content=_stream(b"x" * (3 * ONE_MIB)), headers=delivery.headers
        )
        accepted = await client.post(
            WEBHOOK, content=_stream(delivery.body, 100), headers=delivery.headers
        )
    assert "content-length" not in oversized.request.headers
    assert oversized.status_code == 413
    assert accepted.status_code == 200
    assert received.count("reaction.removed") == 1


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_data_upload_max_memory_size_does_not_refuse_deliveries(send: Send) -> None:
    answer = post(send, WEBHOOK)
    assert answer.status == 200


def test_missing_signature_answers_401(send: Send) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    headers = {k: v for k, v in delivery.headers.items() if k != "X-Webhook-Signature"}
    answer = send(WEBHOOK, delivery.body, headers)
    assert answer.status == 401
    assert received.count() == 0


def test_wrong_secret_answers_401_without_revealing_the_signature(send: Send) -> None:
    delivery = build_delivery("message.received", secret="whsec_someone_else")
    answer = send(WEBHOOK, delivery.body, delivery.headers)
    assert answer.status == 401
    assert answer.json()["error"] == "invalid_signature"
    expected = sign_webhook(SECRET, delivery.timestamp, delivery.body)
    assert expected.encode() not in answer.body
    assert SECRET.encode() not in answer.body
    assert received.count() == 0


def test_tampered_body_answers_401(send: Send) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    answer = send(WEBHOOK, delivery.body.replace(b"7pm", b"8pm"), delivery.headers)
    assert answer.status == 401


def test_timestamp_outside_the_window_answers_401(send: Send) -> None:
    ten_minutes_ago = int((time.time() - 600) * 1000)
    answer = post(send, WEBHOOK, timestamp=ten_minutes_ago)
    assert answer.status == 401
    assert received.count() == 0


def _signed(body: bytes) -> dict[str, str]:
    now = int(time.time() * 1000)
    return {
        "Content-Type": "application/json",
        "X-Webhook-Signature": sign_webhook(SECRET, now, body),
        "X-Webhook-Timestamp": str(now),
    }


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"[1, 2, 3]",
        json.dumps({"event": "message.received", "data": {"id": "msg_1"}}).encode(),
    ],
    ids=["not-json", "not-an-object", "missing-fields"],
)
def test_authenticated_but_invalid_payload_answers_400(send: Send, body: bytes) -> None:
    answer = send(WEBHOOK, body, _signed(body))
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_payload"
    assert received.count() == 0


def test_handler_error_answers_500_after_every_handler_ran(send: Send) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    answer = send("/webhooks/failing", delivery.body, delivery.headers)
    assert answer.status == 500
    assert answer.json()["error"] == "handler_failed"
    assert b"sensitive-detail" not in answer.body
    assert b"Traceback" not in answer.body
    assert urls.after_failure.count() == 1


def test_failed_delivery_is_retried_in_full(send: Send) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    statuses = [send("/webhooks/failing", delivery.body, delivery.headers).status for _ in "ab"]
    assert statuses == [500, 500]
    assert urls.after_failure.count() == 2


def test_class_based_view_uses_its_own_secret_and_router(send: Send) -> None:
    assert post(send, "/webhooks/line-b").status == 401
    assert post(send, "/webhooks/line-b", secret=urls.LINE_B_SECRET).status == 200
    assert urls.line_b_seen.count() == 1
    assert received.count() == 0


@pytest.mark.anyio
async def test_sync_handlers_run_off_the_event_loop_under_asgi() -> None:
    delivery = build_delivery("message.received", secret=urls.LINE_B_SECRET)
    extra = {k: v for k, v in delivery.headers.items() if k != "Content-Type"}
    client = AsyncClient(enforce_csrf_checks=True)
    response = await client.post(
        "/webhooks/line-b", delivery.body, "application/json", headers=extra
    )
    assert response.status_code == 200
    assert len(urls.handler_threads) == 1
    assert threading.get_ident() not in urls.handler_threads
