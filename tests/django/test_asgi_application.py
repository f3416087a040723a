"""messages_integrations.django.asgi, driven through ASGI directly (httpx, or by hand).

The guarded application is Django's own ASGI handler serving ``asgi_urls``: a refused body must
never reach Django (no handler runs, no byte past the limit is pulled), an accepted one must reach
the view byte for byte, and everything that is not a webhook POST must pass through untouched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

import httpx
import pytest
from django.test import override_settings

from messages_integrations import ConfigurationError, sign_webhook
from messages_integrations.django.asgi import WebhookBodyGuard, get_asgi_application, guard
from messages_integrations.testing import build_delivery

from . import asgi_urls
from .conftest import SECRET
from .webhook_app.messages_webhooks import received

pytestmark = pytest.mark.anyio

ONE_MIB = 1024 * 1024
WEBHOOK = "/webhooks/messages"
Message = MutableMapping[str, Any]


@pytest.fixture(autouse=True)
def _asgi_urls() -> Iterator[None]:
    asgi_urls.echoed.clear()
    with override_settings(ROOT_URLCONF="tests.django.asgi_urls"):
        yield


@pytest.fixture(scope="module")
def application() -> WebhookBodyGuard:
    """The library's drop-in for Django's get_asgi_application(), URLconf discovery on."""
    return get_asgi_application()


def client(app: Any) -> httpx.AsyncClient:
    """An httpx client calling ``app`` in process; a body given as an iterator is sent chunked."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


class CountingBody:
    """A chunked request body of ``total`` bytes that counts what was pulled from it."""

    def __init__(self, total: int, chunk: int = 64 * 1024, fill: bytes = b"x") -> None:
        self.total, self.chunk, self.fill, self.pulled = total, chunk, fill, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            piece = min(self.chunk, self.total - self.pulled)
            self.pulled += piece
            yield self.fill * piece


