"""Properties that hold for every input hypothesis can think of."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messages_integrations import (
    EVENT_NAMES,
    Attachment,
    Event,
    InvalidPayloadError,
    Message,
    Reaction,
    ReadReceipt,
    SignatureVerificationError,
    TypingIndicator,
    UnknownEvent,
    WebhookReceiver,
    WebhookRouter,
    parse_event,
    sign_webhook,
    verify_webhook,
)
from messages_integrations._events import MAX_DEPTH
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
    with contextlib.suppress(*DOCUMENTED):
        verify_webhook(body, signature, SECRET, timestamp=timestamp)


@given(st.text(max_size=2000), header_values)
def test_arbitrary_text_bodies_raise_only_the_documented_errors(body: str, signature: Any) -> None:
    with contextlib.suppress(*DOCUMENTED):
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


# --- the decoder ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.binary(max_size=3000))
def test_decoding_any_bytes_gives_an_event_or_an_invalid_payload(body: bytes) -> None:
    with contextlib.suppress(InvalidPayloadError):
        assert isinstance(parse_event(body), Event)


#: Every field name the data types declare: an "unknown" field must not be one of them.
_DECLARED = frozenset(
    field.encode_name
    for kind in (Message, Attachment, Reaction, TypingIndicator, ReadReceipt)
    for field in msgspec.structs.fields(kind)
)


@given(
    st.sampled_from(EVENT_NAMES),
    st.dictionaries(st.text().filter(lambda key: key not in _DECLARED), json_values, max_size=5),
    json_values,
)
def test_unknown_fields_never_reject_a_known_event(
    name: str, extra_data: dict[str, Any], extra_top: Any
) -> None:
    data = {**extra_data, **sample_data(name)}
    envelope = {"event": name, "data": data, "timestamp": WHEN, "zz_extra": extra_top}
    body = json.dumps(envelope, ensure_ascii=False).encode()
    event = parse_event(body)
    assert event.event == name
    assert event.raw == json.loads(body)


@given(st.text(min_size=1, max_size=30).filter(lambda name: name not in EVENT_NAMES), json_values)
def test_any_unknown_event_name_gives_an_unknown_event(name: str, data: Any) -> None:
    envelope = {"event": name, "data": {"value": data}, "timestamp": WHEN}
    event = parse_event(json.dumps(envelope).encode())
    assert isinstance(event, UnknownEvent)
    assert event.event == name
    assert event.data == {"value": data}


@given(st.sampled_from(EVENT_NAMES), st.integers(min_value=0, max_value=2**52))
def test_an_integral_float_decodes_as_its_int(name: str, timestamp: int) -> None:
    as_int = json.dumps({"event": name, "data": sample_data(name), "timestamp": timestamp})
    as_float = as_int.replace(f'"timestamp": {timestamp}', f'"timestamp": {timestamp}.0')
    assert as_float != as_int
    assert parse_event(as_float.encode()) == parse_event(as_int.encode())


@given(st.integers(min_value=2, max_value=3 * MAX_DEPTH))
def test_nesting_is_accepted_exactly_up_to_the_limit(depth: int) -> None:
    nest = depth - 1  # the envelope is the first level
    body = b'{"event":"x.y","data":{},"timestamp":1,"deep":' + b"[" * nest + b"]" * nest + b"}"
    if depth <= MAX_DEPTH:
        assert isinstance(parse_event(body), UnknownEvent)
    else:
        with contextlib.suppress(InvalidPayloadError):
            parse_event(body)
            raise AssertionError(f"a body nested {depth} deep was accepted")


@given(
    deliveries,
    st.lists(st.integers(min_value=0, max_value=10**13), max_size=3),
    st.sampled_from(["", " ", "\n\t ", "\r\n"]),
)
def test_the_signed_body_timestamp_is_found_among_decoys(
    delivery: Any, decoys: list[int], space: str
) -> None:
    envelope = delivery.json()
    envelope["data"]["decoys"] = [{"timestamp": decoy} for decoy in decoys]
    body = json.dumps(envelope, separators=(",", f"{space}:{space}"), ensure_ascii=False).encode()
    signature = sign_webhook(SECRET, delivery.timestamp, body)
    event = verify_webhook(body, signature, SECRET, tolerance=None)
    assert event.timestamp == delivery.timestamp
