"""verify_webhook and sign_webhook: both schemes, interop with the official SDK, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from messages_integrations import (
    InvalidPayloadError,
    MessageReceived,
    ReactionAdded,
    ReactionRemoved,
    SignatureVerificationError,
    StaleDeliveryError,
    WebhookError,
    WebhookReceiver,
    WebhookRouter,
    sign_webhook,
    verify_webhook,
)
from messages_integrations._signing import Authenticated, authenticate, check_window
from messages_integrations.testing import build_delivery, sample_data
from tests.conftest import load_vectors

SECRET = "whsec_test_secret"
VECTORS = load_vectors()
NOW_MS = 1_767_225_600_000


def clock_at(ms: int) -> Any:
    return lambda: ms / 1000


def vector_id(vector: dict[str, Any]) -> str:
    return str(vector["event"])


# --- interop with the official SDK ---------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_official_sdk_delivery_verifies_with_the_timestamp_header(vector: dict[str, Any]) -> None:
    headers = vector["headers"]
    event = verify_webhook(
        vector["body"].encode(),
        headers["X-Webhook-Signature"],
        vector["secret"],
        timestamp=headers["X-Webhook-Timestamp"],
        tolerance=None,
    )
    assert event.event == vector["event"]
    assert event.delivery_id == headers["X-Webhook-Delivery-Id"]
    assert event.timestamp == int(headers["X-Webhook-Timestamp"])


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_official_sdk_delivery_verifies_from_the_body_timestamp(vector: dict[str, Any]) -> None:
    # Without the header, the body's timestamp is the signed one, as the official SDK reads it.
    event = verify_webhook(
        vector["body"], vector["headers"]["X-Webhook-Signature"], vector["secret"], tolerance=None
    )
    assert event.event == vector["event"]


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_official_sdk_delivery_verifies_with_a_clock_at_its_time(vector: dict[str, Any]) -> None:
    timestamp = int(vector["headers"]["X-Webhook-Timestamp"])
    event = verify_webhook(
        vector["body"].encode(),
        vector["headers"]["X-Webhook-Signature"],
        vector["secret"],
        timestamp=timestamp,
        clock=clock_at(timestamp + 299_000),
    )
    assert event.timestamp == timestamp


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_sign_webhook_reproduces_official_signatures_byte_for_byte(vector: dict[str, Any]) -> None:
    headers = vector["headers"]
    assert (
        sign_webhook(vector["secret"], headers["X-Webhook-Timestamp"], vector["body"])
        == headers["X-Webhook-Signature"]
    )
    assert (
        sign_webhook(vector["secret"], int(headers["X-Webhook-Timestamp"]), vector["body"].encode())
        == headers["X-Webhook-Signature"]
    )


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_build_delivery_reproduces_official_deliveries(vector: dict[str, Any]) -> None:
    body = json.loads(vector["body"])
    delivery = build_delivery(
        body["event"],
        body["data"],
        secret=vector["secret"],
        timestamp=body["timestamp"],
        delivery_id=body["delivery_id"],
    )
    assert delivery.body == vector["body"].encode()
    assert delivery.headers == vector["headers"]


def test_stale_official_delivery_is_refused_with_the_default_window() -> None:
    vector = VECTORS[0]
    with pytest.raises(SignatureVerificationError, match="outside the replay window"):
        verify_webhook(
            vector["body"].encode(),
            vector["headers"]["X-Webhook-Signature"],
            vector["secret"],
            timestamp=vector["headers"]["X-Webhook-Timestamp"],
        )


# --- the official SDK's own webhook test cases, for this API -------------------------------------


def test_valid_delivery_verifies() -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    event = verify_webhook(delivery.body, delivery.signature, SECRET, timestamp=delivery.timestamp)
    assert isinstance(event, MessageReceived)
    assert event.data.text == "Are we still on for 7pm? 🍝"


def test_valid_delivery_carries_its_delivery_id() -> None:
    delivery = build_delivery("message.received", secret=SECRET, delivery_id="dlv_" + "a" * 32)
    event = verify_webhook(delivery.body, delivery.signature, SECRET, timestamp=delivery.timestamp)
    assert event.delivery_id == "dlv_" + "a" * 32


@pytest.mark.parametrize(
    ("name", "cls", "added"),
    [("reaction.added", ReactionAdded, True), ("reaction.removed", ReactionRemoved, False)],
)
@pytest.mark.parametrize("kind", ["love", "like", "dislike", "laugh", "emphasize", "question"])
def test_each_reaction_verifies(name: str, cls: type, added: bool, kind: str) -> None:
    data = {
        "id": "rxn_1",
        "message_id": "msg_1",
        "chat_id": "cht_1",
        "type": kind,
        "sender": "+15559876543",
        "is_from_me": False,
        "added": added,
        "sent_at": NOW_MS,
    }
    delivery = build_delivery(name, data, secret=SECRET)
    event = verify_webhook(delivery.body, delivery.signature, SECRET, timestamp=delivery.timestamp)
    assert isinstance(event, cls)
    assert event.data.type == kind
    assert event.data.added is added


def test_invalid_signature_is_refused() -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    with pytest.raises(SignatureVerificationError, match="does not match"):
        verify_webhook(delivery.body, "0" * 64, SECRET, timestamp=delivery.timestamp)


def test_wrong_secret_is_refused() -> None:
    delivery = build_delivery("message.received", secret="whsec_other")
    with pytest.raises(SignatureVerificationError):
        verify_webhook(delivery.body, delivery.signature, SECRET, timestamp=delivery.timestamp)


@pytest.mark.parametrize("missing", [None, "", "   "])
def test_missing_signature_is_refused(missing: str | None) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    with pytest.raises(SignatureVerificationError, match="no signature"):
        verify_webhook(delivery.body, missing, SECRET, timestamp=delivery.timestamp)


def test_tampered_body_is_refused() -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    tampered = delivery.body.replace(b"7pm", b"8pm")
    assert tampered != delivery.body
    with pytest.raises(SignatureVerificationError):
        verify_webhook(tampered, delivery.signature, SECRET, timestamp=delivery.timestamp)


def test_tampered_timestamp_is_refused() -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    with pytest.raises(SignatureVerificationError):
        verify_webhook(delivery.body, delivery.signature, SECRET, timestamp=delivery.timestamp + 1)


def test_stale_delivery_is_refused() -> None:
    delivery = build_delivery("message.received", secret=SECRET, timestamp=NOW_MS)
    with pytest.raises(SignatureVerificationError, match="301 s old"):
        verify_webhook(
            delivery.body,
            delivery.signature,
            SECRET,
            timestamp=delivery.timestamp,
            clock=clock_at(NOW_MS + 301_000),
        )


def test_delivery_from_the_future_is_refused() -> None:
    delivery = build_delivery("message.received", secret=SECRET, timestamp=NOW_MS)
    with pytest.raises(SignatureVerificationError, match="in the future"):
        verify_webhook(
            delivery.body,
            delivery.signature,
            SECRET,
            timestamp=delivery.timestamp,
            clock=clock_at(NOW_MS - 301_000),
        )


def test_delivery_inside_the_window_verifies() -> None:
    delivery = build_delivery("message.received", secret=SECRET, timestamp=NOW_MS)
    event = verify_webhook(
        delivery.body,
        delivery.signature,
        SECRET,
        timestamp=delivery.timestamp,
        clock=clock_at(NOW_MS + 299_000),
    )
    assert event.timestamp == NOW_MS


def test_custom_tolerance_applies_in_seconds() -> None:
    delivery = build_delivery("message.received", secret=SECRET, timestamp=NOW_MS)
    args = (delivery.body, delivery.signature, SECRET)
    later = clock_at(NOW_MS + 30_000)
    assert verify_webhook(*args, timestamp=NOW_MS, tolerance=60, clock=later).timestamp == NOW_MS
    with pytest.raises(SignatureVerificationError):
        verify_webhook(*args, timestamp=NOW_MS, tolerance=10, clock=later)


def test_tolerance_none_turns_the_replay_check_off() -> None:
    delivery = build_delivery("message.received", secret=SECRET, timestamp=1_000)
    event = verify_webhook(
        delivery.body, delivery.signature, SECRET, timestamp=delivery.timestamp, tolerance=None
    )
    assert event.timestamp == 1_000


@pytest.mark.parametrize(
    "name",
    [
        "message.received",
        "message.sent",
        "reaction.added",
        "reaction.removed",
        "typing.started",
        "typing.stopped",
        "receipt.read",
    ],
)
def test_every_event_round_trips(name: str) -> None:
    delivery = build_delivery(name, secret=SECRET)
    event = verify_webhook(delivery.body, delivery.signature, SECRET, timestamp=delivery.timestamp)
    assert event.event == name
    assert event.raw == json.loads(delivery.body)
    assert event == delivery.parsed()


def test_fixed_timestamp_and_delivery_id_are_used() -> None:
    delivery = build_delivery(
        "reaction.added", secret=SECRET, timestamp=1_710_000_000_000, delivery_id="dlv_fixed"
    )
    assert delivery.headers["X-Webhook-Timestamp"] == "1710000000000"
    assert delivery.headers["X-Webhook-Delivery-Id"] == "dlv_fixed"
    assert delivery.json()["timestamp"] == 1_710_000_000_000
    assert delivery.json()["delivery_id"] == "dlv_fixed"
    assert delivery.signature == sign_webhook(SECRET, 1_710_000_000_000, delivery.body)


# --- the body-only scheme of the product page's manual snippet -----------------------------------


def test_body_scheme_signature_verifies() -> None:
    delivery = build_delivery("message.received", secret=SECRET, scheme="body")
    assert "X-Webhook-Timestamp" not in delivery.headers
    assert delivery.signature == sign_webhook(SECRET, None, delivery.body, scheme="body")
    event = verify_webhook(delivery.body, delivery.signature, SECRET)
    assert isinstance(event, MessageReceived)


def test_body_scheme_uses_the_signed_body_timestamp_for_the_window() -> None:
    delivery = build_delivery("message.received", secret=SECRET, timestamp=NOW_MS, scheme="body")
    with pytest.raises(SignatureVerificationError, match="outside the replay window"):
        verify_webhook(delivery.body, delivery.signature, SECRET, clock=clock_at(NOW_MS + 400_000))


def test_body_scheme_ignores_an_unsigned_timestamp_header() -> None:
    # The header is not covered by a body-scheme signature, so a fresh header cannot refresh a
    # stale body.
    delivery = build_delivery("message.received", secret=SECRET, timestamp=NOW_MS, scheme="body")
    later = NOW_MS + 400_000
    with pytest.raises(SignatureVerificationError):
        verify_webhook(
            delivery.body, delivery.signature, SECRET, timestamp=later, clock=clock_at(later)
        )


def test_seed_page_minimal_delivery_verifies_with_the_body_scheme() -> None:
    body = (
        b'{"event":"message.received","data":{"object":"message","id":"msg_abc123",'
        b'"chat_id":"cht_def456","sender":"+15559876543","text":"Hey there!",'
        b'"is_from_me":false,"sent_at":1710000000000},"timestamp":1710000000123}'
    )
    signature = sign_webhook("your_webhook_secret", None, body, scheme="body")
    event = verify_webhook(body, signature, "your_webhook_secret", tolerance=None)
    assert isinstance(event, MessageReceived)
    assert event.delivery_id is None
    assert event.data.object == "message"
    assert event.data.attachments == ()
    assert event.data.guid is None


# --- several secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize("position", [0, 1, 2])
def test_any_of_several_secrets_may_match(position: int) -> None:
    secrets: list[str | bytes] = ["whsec_line_a", "whsec_line_b", b"whsec_line_c"]
    delivery = build_delivery("typing.started", secret=secrets[position], timestamp=NOW_MS)
    event = verify_webhook(
        delivery.body, delivery.signature, secrets, timestamp=NOW_MS, clock=clock_at(NOW_MS)
    )
    assert event.event == "typing.started"


def test_secret_given_as_bytes_is_used_as_is() -> None:
    delivery = build_delivery("receipt.read", secret="whsec_ünïcode")
    event = verify_webhook(
        delivery.body, delivery.signature, "whsec_ünïcode".encode(), timestamp=delivery.timestamp
    )
    assert event.event == "receipt.read"


@pytest.mark.parametrize("secret", ["", [], [""], b""])
def test_an_empty_secret_is_a_programming_error(secret: Any) -> None:
    delivery = build_delivery("receipt.read", secret=SECRET)
    with pytest.raises(ValueError, match="secret"):
        verify_webhook(delivery.body, delivery.signature, secret, timestamp=delivery.timestamp)


# --- malformed input ends in the two documented errors --------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [
        "z" * 64,
        "é" * 64,
        "a" * 63,
        "a" * 65,
        "a" * 100_000,
        "sha256=" + "a" * 64,
        b"\xff" * 64,
    ],
    ids=["non-hex", "non-ascii", "short", "long", "100 KB", "prefixed", "bytes"],
)
def test_malformed_signature_is_a_verification_error(signature: Any) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    with pytest.raises(SignatureVerificationError, match="malformed"):
        verify_webhook(delivery.body, signature, SECRET, timestamp=delivery.timestamp)


def test_uppercase_hex_signature_is_accepted() -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    event = verify_webhook(
        delivery.body, delivery.signature.upper(), SECRET, timestamp=delivery.timestamp
    )
    assert event.event == "message.received"


@pytest.mark.parametrize("timestamp", ["abc", "1.5e12", "-5", "", "١٢٣", "9" * 100_000, True])
def test_malformed_timestamp_is_a_verification_error(timestamp: Any) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    with pytest.raises(SignatureVerificationError, match="malformed timestamp"):
        verify_webhook(delivery.body, delivery.signature, SECRET, timestamp=timestamp)


def test_invalid_utf8_body_is_refused_without_another_exception() -> None:
    body = b'{"event":"message.received","data":{"text":"\xff\xfe"}}'
    with pytest.raises(SignatureVerificationError):
        verify_webhook(body, sign_webhook(SECRET, 1, body), SECRET)
    # Authentic but undecodable: the signature holds, the payload does not.
    with pytest.raises(InvalidPayloadError, match="UTF-8"):
        verify_webhook(body, sign_webhook(SECRET, None, body, scheme="body"), SECRET)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"data": {}, "timestamp": 1}', "event: missing"),
        (b'{"event": 5, "data": {}, "timestamp": 1}', r"^\$\.event: expected str, got int$"),
        (b'{"event": "message.sent", "timestamp": 1}', r"^\$\.data: missing required field$"),
        (b'{"event": "message.sent", "data": [], "timestamp": 1}', r"^\$\.data: expected object"),
        (b'{"event": "receipt.read", "data": {}}', r"^\$\.data\.id: missing required field$"),
        (b'{"event": "x.y", "data": {}}', r"^\$\.timestamp: missing required field$"),
        (
            b'{"event": "x.y", "data": {}, "timestamp": "1"}',
            r"^\$\.timestamp: expected int, got str",
        ),
        (b'{"event": "x.y", "data": {}, "timestamp": 1, "delivery_id": 7}', r"\$\.delivery_id"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_authentic_but_invalid_envelope_is_an_invalid_payload(body: bytes, message: str) -> None:
    signature = sign_webhook(SECRET, 1, body)
    with pytest.raises(InvalidPayloadError, match=message):
        verify_webhook(body, signature, SECRET, timestamp=1, tolerance=None)


def test_both_errors_are_webhook_errors() -> None:
    assert issubclass(SignatureVerificationError, WebhookError)
    assert issubclass(InvalidPayloadError, WebhookError)


def test_str_body_is_taken_as_utf8() -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    event = verify_webhook(
        delivery.body.decode(), delivery.signature, SECRET, timestamp=delivery.timestamp
    )
    assert event.data.text == "Are we still on for 7pm? 🍝"


def test_reserialised_json_no_longer_verifies() -> None:
    # The pitfall of frameworks that parse and re-dump a body: the bytes change, the HMAC fails.
    delivery = build_delivery("message.received", secret=SECRET)
    reserialised = json.dumps(json.loads(delivery.body)).encode()
    with pytest.raises(SignatureVerificationError):
        verify_webhook(reserialised, delivery.signature, SECRET, timestamp=delivery.timestamp)


# --- the signed timestamp of a body without the header: a bounded byte scan ---------------------


def body_scheme_free(body: bytes, timestamp: int) -> str:
    """The official SDK's signature of ``body`` with ``timestamp``, sent without the header."""
    return sign_webhook(SECRET, timestamp, body)


