"""``@messages_webhook`` on a user's own sync and async views."""

from __future__ import annotations

import json
import time

import pytest
from django.test import AsyncClient

from messages_integrations import sign_webhook
from messages_integrations.testing import build_delivery

from . import urls
from .conftest import SECRET, Answer, Send
from .webhook_app.messages_webhooks import received

VIEWS = ["/decorated/sync/t1", "/decorated/async/t1"]


def deliver(
    send: Send, path: str, *, secret: str = SECRET, timestamp: int | None = None
) -> tuple[Answer, str]:
    delivery = build_delivery("reaction.added", secret=secret, timestamp=timestamp)
    answer = send(path, delivery.body, delivery.headers)
    assert delivery.delivery_id is not None
    return answer, delivery.delivery_id


def view_calls() -> list[str]:
    return [kind for kind, _, _ in urls.calls if kind != "handler"]


@pytest.mark.parametrize(("path", "kind"), [(VIEWS[0], "sync"), (VIEWS[1], "async")])
def test_view_is_called_with_the_event_and_its_response_returned(
    send: Send, path: str, kind: str
) -> None:
    answer, _ = deliver(send, path)
    assert answer.status == 202
    assert answer.json() == {"view": kind, "event": "reaction.added", "kwargs": {"tag": "t1"}}
    assert urls.calls == [
        ("handler", "reaction.added", {}),
        (kind, "reaction.added", {"tag": "t1"}),
    ]


def test_bare_decorator_uses_the_settings_and_the_default_router(send: Send) -> None:
    answer, _ = deliver(send, "/decorated/bare/x")
    assert answer.json()["view"] == "bare-sync"
    assert received.count() == 1
    assert deliver(send, "/decorated/bare/x", secret="whsec_other")[0].status == 401


@pytest.mark.parametrize("path", VIEWS)
def test_duplicate_delivery_calls_the_view_once(send: Send, path: str) -> None:
    delivery = build_delivery("message.sent", secret=SECRET)
    first = send(path, delivery.body, delivery.headers)
    second = send(path, delivery.body, delivery.headers)
    assert (first.status, second.status) == (202, 200)
    assert second.json()["status"] == "duplicate"
    assert len(view_calls()) == 1


def _refusals(send: Send, path: str) -> dict[str, int]:
    delivery = build_delivery("message.received", secret=SECRET)
    stale = build_delivery(
        "message.received", secret=SECRET, timestamp=int(time.time() - 900) * 1000
    )
    unsigned = {k: v for k, v in delivery.headers.items() if k != "X-Webhook-Signature"}
    not_json = b"[]"
    now = int(time.time() * 1000)
    signed = {
        "X-Webhook-Signature": sign_webhook(SECRET, now, not_json),
        "X-Webhook-Timestamp": str(now),
    }
    return {
        "get": send(path, method="GET").status,
        "unsigned": send(path, delivery.body, unsigned).status,
        "wrong-secret": deliver(send, path, secret="whsec_other")[0].status,
        "stale": send(path, stale.body, stale.headers).status,
        "invalid": send(path, not_json, signed).status,
        "too-large": send(path, b"x" * (1024 * 1024 + 1), delivery.headers).status,
    }


@pytest.mark.parametrize("path", VIEWS)
def test_refusals_follow_the_http_table_without_calling_the_view(send: Send, path: str) -> None:
    assert _refusals(send, path) == {
        "get": 405,
        "unsigned": 401,
        "wrong-secret": 401,
        "stale": 401,
        "invalid": 400,
        "too-large": 413,
    }
    assert urls.calls == []


@pytest.mark.parametrize("path", VIEWS)
def test_view_error_answers_500_and_the_retry_calls_it_again(send: Send, path: str) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    answers = [send(path + "?outcome=raise", delivery.body, delivery.headers) for _ in "ab"]
    assert [a.status for a in answers] == [500, 500]
    assert answers[0].json()["error"] == "handler_failed"
    assert b"sensitive-detail" not in answers[0].body
    assert len(view_calls()) == 2


@pytest.mark.parametrize("path", VIEWS)
def test_view_answering_5xx_leaves_the_delivery_for_a_retry(send: Send, path: str) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    first = send(path + "?outcome=unavailable", delivery.body, delivery.headers)
    second = send(path, delivery.body, delivery.headers)
    third = send(path, delivery.body, delivery.headers)
    assert (first.status, first.json()) == (503, {"view": view_calls()[0], "retry": True})
    assert (second.status, third.status) == (202, 200)
    assert len(view_calls()) == 2


def test_decorator_options_override_the_settings(send: Send) -> None:
    assert deliver(send, "/decorated/options")[0].status == 401
    year_old = int((time.time() - 365 * 86400) * 1000)
    accepted, _ = deliver(
        send, "/decorated/options", secret=urls.DECORATED_SECRET, timestamp=year_old
    )
    assert accepted.status == 202
    big = build_delivery("message.received", {"id": "x" * 5000}, secret=urls.DECORATED_SECRET)
    assert send("/decorated/options", big.body, big.headers).status == 413


@pytest.mark.anyio
async def test_async_view_under_asgi_gets_the_event() -> None:
    delivery = build_delivery("typing.started", secret=SECRET)
    client = AsyncClient(enforce_csrf_checks=True)
    extra = {k: v for k, v in delivery.headers.items() if k != "Content-Type"}
    response = await client.post(
        "/decorated/async/live", delivery.body, "application/json", headers=extra
    )
    assert response.status_code == 202
    assert json.loads(response.content)["kwargs"] == {"tag": "live"}
    assert view_calls() == ["async"]