async def chunks_of(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """``body`` as a chunked request body (no Content-Length)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def padded_delivery(length: int, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    """A signed message.received of exactly ``length`` bytes (JSON whitespace pads it)."""
    delivery = build_delivery("message.received", secret=secret)
    body = delivery.body + b" " * (length - len(delivery.body))
    timestamp = delivery.headers["X-Webhook-Timestamp"]
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": sign_webhook(secret, int(timestamp), body),
    }
    return body, headers


def assert_refused(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 413
    assert response.json() == {
        "error": "payload_too_large",
        "message": f"the body exceeds {limit} bytes",
    }
    assert response.headers["content-type"] == "application/json"
    assert response.headers["connection"] == "close"


# --- refusals --------------------------------------------------------------------------------


async def test_declared_oversized_body_is_refused_without_reading_it(
    application: WebhookBodyGuard,
) -> None:
    pulled: list[Message] = []
    sent: list[Message] = []

    async def receive() -> Message:
        pulled.append({})
        return {"type": "http.request", "body": b"x" * ONE_MIB, "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = http_scope(WEBHOOK, headers=[(b"content-length", str(64 * ONE_MIB).encode())])
    await application(scope, receive, send)
    assert pulled == []
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"] == "payload_too_large"
    assert received.count() == 0


async def test_chunked_oversized_body_is_refused_one_chunk_past_the_limit(
    application: WebhookBodyGuard,
) -> None:
    body = CountingBody(64 * ONE_MIB)
    async with client(application) as http:
        response = await http.post(WEBHOOK, content=body, headers={"X-Webhook-Signature": "0" * 64})
    assert_refused(response, ONE_MIB)
    assert body.pulled <= ONE_MIB + body.chunk
    assert received.count() == 0


async def test_refusal_is_logged_with_the_delivery_id(
    application: WebhookBodyGuard, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"X-Webhook-Delivery-Id": "dlv_big", "X-Webhook-Signature": "0" * 64}
    with caplog.at_level(logging.INFO, logger="messages_integrations"):
        async with client(application) as http:
            await http.post(WEBHOOK, content=CountingBody(2 * ONE_MIB), headers=headers)
    assert "refused delivery dlv_big: body larger than 1048576 bytes" in caplog.messages


async def test_each_view_is_guarded_with_its_own_limit(application: WebhookBodyGuard) -> None:
    async with client(application) as http:
        decorated = await http.post("/webhooks/small", content=CountingBody(8192, chunk=1000))
        class_based = await http.post("/webhooks/line/b", content=CountingBody(4096, chunk=1000))
        asynchronous = await http.post("/webhooks/async", content=CountingBody(ONE_MIB + 1))
    assert_refused(decorated, 4096)
    assert_refused(class_based, 2048)
    assert_refused(asynchronous, ONE_MIB)


async def test_the_setting_sets_the_limit_of_views_without_their_own() -> None:
    app = get_asgi_application()
    with override_settings(MESSAGES_WEBHOOK_MAX_BODY_SIZE=2000):
        async with client(app) as http:
            response = await http.post(WEBHOOK, content=CountingBody(3000, chunk=500))
    assert_refused(response, 2000)


async def test_an_explicit_limit_overrides_every_view() -> None:
    app = get_asgi_application(max_body_size=100)
    async with client(app) as http:
        small = await http.post("/webhooks/small", content=CountingBody(101, chunk=50))
        default = await http.post(WEBHOOK, content=b"x" * 101)
    assert_refused(small, 100)
    assert_refused(default, 100)


async def test_explicit_paths_guard_exactly_those_paths() -> None:
    app = get_asgi_application(paths=["echo"], max_body_size=1000)
    async with client(app) as http:
        guarded = await http.post("/echo", content=CountingBody(2000, chunk=300))
        # Discovery is off: the webhook view itself is left to answer (with its own 413).
        unguarded = await http.post(WEBHOOK, content=CountingBody(2000, chunk=300))
    assert_refused(guarded, 1000)
    assert unguarded.status_code == 401
    assert asgi_urls.echoed == []


async def test_routes_are_resolved_again_in_another_urlconf(
    application: WebhookBodyGuard,
) -> None:
    async with client(application) as http:
        here = await http.post("/webhooks/small", content=CountingBody(5000, chunk=1000))
        with override_settings(ROOT_URLCONF="tests.django.urls"):
            elsewhere = await http.post("/webhooks/small", content=CountingBody(5000, chunk=1000))
    assert_refused(here, 4096)
    assert elsewhere.status_code == 404  # no such route there: Django's answer, not a stale 413


async def test_script_prefix_is_taken_off_as_django_does(application: WebhookBodyGuard) -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = http_scope("/inbox" + WEBHOOK, headers=[(b"content-length", b"2000000")])
    scope["root_path"] = "/inbox"
    await application(scope, never_called, send)
    assert sent[0]["status"] == 413


# --- what gets through -----------------------------------------------------------------------


async def test_body_of_exactly_the_limit_reaches_the_webhook_view_intact(
    application: WebhookBodyGuard,
) -> None:
    body, headers = padded_delivery(ONE_MIB)
    async with client(application) as http:
        response = await http.post(WEBHOOK, content=chunks_of(body), headers=headers)
    # The view verified the HMAC over the bytes it read: they are the bytes sent.
    assert response.status_code == 200, response.text
    assert "content-length" not in response.request.headers
    assert received.count() == 1


async def test_body_under_a_views_own_limit_reaches_it(application: WebhookBodyGuard) -> None:
    body, headers = padded_delivery(4096)
    async with client(application) as http:
        response = await http.post(
            "/webhooks/small", content=chunks_of(body, 1000), headers=headers
        )
    assert response.status_code == 202
    assert response.json() == {"view": "small", "event": "message.received"}


async def test_guarded_body_is_replayed_byte_for_byte() -> None:
    app = get_asgi_application(paths=["/echo"], max_body_size=5000)
    body = bytes(range(256)) * 19 + b"end"  # 4,867 bytes
    async with client(app) as http:
        response = await http.post("/echo", content=chunks_of(body, 1000))
        empty = await http.post("/echo", content=chunks_of(b""))
    assert response.status_code == 200
    assert response.content == body
    assert asgi_urls.echoed == [body, b""]
    assert empty.content == b""


async def test_declared_body_within_the_limit_is_not_buffered() -> None:
    inner = RecordingApp()
    app = guard(inner, paths=["/hook"], max_body_size=10)
    messages = [{"type": "http.request", "body": b"0123456789", "more_body": False}]

    async def receive() -> Message:
        return messages.pop(0)

    await app(http_scope("/hook", headers=[(b"content-length", b"10")]), receive, discard)
    assert inner.calls[0][1] is receive  # the server's own receive, untouched


async def test_other_paths_pass_through_whatever_their_size(application: WebhookBodyGuard) -> None:
    body = b"y" * (ONE_MIB + 500_000)
    async with client(application) as http:
        echoed = await http.post("/echo", content=chunks_of(body))
        missing = await http.post("/nowhere", content=CountingBody(2 * ONE_MIB))
    assert echoed.status_code == 200
    assert echoed.content == body
    assert missing.status_code == 404


async def test_other_methods_on_the_webhook_reach_the_view(application: WebhookBodyGuard) -> None:
    async with client(application) as http:
        response = await http.put(WEBHOOK, content=b"x" * (ONE_MIB + 1))
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("paths", [None, ["/webhooks/messages"]])
async def test_websocket_and_lifespan_pass_through_untouched(paths: list[str] | None) -> None:
    inner = RecordingApp()
    app = guard(inner, paths=paths)
    websocket = {"type": "websocket", "path": WEBHOOK, "headers": [], "root_path": ""}
    lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}}

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    await app(websocket, receive, discard)
    await app(lifespan, receive, discard)
    assert [call[0] for call in inner.calls] == [websocket, lifespan]
    assert all(call[1] is receive and call[2] is discard for call in inner.calls)


async def test_sender_gone_while_buffering_gets_no_answer_and_django_no_call() -> None:
    inner = RecordingApp()
    app = guard(inner, paths=["/hook"], max_body_size=100)
    inbox: list[Message] = [
        {"type": "http.request", "body": b"x" * 60, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app(http_scope("/hook"), receive, send)
    assert (inner.calls, sent) == ([], [])


async def test_after_the_replay_the_application_hears_the_server() -> None:
    inner = RecordingApp(receive_after_body=True)
    app = guard(inner, paths=["/hook"], max_body_size=100)
    inbox: list[Message] = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"cd", "more_body": False},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return inbox.pop(0)

    await app(http_scope("/hook"), receive, discard)
    assert inner.bodies == [b"ab", b"cd"]
    assert inner.after_body == {"type": "http.disconnect"}


def test_bad_options_are_refused_when_the_application_is_built() -> None:
    with pytest.raises(ConfigurationError, match="max_body_size"):
        guard(RecordingApp(), max_body_size=0)
    with pytest.raises(TypeError, match="list of paths"):
        guard(RecordingApp(), paths="/webhooks")
    with pytest.raises(ValueError, match="non-empty path"):
        guard(RecordingApp(), paths=["/"])


# --- hand-driven ASGI ------------------------------------------------------------------------


def http_scope(path: str, *, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    """An HTTP POST scope as uvicorn builds it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
    }


async def never_called() -> Message:
    raise AssertionError("the body was read")


async def discard(message: Message) -> None:
    return None


class RecordingApp:
    """An ASGI application that records its calls and reads (and records) any HTTP body."""

    def __init__(self, *, receive_after_body: bool = False) -> None:
        self.calls: list[tuple[Any, Any, Any]] = []
        self.bodies: list[bytes] = []
        self.receive_after_body = receive_after_body
        self.after_body: Message | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls.append((scope, receive, send))
        if scope["type"] != "http":
            return
        more_body = True
        while more_body:
            message = await receive()
            self.bodies.append(message["body"])
            more_body = message["more_body"]
        if self.receive_after_body:
            self.after_body = await receive()