def message_body(**extra: Any) -> bytes:
    data = sample_data("message.received")
    envelope = {"event": "message.received", "data": data, "timestamp": NOW_MS, **extra}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def test_the_body_timestamp_is_found_after_nested_timestamp_keys() -> None:
    data = sample_data("message.received") | {
        "history": [{"timestamp": NOW_MS - n, "x": {"timestamp": n}} for n in range(20)]
    }
    envelope = {"event": "message.received", "data": data, "timestamp": NOW_MS}
    body = json.dumps(envelope, separators=(",", ":")).encode()
    assert body.count(b'"timestamp"') == 41
    event = verify_webhook(body, body_scheme_free(body, NOW_MS), SECRET, clock=clock_at(NOW_MS))
    assert event.timestamp == NOW_MS


def test_the_body_timestamp_is_found_first_in_the_body_too() -> None:
    # Python's dicts and other serialisers may put the timestamp before the data.
    data = sample_data("message.received") | {"history": [{"timestamp": n} for n in range(20)]}
    envelope = {"timestamp": NOW_MS, "event": "message.received", "data": data}
    body = json.dumps(envelope).encode()  # with spaces after the colons, as json.dumps writes
    event = verify_webhook(body, body_scheme_free(body, NOW_MS), SECRET, clock=clock_at(NOW_MS))
    assert event.timestamp == NOW_MS


