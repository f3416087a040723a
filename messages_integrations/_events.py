"""Typed, immutable Messages.dev events, and the parser that builds them from a delivery's body.

Field names are the wire's snake_case names. Fields a known payload always carries are required;
those newer deliveries add are optional. Unknown extra fields never cause a rejection: the whole
body stays reachable as ``event.raw``.

Parsing runs on every delivery, so valid bodies take a fast path (readers generated per class, the
way dataclasses generates ``__init__``) and anything else falls back to the plain reference code,
which alone words the errors. With the ``speedups`` extra (orjson) installed, orjson reads the
JSON; whenever it could disagree with the standard library, the standard library decides.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from json.scanner import make_scanner
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


# --- validation: the reference path, which words every error ------------------------------

_KINDS: Final[dict[type, str]] = {str: "a string", int: "an integer", bool: "a boolean"}


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    kind: type  # the exact type required: bool is not an int here, 1.0 is not an int
    required: bool

    @property
    def expected(self) -> str:
        return _KINDS[self.kind] + ("" if self.required else " or null")


def _fields(required: dict[str, type], optional: dict[str, type]) -> tuple[_Field, ...]:
    specs = [_Field(name, kind, True) for name, kind in required.items()]
    specs += [_Field(name, kind, False) for name, kind in optional.items()]
    return tuple(specs)


def _wrong(path: str, expected: str, value: Any) -> InvalidPayloadError:
    got = "null" if value is None else type(value).__name__
    return InvalidPayloadError(f"{path}: expected {expected}, got {got}")


def _read_fields(obj: dict[str, Any], specs: tuple[_Field, ...], path: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.name in obj:
            value = obj[spec.name]
            if type(value) is not spec.kind and (spec.required or value is not None):
                raise _wrong(f"{path}.{spec.name}", spec.expected, value)
            values[spec.name] = value
        elif spec.required:
            raise InvalidPayloadError(f"{path}.{spec.name}: missing required field")
    return values


_ATTACHMENT_FIELDS = _fields(
    {},
    {"filename": str, "mime_type": str, "size": int, "url": str, "transcription": str},
)
_MESSAGE_FIELDS = _fields(
    {"id": str, "chat_id": str, "sender": str, "is_from_me": bool, "sent_at": int},
    {
        "object": str,
        "guid": str,
        "text": str,
        "is_audio_message": bool,
        "reply_to_guid": str,
        "line_handle": str,
        "line_id": str,
        "synced_at": int,
        "service": str,
    },
)
_REACTION_FIELDS = _fields(
    {
        "id": str,
        "message_id": str,
        "chat_id": str,
        "type": str,
        "sender": str,
        "is_from_me": bool,
        "sent_at": int,
    },
    {"added": bool, "line_handle": str},
)
_TYPING_FIELDS = _fields(
    {"id": str, "chat_id": str, "handle": str},
    {"is_typing": bool, "updated_at": int, "line_handle": str},
)
_RECEIPT_FIELDS = _fields(
    {"id": str, "chat_id": str, "handle": str, "last_read_at": int},
    {"synced_at": int, "line_handle": str},
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


# --- the fast path ------------------------------------------------------------------------------

T = TypeVar("T")
_Reader = Callable[[dict[str, Any], str, bool], Any]


class _Inexact(Exception):
    """orjson's reading might differ from the standard library's: let the standard library read."""


def _generate(source: list[str], namespace: dict[str, Any], name: str) -> Any:
    exec("\n".join(source), namespace)  # noqa: S102 - source built here from field names only
    return namespace[name]


def _twin(cls: type[Any]) -> type[Any] | None:
    """A class with the slots of the frozen, slotted dataclass ``cls`` and plain attribute stores.

    A frozen dataclass's ``__init__`` stores each field through ``object.__setattr__``, the largest
    cost of parsing a delivery. Storing on a twin with the very same slots, then giving the object
    its real class, is several times faster; Python checks that the two layouts match, and the
    result is an ordinary instance of ``cls``. ``None`` if this Python refuses the switch.
    """
    layout = next(k for k in cls.__mro__ if vars(k).get("__slots__"))
    slots = tuple(vars(layout)["__slots__"])
    if tuple(f.name for f in dataclasses.fields(cls)) != slots:
        return None
    twin = types.new_class(
        f"_{layout.__name__}Twin",
        getattr(layout, "__orig_bases__", layout.__bases__),
        exec_body=lambda namespace: namespace.update(__slots__=slots),
    )
    probe: Any = object.__new__(twin)
    try:
        probe.__class__ = cls
    except TypeError:
        return None
    return twin


def _construct(cls: type[Any], values: list[str], namespace: dict[str, Any]) -> list[str]:
    """Source lines returning ``cls`` built from the expressions ``values``, one per field."""
    twin = _twin(cls)
    key = f"cls_{cls.__name__}"
    namespace[key] = cls
    if twin is None:
        return [f"return {key}({', '.join(values)})"]
    namespace[f"twin_{cls.__name__}"] = twin
    namespace["new_object"] = object.__new__
    source = [f"made = new_object(twin_{cls.__name__})"]
    source += [
        f"made.{f.name} = {value}" for f, value in zip(dataclasses.fields(cls), values, strict=True)
    ]
    return [*source, f"made.__class__ = {key}", "return made"]


def fast_constructor(cls: type[T]) -> Callable[..., T]:
    """Return a constructor of the frozen, slotted dataclass ``cls`` taking every field in order."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    namespace: dict[str, Any] = {}
    body = _construct(cls, [f"v_{name}" for name in names], namespace)
    source = [f"def new({', '.join(f'v_{name}' for name in names)}):"]
    source += [f"    {line}" for line in body]
    constructor: Callable[..., T] = _generate(source, namespace, "new")
    return constructor


