"""HMAC-SHA256 signatures of Messages.dev deliveries: signing and constant-time verification.

Two schemes are accepted (see PROTOCOL.md): the timestamped scheme of the official SDK, which signs
``f"{timestamp}.".encode() + body``, and the body-only scheme of the product's manual snippet.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ._errors import InvalidPayloadError, SignatureVerificationError
from ._events import Event, fast_constructor, parse_body

__all__ = [
    "Secrets",
    "SecretsInput",
    "Verified",
    "sign_webhook",
    "verify_webhook",
]

SecretsInput = str | bytes | Sequence[str | bytes]
Scheme = Literal["timestamped", "body"]

_SIGNATURE_LENGTH = 64  # lowercase hex of a SHA-256 digest
_DIGEST_SIZE = 32
_MAX_TIMESTAMP_DIGITS = 20
_HEX_DIGITS = frozenset(b"0123456789abcdef")
_BLOCK_SIZE = 64  # SHA-256's block: HMAC pads the key to it, or hashes a longer key first
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))


class _Hash(Protocol):
    def copy(self) -> _Hash: ...
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


def _key_bytes(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if not key:
        raise ValueError("a webhook signing secret must not be empty")
    return key


def _keyed(key: bytes) -> tuple[_Hash, _Hash]:
    """HMAC-SHA256's inner and outer hashes with the key already absorbed (RFC 2104).

    Copying these two costs much less per delivery than ``hmac.new`` does: HMAC is exactly
    ``sha256(key ^ opad || sha256(key ^ ipad || message))``, as the ``hmac`` module computes it.
    """
    if len(key) > _BLOCK_SIZE:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK_SIZE, b"\0")
    return hashlib.sha256(key.translate(_INNER_PAD)), hashlib.sha256(key.translate(_OUTER_PAD))


class Secrets:
    """One or several signing secrets, keyed once so that each verification only hashes the body."""

    __slots__ = ("_keyed",)
    _keyed: tuple[tuple[_Hash, _Hash], ...]

    def __init__(self, secrets: SecretsInput) -> None:
        if type(secrets) is str and secrets:
            # The usual case, taken on every verify_webhook() call: one non-empty str.
            self._keyed = (_keyed(secrets.encode("utf-8")),)
            return
        if isinstance(secrets, str | bytes | bytearray):
            keys = [_key_bytes(secrets)]
        else:
            keys = [_key_bytes(secret) for secret in secrets]
        if not keys:
            raise ValueError("at least one webhook signing secret is required")
        self._keyed = tuple([_keyed(key) for key in keys])

    def __len__(self) -> int:
        return len(self._keyed)

    def __repr__(self) -> str:
        # Never show the key material, not even in a debugger or a log of the configuration.
        return f"<Secrets: {len(self._keyed)} configured>"

    def digests(self, *parts: bytes) -> list[bytes]:
        """Return the raw HMAC-SHA256 digest of the concatenated parts under every secret."""
        out = []
        for inner, outer in self._keyed:
            mac = inner.copy()
            for part in parts:
                mac.update(part)
            final = outer.copy()
            final.update(mac.digest())
            out.append(final.digest())
        return out

    def match(self, signature: bytes, *parts: bytes) -> int | None:
        """Return the position of the secret whose digest equals ``signature``, else ``None``.

        Every secret is compared, in constant time, so the time taken does not reveal which matched.
        """
        found = None
        for index, (inner, outer) in enumerate(self._keyed):
            mac = inner.copy()
            for part in parts:
                mac.update(part)
            final = outer.copy()
            final.update(mac.digest())
            if hmac.compare_digest(final.digest(), signature) and found is None:
                found = index
        return found


@functools.lru_cache(maxsize=16)
def _cached_secrets(secret: str | bytes) -> Secrets:
    return Secrets(secret)


def _secrets(secrets: SecretsInput | Secrets) -> Secrets:
    """The keyed secrets; a single str or bytes secret is keyed once per process, not per call.

    The cache holds the same key material the application keeps in its configuration anyway.
    """
    if isinstance(secrets, Secrets):
        return secrets
    if type(secrets) is str or type(secrets) is bytes:
        return _cached_secrets(secrets)
    return Secrets(secrets)


def _body_bytes(body: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    raise TypeError(f"body must be bytes or str, not {type(body).__name__}")


def _parse_signature(signature: str | bytes | None) -> bytes:
    """Turn the header's lowercase hex into the raw digest, refusing anything else."""
    if type(signature) is str and len(signature) == _SIGNATURE_LENGTH:
        # The usual header. 64 characters make 32 bytes only if every one is a hex digit.
        try:
            digest = bytes.fromhex(signature)
        except ValueError:
            pass
        else:
            if len(digest) == _DIGEST_SIZE:
                return digest
    if signature is None:
        raise SignatureVerificationError("no signature: the X-Webhook-Signature header is missing")
    if isinstance(signature, str):
        if not signature.isascii():
            raise SignatureVerificationError("malformed signature: not hexadecimal")
        raw = signature.encode("ascii")
    elif isinstance(signature, bytes | bytearray):
        raw = bytes(signature)
    else:
        raise SignatureVerificationError("malformed signature: not a string")
    # A bounded strip: a 100 KB header must not cost more than a glance.
    if len(raw) > 2 * _SIGNATURE_LENGTH:
        raise SignatureVerificationError("malformed signature: too long")
    raw = raw.strip().lower()
    if not raw:
        raise SignatureVerificationError("no signature: the X-Webhook-Signature header is empty")
    if len(raw) != _SIGNATURE_LENGTH or not _HEX_DIGITS.issuperset(raw):
        raise SignatureVerificationError("malformed signature: expected 64 hexadecimal characters")
    return bytes.fromhex(raw.decode("ascii"))