def test_json_whitespace_around_the_colon_is_allowed() -> None:
    body = message_body().replace(b'"timestamp":', b'"timestamp" \n\t:\r\n ')
    assert b'"timestamp" \n\t:\r\n 1767225600000' in body
    event = verify_webhook(body, body_scheme_free(body, NOW_MS), SECRET, clock=clock_at(NOW_MS))
    assert event.timestamp == NOW_MS


def test_a_timestamp_written_in_a_string_is_not_a_candidate() -> None:
    # Text quoting a key is escaped in JSON (\"timestamp\"): it cannot pass for the real one.
    decoy = 'look: "timestamp": 5, "timestamp":6'
    body = message_body(note=decoy)
    assert b'\\"timestamp\\": 5' in body
    signature = body_scheme_free(body, NOW_MS)
    assert verify_webhook(body, signature, SECRET, clock=clock_at(NOW_MS)).timestamp == NOW_MS
    forged = body_scheme_free(body, 5)
    with pytest.raises(SignatureVerificationError, match="does not match"):
        verify_webhook(body, forged, SECRET, tolerance=None)


def test_a_signed_nested_timestamp_is_what_the_hmac_decides() -> None:
    # Whichever candidate the sender signed is the one the window judges: the HMAC decides.
    body = message_body(meta={"timestamp": NOW_MS - 3_600_000})
    signature = body_scheme_free(body, NOW_MS - 3_600_000)
    with pytest.raises(StaleDeliveryError, match="3600 s old"):
        verify_webhook(body, signature, SECRET, clock=clock_at(NOW_MS))


