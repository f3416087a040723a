"""What only the Django views do: middleware, request streams, upload limits and threads.

The HTTP table itself is checked for the views (WSGI, ASGI) and the decorator in tests/contract.
Every request here goes through CsrfViewMiddleware with checks enforced and LoginRequiredMiddleware.
"""

from __future__ import annotations

import io
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from django.core.handlers.asgi import ASGIHandler
from django.test import AsyncClient, Client, override_settings

from messages_integrations.testing import build_delivery

from . import urls
from .conftest import SECRET, Send
from .webhook_app.messages_webhooks import received

WEBHOOK = "/webhooks/messages"
ONE_MIB = 1024 * 1024


def test_the_webhook_passes_csrf_and_login_middleware_that_guard_other_views(send: Send) -> None:
    assert send("/form").status == 403
    assert send("/private", method="GET").status == 302
    delivery = build_delivery("message.received", secret=SECRET)
    answer = send(WEBHOOK, delivery.body, delivery.headers)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("method", ["OPTIONS", "HEAD"])
def test_methods_django_would_answer_itself_get_the_json_405(send: Send, method: str) -> None:
    answer = send(WEBHOOK, method=method)
    assert (answer.status, answer.headers["Allow"]) == (405, "POST")
    if method == "OPTIONS":
        assert answer.json()["error"] == "method_not_allowed"
    assert received.count() == 0


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
@pytest.mark.parametrize("path", [WEBHOOK, "/webhooks/async"])
async def test_streamed_bodies_without_content_length_under_asgi(path: str) -> None:
    delivery = build_delivery("reaction.removed", secret=SECRET)
    transport = httpx.ASGITransport(app=ASGIHandler())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        oversized = await client.post(
            path, content=_stream(b"x" * (3 * ONE_MIB)), headers=delivery.headers
        )
        accepted = await client.post(
            path, content=_stream(delivery.body, 100), headers=delivery.headers
        )
    assert "content-length" not in oversized.request.headers
    assert oversized.status_code == 413
    assert accepted.status_code == 200
    assert received.count("reaction.removed") == 1


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_data_upload_max_memory_size_does_not_refuse_deliveries(send: Send) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    assert len(delivery.body) > 100
    assert send(WEBHOOK, delivery.body, delivery.headers).status == 200


def test_class_based_view_uses_its_own_secret_and_router(send: Send) -> None:
    for secret, status in [(SECRET, 401), (urls.LINE_B_SECRET, 200)]:
        delivery = build_delivery("message.received", secret=secret)
        assert send("/webhooks/line-b", delivery.body, delivery.headers).status == status
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
