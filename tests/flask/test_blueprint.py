"""CONTRACT.md's HTTP table, answered by the blueprint through Flask's test client."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, current_app
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder, run_wsgi_app
from werkzeug.wrappers import Response

from messages_integrations import EVENT_NAMES, Event, UnknownEvent, WebhookRouter, sign_webhook
from messages_integrations.flask import create_blueprint
from messages_integrations.testing import Recorder, build_delivery, sample_data

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


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_valid_delivery_runs_its_handlers(
    client: FlaskClient, recorder: Recorder, name: str
) -> None:
    delivery = build_delivery(name, secret=SECRET)
    response = post(client, delivery)
    assert response.status_code == 200
    assert response.json == {"status": "ok", "event": name, "delivery_id": delivery.delivery_id}
    assert [event.event for event in recorder.events] == [name]
    assert recorder.events[0].raw == delivery.json()


def test_webhook_is_answered_at_the_prefix_itself_without_redirect(
    client: FlaskClient, recorder: Recorder
) -> None:
    assert (
        post(client, build_delivery("message.sent", secret=SECRET), "/webhooks").status_code == 200
    )
    assert (
        post(client, build_delivery("message.sent", secret=SECRET), "/webhooks/").status_code == 200
    )
    assert recorder.count() == 2


def test_prefix_written_with_a_trailing_slash_is_answered_without_redirect(
    router: WebhookRouter, recorder: Recorder
) -> None:
    app = Flask(__name__)
    app.register_blueprint(create_blueprint(secret=SECRET, router=router), url_prefix="/hooks/")
    response = post(app.test_client(), build_delivery("message.sent", secret=SECRET), "/hooks")
    assert response.status_code == 200
    assert recorder.count() == 1


def test_unknown_event_runs_only_wildcard_handlers(
    client: FlaskClient, router: WebhookRouter, recorder: Recorder
) -> None:
    specific = Recorder()
    router.on("message.received")(specific)
    delivery = build_delivery("message.edited", {"id": "msg_1", "text": "hi"}, secret=SECRET)
    response = post(client, delivery)
    assert response.status_code == 200
    assert isinstance(recorder.events[0], UnknownEvent)
    assert recorder.events[0].data == {"id": "msg_1", "text": "hi"}
    assert specific.count() == 0


def test_duplicate_delivery_runs_handlers_once(client: FlaskClient, recorder: Recorder) -> None:
    delivery = build_delivery("reaction.added", secret=SECRET)
    assert post(client, delivery).json["status"] == "ok"  # type: ignore[index]
    again = post(client, delivery)
    assert again.status_code == 200
    assert again.json["status"] == "duplicate"  # type: ignore[index]
    assert recorder.count() == 1


def test_delivery_still_being_handled_gets_409(app: Flask, router: WebhookRouter) -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[str] = []

    @router.on("message.received")
    def slow(event: Event[Any]) -> None:
        runs.append(event.event)
        started.set()
        release.wait(timeout=30)

    delivery = build_delivery("message.received", secret=SECRET)
    first: list[int] = []
    worker = threading.Thread(
        target=lambda: first.append(post(app.test_client(), delivery).status_code)
    )
    worker.start()
    try:
        assert started.wait(timeout=30)
        second = post(app.test_client(), delivery)
        assert second.status_code == 409
        assert second.headers["Retry-After"] == "5"
    finally:
        release.set()
        worker.join(timeout=30)
    assert first == [200]
    assert runs == ["message.received"]


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"])
def test_other_methods_get_405_allowing_post(
    client: FlaskClient, recorder: Recorder, method: str
) -> None:
    response = client.open("/webhooks", method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json == {
        "error": "method_not_allowed",
        "message": "this endpoint accepts POST deliveries only",
    }
    assert recorder.count() == 0


def test_head_gets_405_allowing_post(client: FlaskClient) -> None:
    response = client.head("/webhooks")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


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


def padded_delivery(size: int) -> Any:
    """A valid message.received delivery whose body is exactly ``size`` bytes."""
    data = sample_data("message.received")
    data["text"] = ""
    short = build_delivery("message.received", data, secret=SECRET, delivery_id="dlv_" + "0" * 32)
    data["text"] = "x" * (size - len(short.body))
    return build_delivery("message.received", data, secret=SECRET, delivery_id="dlv_" + "0" * 32)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_of_exactly_max_body_size_is_accepted_and_one_more_byte_is_not(
    make_app: Callable[..., Flask], router: WebhookRouter, recorder: Recorder, chunked: bool
) -> None:
    app = make_app(secret=SECRET, router=router, max_body_size=5000)
    for size, status in [(5001, 413), (5000, 200)]:
        delivery = padded_delivery(size)
        assert len(delivery.body) == size
        response: Response
        if chunked:
            response = post_chunked(app, io.BytesIO(delivery.body), delivery.headers)
        else:
            response = post(app.test_client(), delivery)
        assert response.status_code == status
    assert recorder.count() == 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_flask_max_content_length_below_max_body_size_gives_the_json_413(
    make_app: Callable[..., Flask], router: WebhookRouter, recorder: Recorder, chunked: bool
) -> None:
    app = make_app({"MAX_CONTENT_LENGTH": 4000}, secret=SECRET, router=router)
    client = app.test_client()
    delivery = padded_delivery(4001)
    response: Response
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


def test_missing_signature_gets_401(client: FlaskClient, recorder: Recorder) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    headers = {k: v for k, v in delivery.headers.items() if k != "X-Webhook-Signature"}
    response = client.post("/webhooks", data=delivery.body, headers=headers)
    assert response.status_code == 401
    assert recorder.count() == 0


def test_delivery_signed_with_another_secret_gets_401_without_revealing_the_secret(
    client: FlaskClient, recorder: Recorder
) -> None:
    response = post(client, build_delivery("message.received", secret="whsec_someone_else"))
    assert response.status_code == 401
    assert response.json["error"] == "invalid_signature"  # type: ignore[index]
    assert SECRET not in response.get_data(as_text=True)
    assert recorder.count() == 0


def test_stale_delivery_gets_401(client: FlaskClient, recorder: Recorder) -> None:
    stale = int(time.time() * 1000) - 301_000
    response = post(client, build_delivery("message.received", secret=SECRET, timestamp=stale))
    assert response.status_code == 401
    assert recorder.count() == 0


def test_body_scheme_delivery_is_accepted(client: FlaskClient, recorder: Recorder) -> None:
    delivery = build_delivery("receipt.read", secret=SECRET, scheme="body")
    assert post(client, delivery).status_code == 200
    assert recorder.count("receipt.read") == 1


@pytest.mark.parametrize(
    "body",
    [b"[1, 2, 3]", b"not json", b'{"event": "message.received", "data": {"id": "msg_1"}}'],
    ids=["not-an-object", "not-json", "missing-fields"],
)
def test_authenticated_but_invalid_payload_gets_400(
    client: FlaskClient, recorder: Recorder, body: bytes
) -> None:
    now = int(time.time() * 1000)
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Signature": sign_webhook(SECRET, now, body),
        "X-Webhook-Timestamp": str(now),
    }
    response = client.post("/webhooks", data=body, headers=headers)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_payload"  # type: ignore[index]
    assert recorder.count() == 0


def test_failing_handler_gives_500_after_every_handler_ran_and_a_retry_runs_in_full(
    client: FlaskClient, router: WebhookRouter, recorder: Recorder
) -> None:
    fail = [True]

    @router.on("reaction.removed")
    def flaky(event: Event[Any]) -> None:
        if fail[0]:
            raise RuntimeError("database password is hunter2")

    delivery = build_delivery("reaction.removed", secret=SECRET)
    response = post(client, delivery)
    assert response.status_code == 500
    assert "hunter2" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert json.loads(response.data)["error"] == "handler_failed"
    assert recorder.count() == 1  # the "*" handler registered before still ran

    fail[0] = False
    assert post(client, delivery).status_code == 200
    assert recorder.count() == 2


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


def test_async_handlers_are_awaited_and_their_failures_give_500(
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
    assert post(client, build_delivery("typing.stopped", secret=SECRET)).status_code == 500
