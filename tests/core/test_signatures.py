"""verify_webhook and sign_webhook: both schemes, interop with the official SDK, refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from messages_integrations import (
    InvalidPayloadError,
    MessageReceived,
    ReactionAdded,
    ReactionRemoved,
    SignatureVerificationError,
    WebhookError,
    sign_webhook,
    verify_webhook,
)
from messages_integrations.testing import build_delivery
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
    secrets = ["whsec_line_a", "whsec_line_b", b"whsec_line_c"]
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
        (b'{"event": 5, "data": {}, "timestamp": 1}', "event: expected a string"),
        (b'{"event": "message.sent", "timestamp": 1}', "data: missing"),
        (b'{"event": "message.sent", "data": [], "timestamp": 1}', "data: expected an object"),
        (b'{"event": "message.sent", "data": {}}', "timestamp: missing"),
        (b'{"event": "message.sent", "data": {}, "timestamp": "1"}', "timestamp: expected"),
        (b'{"event": "x.y", "data": {}, "timestamp": 1, "delivery_id": 7}', "delivery_id"),
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