def _holds_float(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return True
    if kind is dict:
        value = value.values()
    elif kind is not list:
        return False
    # Plain Python recursion (a generator would add C frames), bounded by the recursion limit:
    # too deep a document is left to the standard library, whose own limit then decides.
    for item in value:  # noqa: SIM110
        if _holds_float(item):
            return True
    return False


def _foreign_floats(obj: dict[str, Any], known: frozenset[str]) -> bool:
    """Whether a field outside ``known`` holds a float, which orjson may have read from an int.

    orjson reads integers beyond 64 bits as floats where the standard library keeps them exact;
    known fields are type-checked anyway, so only unknown ones need a look.
    """
    try:
        return any(_holds_float(value) for key, value in obj.items() if key not in known)
    except RecursionError:
        return True


def _compile_reader(
    cls: type[Any], specs: tuple[_Field, ...], *, then: str = "", **helpers: Any
) -> _Reader:
    """Generate ``read(obj, name, exact)`` returning ``cls`` built from ``obj``, or ``None``.

    ``None`` means a field is missing or ill-typed: the reference path then finds and names it.
    ``then`` is source run once every field passed, to derive the remaining fields; it may call
    ``helpers`` by name.
    """
    names = [f.name for f in dataclasses.fields(cls)]
    namespace: dict[str, Any] = {
        "known": frozenset(names),
        "foreign_floats": _foreign_floats,
        "Inexact": _Inexact,
        **helpers,
    }
    source = ["def read(obj, name, exact):", "    get = obj.get"]
    source += [f"    f_{spec.name} = get({spec.name!r})" for spec in specs]
    checks = [
        f"type(f_{spec.name}) is not {spec.kind.__name__}"
        if spec.required
        else f"(f_{spec.name} is not None and type(f_{spec.name}) is not {spec.kind.__name__})"
        for spec in specs
    ]
    source.append(f"    if {' or '.join(checks)}:")
    source.append("        return None")
    source += [f"    {line}" for line in then.splitlines()]
    source.append("    if not exact and not known.issuperset(obj) and foreign_floats(obj, known):")
    source.append("        raise Inexact")
    source += [f"    {line}" for line in _construct(cls, [f"f_{n}" for n in names], namespace)]
    reader: _Reader = _generate(source, namespace, "read")
    return reader


_read_attachment = _compile_reader(Attachment, _ATTACHMENT_FIELDS)


def _read_attachments(value: Any, exact: bool) -> tuple[Attachment, ...] | None:
    if value is None:
        return ()
    if type(value) is not list:
        return None
    out = []
    for item in value:
        if type(item) is not dict:
            return None
        attachment = _read_attachment(item, "", exact)
        if attachment is None:
            return None
        out.append(attachment)
    return tuple(out)


_KNOWN: Final[dict[str, tuple[Callable[..., Event[Any]], _Reader, Callable[..., Any]]]] = {}


def _register(
    classes: tuple[type[Event[Any]], ...],
    reference: Callable[[dict[str, Any], str], Any],
    reader: _Reader,
) -> None:
    for cls in classes:
        assert cls.name is not None
        _KNOWN[cls.name] = (fast_constructor(cls), reader, reference)


_register(
    (MessageReceived, MessageSent),
    _message,
    _compile_reader(
        Message,
        _MESSAGE_FIELDS,
        then="f_attachments = attachments(get('attachments'), exact)\n"
        "if f_attachments is None:\n"
        "    return None",
        attachments=_read_attachments,
    ),
)
_register(
    (ReactionAdded, ReactionRemoved),
    _reaction,
    # Older payloads may omit "added"; the event name says it all the same.
    _compile_reader(
        Reaction,
        _REACTION_FIELDS,
        then="if f_added is None:\n    f_added = name == 'reaction.added'",
    ),
)
_register(
    (TypingStarted, TypingStopped),
    _typing,
    _compile_reader(
        TypingIndicator,
        _TYPING_FIELDS,
        then="if f_is_typing is None:\n    f_is_typing = name == 'typing.started'",
    ),
)
_register((ReceiptRead,), _receipt, _compile_reader(ReadReceipt, _RECEIPT_FIELDS))
assert tuple(_KNOWN) == EVENT_NAMES

_new_unknown = fast_constructor(UnknownEvent)
_ENVELOPE_KEYS: Final = frozenset({"event", "data", "timestamp", "delivery_id"})


def _event(document: Any, window: Callable[[int], object] | None, exact: bool) -> Event[Any]:
    """Check the envelope, let ``window`` judge its timestamp, then type ``data``."""
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
    if (
        not exact
        and not _ENVELOPE_KEYS.issuperset(document)
        and _foreign_floats(document, _ENVELOPE_KEYS)
    ):
        raise _Inexact
    if window is not None:
        window(timestamp)
    known = _KNOWN.get(name)
    if known is None:
        if not exact and _foreign_floats(data, frozenset()):
            raise _Inexact
        return _new_unknown(name, data, timestamp, delivery_id, document)
    new, read, reference = known
    typed = read(data, name, exact)
    if typed is None:
        typed = reference(data, name)  # raises, naming the field
    return new(name, typed, timestamp, delivery_id, document)


def _missing_or_wrong(document: dict[str, Any], key: str, expected: str) -> InvalidPayloadError:
    if key not in document:
        return InvalidPayloadError(f"{key}: missing required field")
    return _wrong(key, expected, document[key])


# --- JSON ---------------------------------------------------------------------------------------

# The scanner json.loads itself ends in, called without its Python-level wrappers.
_scan_once = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed: duck-typed
_WHITESPACE = re.compile(r"[ \t\n\r]*")  # what json.loads allows around the document


def _loads(body: bytes | bytearray | memoryview | str) -> Any:
    """``json.loads(body)``, exactly, with the common case of a UTF-8 object taken faster."""
    # json.loads reads bytes starting "{" and a non-NUL byte as UTF-8 with surrogatepass.
    if type(body) is bytes and body[:1] == b"{" and body[1:2] != b"\x00":
        try:
            text = body.decode("utf-8", "surrogatepass")
            document, end = _scan_once(text, 0)
            if end == len(text) or _WHITESPACE.match(text, end).end() == len(text):  # type: ignore[union-attr]
                return document
        except (ValueError, RecursionError, StopIteration):
            pass  # json.loads below raises the very same error
    return json.loads(bytes(body) if isinstance(body, memoryview) else body)


def _load(body: bytes | bytearray | memoryview | str) -> Any:
    try:
        return _loads(body)
    except UnicodeError:
        raise InvalidPayloadError("body is not valid UTF-8") from None
    except RecursionError:
        raise InvalidPayloadError("body is nested too deeply") from None
    except ValueError as exc:
        raise InvalidPayloadError(f"body is not valid JSON ({exc.__class__.__name__})") from None


def _import_orjson() -> Callable[[bytes], Any] | None:
    try:
        module = importlib.import_module("orjson")
    except ImportError:
        return None
    loads: Callable[[bytes], Any] = module.loads
    return loads


_ORJSON_LOADS: Final = _import_orjson()
# orjson reads the JSON when the ``speedups`` extra is installed, unless the environment says no.
_fast_loads = (
    None
    if os.environ.get("MESSAGES_INTEGRATIONS_NO_ORJSON", "") not in {"", "0"}
    else _ORJSON_LOADS
)


def use_orjson(enabled: bool) -> bool:
    """Let orjson read bodies (when installed) or not, in this process; return whether it will.

    By default orjson is used when importable, unless ``MESSAGES_INTEGRATIONS_NO_ORJSON=1``.
    """
    global _fast_loads  # one process-wide switch, read on every parse
    _fast_loads = _ORJSON_LOADS if enabled else None
    return _fast_loads is not None


def parse_body(
    body: bytes | bytearray | memoryview | str | Mapping[str, Any],
    window: Callable[[int], object] | None = None,
) -> Event[Any]:
    """Parse a body into its typed event; ``window`` may refuse its timestamp before typing."""
    if _fast_loads is not None and type(body) is bytes:
        try:
            return _event(_fast_loads(body), window, False)
        except (ValueError, InvalidPayloadError, _Inexact):
            # orjson refuses some JSON the standard library accepts (lone surrogates, NaN, a BOM)
            # and reads integers beyond 64 bits as floats: the standard library decides, and
            # words any error.
            pass
    document = dict(body) if isinstance(body, Mapping) else _load(body)
    return _event(document, window, True)


def parse_event(body: bytes | str | Mapping[str, Any]) -> Event[Any]:
    """Parse a delivery's body into a typed event **without** verifying it.

    Use :func:`verify_webhook` for anything that arrives over the network.
    """
    return parse_body(body)
