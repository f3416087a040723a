"""HMAC-SHA256 signatures of Messages.dev deliveries: signing, and authenticating raw bytes.

Two schemes are accepted: the timestamped scheme of the official SDK, which signs
``f"{timestamp}.".encode() + body``, and the body-only scheme of the product's manual snippet.
This module only ever looks at bytes: it parses no JSON and knows nothing of the event model, so
nothing of an unauthenticated body is decoded.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Literal, Protocol

import msgspec

from ._errors import SignatureVerificationError, StaleDeliveryError

__all__ = [
    "Authenticated",
    "Scheme",
    "Secrets",
    "SecretsInput",
    "authenticate",
    "check_window",
    "sign_webhook",
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


def _parse_timestamp(timestamp: str | bytes | int) -> bytes:
    """Return the header timestamp as the ASCII digits that were signed."""
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


# A Struct rather than a frozen dataclass: as immutable, built in a fraction of the time, once
# per delivery.
class Authenticated(msgspec.Struct, frozen=True, gc=False):
    """Which configured secret and which scheme a delivery's signature matched."""

    secret_index: int  # 0-based position of the matching secret in the configured list
    scheme: Scheme
    timestamp: int | None  # the signed timestamp (unix ms) in the timestamped scheme; else None


# --- finding the signed timestamp in a body, without parsing it ----------------------------------

_TIMESTAMP_KEY = b'"timestamp"'
# A key is followed by optional JSON whitespace, a colon, and the value. The whitespace is bounded
# (no sender pads more than this) so that a candidate costs a glance, and so is the number: more
# digits than an unsigned 64-bit integer has is not a timestamp anyone signed.
_TIMESTAMP_VALUE = re.compile(
    rb"[ \t\n\r]{0,64}:[ \t\n\r]{0,64}([0-9]{1,%d})(?![0-9])" % _MAX_TIMESTAMP_DIGITS
)
#: At most this many ``"timestamp"`` keys of a body are tried, half from each end.
MAX_TIMESTAMP_CANDIDATES = 8


def _candidate_at(body: bytes, key_at: int) -> bytes | None:
    value = _TIMESTAMP_VALUE.match(body, key_at + len(_TIMESTAMP_KEY))
    return None if value is None else value.group(1)


def _keys_from_the_end(body: bytes, limit: int) -> Iterator[int]:
    end = len(body)
    for _ in range(limit):
        end = body.rfind(_TIMESTAMP_KEY, 0, end)
        if end < 0:
            return
        yield end


def _keys_from_the_start(body: bytes, limit: int) -> Iterator[int]:
    start = 0
    for _ in range(limit):
        found = body.find(_TIMESTAMP_KEY, start)
        if found < 0:
            return
        yield found
        start = found + 1


def _timestamp_candidates(body: bytes) -> Iterator[bytes]:
    """The digits after the body's ``"timestamp"`` keys, as they were signed; a bounded scan.

    The official SDK signs the body's top-level ``timestamp``, which serialisers put after
    ``data``, so the scan takes keys alternately from the end and from the start of the body,
    ``MAX_TIMESTAMP_CANDIDATES`` at most. A key nested in ``data`` or the text of a string may be
    a candidate too: only the HMAC decides which, if any, was signed.
    """
    half = MAX_TIMESTAMP_CANDIDATES // 2
    from_end, from_start = _keys_from_the_end(body, half), _keys_from_the_start(body, half)
    seen_keys: set[int] = set()  # the two ends meet in a body with few keys
    seen_values: set[bytes] = set()  # a value repeated is hashed once
    for position in _alternate(from_end, from_start):
        if position in seen_keys:
            continue
        seen_keys.add(position)
        candidate = _candidate_at(body, position)
        if candidate is not None and candidate not in seen_values:
            seen_values.add(candidate)
            yield candidate


def _alternate(first: Iterator[int], second: Iterator[int]) -> Iterator[int]:
    while True:
        taken = False
        for source in (first, second):
            position = next(source, None)
            if position is not None:
                taken = True
                yield position
        if not taken:
            return


