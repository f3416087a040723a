"""parse_event and the typed events: shapes of PROTOCOL.md, unknown fields, clear errors."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

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
from messages_integrations.testing import sample_data

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
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.event = "reaction.removed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.data.type = "like"  # type: ignore[misc]
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
        ("sent_at", "1710000000000", "an integer"),
        ("sent_at", True, "an integer"),
        ("sent_at", 1.5, "an integer"),
        ("is_from_me", 0, "a boolean"),
        ("sender", None, "a string"),
        ("text", 5, "a string or null"),
        ("attachments", {}, "a list or null"),
        ("attachments", ["x"], "an object"),
    ],
)
def test_ill_typed_field_is_named(field: str, value: Any, expected: str) -> None:
    data = sample_data("message.received") | {field: value}
    with pytest.raises(InvalidPayloadError, match=rf"data\.{field}.*expected {expected}"):
        parse_event(envelope("message.received", data))


def test_ill_typed_attachment_field_names_its_position() -> None:
    data = sample_data("message.received")
    data["attachments"].append({"size": "big"})
    with pytest.raises(InvalidPayloadError, match=r"data\.attachments\[1\]\.size"):
        parse_event(envelope("message.received", data))


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