def test_candidates_are_bounded_from_both_ends() -> None:
    # Eight keys at most: four from each end. A real timestamp in the middle of more is not
    # found without the header; with it, the delivery verifies.
    before = [{"timestamp": n} for n in range(6)]
    after = [{"timestamp": n} for n in range(100, 106)]
    data = sample_data("receipt.read") | {"before": before}
    envelope = {"event": "receipt.read", "data": data, "timestamp": NOW_MS, "after": after}
    body = json.dumps(envelope).encode()
    signature = body_scheme_free(body, NOW_MS)
    with pytest.raises(SignatureVerificationError, match="8 timestamp"):
        verify_webhook(body, signature, SECRET, tolerance=None)
    event = verify_webhook(body, signature, SECRET, timestamp=NOW_MS, clock=clock_at(NOW_MS))
    assert event.timestamp == NOW_MS


def test_repeated_values_are_tried_once() -> None:
    decoys = [{"timestamp": 7} for _ in range(10)]
    body = message_body(decoys=decoys)
    with pytest.raises(SignatureVerificationError, match="with 2 timestamp"):
        verify_webhook(body, "ab" * 32, SECRET)


def test_a_huge_run_of_digits_is_no_candidate_and_costs_a_glance() -> None:
    body = message_body(junk=1)[:-1] + b',"timestamp":' + b"9" * 1_000_000 + b"}"
    with pytest.raises(SignatureVerificationError, match="does not match"):
        verify_webhook(body, "ab" * 32, SECRET)
    # The real timestamp still counts; the run of digits is simply not a candidate.
    signature = body_scheme_free(body, NOW_MS)
    with pytest.raises(InvalidPayloadError):  # authentic: then the JSON number is too big
        verify_webhook(body, signature, SECRET, tolerance=None)


