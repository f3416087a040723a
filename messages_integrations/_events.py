"""Typed, immutable Messages.dev events, and the decoder that builds them from a delivery's body.

The classes below are the single source of truth: frozen ``msgspec`` Structs whose field names are
the wire's snake_case names, decoded in one pass by the class the ``event`` key names.
Fields a known payload always carries are required; those newer deliveries add are optional.
Unknown extra fields never cause a rejection, and the whole body stays reachable as ``event.raw``.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from itertools import accumulate
from typing import Any, ClassVar, Final, Generic, Literal, Self, TypeVar

import msgspec

from ._errors import InvalidPayloadError

__all__ = [
    "EVENT_NAMES",
    "MAX_DEPTH",
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
    "decode_event",
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


# Decoding, these classes refuse a field they do not declare. A body made of declared fields only
# (every delivery the product sends today) is then checked whole by msgspec's one pass: each of
# its strings decoded, so valid UTF-8, and its nesting bounded by the classes. Any other body
# takes a second path that keeps the declared fields only: unknown fields never reject a body.
# The data classes hold only strings, numbers and tuples of each other, so they can never be part
# of a reference cycle: ``gc=False`` spares the garbage collector from tracking them.
class Attachment(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """A file attached to a message; every field may be null on the wire."""

    filename: str | None = None
    mime_type: str | None = None
    size: int | None = None
    url: str | None = None
    transcription: str | None = None  # set on voice memos


class Message(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
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


class Reaction(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
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


class TypingIndicator(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """The ``data`` of ``typing.started`` and ``typing.stopped``."""

    id: str
    chat_id: str
    handle: str
    is_typing: bool
    updated_at: int | None = None
    line_handle: str | None = None


class ReadReceipt(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """The ``data`` of ``receipt.read``."""

    id: str
    chat_id: str
    handle: str
    last_read_at: int
    synced_at: int | None = None
    line_handle: str | None = None


DataT = TypeVar("DataT", covariant=True)


# ``dict=True`` gives each event a private ``__dict__`` beside its fields: it keeps the body the
# event was decoded from, so that ``raw`` is decoded only when someone asks for it.
class Event(msgspec.Struct, Generic[DataT], frozen=True, dict=True, forbid_unknown_fields=True):
    """A verified (or parsed) delivery: its name, typed ``data``, timestamp and delivery id."""

    data: DataT
    timestamp: int  # unix milliseconds
    delivery_id: str | None = None

    name: ClassVar[str | None] = None  # the event name a subclass stands for
    # What ``data`` takes when a field is absent or null, per event: old payloads may omit a
    # field the event's name implies (``added`` of a reaction, ``is_typing``).
    implied: ClassVar[Mapping[str, Any]] = {}

    @property
    def event(self) -> str:
        """The event's name, such as ``"reaction.added"``."""
        return self.name or ""

    @property
    def raw(self) -> dict[str, Any]:
        """The whole body as a dict, unknown fields included; decoded on first access."""
        state = self.__dict__
        cached: dict[str, Any] | None = state.get("_raw")
        if cached is None:
            source = state.get("_source")
            if isinstance(source, bytes):
                cached = _decode_raw(source)
            elif isinstance(source, dict):
                cached = source
            else:  # built by hand rather than decoded: the fields, as the wire spells them
                cached = msgspec.to_builtins(self)
            state["_raw"] = cached
        return cached

    def __reduce__(self) -> tuple[Any, ...]:
        # Carry the body along, so that ``raw`` survives a pickle or a copy with its unknown
        # fields (a task queue, a cache).
        fields = msgspec.structs.asdict(self)
        return (_restore, (type(self), fields, self.__dict__.get("_source")))

    def __copy__(self) -> Self:
        copied = msgspec.structs.replace(self)
        copied.__dict__.update(self.__dict__)
        return copied


def _restore(cls: type[Event[Any]], fields: dict[str, Any], source: object) -> Event[Any]:
    event = cls(**fields)
    if source is not None:
        event.__dict__["_source"] = source
    return event


class MessageReceived(Event[Message], frozen=True, kw_only=True):
    """A new incoming message on the line."""

    event: Literal["message.received"] = "message.received"
    name = "message.received"
    implied = {"attachments": ()}


class MessageSent(Event[Message], frozen=True, kw_only=True):
    """An outgoing message was delivered."""

    event: Literal["message.sent"] = "message.sent"
    name = "message.sent"
    implied = {"attachments": ()}


