"""What every benchmark app shares: the secret, the handler, and the hand-written floor.

The handler is ``async`` for the ASGI apps, as handlers written for them usually are (a sync
handler is run in a worker thread there, never on the event loop) and plain for the WSGI apps.
The bare endpoints call the same kind of handler in the same way a hand-written endpoint would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from messages_integrations import Event, WebhookRouter

SECRET = "whsec_benchmark_http_3c9d"
KEY = SECRET.encode()
#: The body every bare endpoint answers a handled delivery with (the adapters send a similar one).
OK = b'{"status":"ok"}'
UNAUTHORIZED = b'{"error":"invalid_signature"}'

_received: list[str] = []


def record(name: str) -> None:
    """The handler's work: as little as a handler does, bounded."""
    if len(_received) > 1000:
        _received.clear()
    _received.append(name)


sync_router = WebhookRouter()
async_router = WebhookRouter()


@sync_router.on("*")
def handle(event: Event[Any]) -> None:
    """The sync handler of the WSGI apps."""
    record(event.data.chat_id if hasattr(event.data, "chat_id") else event.event)


@async_router.on("*")
async def ahandle(event: Event[Any]) -> None:
    """The async handler of the ASGI apps."""
    record(event.data.chat_id if hasattr(event.data, "chat_id") else event.event)


def floor(headers: Any, body: bytes) -> dict[str, Any] | None:
    """The hand-written endpoint's work: HMAC-SHA256, compare_digest, json.loads.

    ``headers`` is the framework's own headers object, whose ``.get`` ignores case.
    """
    signature = headers.get("x-webhook-signature", "")
    timestamp = headers.get("x-webhook-timestamp", "")
    expected = hmac.new(KEY, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return None
    document: dict[str, Any] = json.loads(body)
    return document


def handle_bare(document: dict[str, Any]) -> None:
    """What the bare endpoint's handler does with the parsed dict (the same as ``handle``)."""
    record(document["data"].get("chat_id", document["event"]))
