"""Typed, immutable Messages.dev events, and the parser that builds them from a delivery's body.

Field names are the wire's snake_case names. Fields a known payload always carries are required;
those newer deliveries add are optional. Unknown extra fields never cause a rejection: the whole
body stays reachable as ``event.raw``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Generic, TypeVar

from ._errors import InvalidPayloadError

__all__ = [
    "EVENT_NAMES",
    "Attachment",
    "Event",
    "Message",
    "MessageReceived",
    "MessageSent",
    "Reaction",
    "ReactionAdded",
    "ReactionRemoved",
    "ReadReceipt",
    "ReceiptRead",
    "TypingIndicator",
    "TypingStarted",
    "TypingStopped",
    "UnknownEvent",
    "parse_event",
]

EVENT_NAMES: Final = (
    "message.received",
    "message.sent",
    "reaction.added",
    "reaction.removed",
    "typing.started",
    "typing.stopped",
    "receipt.read",
)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file attached to a message; every field may be null on the wire."""

    filename: str | None = None
    mime_type: str | None = None
    size: int | None = None
    url: str | None = None
    transcription: str | None = None  # set on voice memos


@dataclass(frozen=True, slots=True)
class Message:
    """The ``data`` of ``message.received`` and ``message.sent``."""

    id: str
    chat_id: str
    sender: str
    is_from_me: bool
    sent_at: int
    object: str | None = None
    guid: str | None = None
    text: str | None = None
    attachments: tuple[Attachment, ...] = ()
    is_audio_message: bool | None = None
    reply_to_guid: str | None = None
    line_handle: str | None = None
    line_id: str | None = None
    synced_at: int | None = None
    service: str | None = None


@dataclass(frozen=True, slots=True)
class Reaction:
    """The ``data`` of ``reaction.added`` and ``reaction.removed``; ``type`` is the tapback name."""

    id: str
    message_id: str
    chat_id: str
    type: str
    sender: str
    is_from_me: bool
    added: bool
    sent_at: int
    line_handle: str | None = None


@dataclass(frozen=True, slots=True)
class TypingIndicator:
    """The ``data`` of ``typing.started`` and ``typing.stopped``."""

    id: str
    chat_id: str
    handle: str
    is_typing: bool
    updated_at: int | None = None
    line_handle: str | None = None


@dataclass(frozen=True, slots=True)
class ReadReceipt:
    """The ``data`` of ``receipt.read``."""

    id: str
    chat_id: str
    handle: str
    last_read_at: int
    synced_at: int | None = None
    line_handle: str | None = None


DataT = TypeVar("DataT", covariant=True)


@dataclass(frozen=True, slots=True)
class Event(Generic[DataT]):
    """A verified (or parsed) delivery: its name, typed ``data``, timestamp and delivery id."""

    event: str
    data: DataT
    timestamp: int  # unix milliseconds
    delivery_id: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    name: ClassVar[str | None] = None  # the event name a subclass stands for


class MessageReceived(Event[Message]):
    """A new incoming message on the line."""

    __slots__ = ()
    name = "message.received"


class MessageSent(Event[Message]):
    """An outgoing message was delivered."""

    __slots__ = ()
    name = "message.sent"


class ReactionAdded(Event[Reaction]):
    """A reaction (tapback) was added to a message."""

    __slots__ = ()
    name = "reaction.added"


class ReactionRemoved(Event[Reaction]):
    """A reaction (tapback) was removed from a message."""

    __slots__ = ()
    name = "reaction.removed"


class TypingStarted(Event[TypingIndicator]):
    """Someone started typing in a chat."""

    __slots__ = ()
    name = "typing.started"


class TypingStopped(Event[TypingIndicator]):
    """Someone stopped typing in a chat."""

    __slots__ = ()
    name = "typing.stopped"


class ReceiptRead(Event[ReadReceipt]):
    """A read receipt was received."""

    __slots__ = ()
    name = "receipt.read"