class ReactionAdded(Event[Reaction], frozen=True, kw_only=True):
    """A reaction (tapback) was added to a message."""

    event: Literal["reaction.added"] = "reaction.added"
    name = "reaction.added"
    implied = {"added": True}


class ReactionRemoved(Event[Reaction], frozen=True, kw_only=True):
    """A reaction (tapback) was removed from a message."""

    event: Literal["reaction.removed"] = "reaction.removed"
    name = "reaction.removed"
    implied = {"added": False}


class TypingStarted(Event[TypingIndicator], frozen=True, kw_only=True):
    """Someone started typing in a chat."""

    event: Literal["typing.started"] = "typing.started"
    name = "typing.started"
    implied = {"is_typing": True}


class TypingStopped(Event[TypingIndicator], frozen=True, kw_only=True):
    """Someone stopped typing in a chat."""

    event: Literal["typing.stopped"] = "typing.stopped"
    name = "typing.stopped"
    implied = {"is_typing": False}


class ReceiptRead(Event[ReadReceipt], frozen=True, kw_only=True):
    """A read receipt was received."""

    event: Literal["receipt.read"] = "receipt.read"
    name = "receipt.read"


class UnknownEvent(Event[dict[str, Any]], frozen=True, kw_only=True, forbid_unknown_fields=False):
    """An event name this version does not know yet; ``data`` is the raw dict."""

    event: str


_KNOWN: Final[dict[str, type[Event[Any]]]] = {
    cls.name: cls
    for cls in (
        MessageReceived,
        MessageSent,
        ReactionAdded,
        ReactionRemoved,
        TypingStarted,
        TypingStopped,
        ReceiptRead,
    )
    if cls.name is not None
}
assert tuple(_KNOWN) == EVENT_NAMES

# The name selects the class (a union tagged by "event", resolved here rather than by msgspec's
# tagged unions, which skip the values of keys before the tag, and of a tag that is not a
# string, recursively: the depth guard would then be needed before every decode).
# Keyed by how a body starts when its first key is the name, compact (JSON.stringify) or with
# json.dumps's default spacing, up to the length of the shortest name: that tells the names
# apart, and the decoder then checks the whole name.
_TELLING: Final = min(len(name) for name in EVENT_NAMES)
_DECODERS: Final = {
    f'{{"event":{space}"{name[:_TELLING]}'.encode(): msgspec.json.Decoder(cls)
    for name, cls in _KNOWN.items()
    for space in ("", " ")
}
assert len(_DECODERS) == 2 * len(_KNOWN)
_COMPACT_START: Final = len('{"event":"') + _TELLING
_untyped = msgspec.json.Decoder(float_hook=float)  # 1e400 is infinity, as json.loads reads it

_DATA_TYPE: Final[dict[type[Event[Any]], type[msgspec.Struct]]] = {
    cls: typing.get_args(cls.__orig_bases__[0])[0]  # type: ignore[attr-defined]
    for cls in _KNOWN.values()
}
_DECLARING: Final[tuple[type[msgspec.Struct], ...]] = (
    *_KNOWN.values(),
    Attachment,
    Message,
    Reaction,
    TypingIndicator,
    ReadReceipt,
)
_FIELDS: Final = {cls: frozenset(cls.__struct_fields__) for cls in _DECLARING}
#: Objects nested in data, by field: the only ones are a message's attachments.
_NESTED: Final[dict[type[msgspec.Struct], dict[str, type[msgspec.Struct]]]] = {
    Message: {"attachments": Attachment}
}

# --- guards run before msgspec sees a body -------------------------------------------------------

#: Bodies nested deeper than this are refused. msgspec decodes recursively, and on Python 3.12+
#: its own limit lets a deep enough body exhaust a small thread stack (a gthread worker's).
MAX_DEPTH: Final = 64
_UTF8_CHUNK = 8192
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in _BRACKETS)
_NOT_OPENERS = bytes(byte for byte in range(256) if byte not in b"[{")
_SHORT_BODY = 2048
_DEPTH_STEP = [1 if byte in b"[{" else -1 if byte in b"]}" else 0 for byte in range(256)]


