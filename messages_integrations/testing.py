"""Helpers for testing code that receives Messages.dev webhooks, from any test suite.

``build_delivery("reaction.added", secret="whsec_test")`` returns a body and headers signed exactly
as Messages.dev signs them, with realistic sample data unless you pass your own ``data``.
"""

from __future__ import annotations

import copy
import json
import secrets as _random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from ._events import (
    EVENT_NAMES,
    Event,
    MessageReceived,
    MessageSent,
    ReactionAdded,
    ReactionRemoved,
    ReceiptRead,
    TypingStarted,
    TypingStopped,
    parse_event,
)
from ._signing import sign_webhook

__all__ = [
    "Delivery",
    "Recorder",
    "build_delivery",
    "make_event",
    "new_delivery_id",
    "post_delivery",
    "sample_data",
]

_LINE = "+15551234567"
_CONTACT = "+15559876543"
_SENT_AT = 1_767_225_600_000  # 2026-01-01T00:00:00Z in unix milliseconds

_MESSAGE: dict[str, Any] = {
    "object": "message",
    "id": "msg_8f14e45fceea167a5a36dedd4bea2543",
    "chat_id": "cht_c9f0f895fb98ab9159f51fd0297e236d",
    "guid": "p:0/4F6A2C1E-8B3D-4A57-9E21-7C0D5B3A9F11",
    "sender": _CONTACT,
    "text": "Are we still on for 7pm? 🍝",
    "attachments": [
        {
            "filename": "IMG_4021.HEIC",
            "mime_type": "image/heic",
            "size": 184_233,
            "url": "https://files.messages.dev/f_45c48cce2e2d7fbdea1afc51c7c6ad26",
            "transcription": None,
        }
    ],
    "is_from_me": False,
    "is_audio_message": False,
    "reply_to_guid": None,
    "line_handle": _LINE,
    "sent_at": _SENT_AT,
}

_SAMPLES: dict[str, dict[str, Any]] = {
    "message.received": _MESSAGE,
    "message.sent": {
        **_MESSAGE,
        "id": "msg_d3d9446802a44259755d38e6d163e820",
        "guid": "p:0/0B8C61D2-3E4F-4C1A-B5D6-9A2E7F3C4B21",
        "sender": _LINE,
        "text": "Yes! See you there.",
        "attachments": [],
        "is_from_me": True,
        "reply_to_guid": "p:0/4F6A2C1E-8B3D-4A57-9E21-7C0D5B3A9F11",
        "sent_at": _SENT_AT + 42_000,
    },
    "reaction.added": {
        "id": "rxn_6512bd43d9caa6e02c990b0a82652dca",
        "message_id": "msg_d3d9446802a44259755d38e6d163e820",
        "chat_id": "cht_c9f0f895fb98ab9159f51fd0297e236d",
        "type": "love",
        "sender": _CONTACT,
        "is_from_me": False,
        "added": True,
        "sent_at": _SENT_AT + 60_000,
        "line_handle": _LINE,
    },
    "reaction.removed": {
        "id": "rxn_6512bd43d9caa6e02c990b0a82652dca",
        "message_id": "msg_d3d9446802a44259755d38e6d163e820",
        "chat_id": "cht_c9f0f895fb98ab9159f51fd0297e236d",
        "type": "love",
        "sender": _CONTACT,
        "is_from_me": False,
        "added": False,
        "sent_at": _SENT_AT + 95_000,
        "line_handle": _LINE,
    },
    "typing.started": {
        "id": "typ_c20ad4d76fe97759aa27a0c99bff6710",
        "chat_id": "cht_c9f0f895fb98ab9159f51fd0297e236d",
        "handle": _CONTACT,
        "is_typing": True,
        "updated_at": _SENT_AT + 120_000,
        "line_handle": _LINE,
    },
    "typing.stopped": {
        "id": "typ_c20ad4d76fe97759aa27a0c99bff6710",
        "chat_id": "cht_c9f0f895fb98ab9159f51fd0297e236d",
        "handle": _CONTACT,
        "is_typing": False,
        "updated_at": _SENT_AT + 127_000,
        "line_handle": _LINE,
    },
    "receipt.read": {
        "id": "rcp_aab3238922bcc25a6f606eb525ffdc56",
        "chat_id": "cht_c9f0f895fb98ab9159f51fd0297e236d",
        "handle": _CONTACT,
        "last_read_at": _SENT_AT + 150_000,
        "synced_at": _SENT_AT + 150_400,
        "line_handle": _LINE,
    },
}
assert tuple(_SAMPLES) == EVENT_NAMES


def sample_data(event: str) -> dict[str, Any]:
    """Return a fresh copy of realistic ``data`` for a known event name."""
    try:
        return copy.deepcopy(_SAMPLES[event])
    except KeyError:
        raise ValueError(
            f"no sample data for {event!r}; pass data=... for events other than "
            f"{', '.join(EVENT_NAMES)}"
        ) from None


