"""Every outcome, on a real server of each framework, reaches all four places a user looks.

For each outcome the server can reach, one request, then: its JSON log line (the record's
``extra`` fields, read from the server's log), the record an observer registered in the app
received, the Prometheus counter (``GET /metrics``), and the OpenTelemetry span ``process
{event}``, a child of the server span the instrumentation opened, with a child span per handler.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis

from messages_integrations import sign_webhook
from messages_integrations.stores import RedisDeliveryStore
from messages_integrations.testing import build_delivery, new_delivery_id
from tests.observability.observed import (
    APPS_UNDER_TEST,
    MAX_BODY_SIZE,
    OLD_SECRET,
    SECRET,
    Mark,
    Metrics,
    ObservedServer,
    eventually,
    observed_server,
    total,
    value,
)

pytestmark = pytest.mark.http

HANDLERS = "tests.observability.apps.telemetry"
DELIVERIES = "messages_webhook_deliveries_total"
HANDLER_RUNS = "messages_webhook_handler_duration_seconds_count"
IN_PROGRESS = "messages_webhook_in_progress"


@dataclass(frozen=True)
class Expected:
    """What one outcome looks like everywhere."""

    status: int
    level: str
    event: str | None  # the record's event: None before the body was authenticated
    secret_position: int | None
    handlers: dict[str, str] = field(default_factory=dict)  # handler -> "ok" / "failed"
    handled: bool = False
    span_error: bool = False


EXPECTED: dict[str, Expected] = {
    "ok": Expected(200, "INFO", "reaction.added", 2, {"thank": "ok", "count": "ok"}, True),
    "duplicate": Expected(200, "INFO", "reaction.added", 2),
    "in_progress": Expected(409, "INFO", "message.received", 2),
    "queued": Expected(202, "INFO", "receipt.read", 2, handled=True),
    "handler_failed": Expected(
        500,
        "WARNING",
        "typing.started",
        2,
        {"explode": "failed", "still_runs": "ok"},
        handled=True,
        span_error=True,
    ),
    "store_failed": Expected(503, "WARNING", "message.received", 2, span_error=True),
    "refused_signature": Expected(401, "INFO", None, None),
    "refused_stale": Expected(401, "INFO", "reaction.added", 2),
    "refused_payload": Expected(400, "INFO", None, 2),
    "refused_size": Expected(413, "INFO", None, None),
    "refused_method": Expected(405, "DEBUG", None, None),
    "not_configured": Expected(500, "ERROR", None, None),
}

#: Reachable everywhere; not_configured only under Django (elsewhere start-up fails instead).
COMMON = [outcome for outcome in EXPECTED if outcome != "not_configured"]
DJANGO = [name for name in APPS_UNDER_TEST if name.startswith("django")]


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ObservedServer]:
    """One app of APPS_UNDER_TEST, for every outcome test of that app."""
    name: str = request.param
    with observed_server(name, tmp_path_factory.mktemp(name)) as running:
        yield running


@dataclass
class Sent:
    """One measured request: its answer, its delivery id, and the figures around it."""

    response: httpx.Response
    delivery_id: str
    mark: Mark
    before: Metrics
    after: Metrics


def _signed(body: bytes, delivery_id: str, secret: str = SECRET) -> dict[str, str]:
    timestamp = int(time.time() * 1000)
    return {
        "Content-Type": "application/json",
        "X-Webhook-Signature": sign_webhook(secret, timestamp, body),
        "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Delivery-Id": delivery_id,
    }


def _send(server: ObservedServer, outcome: str) -> Sent:
    """Bring about ``outcome`` with one request (after any preparation it needs)."""
    delivery_id = new_delivery_id()
    body = b""
    headers: dict[str, str] = {}
    path: str | None = None
    method = "POST"
    if outcome in ("ok", "duplicate"):
        delivery = build_delivery("reaction.added", secret=SECRET, delivery_id=delivery_id)
        body, headers = delivery.body, delivery.headers
        if outcome == "duplicate":
            assert server.post(body, headers).status_code == 200
    elif outcome in ("in_progress", "store_failed"):
        delivery = build_delivery("message.received", secret=SECRET, delivery_id=delivery_id)
        body, headers = delivery.body, delivery.headers
    elif outcome == "queued":
        delivery = build_delivery("receipt.read", secret=SECRET, delivery_id=delivery_id)
        body, headers = delivery.body, delivery.headers
    elif outcome == "handler_failed":
        delivery = build_delivery("typing.started", secret=SECRET, delivery_id=delivery_id)
        body, headers = delivery.body, delivery.headers
    elif outcome == "refused_signature":
        delivery = build_delivery("reaction.added", secret="whsec_forged", delivery_id=delivery_id)
        body, headers = delivery.body, delivery.headers
    elif outcome == "refused_stale":
        an_hour_ago = int(time.time() * 1000) - 3_600_000
        delivery = build_delivery(
            "reaction.added", secret=SECRET, timestamp=an_hour_ago, delivery_id=delivery_id
        )
        body, headers = delivery.body, delivery.headers
    elif outcome == "refused_payload":
        body = b'{"event": "message.received", "data": {"chat_id": 7}}'
        headers = _signed(body, delivery_id)
    elif outcome == "refused_size":
        body = b'{"padding": "' + b"x" * MAX_BODY_SIZE + b'"}'
        headers = _signed(body, delivery_id)
    elif outcome == "refused_method":
        method, headers = "GET", {"X-Webhook-Delivery-Id": delivery_id}
    elif outcome == "not_configured":
        delivery = build_delivery("reaction.added", secret=SECRET, delivery_id=delivery_id)
        body, headers, path = delivery.body, delivery.headers, "/webhooks/broken"
    before = server.metrics()
    mark = server.mark()
    if outcome == "in_progress":
        with _held_elsewhere(server, delivery_id):
            response = server.post(body, headers)
    elif outcome == "store_failed":
        server.redis.stop()
        try:
            response = server.post(body, headers)
        finally:
            server.redis.start()
    elif method != "POST":
        response = server.request(method, headers)
    else:
        response = server.post(body, headers, path=path)
    sent = Sent(response, delivery_id, mark, before, server.metrics())
    if outcome == "store_failed":
        _wait_for_the_store(server)
    return sent


@contextlib.contextmanager
def _held_elsewhere(server: ObservedServer, delivery_id: str) -> Iterator[None]:
    """Another worker holds this delivery's lease in the shared store (so the server sees 409)."""
    client = redis.Redis.from_url(server.redis_url)
    store = RedisDeliveryStore(client)
    key = f"delivery:{delivery_id}"
    store.claim(key, "another-worker", lease=60)
    try:
        yield
    finally:
        store.release(key, "another-worker")
        client.close()