def _few_openers(body: bytes, limit: int) -> bool:
    """Whether ``body`` holds at most ``limit`` brackets and braces, so no deeper nesting."""
    if len(body) <= _SHORT_BODY:
        # One pass in C keeping only "[" and "{": for a short body, cheaper than searching.
        return len(body.translate(None, _NOT_OPENERS)) <= limit
    count = 0
    find = body.find
    for opener in (b"{", b"["):  # memchr-fast over a long body holding a handful of them
        at = find(opener)
        while at >= 0:
            count += 1
            if count > limit:
                return False
            at = find(opener, at + 1)
    return True


def _depth(body: bytes) -> int:
    """The deepest nesting of ``body``, strings left out; for bodies with many brackets only."""
    skeleton = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, skeleton)), default=0)


def _check_utf8(body: bytes) -> None:
    """Refuse bytes that are not UTF-8 (surrogates' encodings included), wherever they are.

    msgspec checks the strings it decodes, not those it skips (unknown fields). Decoding a long
    body in chunks, and only the chunks that are not plain ASCII, costs a fraction of decoding
    it whole (which builds a string four bytes a character as soon as one emoji appears).
    """
    try:
        if len(body) <= _UTF8_CHUNK:
            body.decode("utf-8")
            return
        start, size = 0, len(body)
        while start < size:
            end = start + _UTF8_CHUNK
            # Cut before a byte that starts a character, never inside a valid sequence: at most
            # three continuation bytes follow a start, so three steps back find one if valid.
            for _ in range(3):
                if end >= size or not 0x80 <= body[end] < 0xC0:
                    break
                end -= 1
            chunk = body[start:end]
            if not chunk.isascii():
                chunk.decode("utf-8")
            start = end
    except UnicodeDecodeError:
        raise InvalidPayloadError("body is not valid UTF-8") from None


def _check_bytes(body: bytes) -> None:
    if not body.isascii():
        _check_utf8(body)
    if not _few_openers(body, MAX_DEPTH) and _depth(body) > MAX_DEPTH:
        raise InvalidPayloadError(f"body is nested too deeply (more than {MAX_DEPTH} levels)")


# --- errors ------------------------------------------------------------------------------------

_AT_PATH = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]*)`$")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# msgspec.convert names Python types where the JSON decoder names JSON ones: speak JSON in both.
_GOT_PYTHON = re.compile(r"got (NoneType|dict|list)$")
_JSON_NAMES = {"NoneType": "null", "dict": "object", "list": "array"}


def _invalid(error: msgspec.ValidationError) -> InvalidPayloadError:
    """msgspec's message with the path first: ``$.data.sent_at: expected int, got str``."""
    parts = _AT_PATH.match(str(error))
    assert parts is not None  # the pattern matches any text
    message, path = parts["message"], parts["path"] or "$"
    missing = _MISSING.match(message)
    if missing is not None:
        return InvalidPayloadError(f"{path}.{missing['field']}: missing required field")
    message = _GOT_PYTHON.sub(lambda got: f"got {_JSON_NAMES[got[1]]}", message.replace("`", ""))
    if path == "$" and message.startswith("Expected object"):
        return InvalidPayloadError(f"body is not a JSON object ({message[0].lower()}{message[1:]})")
    return InvalidPayloadError(f"{path}: {message[0].lower()}{message[1:]}")


def _malformed(error: msgspec.DecodeError, body: bytes) -> InvalidPayloadError:
    detail = str(error)
    if detail == "Input data was truncated" and _SURROGATE_ESCAPE.search(body):
        # msgspec's wording for a \u escape of half a surrogate pair.
        detail = "a \\u escape encodes a lone surrogate (or the body is cut short)"
    return InvalidPayloadError(f"body is not valid JSON: {detail.replace('`', '')}")


def _decode_raw(body: bytes) -> dict[str, Any]:
    document: dict[str, Any] = _untyped.decode(body)
    return document  # an object: the body was decoded as an event already


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


_JSON_TYPES: Final[dict[type, str]] = {
    type(None): "null",
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    list: "array",
    dict: "object",
}


# --- decoding ------------------------------------------------------------------------------------


def _integral(value: Any) -> Any:
    """``value`` with every integral float made an int (``1710000000123.0`` -> an int)."""
    kind = type(value)
    if kind is float:
        return int(value) if value.is_integer() else value
    if kind is dict:
        return {key: _integral(item) for key, item in value.items()}
    if kind is list:
        return [_integral(item) for item in value]
    return value