def test_without_any_timestamp_only_the_body_scheme_is_tried() -> None:
    body = b'{"event":"chat.renamed","data":{}}'
    with pytest.raises(SignatureVerificationError, match="no timestamp in the body"):
        verify_webhook(body, sign_webhook(SECRET, 1, body), SECRET)


@pytest.mark.parametrize("prefix", [b"[" * 100_000, b"{" * 100_000, b'{"a":' * 50_000])
def test_deep_unauthenticated_bodies_are_refused_without_parsing(prefix: bytes) -> None:
    with pytest.raises(SignatureVerificationError, match="does not match"):
        verify_webhook(prefix, "0" * 64, SECRET)


# --- authenticate and check_window, the steps the receiver takes ---------------------------------


def test_authenticate_says_which_secret_scheme_and_timestamp() -> None:
    delivery = build_delivery("reaction.added", secret="whsec_b", timestamp=NOW_MS)
    secrets = ["whsec_a", "whsec_b"]
    found = authenticate(delivery.body, delivery.signature, secrets, timestamp=NOW_MS)
    assert found == Authenticated(secret_index=1, scheme="timestamped", timestamp=NOW_MS)
    assert authenticate(delivery.body, delivery.signature, secrets).timestamp == NOW_MS
    body_signed = sign_webhook("whsec_a", None, delivery.body, scheme="body")
    assert authenticate(delivery.body, body_signed, secrets) == Authenticated(0, "body", None)