def _wait_for_the_store(server: ObservedServer) -> None:
    """After Redis is back, the server answers a fresh delivery 200 again."""

    def healthy() -> bool | None:
        probe = build_delivery("reaction.added", secret=SECRET)
        return True if server.post(probe.body, probe.headers).status_code == 200 else None

    eventually(healthy, "the store to be reachable again")


# --- the four places --------------------------------------------------------------------------


def _check_answer(sent: Sent, outcome: str, expected: Expected) -> None:
    response = sent.response
    assert response.status_code == expected.status, response.text
    assert response.headers["content-type"] == "application/json"
    if expected.status in (409, 503):
        assert response.headers["retry-after"]
    if outcome == "refused_method":
        assert response.headers["allow"] == "POST"
    if outcome == "queued":
        assert response.json()["status"] == "queued"


def _check_log_line(server: ObservedServer, sent: Sent, outcome: str, expected: Expected) -> None:
    lines = [
        line
        for line in server.log_lines(sent.mark)
        if line["delivery_id"] == sent.delivery_id and line["outcome"] == outcome
    ]
    assert len(lines) == 1, server.running.log()
    [line] = lines
    assert line["level"] == expected.level
    assert line["http_status"] == expected.status
    assert line["event"] == expected.event
    assert line["secret_position"] == expected.secret_position
    assert isinstance(line["duration_s"], float)
    assert line["duration_s"] >= 0
    if outcome.startswith("refused_") or outcome == "not_configured":
        assert line["reason"], line  # says why, e.g. which check failed
    log = server.running.log()
    assert SECRET not in log
    assert OLD_SECRET not in log


def _check_callbacks(server: ObservedServer, sent: Sent, outcome: str, expected: Expected) -> None:
    mine = [r for r in server.callbacks(sent.mark) if r["delivery_id"] == sent.delivery_id]
    [record] = [r for r in mine if r["type"] == "DeliveryRecord"]
    assert record["outcome"] == outcome
    assert record["http_status"] == expected.status
    assert record["event"] == expected.event
    assert record["secret_position"] == expected.secret_position
    assert record["handled"] is expected.handled
    started = [r for r in mine if r["type"] == "HandlersStarted"]
    assert len(started) == (1 if expected.handled else 0)
    runs = {
        r["handler"].removeprefix(f"{HANDLERS}."): r["outcome"]
        for r in mine
        if r["type"] == "HandlerRecord"
    }
    assert runs == expected.handlers
    failed = [r for r in mine if r["type"] == "HandlerRecord" and r["outcome"] == "failed"]
    assert [r["error_type"] for r in failed] == ["RuntimeError"] * len(failed)