def _convert(document: Any, cls: Any) -> Event[Any]:
    try:
        event: Event[Any] = msgspec.convert(document, cls)
    except msgspec.ValidationError as error:
        if "got `float`" not in str(error):
            raise _invalid(error) from None
        # Rarely there: walk the document only now, for the integral floats of integer fields.
        try:
            event = msgspec.convert(_integral(document), cls)
        except msgspec.ValidationError as again:
            raise _invalid(again) from None
    return event


def _declared(value: Any, cls: type[msgspec.Struct]) -> Any:
    """An object with only the keys ``cls`` declares (anything else is left to be refused)."""
    if type(value) is not dict:
        return value
    names = _FIELDS[cls]
    kept = {key: item for key, item in value.items() if key in names}
    for key, inner in _NESTED.get(cls, {}).items():
        if type(kept.get(key)) is list:
            kept[key] = [_declared(item, inner) for item in kept[key]]
    return kept


def _typed_view(document: dict[str, Any], cls: type[Event[Any]]) -> dict[str, Any]:
    """The parts of a known event's body its classes type, with the fields its name implies."""
    envelope: dict[str, Any] = _declared(document, cls)
    data = envelope.get("data")
    if type(data) is dict:
        data = envelope["data"] = _declared(data, _DATA_TYPE[cls])
        for field, value in cls.implied.items():
            if data.get(field) is None:
                data[field] = value
    return envelope


def _from_document(document: Any) -> Event[Any]:
    """Type a decoded body: the path for what the one-pass decoder left to Python."""
    if type(document) is not dict:
        raise InvalidPayloadError("body is not a JSON object")
    if "event" not in document:
        raise InvalidPayloadError("$.event: missing required field")
    name = document["event"]
    if type(name) is not str:
        raise InvalidPayloadError(f"$.event: expected str, got {_json_type(name)}")
    cls = _KNOWN.get(name)
    if cls is not None:
        return _convert(_typed_view(document, cls), cls)
    # Only the envelope of an unknown event is typed: its data is kept as sent.
    envelope = dict(document)
    if type(envelope.get("timestamp")) is float:
        envelope["timestamp"] = _integral(envelope["timestamp"])
    return _convert(envelope, UnknownEvent)


def _decode_again(body: bytes) -> Event[Any]:
    """The second path: guard the bytes, decode without types, then type in Python."""
    _check_bytes(body)
    try:
        document = _untyped.decode(body)
    except msgspec.DecodeError as error:
        raise _malformed(error, body) from None
    except RecursionError:  # not reached past the depth guard; kept as a second line
        raise InvalidPayloadError("body is nested too deeply") from None
    return _from_document(document)


def decode_event(body: bytes) -> Event[Any]:
    """Decode a delivery's raw body into its typed event, in one pass for a well-formed body.

    Raises :class:`InvalidPayloadError` naming the path of what is wrong
    (``$.data.attachments[1].size: expected int, got str``). An unknown event name gives an
    :class:`UnknownEvent`, never an error.
    """
    # A known name first, as senders write it, picks its class's decoder; else the second path.
    decoder = _DECODERS.get(body[:_COMPACT_START]) or _DECODERS.get(body[: _COMPACT_START + 1])
    if decoder is None:
        event = _decode_again(body)
    else:
        # Declared fields only, each decoded and type-checked: a success has checked every
        # string's UTF-8, and nothing nests deeper than the classes do.
        try:
            event = decoder.decode(body)
        except msgspec.ValidationError:
            # A field the classes do not declare, a float for an integer, a field the name
            # implies left out, or a real error: the second path sorts out which.
            event = _decode_again(body)
        except msgspec.DecodeError as error:
            raise _malformed(error, body) from None
        except UnicodeDecodeError:  # how msgspec before 0.19 reports a string that is not UTF-8
            raise InvalidPayloadError("body is not valid UTF-8") from None
    event.__dict__["_source"] = body
    return event


def parse_event(body: bytes | str | Mapping[str, Any]) -> Event[Any]:
    """Parse a delivery's body into a typed event **without** verifying it.

    Use :func:`verify_webhook` for anything that arrives over the network.
    """
    if isinstance(body, bytes | bytearray | memoryview):
        return decode_event(bytes(body))
    if isinstance(body, str):
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidPayloadError("body is not valid UTF-8 (a lone surrogate)") from None
        return decode_event(raw)
    if not isinstance(body, Mapping):
        raise TypeError(f"body must be bytes, str or a mapping, not {type(body).__name__}")
    document = dict(body)
    event = _from_document(document)
    event.__dict__["_source"] = document
    return event