def _parse_timestamp(timestamp: str | bytes | int | None) -> bytes | None:
    """Return the header timestamp as the ASCII digits that were signed, or ``None``."""
    if timestamp is None:
        return None
    if (
        type(timestamp) is str
        and len(timestamp) <= _MAX_TIMESTAMP_DIGITS
        and timestamp.isdigit()
        and timestamp.isascii()
    ):
        return timestamp.encode("ascii")
    if isinstance(timestamp, bool):
        raise SignatureVerificationError("malformed timestamp: not an integer")
    if isinstance(timestamp, int):
        if timestamp < 0:
            raise SignatureVerificationError("malformed timestamp: negative")
        return str(timestamp).encode("ascii")
    if isinstance(timestamp, str):
        if not timestamp.isascii():
            raise SignatureVerificationError("malformed timestamp: not an integer")
        raw = timestamp.encode("ascii")
    elif isinstance(timestamp, bytes | bytearray):
        raw = bytes(timestamp)
    else:
        raise SignatureVerificationError("malformed timestamp: not an integer")
    if len(raw) > 2 * _MAX_TIMESTAMP_DIGITS:
        raise SignatureVerificationError("malformed timestamp: too long")
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > _MAX_TIMESTAMP_DIGITS:
        raise SignatureVerificationError("malformed timestamp: not an integer")
    return raw