class UnknownEvent(Event[dict[str, Any]]):
    """An event name this version does not know yet; ``data`` is the raw dict."""

    __slots__ = ()


# --- validation -------------------------------------------------------------------------------

_Check = Callable[[Any], bool]


def _is_str(value: Any) -> bool:
    return type(value) is str


def _is_int(value: Any) -> bool:
    return type(value) is int  # bool is an int subclass, and is refused here


def _is_bool(value: Any) -> bool:
    return type(value) is bool


def _nullable(check: _Check) -> _Check:
    return lambda value: value is None or check(value)


_KINDS: Final[dict[_Check, str]] = {
    _is_str: "a string",
    _is_int: "an integer",
    _is_bool: "a boolean",
}


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    check: _Check
    expected: str
    required: bool


def _fields(required: dict[str, _Check], optional: dict[str, _Check]) -> tuple[_Field, ...]:
    specs = [_Field(name, check, _KINDS[check], True) for name, check in required.items()]
    specs += [
        _Field(name, _nullable(check), _KINDS[check] + " or null", False)
        for name, check in optional.items()
    ]
    return tuple(specs)


def _wrong(path: str, expected: str, value: Any) -> InvalidPayloadError:
    got = "null" if value is None else type(value).__name__
    return InvalidPayloadError(f"{path}: expected {expected}, got {got}")


