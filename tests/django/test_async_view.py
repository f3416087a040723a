"""async_webhook_view, the endpoint as an async view for ASGI: the same answers as webhook_view."""

from __future__ import annotations

import pytest

from messages_integrations.testing import build_delivery

from .conftest import SECRET, Send
from .webhook_app.messages_webhooks import received

ASYNC_WEBHOOK = "/webhooks/async"


def test_valid_delivery_runs_handlers_once_and_answers_200(send: Send) -> None:
    delivery = build_delivery("reaction.added", secret=SECRET)
    first = send(ASYNC_WEBHOOK, delivery.body, delivery.headers)
    again = send(ASYNC_WEBHOOK, delivery.body, delivery.headers)
    assert first.status == 200
    assert first.json()["status"] == "ok"
    assert again.json()["status"] == "duplicate"
    assert received.count() == 1


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_other_methods_answer_405_with_allow_post(send: Send, method: str) -> None:
    answer = send(ASYNC_WEBHOOK, method=method)
    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"


def test_forged_delivery_answers_401(send: Send) -> None:
    delivery = build_delivery("reaction.added", secret="whsec_forger")
    assert send(ASYNC_WEBHOOK, delivery.body, delivery.headers).status == 401
    assert received.count() == 0


def test_invalid_payload_answers_400(send: Send) -> None:
    data = build_delivery("message.sent", secret=SECRET).json()["data"]
    del data["chat_id"]
    delivery = build_delivery("message.sent", data, secret=SECRET)
    answer = send(ASYNC_WEBHOOK, delivery.body, delivery.headers)
    assert answer.status == 400
    assert "data.chat_id" in answer.json()["message"]


def test_oversized_body_answers_413(send: Send) -> None:
    answer = send(ASYNC_WEBHOOK, b"x" * (1024 * 1024 + 1), {"X-Webhook-Signature": "0" * 64})
    assert answer.status == 413


def test_handler_error_answers_500_and_the_retry_runs(send: Send) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    first = send("/webhooks/async-failing", delivery.body, delivery.headers)
    assert first.status == 500
    assert b"Traceback" not in first.body
    second = send("/webhooks/async-failing", delivery.body, delivery.headers)
    assert second.status == 500  # handled again in full, not answered as a duplicate
