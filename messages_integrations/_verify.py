"""The one-call verification: authenticate the raw bytes, decode the event, check the window.

One delivery takes one straight path: :func:`authenticate` (bytes only: which secret, which
scheme, which signed timestamp), then :func:`decode_event` (typed, one pass), then the replay
window against the timestamp the signature covers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._errors import InvalidPayloadError
from ._events import Event, decode_event
from ._signing import (
    Scheme,
    Secrets,
    SecretsInput,
    _authenticate,
    _cached_secrets,
    _secrets,
    check_window,
)

__all__ = ["Verified", "verify", "verify_webhook"]


@dataclass(frozen=True, slots=True)
class Verified:
    """An authenticated delivery: the event, which secret matched, and the scheme that held."""

    event: Event[Any]
    secret_index: int
    scheme: Scheme


def _body_bytes(body: bytes | str) -> bytes:
    if isinstance(body, str):
        try:
            return body.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidPayloadError("body is not valid UTF-8 (a lone surrogate)") from None
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    raise InvalidPayloadError(f"unreadable body: bytes or str expected, not {type(body).__name__}")


def _verify(
    body: bytes | str,
    signature: str | bytes | None,
    secrets: SecretsInput | Secrets,
    timestamp: str | bytes | int | None,
    tolerance: float | None,
    clock: Callable[[], float],
) -> tuple[Event[Any], int, Scheme]:
    raw = body if type(body) is bytes else _body_bytes(body)
    keys = _cached_secrets(secrets) if type(secrets) is str else _secrets(secrets)
    index, scheme, signed = _authenticate(raw, signature, keys, timestamp)
    event = decode_event(raw)
    # In the body scheme the body's own timestamp is the one the signature covers.
    check_window(event.timestamp if signed is None else signed, tolerance, clock)
    return event, index, scheme


def verify(
    body: bytes | str,
    signature: str | bytes | None,
    secrets: SecretsInput | Secrets,
    *,
    timestamp: str | bytes | int | None = None,
    tolerance: float | None = 300.0,
    clock: Callable[[], float] = time.time,
) -> Verified:
    """Like :func:`verify_webhook`, also telling which secret and which scheme matched."""
    return Verified(*_verify(body, signature, secrets, timestamp, tolerance, clock))


def verify_webhook(
    body: bytes | str,
    signature: str | bytes | None,
    secret: SecretsInput,
    *,
    timestamp: str | bytes | int | None = None,
    tolerance: float | None = 300.0,
    clock: Callable[[], float] = time.time,
) -> Event[Any]:
    """Verify a delivery's signature over the raw body, parse it, then check its timestamp.

    ``secret`` may be several secrets (any one may match). ``timestamp`` is the
    ``X-Webhook-Timestamp`` header when you have it; without it the body's signed ``timestamp``
    is found without parsing anything unauthenticated. ``tolerance`` is the replay window in
    seconds (``None`` turns it off). Raises :class:`SignatureVerificationError` (its subclass
    :class:`StaleDeliveryError` for a timestamp outside the window) or
    :class:`InvalidPayloadError`, nothing else.
    """
    # The steps of _verify(), written out: one call less on the path of every delivery.
    raw = body if type(body) is bytes else _body_bytes(body)
    keys = _cached_secrets(secret) if type(secret) is str else _secrets(secret)
    signed = _authenticate(raw, signature, keys, timestamp)[2]
    event = decode_event(raw)
    check_window(event.timestamp if signed is None else signed, tolerance, clock)
    return event