def _read_fields(obj: dict[str, Any], specs: tuple[_Field, ...], path: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.name in obj:
            value = obj[spec.name]
            if not spec.check(value):
                raise _wrong(f"{path}.{spec.name}", spec.expected, value)
            values[spec.name] = value
        elif spec.required:
            raise InvalidPayloadError(f"{path}.{spec.name}: missing required field")
    return values


_ATTACHMENT_FIELDS = _fields(
    {},
    {
        "filename": _is_str,
        "mime_type": _is_str,
        "size": _is_int,
        "url": _is_str,
        "transcription": _is_str,
    },
)
_MESSAGE_FIELDS = _fields(
    {
        "id": _is_str,
        "chat_id": _is_str,
        "sender": _is_str,
        "is_from_me": _is_bool,
        "sent_at": _is_int,
    },
    {
        "object": _is_str,
        "guid": _is_str,
        "text": _is_str,
        "is_audio_message": _is_bool,
        "reply_to_guid": _is_str,
        "line_handle": _is_str,
        "line_id": _is_str,
        "synced_at": _is_int,
        "service": _is_str,
    },
)
_REACTION_FIELDS = _fields(
    {
        "id": _is_str,
        "message_id": _is_str,
        "chat_id": _is_str,
        "type": _is_str,
        "sender": _is_str,
        "is_from_me": _is_bool,
        "sent_at": _is_int,
    },
    {"added": _is_bool, "line_handle": _is_str},
)
_TYPING_FIELDS = _fields(
    {"id": _is_str, "chat_id": _is_str, "handle": _is_str},
    {"is_typing": _is_bool, "updated_at": _is_int, "line_handle": _is_str},
)
_RECEIPT_FIELDS = _fields(
    {"id": _is_str, "chat_id": _is_str, "handle": _is_str, "last_read_at": _is_int},
    {"synced_at": _is_int, "line_handle": _is_str},
)


def _attachments(value: Any) -> tuple[Attachment, ...]:
    if value is None:
        return ()
    if type(value) is not list:
        raise _wrong("data.attachments", "a list or null", value)
    out = []
    for position, item in enumerate(value):
        path = f"data.attachments[{position}]"
        if type(item) is not dict:
            raise _wrong(path, "an object", item)
        out.append(Attachment(**_read_fields(item, _ATTACHMENT_FIELDS, path)))
    return tuple(out)


def _message(data: dict[str, Any], _name: str) -> Message:
    values = _read_fields(data, _MESSAGE_FIELDS, "data")
    return Message(**values, attachments=_attachments(data.get("attachments")))


def _reaction(data: dict[str, Any], name: str) -> Reaction:
    values = _read_fields(data, _REACTION_FIELDS, "data")
    # Older payloads may omit "added"; the event name says it all the same.
    if values.get("added") is None:
        values["added"] = name == "reaction.added"
    return Reaction(**values)


def _typing(data: dict[str, Any], name: str) -> TypingIndicator:
    values = _read_fields(data, _TYPING_FIELDS, "data")
    if values.get("is_typing") is None:
        values["is_typing"] = name == "typing.started"
    return TypingIndicator(**values)


def _receipt(data: dict[str, Any], _name: str) -> ReadReceipt:
    return ReadReceipt(**_read_fields(data, _RECEIPT_FIELDS, "data"))


_KNOWN: Final[dict[str, tuple[type[Event[Any]], Callable[[dict[str, Any], str], Any]]]] = {
    "message.received": (MessageReceived, _message),
    "message.sent": (MessageSent, _message),
    "reaction.added": (ReactionAdded, _reaction),
    "reaction.removed": (ReactionRemoved, _reaction),
    "typing.started": (TypingStarted, _typing),
    "typing.stopped": (TypingStopped, _typing),
    "receipt.read": (ReceiptRead, _receipt),
}
assert tuple(_KNOWN) == EVENT_NAMES


@dataclass(frozen=True, slots=True)
class Envelope:
    """A body whose envelope fields are checked; ``build`` types its ``data``."""

    name: str
    data: dict[str, Any]
    timestamp: int
    delivery_id: str | None
    raw: dict[str, Any]

    def build(self) -> Event[Any]:
        """Return the typed event, raising :class:`InvalidPayloadError` naming a bad field."""
        known = _KNOWN.get(self.name)
        if known is None:
            return UnknownEvent(self.name, self.data, self.timestamp, self.delivery_id, self.raw)
        cls, parse_data = known
        return cls(
            self.name, parse_data(self.data, self.name), self.timestamp, self.delivery_id, self.raw
        )


def _load(body: bytes | bytearray | memoryview | str) -> Any:
    try:
        return json.loads(bytes(body) if isinstance(body, memoryview) else body)
    except UnicodeError:
        raise InvalidPayloadError("body is not valid UTF-8") from None
    except RecursionError:
        raise InvalidPayloadError("body is nested too deeply") from None
    except ValueError as exc:
        raise InvalidPayloadError(f"body is not valid JSON ({exc.__class__.__name__})") from None


def parse_envelope(body: bytes | bytearray | memoryview | str | Mapping[str, Any]) -> Envelope:
    """Check the envelope (``event``, ``data``, ``timestamp``, ``delivery_id``) of a body."""
    document = dict(body) if isinstance(body, Mapping) else _load(body)
    if type(document) is not dict:
        raise InvalidPayloadError("body is not a JSON object")
    name = document.get("event")
    if type(name) is not str:
        raise _missing_or_wrong(document, "event", "a string")
    data = document.get("data")
    if type(data) is not dict:
        raise _missing_or_wrong(document, "data", "an object")
    timestamp = document.get("timestamp")
    if type(timestamp) is not int:
        raise _missing_or_wrong(document, "timestamp", "an integer (unix milliseconds)")
    delivery_id = document.get("delivery_id")
    if delivery_id is not None and type(delivery_id) is not str:
        raise _wrong("delivery_id", "a string or null", delivery_id)
    return Envelope(name, data, timestamp, delivery_id, document)


def _missing_or_wrong(document: dict[str, Any], key: str, expected: str) -> InvalidPayloadError:
    if key not in document:
        return InvalidPayloadError(f"{key}: missing required field")
    return _wrong(key, expected, document[key])


def parse_event(body: bytes | str | Mapping[str, Any]) -> Event[Any]:
    """Parse a delivery's body into a typed event **without** verifying it.

    Use :func:`verify_webhook` for anything that arrives over the network.
    """
    return parse_envelope(body).build()