def test_authenticate_parses_nothing() -> None:
    # Any bytes may be authenticated: decoding them is the next step, not this one.
    body = b"\xff not json [[["
    found = authenticate(body, sign_webhook(SECRET, 12, body), SECRET, timestamp="12")
    assert found == Authenticated(0, "timestamped", 12)


def test_check_window_accepts_inside_and_refuses_outside() -> None:
    check_window(NOW_MS, 300, clock_at(NOW_MS + 300_000))
    check_window(NOW_MS, None, clock_at(0))
    with pytest.raises(StaleDeliveryError, match="301 s old"):
        check_window(NOW_MS, 300, clock_at(NOW_MS + 301_000))
    with pytest.raises(StaleDeliveryError, match="in the future"):
        check_window(10**40, 300, clock_at(NOW_MS))


def test_a_stale_delivery_is_a_signature_error_of_its_own_kind() -> None:
    assert issubclass(StaleDeliveryError, SignatureVerificationError)
    delivery = build_delivery("message.received", secret=SECRET, timestamp=NOW_MS)
    with pytest.raises(StaleDeliveryError):
        verify_webhook(delivery.body, delivery.signature, SECRET, clock=clock_at(NOW_MS + 400_000))


def test_a_timestamp_in_seconds_is_named_as_such() -> None:
    seconds = NOW_MS // 1000
    delivery = build_delivery("message.received", secret=SECRET, timestamp=seconds)
    with pytest.raises(StaleDeliveryError) as caught:
        verify_webhook(
            delivery.body, delivery.signature, SECRET, timestamp=seconds, clock=clock_at(NOW_MS)
        )
    message = str(caught.value)
    assert "looks like unix seconds" in message
    assert "Messages.dev timestamps are unix milliseconds" in message
    assert f"{seconds} looks like" in message
    assert " s old" not in message


def test_a_millisecond_timestamp_gets_no_seconds_hint() -> None:
    with pytest.raises(StaleDeliveryError) as caught:
        check_window(NOW_MS - 3_600_000, 300, clock_at(NOW_MS))
    assert "seconds" not in str(caught.value)


# --- bodies that are not Unicode, once authenticated ----------------------------------------------


@pytest.mark.parametrize(
    "bad", [b"\xff", b"\xed\xa0\x80", b"\\ud800", b"\\udfff"], ids=["ff", "raw", "high", "low"]
)
@pytest.mark.parametrize("where", ["text", "unknown field"])
def test_authentic_bodies_that_are_not_unicode_are_invalid_payloads(bad: bytes, where: str) -> None:
    if where == "text":
        body = message_body().replace(b'"text":"', b'"text":"' + bad)
    else:
        body = message_body()[:-1] + b',"note":"' + bad + b'"}'
    for timestamp in (NOW_MS, None):
        with pytest.raises(InvalidPayloadError):
            verify_webhook(
                body,
                sign_webhook(SECRET, NOW_MS, body),
                SECRET,
                timestamp=timestamp,
                clock=clock_at(NOW_MS),
            )
    receiver = WebhookReceiver(secret=SECRET, router=WebhookRouter(), clock=clock_at(NOW_MS))
    headers = {"X-Webhook-Signature": sign_webhook(SECRET, NOW_MS, body)}
    response = receiver.handle("POST", headers, body)
    assert response.status == 400
    assert response.json()["error"] == "invalid_payload"