# --- authentication --------------------------------------------------------------------------


def _no_match(timestamp_given: bool, candidates: int) -> SignatureVerificationError:
    if timestamp_given:
        tried = "the timestamped scheme with the X-Webhook-Timestamp header, and the body scheme"
    elif candidates:
        tried = (
            f"the timestamped scheme with {candidates} timestamp(s) found in the body, "
            "and the body scheme"
        )
    else:
        tried = "the body scheme only: no X-Webhook-Timestamp header, no timestamp in the body"
    return SignatureVerificationError(
        f"signature does not match any configured secret; tried {tried}"
    )


def _authenticate(
    body: bytes, signature: str | bytes | None, keys: Secrets, timestamp: str | bytes | int | None
) -> tuple[int, Scheme, int | None]:
    """``authenticate`` as a plain tuple: the one-call verification's hot path."""
    digest = _parse_signature(signature)
    if timestamp is not None:
        signed = _parse_timestamp(timestamp)
        index = keys.match(digest, signed + b".", body)
        if index is not None:
            return index, "timestamped", int(signed)
        tried = 1
    else:
        # No header: the body's own timestamp, found without decoding anything unauthenticated.
        tried = 0
        for candidate in _timestamp_candidates(body):
            tried += 1
            index = keys.match(digest, candidate + b".", body)
            if index is not None:
                return index, "timestamped", int(candidate)
    index = keys.match(digest, body)
    if index is not None:
        return index, "body", None
    raise _no_match(timestamp is not None, tried)


def authenticate(
    body: bytes,
    signature: str | bytes | None,
    secrets: SecretsInput | Secrets,
    *,
    timestamp: str | bytes | int | None = None,
) -> Authenticated:
    """Check ``signature`` over the raw ``body`` against every secret, in both schemes.

    ``timestamp`` is the ``X-Webhook-Timestamp`` header when there is one; without it the body's
    ``"timestamp"`` values are located by a bounded byte scan and each is tried. Nothing is
    parsed. Raises :class:`SignatureVerificationError` saying what was missing or wrong.
    """
    raw = body if type(body) is bytes else _body_bytes(body)
    return Authenticated(*_authenticate(raw, signature, _secrets(secrets), timestamp))


# --- the replay window ----------------------------------------------------------------------------

#: A timestamp below this, read as unix milliseconds, is before March 1973: it is unix seconds.
_SECONDS_LOOK_BELOW = 10**11


def _stale(timestamp_ms: int, skew: float, tolerance: float) -> StaleDeliveryError:
    if 0 <= timestamp_ms < _SECONDS_LOOK_BELOW:
        as_ms = datetime.datetime.fromtimestamp(timestamp_ms / 1000, datetime.UTC)
        return StaleDeliveryError(
            f"timestamp outside the replay window: {timestamp_ms} looks like unix seconds, but "
            f"Messages.dev timestamps are unix milliseconds (as milliseconds it is "
            f"{as_ms:%Y-%m-%d %H:%M:%S} UTC; tolerance {tolerance:g} s)"
        )
    direction = "old" if skew > 0 else "in the future"
    return StaleDeliveryError(
        f"timestamp outside the replay window: {abs(skew):.0f} s {direction} "
        f"(tolerance {tolerance:g} s)"
    )


def check_window(timestamp_ms: int, tolerance: float | None, clock: Callable[[], float]) -> None:
    """Refuse a signed timestamp (unix ms) more than ``tolerance`` seconds from ``clock()``.

    ``tolerance=None`` turns the check off. Raises :class:`StaleDeliveryError`, whose message
    says how far off the timestamp is, and when it looks like seconds rather than milliseconds.
    """
    if tolerance is None:
        return
    try:
        skew = clock() - timestamp_ms / 1000
    except OverflowError:  # an integer too large for a float: far in the future
        skew = float("-inf")
    if not abs(skew) <= tolerance:  # "not <=" also refuses a NaN tolerance or clock
        raise _stale(timestamp_ms, skew, tolerance)


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