def new_delivery_id() -> str:
    """Return a fresh delivery id of the form Messages.dev uses (``dlv_`` and 32 hex digits)."""
    return f"dlv_{_random.token_hex(16)}"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A signed delivery, ready to POST: ``.body`` (bytes) with ``.headers``."""

    event: str
    body: bytes
    headers: dict[str, str] = field(hash=False)
    signature: str
    timestamp: int
    delivery_id: str | None

    def json(self) -> dict[str, Any]:
        """The body, decoded."""
        result: dict[str, Any] = json.loads(self.body)
        return result

    def parsed(self) -> Event[Any]:
        """The typed event the receiving side will see."""
        return parse_event(self.body)


def build_delivery(
    event: str,
    data: Mapping[str, Any] | None = None,
    *,
    secret: str | bytes,
    timestamp: int | None = None,
    delivery_id: str | None = None,
    scheme: Literal["timestamped", "body"] = "timestamped",
) -> Delivery:
    """Build a delivery signed exactly as Messages.dev signs it (the official SDK's format).

    ``data=None`` uses realistic sample data for ``event``. ``timestamp`` (unix milliseconds)
    defaults to now and ``delivery_id`` to a fresh ``dlv_…`` id. ``scheme="body"`` signs the body
    alone, as the product page's manual snippet checks it.
    """
    payload = sample_data(event) if data is None else dict(data)
    when = int(time.time() * 1000) if timestamp is None else int(timestamp)
    identifier = new_delivery_id() if delivery_id is None else delivery_id
    envelope = {"event": event, "data": payload, "timestamp": when, "delivery_id": identifier}
    # The same bytes JavaScript's JSON.stringify produces: no spaces, UTF-8, no \\u escapes.
    body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    signature = sign_webhook(secret, when, body, scheme=scheme)
    headers = {"Content-Type": "application/json", "X-Webhook-Signature": signature}
    if scheme == "timestamped":
        # Body-scheme deliveries are the older kind, which carried no timestamp header.
        headers["X-Webhook-Timestamp"] = str(when)
    headers["X-Webhook-Delivery-Id"] = identifier
    return Delivery(event, body, headers, signature, when, identifier)


class Recorder:
    """A handler that remembers every event it receives; thread-safe.

    Register it like any handler, ``router.on("*")(recorder)``, then assert on what arrived:
    ``recorder.events``, ``recorder.count("reaction.added")``, ``recorder.summary()``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event[Any]] = []

    def __call__(self, event: Event[Any]) -> None:
        """Record one event."""
        with self._lock:
            self._events.append(event)

    @property
    def events(self) -> list[Event[Any]]:
        """Every event received so far, in arrival order."""
        with self._lock:
            return list(self._events)

    def count(self, name: str | None = None) -> int:
        """How many events were received (of one name, when given)."""
        with self._lock:
            return sum(1 for e in self._events if name is None or e.event == name)

    def clear(self) -> None:
        """Forget everything received."""
        with self._lock:
            self._events.clear()

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary: totals by event name and how often each delivery id arrived."""
        with self._lock:
            events = list(self._events)
        by_event: dict[str, int] = {}
        by_delivery: dict[str, int] = {}
        for event in events:
            by_event[event.event] = by_event.get(event.event, 0) + 1
            if event.delivery_id is not None:
                by_delivery[event.delivery_id] = by_delivery.get(event.delivery_id, 0) + 1
        return {"total": len(events), "by_event": by_event, "by_delivery_id": by_delivery}


@overload
def make_event(
    name: Literal["message.received"], data: Mapping[str, Any] | None = ..., **fields: Any
) -> MessageReceived: ...
@overload
def make_event(
    name: Literal["message.sent"], data: Mapping[str, Any] | None = ..., **fields: Any
) -> MessageSent: ...
@overload
def make_event(
    name: Literal["reaction.added"], data: Mapping[str, Any] | None = ..., **fields: Any
) -> ReactionAdded: ...
@overload
def make_event(
    name: Literal["reaction.removed"], data: Mapping[str, Any] | None = ..., **fields: Any
) -> ReactionRemoved: ...
@overload
def make_event(
    name: Literal["typing.started"], data: Mapping[str, Any] | None = ..., **fields: Any
) -> TypingStarted: ...
@overload
def make_event(
    name: Literal["typing.stopped"], data: Mapping[str, Any] | None = ..., **fields: Any
) -> TypingStopped: ...
@overload
def make_event(
    name: Literal["receipt.read"], data: Mapping[str, Any] | None = ..., **fields: Any
) -> ReceiptRead: ...
@overload
def make_event(name: str, data: Mapping[str, Any] | None = ..., **fields: Any) -> Event[Any]: ...


def make_event(name: str, data: Mapping[str, Any] | None = None, **fields: Any) -> Event[Any]:
    """Build a typed event to call a handler with directly, no signature involved.

    ``make_event("reaction.added", type="like")`` starts from the sample data and overrides
    ``type``; the result is a ``ReactionAdded``, as the type checker knows.
    """
    payload = {**(sample_data(name) if data is None else dict(data)), **fields}
    envelope = {
        "event": name,
        "data": payload,
        "timestamp": int(time.time() * 1000),
        "delivery_id": new_delivery_id(),
    }
    return parse_event(envelope)


def post_delivery(client: Any, url: str, delivery: Delivery) -> Any:
    """POST a signed delivery through a framework's own test client; return its response.

    Works with Django's ``Client`` and ``AsyncClient``, Flask's test client, Starlette's
    ``TestClient`` and httpx clients (async clients return an awaitable).
    """
    module = type(client).__module__
    if module.startswith("django."):
        extra = {k: v for k, v in delivery.headers.items() if k.lower() != "content-type"}
        return client.post(url, data=delivery.body, content_type="application/json", headers=extra)
    if module.startswith(("flask.", "werkzeug.")):
        return client.post(url, data=delivery.body, headers=delivery.headers)
    return client.post(url, content=delivery.body, headers=delivery.headers)