# --- a small thread stack: a gunicorn gthread worker's --------------------------------------------

STACK_SCRIPT = r"""
import json, sys, threading
from messages_integrations import (
    InvalidPayloadError, SignatureVerificationError, WebhookReceiver, WebhookRouter,
    parse_event, sign_webhook, verify_webhook,
)

SECRET = "whsec_stack"
deep = b"[" * 100_000 + b"]" * 100_000
known = (
    b'{"event":"receipt.read","data":{"id":"r","chat_id":"c","handle":"h","last_read_at":1},'
    b'"timestamp":1,"deep":' + deep + b"}"
)
unknown = b'{"event":"chat.renamed","data":{"deep":' + deep + b'},"timestamp":1}'
# Shapes that make a decoder skip a value to find or check the event name.
again = b'{"event":"receipt.read","event":' + deep + b',"timestamp":1}'
later = b'{"deep":' + deep + b',"event":"receipt.read","timestamp":1}'
not_a_name = b'{"event":' + deep + b',"timestamp":1}'
cases = {
    "open brackets, wrong signature": (b"[" * 100_000, "ab" * 32, None),
    "open braces, wrong signature": (b'{"a":' * 100_000, "ab" * 32, None),
    "deep known event, signed": (known, sign_webhook(SECRET, 1, known), None),
    "deep known event, header": (known, sign_webhook(SECRET, 1, known), "1"),
    "deep unknown event, signed": (
        unknown, sign_webhook(SECRET, None, unknown, scheme="body"), None
    ),
    "deep second event key": (again, sign_webhook(SECRET, 1, again), "1"),
    "deep value before the event key": (later, sign_webhook(SECRET, 1, later), "1"),
    "deep event name": (not_a_name, sign_webhook(SECRET, 1, not_a_name), "1"),
}
results = {}

def run():
    receiver = WebhookReceiver(secret=SECRET, router=WebhookRouter(), tolerance=None)
    for name, (body, signature, timestamp) in cases.items():
        try:
            verify_webhook(body, signature, SECRET, timestamp=timestamp, tolerance=None)
            outcome = "verified"
        except SignatureVerificationError:
            outcome = "SignatureVerificationError"
        except InvalidPayloadError:
            outcome = "InvalidPayloadError"
        headers = {"X-Webhook-Signature": signature}
        if timestamp is not None:
            headers["X-Webhook-Timestamp"] = timestamp
        status = receiver.handle("POST", headers, body).status
        try:
            parse_event(body)
            parsed = "parsed"
        except InvalidPayloadError:
            parsed = "InvalidPayloadError"
        results[name] = [outcome, status, parsed]

threading.stack_size(512 * 1024)
worker = threading.Thread(target=run)
worker.start()
worker.join()
print(json.dumps(results))
"""


def test_deep_bodies_are_refused_on_a_512_kib_thread_stack() -> None:
    # A body of 100,000 nested "[" once made the standard library's JSON overflow a 1 MiB thread
    # stack and kill the worker process (Python 3.13). Nothing here may parse that deep.
    done = subprocess.run(
        [sys.executable, "-c", STACK_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-2000:]}"
    assert json.loads(done.stdout) == {
        "open brackets, wrong signature": [
            "SignatureVerificationError",
            401,
            "InvalidPayloadError",
        ],
        "open braces, wrong signature": ["SignatureVerificationError", 401, "InvalidPayloadError"],
        "deep known event, signed": ["InvalidPayloadError", 400, "InvalidPayloadError"],
        "deep known event, header": ["InvalidPayloadError", 400, "InvalidPayloadError"],
        "deep unknown event, signed": ["InvalidPayloadError", 400, "InvalidPayloadError"],
        "deep second event key": ["InvalidPayloadError", 400, "InvalidPayloadError"],
        "deep value before the event key": ["InvalidPayloadError", 400, "InvalidPayloadError"],
        "deep event name": ["InvalidPayloadError", 400, "InvalidPayloadError"],
    }