def _unverified_body_timestamp(body: bytes) -> bytes | None:
    """Find the body's ``timestamp`` the way the official SDK does, before anything is trusted."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    value = document.get("timestamp")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return str(value).encode("ascii")


@dataclass(frozen=True, slots=True)
class Verified:
    """An authenticated delivery: the event, which secret matched, and the scheme that held."""

    event: Event[Any]
    secret_index: int
    scheme: Scheme


def sign_webhook(
    secret: str | bytes,
    timestamp: int | str | None,
    body: bytes | str,
    *,
    scheme: Scheme = "timestamped",
) -> str:
    """Sign ``body`` as Messages.dev does and return the lowercase hex signature.

    The default is the official SDK's timestamped scheme, over ``f"{timestamp}." + body``;
    ``scheme="body"`` signs the body alone, as the product page's manual snippet checks it.
    """
    raw_body = _body_bytes(body)
    mac = hmac.new(_key_bytes(secret), digestmod=hashlib.sha256)
    if scheme == "timestamped":
        if timestamp is None:
            raise ValueError("the timestamped scheme needs a timestamp (unix milliseconds)")
        mac.update(str(int(timestamp)).encode("ascii") + b".")
    elif scheme != "body":
        raise ValueError(f"unknown signature scheme {scheme!r}: use 'timestamped' or 'body'")
    mac.update(raw_body)
    return mac.hexdigest()


def _check_window(timestamp_ms: int, tolerance: float | None, clock: Callable[[], float]) -> None:
    if tolerance is None:
        return
    skew = clock() - timestamp_ms / 1000.0
    if abs(skew) > tolerance:
        direction = "old" if skew > 0 else "in the future"
        raise SignatureVerificationError(
            f"timestamp outside the replay window: {abs(skew):.0f} s {direction} "
            f"(tolerance {tolerance:g} s)"
        )


def _verify(
    body: bytes | str,
    signature: str | bytes | None,
    secrets: SecretsInput | Secrets,
    timestamp: str | bytes | int | None,
    tolerance: float | None,
    clock: Callable[[], float],
) -> tuple[Event[Any], int, Scheme]:
    keys = _secrets(secrets)
    raw_body = body if type(body) is bytes else _body_bytes(body)
    digest = _parse_signature(signature)
    header_ts = _parse_timestamp(timestamp)

    signed_ts = header_ts
    if header_ts is not None:
        # The header is present: decide on the signature before any JSON is parsed.
        index = keys.match(digest, header_ts + b".", raw_body)
        if index is None:
            signed_ts, index = None, keys.match(digest, raw_body)
    else:
        index = keys.match(digest, raw_body)
        if index is None:
            signed_ts = _unverified_body_timestamp(raw_body)
            if signed_ts is not None:
                index = keys.match(digest, signed_ts + b".", raw_body)
    if index is None:
        raise SignatureVerificationError("signature does not match any configured secret")

    if signed_ts is not None:
        if tolerance is not None:
            _check_window(int(signed_ts), tolerance, clock)
        return parse_body(raw_body), index, "timestamped"
    # In the body scheme the body's own timestamp is the one the signature covers.
    window = None if tolerance is None else (lambda ms: _check_window(ms, tolerance, clock))
    return parse_body(raw_body, window), index, "body"


_new_verified = fast_constructor(Verified)


def verify(
    body: bytes | str,
    signature: str | bytes | None,
    secrets: SecretsInput | Secrets,
    *,
    timestamp: str | bytes | int | None = None,
    tolerance: float | None = 300.0,
    clock: Callable[[], float] = time.time,
) -> Verified:
    """Authenticate a delivery and parse it, telling which secret and scheme matched."""
    return _new_verified(*_verify(body, signature, secrets, timestamp, tolerance, clock))


def verify_webhook(
    body: bytes | str,
    signature: str | bytes | None,
    secret: SecretsInput,
    *,
    timestamp: str | bytes | int | None = None,
    tolerance: float | None = 300.0,
    clock: Callable[[], float] = time.time,
) -> Event[Any]:
    """Verify a delivery's signature over the raw body, then its timestamp, then parse it.

    ``secret`` may be several secrets (any one may match). ``timestamp`` is the
    ``X-Webhook-Timestamp`` header when you have it; ``tolerance`` is the replay window in seconds
    (``None`` turns it off). Raises :class:`SignatureVerificationError` or
    :class:`InvalidPayloadError`, nothing else.
    """
    try:
        return _verify(body, signature, secret, timestamp, tolerance, clock)[0]
    except (SignatureVerificationError, InvalidPayloadError):
        raise
    except (UnicodeError, TypeError) as exc:
        # A str body that cannot be encoded, or an argument of the wrong kind from a framework.
        raise InvalidPayloadError(f"unreadable body: {exc.__class__.__name__}") from None
