"""What only the Flask blueprint does: its URL rules, the request stream, the app context.

The HTTP table itself is checked for the blueprint in tests/contract. Here: the prefix without a
redirect, the methods Flask would answer on its own, bodies read from the WSGI stream (declared,
chunked, capped by ``MAX_CONTENT_LENGTH``), handlers inside the app context, async handlers.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, current_app
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder, TestResponse, run_wsgi_app
from werkzeug.wrappers import Response

from messages_integrations import Event, WebhookRouter
from messages_integrations.flask import create_blueprint
from messages_integrations.testing import Delivery, Recorder, build_delivery, sample_data

from .conftest import SECRET, post


class EndlessBody(io.RawIOBase):
    """A request body that never ends, counting what the server read of it."""

    def __init__(self) -> None:
        self.read_so_far = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        buffer[:size] = b"x" * size
        self.read_so_far += size
        return size


def post_raw(app: Flask, body: io.IOBase, headers: dict[str, str], **environ: Any) -> Response:
    """POST a body stream to /webhooks, straight through WSGI (the test client would measure it)."""
    builder = EnvironBuilder(path="/webhooks", method="POST", headers=list(headers.items()))
    built = builder.get_environ()
    built.update({"wsgi.input": body, **environ})
    app_iter, status, response_headers = run_wsgi_app(app, built, buffered=True)
    return Response(b"".join(app_iter), status, response_headers)


def post_chunked(app: Flask, body: io.IOBase, headers: dict[str, str]) -> Response:
    """POST a body without Content-Length, as a WSGI server passes on a chunked body."""
    headers = {**headers, "Transfer-Encoding": "chunked"}
    assert "Content-Length" not in headers
    return post_raw(app, body, headers, **{"wsgi.input_terminated": True})


def test_webhook_is_answered_at_the_prefix_itself_without_redirect(
    client: FlaskClient, recorder: Recorder
) -> None:
    for path in ("/webhooks", "/webhooks/"):
        response = post(client, build_delivery("message.sent", secret=SECRET), path)
        assert response.status_code == 200
    assert recorder.count() == 2


def test_prefix_written_with_a_trailing_slash_is_answered_without_redirect(
    router: WebhookRouter, recorder: Recorder
) -> None:
    app = Flask(__name__)
    app.register_blueprint(create_blueprint(secret=SECRET, router=router), url_prefix="/hooks/")
    response = post(app.test_client(), build_delivery("message.sent", secret=SECRET), "/hooks")
    assert response.status_code == 200
    assert recorder.count() == 1


@pytest.mark.parametrize("method", ["OPTIONS", "HEAD", "TRACE"])
def test_methods_flask_would_answer_itself_get_the_json_405(
    client: FlaskClient, recorder: Recorder, method: str
) -> None:
    response = client.open("/webhooks", method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    if method != "HEAD":
        assert response.json == {
            "error": "method_not_allowed",
            "message": "this endpoint accepts POST deliveries only",
        }
    assert recorder.count() == 0


def test_declared_oversized_body_gets_413_before_a_byte_is_read(
    make_app: Callable[..., Flask], recorder: Recorder, router: WebhookRouter
) -> None:
    app = make_app(secret=SECRET, router=router, max_body_size=1000)
    body = EndlessBody()
    headers = build_delivery("message.received", secret=SECRET).headers
    response = post_raw(app, body, headers, CONTENT_LENGTH="1001")
    assert response.status_code == 413
    assert response.json["error"] == "payload_too_large"  # type: ignore[index]
    assert body.read_so_far == 0
    assert recorder.count() == 0


def test_endless_chunked_body_gets_413_after_reading_little_more_than_the_limit(
    make_app: Callable[..., Flask], recorder: Recorder, router: WebhookRouter
) -> None:
    app = make_app(secret=SECRET, router=router, max_body_size=100_000)
    body = EndlessBody()
    response = post_chunked(app, body, build_delivery("message.received", secret=SECRET).headers)
    assert response.status_code == 413
    assert response.json["error"] == "payload_too_large"  # type: ignore[index]
    assert body.read_so_far <= 100_000 + 64 * 1024
    assert recorder.count() == 0


def padded_delivery(size: int) -> Delivery:
    """A valid message.received delivery whose body is exactly ``size`` bytes."""
    data = sample_data("message.received")
    data["text"] = ""
    short = build_delivery("message.received", data, secret=SECRET, delivery_id="dlv_" + "0" * 32)
    data["text"] = "x" * (size - len(short.body))
    return build_delivery("message.received", data, secret=SECRET, delivery_id="dlv_" + "0" * 32)


def test_chunked_body_of_exactly_max_body_size_is_accepted_and_one_more_byte_is_not(
    make_app: Callable[..., Flask], router: WebhookRouter, recorder: Recorder
) -> None:
    app = make_app(secret=SECRET, router=router, max_body_size=5000)
    for size, status in [(5001, 413), (5000, 200)]:
        delivery = padded_delivery(size)
        assert len(delivery.body) == size
        response = post_chunked(app, io.BytesIO(delivery.body), delivery.headers)
        assert response.status_code == status
    assert recorder.count() == 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_flask_max_content_length_below_max_body_size_gives_the_json_413(
    make_app: Callable[..., Flask], router: WebhookRouter, recorder: Recorder, chunked: bool
) -> None:
    app = make_app({"MAX_CONTENT_LENGTH": 4000}, secret=SECRET, router=router)
    client = app.test_client()
    delivery = padded_delivery(4001)
    response: Response | TestResponse
    if chunked:
        response = post_chunked(app, io.BytesIO(delivery.body), delivery.headers)
    else:
        response = post(client, delivery)
    assert response.status_code == 413
    assert response.json == {
        "error": "payload_too_large",
        "message": "the body exceeds 4000 bytes",
    }
    assert recorder.count() == 0
    assert post(client, padded_delivery(3999)).status_code == 200


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_handlers_run_inside_the_app_context(
    make_app: Callable[..., Flask], router: WebhookRouter, kind: str
) -> None:
    seen: list[str] = []

    def sync_handler(event: Event[Any]) -> None:
        seen.append(current_app.config["GREETING"])

    async def async_handler(event: Event[Any]) -> None:
        seen.append(current_app.config["GREETING"])

    router.on("message.received")(sync_handler if kind == "sync" else async_handler)
    client = make_app({"GREETING": "hello"}, secret=SECRET, router=router).test_client()
    assert post(client, build_delivery("message.received", secret=SECRET)).status_code == 200
    assert seen == ["hello"]


def test_async_handlers_are_awaited_under_wsgi_and_their_failures_give_500(
    client: FlaskClient, router: WebhookRouter
) -> None:
    awaited: list[str] = []

    @router.on("typing.started")
    async def works(event: Event[Any]) -> None:
        awaited.append(event.event)

    @router.on("typing.stopped")
    async def fails(event: Event[Any]) -> None:
        raise ValueError("no")

    assert post(client, build_delivery("typing.started", secret=SECRET)).status_code == 200
    assert awaited == ["typing.started"]
    failed = post(client, build_delivery("typing.stopped", secret=SECRET))
    assert failed.status_code == 500
    assert failed.json == {
        "error": "handler_failed",
        "message": "a handler failed; the delivery may be retried",
    }
