"""Properties that hold for every input hypothesis can think of."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messages_integrations import (
    EVENT_NAMES,
    InvalidPayloadError,
    SignatureVerificationError,
    WebhookReceiver,
    WebhookRouter,
    sign_webhook,
    verify_webhook,
)
from messages_integrations._signing import Secrets
from messages_integrations.testing import build_delivery, sample_data

SECRET = "whsec_property_secret"
WHEN = 1_767_225_600_000
DOCUMENTED = (SignatureVerificationError, InvalidPayloadError)

deliveries = st.builds(
    lambda name, text, ts, did: build_delivery(
        name,
        sample_data(name) | ({"text": text} if name.startswith("message.") else {}),
        secret=SECRET,
        timestamp=ts,
        delivery_id=did,
    ),
    st.sampled_from(EVENT_NAMES),
    st.text(),
    st.integers(min_value=0, max_value=10**15),
    st.text(min_size=1, max_size=60),
)


def flip(data: bytes, position: int, xor: int) -> bytes:
    mutable = bytearray(data)
    mutable[position % len(mutable)] ^= xor
    return bytes(mutable)


@given(deliveries, st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_changing_any_byte_of_the_body_is_rejected(delivery: Any, position: int, xor: int) -> None:
    tampered = flip(delivery.body, position, xor)
    try:
        verify_webhook(
            tampered, delivery.signature, SECRET, timestamp=delivery.timestamp, tolerance=None
        )
    except DOCUMENTED:
        return
    raise AssertionError("a tampered body verified")


@given(deliveries, st.integers(min_value=0, max_value=63), st.sampled_from("0123456789abcdef"))
def test_changing_any_character_of_the_signature_is_rejected(
    delivery: Any, position: int, replacement: str
) -> None:
    signature = delivery.signature
    changed = signature[:position] + replacement + signature[position + 1 :]
    if changed == signature:
        return
    try:
        verify_webhook(delivery.body, changed, SECRET, timestamp=delivery.timestamp, tolerance=None)
    except SignatureVerificationError:
        return
    raise AssertionError("a tampered signature verified")


@given(deliveries, st.integers(min_value=-(10**6), max_value=10**6).filter(bool))
def test_changing_the_timestamp_is_rejected(delivery: Any, delta: int) -> None:
    timestamp = delivery.timestamp + delta
    if timestamp < 0:
        return
    try:
        verify_webhook(
            delivery.body, delivery.signature, SECRET, timestamp=timestamp, tolerance=None
        )
    except SignatureVerificationError:
        return
    raise AssertionError("a changed timestamp verified")


@given(deliveries)
def test_every_built_delivery_round_trips(delivery: Any) -> None:
    event = verify_webhook(
        delivery.body,
        delivery.headers["X-Webhook-Signature"],
        SECRET,
        timestamp=delivery.headers["X-Webhook-Timestamp"],
        tolerance=None,
    )
    assert event.event == delivery.event
    assert event.delivery_id == delivery.delivery_id
    assert event.timestamp == delivery.timestamp
    assert event.raw == delivery.json()
    assert event == delivery.parsed()


header_values = st.one_of(
    st.none(),
    st.text(max_size=200),
    st.binary(max_size=200),
    st.integers(),
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)


@given(st.binary(max_size=2000), header_values, header_values)
def test_arbitrary_input_raises_only_the_documented_errors(
    body: bytes, signature: Any, timestamp: Any
) -> None:
    with contextlib.suppress(DOCUMENTED):
        verify_webhook(body, signature, SECRET, timestamp=timestamp)


@given(st.text(max_size=2000), header_values)
def test_arbitrary_text_bodies_raise_only_the_documented_errors(body: str, signature: Any) -> None:
    with contextlib.suppress(DOCUMENTED):
        verify_webhook(body, signature, SECRET, tolerance=None)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["POST", "GET", "post", "PUT"]),
    st.dictionaries(
        st.sampled_from(
            [
                "X-Webhook-Signature",
                "x-webhook-timestamp",
                "Content-Length",
                "X-Webhook-Delivery-Id",
                "X-Other",
            ]
        ),
        st.text(max_size=80),
    ),
    st.binary(max_size=3000),
)
def test_the_receiver_answers_any_request_with_a_json_refusal(
    method: str, headers: dict[str, str], body: bytes
) -> None:
    receiver = WebhookReceiver(secret=SECRET, router=WebhookRouter(), max_body_size=2048)
    response = receiver.handle(method, headers, body)
    assert response.status in {400, 401, 405, 413}
    assert isinstance(response.json(), dict)


@given(st.binary(min_size=1, max_size=200), st.binary(max_size=3000), st.integers(0, 10**13))
def test_precomputed_hmac_states_equal_the_standard_librarys_hmac_for_any_key(
    key: bytes, body: bytes, timestamp: int
) -> None:
    # The keyed HMAC states are precomputed per secret (RFC 2104); they must agree with hmac
    # for every key length, those longer than SHA-256's 64-byte block included.
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    assert Secrets([b"other", key]).digests(signed)[1] == expected
    assert Secrets([b"other", key]).match(expected, f"{timestamp}.".encode(), body) == 1
    assert sign_webhook(key, timestamp, body) == expected.hex()
