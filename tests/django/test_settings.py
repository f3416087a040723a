"""Where the views find their options: the argument, then the Django setting, then the env."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from django.test import override_settings

from messages_integrations import InMemoryDeliveryStore, sign_webhook
from messages_integrations.testing import build_delivery

from . import urls
from .conftest import SECRET, Send
from .webhook_app.messages_webhooks import received

WEBHOOK = "/webhooks/messages"


def status(
    send: Send, secret: str = SECRET, path: str = WEBHOOK, timestamp: int | None = None
) -> int:
    delivery = build_delivery("message.received", secret=secret, timestamp=timestamp)
    return send(path, delivery.body, delivery.headers).status


def status_and_body(send: Send) -> tuple[int, dict[str, Any]]:
    delivery = build_delivery("message.received", secret=SECRET)
    answer = send(WEBHOOK, delivery.body, delivery.headers)
    return answer.status, answer.json()


@override_settings(MESSAGES_WEBHOOK_SECRET=["whsec_old", "whsec_new"])
def test_a_list_of_secrets_accepts_each(send: Send) -> None:
    assert [status(send, s) for s in ("whsec_old", "whsec_new", SECRET)] == [200, 200, 401]


@override_settings(MESSAGES_WEBHOOK_SECRET=None)
def test_environment_is_used_without_a_setting(send: Send, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", "whsec_env_a, whsec_env_b")
    assert [status(send, s) for s in ("whsec_env_a", "whsec_env_b", SECRET)] == [200, 200, 401]


def test_setting_wins_over_the_environment(send: Send, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", "whsec_env")
    assert [status(send, s) for s in (SECRET, "whsec_env")] == [200, 401]


def test_argument_wins_over_the_setting(send: Send) -> None:
    assert [status(send, s, "/webhooks/line-b") for s in (SECRET, urls.LINE_B_SECRET)] == [401, 200]


NOT_CONFIGURED = {
    "error": "not_configured",
    "message": "the webhook endpoint is not configured; see the server log",
}


@override_settings(MESSAGES_WEBHOOK_SECRET=None)
def test_no_secret_anywhere_answers_500_and_logs_the_setting_to_set(
    send: Send, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("MESSAGES_WEBHOOK_SECRET", raising=False)
    delivery = build_delivery("message.received", secret=SECRET)
    with caplog.at_level(logging.ERROR, logger="messages_integrations"):
        answer = send(WEBHOOK, delivery.body, delivery.headers)
    assert (answer.status, answer.json()) == (500, NOT_CONFIGURED)
    assert "set MESSAGES_WEBHOOK_SECRET in Django settings" in caplog.text
    assert received.count() == 0


def test_tolerance_setting_narrows_and_widens_the_window(send: Send) -> None:
    two_minutes_ago = int((time.time() - 120) * 1000)
    assert status(send, timestamp=two_minutes_ago) == 200
    with override_settings(MESSAGES_WEBHOOK_TOLERANCE=60):
        assert status(send, timestamp=two_minutes_ago) == 401
    a_day_ago = int((time.time() - 86400) * 1000)
    with override_settings(MESSAGES_WEBHOOK_TOLERANCE=None):
        assert status(send, timestamp=a_day_ago) == 200


@override_settings(MESSAGES_WEBHOOK_TOLERANCE="five minutes")
def test_unusable_setting_answers_500_never_a_silent_default(
    send: Send, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="messages_integrations"):
        answer = status_and_body(send)
    assert answer == (500, NOT_CONFIGURED)
    assert "MESSAGES_WEBHOOK_TOLERANCE is not a number of seconds" in caplog.text
    assert received.count() == 0


def test_fixing_the_setting_serves_again(send: Send) -> None:
    with override_settings(MESSAGES_WEBHOOK_MAX_BODY_SIZE="1 MB"):
        assert status_and_body(send)[0] == 500
    assert status_and_body(send)[0] == 200


@override_settings(MESSAGES_WEBHOOK_MAX_BODY_SIZE=256)
def test_max_body_size_setting(send: Send) -> None:
    assert status(send) == 413
    assert received.count() == 0


@override_settings(MESSAGES_WEBHOOK_MAX_BODY_SIZE=4 * 1024 * 1024)
def test_max_body_size_can_exceed_django_upload_limit(send: Send) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    padded = delivery.body[:-1] + b" " * (3 * 1024 * 1024) + b"}"
    headers = {
        **delivery.headers,
        "X-Webhook-Signature": sign_webhook(SECRET, delivery.timestamp, padded),
    }
    assert send(WEBHOOK, padded, headers).status == 200


@override_settings(MESSAGES_WEBHOOK_ROUTER="tests.django.urls.line_b_router")
def test_router_setting_names_the_handlers(send: Send) -> None:
    assert status(send) == 200
    assert urls.line_b_seen.count() == 1
    assert received.count() == 0


def test_store_setting_is_where_deliveries_are_remembered(send: Send) -> None:
    store = InMemoryDeliveryStore()
    with override_settings(MESSAGES_WEBHOOK_STORE=store):
        assert status(send) == 200
    assert len(store) == 1