def _event_label(event: str | None) -> str:
    return "unknown" if event is None else event


def _check_metrics(server: ObservedServer, sent: Sent, outcome: str, expected: Expected) -> None:
    label = _event_label(expected.event)
    before, after = sent.before, sent.after
    counted = value(after, DELIVERIES, event=label, outcome=outcome) - value(
        before, DELIVERIES, event=label, outcome=outcome
    )
    assert counted == 1
    # ... and nothing else was counted for this request.
    assert total(after, DELIVERIES) - total(before, DELIVERIES) == 1
    for handler, result in expected.handlers.items():
        labels = {"event": label, "handler": f"{HANDLERS}.{handler}", "outcome": result}
        assert value(after, HANDLER_RUNS, **labels) - value(before, HANDLER_RUNS, **labels) == 1
    assert total(after, HANDLER_RUNS) - total(before, HANDLER_RUNS) == len(expected.handlers)
    assert value(after, IN_PROGRESS) == 0


def _check_spans(server: ObservedServer, sent: Sent, outcome: str, expected: Expected) -> None:
    def delivery_span() -> dict[str, Any] | None:
        found = [
            span
            for span in server.spans(sent.mark)
            if span["attributes"].get("messages.webhook.outcome") == outcome
            and span["attributes"].get("messaging.message.id") == sent.delivery_id
        ]
        assert len(found) <= 1, found
        return found[0] if found else None

    span = eventually(delivery_span, f"the span of {outcome}")
    assert span["name"] == f"process {_event_label(expected.event)}"
    assert span["kind"] == "CONSUMER"
    attributes = span["attributes"]
    assert attributes["messaging.system"] == "messages_dev"
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["http.response.status_code"] == expected.status
    assert attributes.get("messages.webhook.event") == expected.event
    assert attributes.get("messages.webhook.secret_position") == expected.secret_position
    assert span["status"] == ("ERROR" if expected.span_error else "UNSET")

    # A child of the span the server's instrumentation opened for this request.
    def parent() -> dict[str, Any] | None:
        found = [s for s in server.spans() if s["span_id"] == span["parent_id"]]
        return found[0] if found else None

    assert span["parent_id"] is not None
    server_span = eventually(parent, "the server span")
    assert server_span["kind"] == "SERVER"
    assert server_span["trace_id"] == span["trace_id"]

    # One child span per handler run, named after the handler; a failure recorded on its own.
    children = {
        s["name"].removeprefix(f"{HANDLERS}."): s
        for s in server.spans(sent.mark)
        if s["parent_id"] == span["span_id"] and s["name"].startswith(HANDLERS)
    }
    assert set(children) == set(expected.handlers)
    for handler, result in expected.handlers.items():
        child = children[handler]
        assert child["trace_id"] == span["trace_id"]
        assert child["status"] == ("ERROR" if result == "failed" else "UNSET")
        assert ("exception" in child["events"]) is (result == "failed")
    if "thank" in children:
        # A span the handler opens itself nests under the handler's span.
        [inner] = [s for s in server.spans(sent.mark) if s["name"] == "look up the message"]
        assert inner["parent_id"] == children["thank"]["span_id"]


def _check_job(server: ObservedServer, sent: Sent, outcome: str) -> None:
    jobs = [job for job in server.jobs(sent.mark) if sent.delivery_id in job["key"]]
    if outcome == "queued":
        [job] = jobs
        assert job["event"] == "receipt.read"
    else:
        assert jobs == []


def _check_everywhere(server: ObservedServer, outcome: str) -> None:
    expected = EXPECTED[outcome]
    sent = _send(server, outcome)
    _check_answer(sent, outcome, expected)
    _check_log_line(server, sent, outcome, expected)
    _check_callbacks(server, sent, outcome, expected)
    _check_metrics(server, sent, outcome, expected)
    _check_spans(server, sent, outcome, expected)
    _check_job(server, sent, outcome)


@pytest.mark.parametrize("outcome", COMMON)
@pytest.mark.parametrize("server", list(APPS_UNDER_TEST), indirect=True)
def test_each_outcome_reaches_the_log_the_callbacks_the_metrics_and_the_trace(
    server: ObservedServer, outcome: str
) -> None:
    _check_everywhere(server, outcome)


@pytest.mark.parametrize("server", DJANGO, indirect=True)
def test_a_django_endpoint_that_cannot_be_configured_is_an_outcome_too(
    server: ObservedServer,
) -> None:
    _check_everywhere(server, "not_configured")
