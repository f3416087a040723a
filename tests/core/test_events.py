"""parse_event and the typed events: shapes of PROTOCOL.md, unknown fields, clear errors."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import msgspec
import pytest

from messages_integrations import (
    EVENT_NAMES,
    Attachment,
    Event,
    InvalidPayloadError,
    Message,
    MessageReceived,
    MessageSent,
    Reaction,
    ReactionAdded,
    ReactionRemoved,
    ReadReceipt,
    ReceiptRead,
    TypingIndicator,
    TypingStarted,
    TypingStopped,
    UnknownEvent,
    parse_event,
)
from messages_integrations._events import MAX_DEPTH
from messages_integrations.testing import sample_data
from tests.conftest import load_vectors

SEED_BODY = """{
"event": "message.received",
"data": {
"object": "message",
"id": "msg_abc123",
"chat_id": "cht_def456",
"sender": "+15559876543",
"text": "Hey there!",
"is_from_me": false,
"sent_at": 1710000000000
},
"timestamp": 1710000000123
}"""


def envelope(name: str, data: Any, **extra: Any) -> dict[str, Any]:
    return {"event": name, "data": data, "timestamp": 1_710_000_000_123, **extra}


def test_event_names_are_the_seven_of_the_product_page_in_order() -> None:
    assert EVENT_NAMES == (
        "message.received",
        "message.sent",
        "reaction.added",
        "reaction.removed",
        "typing.started",
        "typing.stopped",
        "receipt.read",
    )


def test_seed_page_example_parses() -> None:
    event = parse_event(SEED_BODY)
    assert isinstance(event, MessageReceived)
    assert event.event == "message.received"
    assert event.timestamp == 1_710_000_000_123
    assert event.delivery_id is None
    assert event.data == Message(
        id="msg_abc123",
        chat_id="cht_def456",
        sender="+15559876543",
        is_from_me=False,
        sent_at=1_710_000_000_000,
        object="message",
        text="Hey there!",
    )


@pytest.mark.parametrize(
    ("name", "event_cls", "data_cls"),
    [
        ("message.received", MessageReceived, Message),
        ("message.sent", MessageSent, Message),
        ("reaction.added", ReactionAdded, Reaction),
        ("reaction.removed", ReactionRemoved, Reaction),
        ("typing.started", TypingStarted, TypingIndicator),
        ("typing.stopped", TypingStopped, TypingIndicator),
        ("receipt.read", ReceiptRead, ReadReceipt),
    ],
)
def test_each_event_parses_into_its_own_class(name: str, event_cls: type, data_cls: type) -> None:
    event = parse_event(envelope(name, sample_data(name), delivery_id="dlv_1"))
    assert type(event) is event_cls
    assert isinstance(event, Event)
    assert type(event.data) is data_cls
    assert event_cls.name == name
    assert event.delivery_id == "dlv_1"


def test_message_fields_use_the_wire_names() -> None:
    event = parse_event(envelope("message.received", sample_data("message.received")))
    assert isinstance(event, MessageReceived)
    assert event.data.chat_id == "cht_c9f0f895fb98ab9159f51fd0297e236d"
    assert event.data.attachments[0].mime_type == "image/heic"
    assert event.data.attachments[0] == Attachment(
        filename="IMG_4021.HEIC",
        mime_type="image/heic",
        size=184_233,
        url="https://files.messages.dev/f_45c48cce2e2d7fbdea1afc51c7c6ad26",
        transcription=None,
    )


def test_voice_memo_transcription_and_nullable_text() -> None:
    data = sample_data("message.received") | {
        "text": None,
        "is_audio_message": True,
        "attachments": [
            {
                "filename": None,
                "mime_type": "audio/x-m4a",
                "size": None,
                "url": None,
                "transcription": "running ten minutes late",
            }
        ],
    }
    event = parse_event(envelope("message.received", data))
    assert event.data.text is None
    assert event.data.is_audio_message is True
    assert event.data.attachments[0].transcription == "running ten minutes late"


def test_unknown_extra_fields_are_kept_in_raw_and_never_rejected() -> None:
    data = sample_data("reaction.added") | {"emoji": "❤️", "nested": {"a": [1, 2]}}
    body = envelope("reaction.added", data, api_version="2027-01-01")
    event = parse_event(json.dumps(body))
    assert event.raw["api_version"] == "2027-01-01"
    assert event.raw["data"]["emoji"] == "❤️"
    assert event.raw == body


def test_attachment_extra_fields_are_kept_in_raw() -> None:
    data = sample_data("message.received")
    data["attachments"][0]["width"] = 4032
    event = parse_event(envelope("message.received", data))
    assert event.raw["data"]["attachments"][0]["width"] == 4032


def test_unknown_event_name_gives_unknown_event_with_raw_data() -> None:
    body = envelope("chat.renamed", {"chat_id": "cht_1", "name": "Dinner"})
    event = parse_event(body)
    assert isinstance(event, UnknownEvent)
    assert event.event == "chat.renamed"
    assert event.data == {"chat_id": "cht_1", "name": "Dinner"}


def test_events_and_their_data_are_immutable() -> None:
    event = parse_event(envelope("reaction.added", sample_data("reaction.added")))
    with pytest.raises(AttributeError):
        event.event = "reaction.removed"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        event.timestamp = 0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        event.data.type = "like"
    message = parse_event(envelope("message.sent", sample_data("message.sent")))
    assert isinstance(message.data.attachments, tuple)


def test_events_compare_by_value_and_hash_their_data() -> None:
    first = parse_event(envelope("typing.started", sample_data("typing.started")))
    second = parse_event(envelope("typing.started", sample_data("typing.started")))
    assert first == second
    assert hash(first.data) == hash(second.data)


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("message.received", "id"),
        ("message.received", "chat_id"),
        ("message.received", "sender"),
        ("message.received", "is_from_me"),
        ("message.received", "sent_at"),
        ("reaction.added", "message_id"),
        ("reaction.removed", "type"),
        ("typing.started", "handle"),
        ("receipt.read", "last_read_at"),
    ],
)
def test_missing_required_field_is_named(name: str, field: str) -> None:
    data = sample_data(name)
    del data[field]
    with pytest.raises(InvalidPayloadError, match=rf"data\.{field}: missing required field"):
        parse_event(envelope(name, data))


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("sent_at", "1710000000000", "sent_at: expected int, got str"),
        ("sent_at", True, "sent_at: expected int, got bool"),
        ("sent_at", 1.5, "sent_at: expected int, got float"),
        ("is_from_me", 0, "is_from_me: expected bool, got int"),
        ("sender", None, "sender: expected str, got null"),
        ("text", 5, "text: expected str | null, got int"),
        ("attachments", {}, "attachments: expected array, got object"),
        ("attachments", ["x"], "attachments[0]: expected object, got str"),
    ],
)
@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes", "mapping"])
def test_ill_typed_field_is_named(field: str, value: Any, expected: str, as_bytes: bool) -> None:
    body = envelope("message.received", sample_data("message.received") | {field: value})
    with pytest.raises(InvalidPayloadError) as caught:
        parse_event(json.dumps(body).encode() if as_bytes else body)
    assert str(caught.value) == f"$.data.{expected}"


def test_ill_typed_attachment_field_names_its_position() -> None:
    data = sample_data("message.received")
    data["attachments"].append({"size": "big"})
    with pytest.raises(InvalidPayloadError) as caught:
        parse_event(json.dumps(envelope("message.received", data)).encode())
    assert str(caught.value) == "$.data.attachments[1].size: expected int | null, got str"


def test_reaction_without_added_takes_it_from_the_event_name() -> None:
    for name, added in [("reaction.added", True), ("reaction.removed", False)]:
        data = sample_data(name)
        del data["added"]
        assert parse_event(envelope(name, data)).data.added is added


def test_typing_without_is_typing_takes_it_from_the_event_name() -> None:
    for name, typing in [("typing.started", True), ("typing.stopped", False)]:
        data = sample_data(name)
        del data["is_typing"]
        assert parse_event(envelope(name, data)).data.is_typing is typing


def test_parse_event_accepts_bytes_str_and_mappings() -> None:
    body = envelope("receipt.read", sample_data("receipt.read"))
    as_bytes = parse_event(json.dumps(body).encode())
    assert as_bytes == parse_event(json.dumps(body)) == parse_event(body)


def test_sample_data_refuses_unknown_names_helpfully() -> None:
    with pytest.raises(ValueError, match="pass data="):
        sample_data("chat.renamed")


# --- one decoder, typed in one pass -----------------------------------------------------------


def encoded(name: str, data: Any, **extra: Any) -> bytes:
    return json.dumps(envelope(name, data, **extra), ensure_ascii=False).encode()


def test_events_are_generic_and_share_one_base() -> None:
    event: Event[Any] = parse_event(encoded("receipt.read", sample_data("receipt.read")))
    assert isinstance(event, Event)
    assert isinstance(event, ReceiptRead)
    assert Event[Any] is not None  # the annotation users write keeps working at run time
    assert UnknownEvent.name is None
    assert isinstance(parse_event(encoded("chat.renamed", {})), Event)


@pytest.mark.parametrize("vector", load_vectors(), ids=lambda vector: str(vector["event"]))
def test_official_sdk_bodies_decode_to_their_typed_events(vector: dict[str, Any]) -> None:
    event = parse_event(vector["body"].encode())
    body = json.loads(vector["body"])
    assert event.event == body["event"] == vector["event"]
    assert event.timestamp == body["timestamp"]
    assert event.delivery_id == body["delivery_id"]
    data = msgspec.structs.asdict(event.data)
    for field, value in body["data"].items():
        expected = value
        if field == "attachments":
            expected = tuple(Attachment(**item) for item in value)
        assert data[field] == expected, field
    assert event.raw == body


def test_integral_floats_are_accepted_for_integer_fields() -> None:
    # The official SDK's schemas say "number" for millisecond fields.
    data = sample_data("message.received") | {"sent_at": 1_710_000_000_000.0}
    data["attachments"][0]["size"] = 184_233.0
    body = encoded("message.received", data).replace(
        b'"timestamp": 1710000000123', b'"timestamp": 1710000000123.0'
    )
    assert b"1710000000123.0" in body
    event = parse_event(body)
    assert isinstance(event, MessageReceived)
    assert event.timestamp == 1_710_000_000_123
    assert type(event.timestamp) is int
    assert type(event.data.sent_at) is int
    assert event.data.sent_at == 1_710_000_000_000
    assert event.data.attachments[0].size == 184_233
    assert type(event.data.attachments[0].size) is int


def test_integral_float_timestamp_of_an_unknown_event_is_an_int() -> None:
    event = parse_event(
        b'{"event":"chat.renamed","data":{"weight":2.0},"timestamp":1710000000123.0}'
    )
    assert isinstance(event, UnknownEvent)
    assert event.timestamp == 1_710_000_000_123
    assert type(event.timestamp) is int
    assert event.data == {"weight": 2.0}  # unknown data is kept as sent
    assert type(event.data["weight"]) is float


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"event":"x.y","data":{},"timestamp":1710000000123.5}',
            "$.timestamp: expected int, got float",
        ),
        (
            b'{"event":"receipt.read","data":{"id":"r","chat_id":"c","handle":"h",'
            b'"last_read_at":1.5},"timestamp":1}',
            "$.data.last_read_at: expected int, got float",
        ),
    ],
)
def test_non_integral_floats_are_refused_naming_the_path(body: bytes, message: str) -> None:
    with pytest.raises(InvalidPayloadError) as caught:
        parse_event(body)
    assert str(caught.value) == message


def test_null_attachments_are_an_empty_tuple() -> None:
    data = sample_data("message.received") | {"attachments": None}
    assert parse_event(encoded("message.received", data)).data.attachments == ()
    del data["attachments"]
    assert parse_event(encoded("message.received", data)).data.attachments == ()


@pytest.mark.parametrize(
    ("name", "field", "implied"),
    [
        ("reaction.added", "added", True),
        ("reaction.removed", "added", False),
        ("typing.started", "is_typing", True),
        ("typing.stopped", "is_typing", False),
    ],
)
def test_a_null_implied_field_takes_it_from_the_event_name(
    name: str, field: str, implied: bool
) -> None:
    data = sample_data(name) | {field: None}
    assert getattr(parse_event(encoded(name, data)).data, field) is implied


def test_an_explicit_implied_field_wins_over_the_name() -> None:
    # Only an absent field is implied: what the payload says is kept.
    data = sample_data("reaction.added") | {"added": False}
    assert parse_event(encoded("reaction.added", data)).data.added is False


def test_unknown_fields_at_every_level_never_reject() -> None:
    data = sample_data("message.received") | {"reactions": [{"deep": [[[{"x": None}]]]}]}
    data["attachments"][0] |= {"width": 4032, "exif": {"iso": 100}}
    body = encoded("message.received", data, api_version="2027-01-01", trace=[1, 2.5, "x"])
    event = parse_event(body)
    assert isinstance(event, MessageReceived)
    assert event.raw["data"]["attachments"][0]["exif"] == {"iso": 100}
    assert event.raw == json.loads(body)


def test_raw_is_the_whole_body_and_the_same_dict_on_each_access() -> None:
    body = encoded("typing.started", sample_data("typing.started"), extra={"a": [1, 2]})
    event = parse_event(body)
    assert event.raw == json.loads(body)
    assert event.raw is event.raw


def test_raw_keeps_numbers_only_the_standard_library_reads() -> None:
    # A number beyond a double's range in an unknown field is skipped while typing; raw still
    # reads it, as json.loads does (infinity).
    body = encoded("receipt.read", sample_data("receipt.read"))[:-1] + b', "huge": 1e400}'
    event = parse_event(body)
    assert event.raw["huge"] == float("inf")


def test_raw_of_an_event_built_by_hand_spells_the_wire_names() -> None:
    event = ReceiptRead(
        data=ReadReceipt(id="rcp_1", chat_id="cht_1", handle="+1555", last_read_at=5),
        timestamp=7,
        delivery_id="dlv_1",
    )
    assert event.event == "receipt.read"
    assert event.raw["event"] == "receipt.read"
    assert event.raw["data"]["last_read_at"] == 5
    assert event.raw["timestamp"] == 7


def test_big_integers_in_unknown_fields_stay_exact() -> None:
    body = encoded("receipt.read", sample_data("receipt.read"), counter=2**70)
    assert parse_event(body).raw["counter"] == 2**70


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"event":"chat.renamed","data":{"name":"\xff"},"timestamp":1}', "not valid UTF-8"),
        (b'{"event":"receipt.read","extra":"\xc3","timestamp":1}', "not valid UTF-8"),
        # UTF-8's encoding of a UTF-16 surrogate, which Python's codec refuses too.
        (b'{"event":"chat.renamed","data":{"name":"\xed\xa0\x80"},"timestamp":1}', "UTF-8"),
        (b'{"event":"chat.renamed","data":{"name":"\\ud800"},"timestamp":1}', "surrogate"),
        (b'{"event":"chat.renamed","data":{"name":"\\udc00x"},"timestamp":1}', "not valid JSON"),
    ],
    ids=[
        "invalid byte",
        "truncated sequence",
        "surrogate bytes",
        "high surrogate",
        "low surrogate",
    ],
)
def test_bodies_that_are_not_unicode_are_invalid_payloads(body: bytes, message: str) -> None:
    with pytest.raises(InvalidPayloadError, match=message):
        parse_event(body)


@pytest.mark.parametrize("where", ["known field", "unknown field", "unknown key"])
@pytest.mark.parametrize(
    "bad", [b"\xff", b"\xed\xa0\x80", b"\\ud800", b"\\udfff"], ids=["ff", "raw", "high", "low"]
)
def test_not_unicode_anywhere_in_a_known_event_is_refused(where: str, bad: bytes) -> None:
    valid = encoded("receipt.read", sample_data("receipt.read"))
    if where == "known field":
        body = valid.replace(b'"handle": "', b'"handle": "' + bad)
    elif where == "unknown field":
        body = valid[:-1] + b', "note": "' + bad + b'"}'
    else:
        body = valid[:-1] + b', "' + bad + b'": 1}'
    assert body != valid
    with pytest.raises(InvalidPayloadError):
        parse_event(body)


def test_a_valid_surrogate_pair_escape_is_text() -> None:
    data = sample_data("message.received") | {"text": "🍝"}
    body = json.dumps(envelope("message.received", data)).encode()  # ensure_ascii: \ud83c\udf5d
    assert b"\\ud83c\\udf5d" in body
    assert parse_event(body).data.text == "🍝"


def test_a_str_with_a_lone_surrogate_is_an_invalid_payload() -> None:
    body = json.dumps(envelope("chat.renamed", {}), ensure_ascii=False)[:-1] + ', "x": "\ud800"}'
    with pytest.raises(InvalidPayloadError, match="UTF-8"):
        parse_event(body)


def nested(depth: int) -> bytes:
    """A receipt.read whose unknown field ``deep`` nests ``depth`` levels in all."""
    inner = depth - 1  # the envelope is the first level
    valid = encoded("receipt.read", sample_data("receipt.read"))
    return valid[:-1] + b', "deep": ' + b"[" * inner + b"]" * inner + b"}"


def test_nesting_up_to_the_limit_is_accepted() -> None:
    assert MAX_DEPTH == 64
    event = parse_event(nested(MAX_DEPTH))
    assert isinstance(event, ReceiptRead)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000, 200_000])
def test_nesting_past_the_limit_is_an_invalid_payload(depth: int) -> None:
    with pytest.raises(InvalidPayloadError, match="nested too deeply"):
        parse_event(nested(depth))


def test_nesting_past_the_limit_in_unknown_event_data_is_refused() -> None:
    deep = b"[" * 100 + b"]" * 100
    with pytest.raises(InvalidPayloadError, match="nested too deeply"):
        parse_event(b'{"event":"chat.renamed","data":{"x":' + deep + b'},"timestamp":1}')


def test_many_brackets_that_do_not_nest_are_accepted() -> None:
    # Many openers make the guard count precisely: siblings and brackets in text do not nest.
    data = sample_data("message.received") | {"text": "[{" * 5_000 + '"\\'}
    data["attachments"] = [{"filename": f"{n}.png"} for n in range(300)]
    event = parse_event(encoded("message.received", data, siblings=[[[]]] * 500))
    assert isinstance(event, MessageReceived)
    assert len(event.data.attachments) == 300
    assert event.data.text == "[{" * 5_000 + '"\\'


def test_deep_nesting_hidden_among_many_siblings_is_still_refused() -> None:
    siblings = b"[" + b",".join([b"{}"] * 200) + b"]"
    deep = b"[" * 80 + b"]" * 80
    body = nested(2)[:-1] + b', "many": ' + siblings + b', "deep2": ' + deep + b"}"
    with pytest.raises(InvalidPayloadError, match="nested too deeply"):
        parse_event(body)


def test_parse_event_refuses_other_types() -> None:
    with pytest.raises(TypeError, match="bytes, str or a mapping"):
        parse_event(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "duplicate",
    [lambda event: pickle.loads(pickle.dumps(event)), copy.copy, copy.deepcopy],  # noqa: S301
    ids=["pickle", "copy", "deepcopy"],
)
@pytest.mark.parametrize("source", ["bytes", "mapping"])
def test_pickles_and_copies_keep_raw_with_its_unknown_fields(duplicate: Any, source: str) -> None:
    body = envelope("reaction.added", sample_data("reaction.added"), api_version="2027-01-01")
    event = parse_event(json.dumps(body).encode() if source == "bytes" else body)
    again = duplicate(event)
    assert type(again) is ReactionAdded
    assert again == event
    assert again.raw == body


@pytest.mark.parametrize("size", [100, 8_191, 8_192, 8_193, 40_000])
@pytest.mark.parametrize("char", ["é", "中", "🍝"])
def test_long_non_ascii_text_is_valid_utf8_wherever_chunks_are_cut(size: int, char: str) -> None:
    # Long bodies are checked in chunks: no cut may split a character, nor hide a bad byte.
    text = "x" * (size % 7) + char * (size // len(char.encode()))
    data = sample_data("message.received") | {"text": text}
    body = encoded("message.received", data, note=text)
    assert parse_event(body).data.text == text
    for position in (len(body) // 2, len(body) - 40, 8_192, 16_384):
        if position >= len(body) or body[position] < 0x80:
            continue
        broken = body[:position] + b"\xff" + body[position + 1 :]
        with pytest.raises(InvalidPayloadError, match="UTF-8"):
            parse_event(broken)


def test_a_long_text_without_any_ascii_byte_is_valid_utf8() -> None:
    text = "中" * 300_000  # 900 KB without a single ASCII byte
    body = encoded("message.received", sample_data("message.received") | {"text": text})
    assert parse_event(body).data.text == text


@pytest.mark.parametrize(
    "body",
    [
        b'{"event":"receipt.read","event":' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        b'{"deep":' + b"[" * 5_000 + b"]" * 5_000 + b',"event":"receipt.read"}',
        b'{"event":' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        b'{"event":"receipt.read","data":{"x":' + b"{" * 5_000 + b"}" * 5_000 + b"}}",
    ],
    ids=["second event key", "before the event key", "event name", "unknown data field"],
)
def test_deep_values_where_a_decoder_would_skip_them_are_refused(body: bytes) -> None:
    with pytest.raises(InvalidPayloadError, match="nested too deeply"):
        parse_event(body)


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_key_order_spacing_and_unknown_fields_do_not_change_the_event(name: str) -> None:
    # The usual body (name first, no spaces, known fields) is decoded in one pass; any other is
    # decoded by the second path, which must agree.
    usual = {"event": name, "data": sample_data(name), "timestamp": 1, "delivery_id": "dlv_1"}
    compact = json.dumps(usual, separators=(",", ":"), ensure_ascii=False).encode()
    event = parse_event(compact)
    shuffled = {"timestamp": 1, "data": sample_data(name), "delivery_id": "dlv_1", "event": name}
    extra = usual | {"data": sample_data(name) | {"later": [1, {"x": None}]}, "api": "v2"}
    for other in (
        json.dumps(usual).encode(),
        json.dumps(usual, indent=2).encode(),
        json.dumps(shuffled).encode(),
        json.dumps(extra).encode(),
        b" \n" + compact,
        compact.replace(name.encode(), f"\\u{ord(name[0]):04x}{name[1:]}".encode(), 1),
    ):
        assert parse_event(other) == event


def test_an_escaped_event_name_is_the_same_name() -> None:
    body = encoded("receipt.read", sample_data("receipt.read")).replace(
        b'"receipt.read"', b'"receipt\\u002eread"', 1
    )
    assert b"\\u002e" in body
    assert isinstance(parse_event(body), ReceiptRead)


def test_events_built_by_hand_have_their_name() -> None:
    data = ReadReceipt(id="rcp_1", chat_id="cht_1", handle="+1555", last_read_at=5)
    event = ReceiptRead(data, 7, "dlv_1")
    assert event.event == "receipt.read"
    assert event == parse_event(
        {
            "event": "receipt.read",
            "data": msgspec.to_builtins(data),
            "timestamp": 7,
            "delivery_id": "dlv_1",
        }
    )


@pytest.mark.parametrize("name", ["message.sentinel", "receipt.readable", "typing.startedX"])
def test_a_name_that_starts_like_a_known_one_is_unknown(name: str) -> None:
    body = json.dumps({"event": name, "data": {"a": 1}, "timestamp": 1}, separators=(",", ":"))
    event = parse_event(body.encode())
    assert isinstance(event, UnknownEvent)
    assert event.event == name


def test_a_body_without_a_name_is_refused_whatever_its_first_bytes() -> None:
    # The first bytes of a body pick a decoder only when they are the "event" key itself.
    body = b'{"events":"message.sent","data":{},"timestamp":1}'
    with pytest.raises(InvalidPayloadError, match=r"^\$\.event: missing required field$"):
        parse_event(body)
