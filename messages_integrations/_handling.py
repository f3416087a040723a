"""The framework-neutral webhook endpoint: request in, status and JSON body out.

Every adapter converts its framework's request into a method, headers and a body source, calls
:meth:`WebhookReceiver.handle` (or ``ahandle``), and converts the :class:`WebhookResponse` back.
All decisions of CONTRACT.md's HTTP table are taken here, and only here.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ._errors import InvalidPayloadError, SignatureVerificationError
from ._events import Event
from ._router import WebhookRouter, default_router
from ._signing import Secrets, SecretsInput, Verified, verify
from ._store import Claim, DeliveryStore, InMemoryDeliveryStore

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_TOLERANCE",
    "Accepted",
    "AsyncBodySource",
    "BodySource",
    "BodyTooLarge",
    "HeadersInput",
    "WebhookReceiver",
    "WebhookResponse",
]

logger = logging.getLogger("messages_integrations")

DEFAULT_TOLERANCE = 300.0
DEFAULT_MAX_BODY_SIZE = 1024 * 1024
DEFAULT_DEDUP_TTL = 24 * 60 * 60.0
DEFAULT_LEASE = 5 * 60.0
READ_CHUNK = 64 * 1024


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


#: The body of a request: the bytes, a file-like object to read, or an iterable of chunks.
BodySource = bytes | bytearray | memoryview | _Readable | Iterable[bytes]
#: What ``ahandle`` also accepts: an async iterable of chunks (an ASGI ``receive`` loop).
AsyncBodySource = BodySource | AsyncIterable[bytes]
#: Headers as a mapping (any case) or as (name, value) pairs, ASGI's raw bytes included.
HeadersInput = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """The answer to send back: a status, a small JSON body and a few headers."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    #: True when the request body was not read to its end: the connection should not be reused.
    close_connection: bool = False

    @property
    def asgi_headers(self) -> tuple[tuple[str, str], ...]:
        """:attr:`headers`, plus ``connection: close`` when the body was left unread.

        For ASGI servers; a WSGI application may not send that hop-by-hop header (PEP 3333), and
        its server drains or closes the connection itself.
        """
        if self.close_connection:
            return (*self.headers, ("connection", "close"))
        return self.headers

    @property
    def content_type(self) -> str:
        """The media type of :attr:`body`."""
        return "application/json"

    def json(self) -> dict[str, Any]:
        """The body, decoded."""
        result: dict[str, Any] = json.loads(self.body)
        return result


def _respond(
    status: int, payload: dict[str, Any], *extra: tuple[str, str], close: bool = False
) -> WebhookResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return WebhookResponse(status, body, (("content-type", "application/json"), *extra), close)


def _error(
    status: int, code: str, message: str, *extra: tuple[str, str], close: bool = False
) -> WebhookResponse:
    return _respond(status, {"error": code, "message": message}, *extra, close=close)


_METHOD_NOT_ALLOWED = _error(
    405, "method_not_allowed", "this endpoint accepts POST deliveries only", ("allow", "POST")
)
_HANDLER_FAILED = _error(500, "handler_failed", "a handler failed; the delivery may be retried")
_STORE_FAILED = _error(500, "store_failed", "the delivery could not be recorded; retry later")
_IN_PROGRESS = _error(
    409, "in_progress", "this delivery is still being handled; retry later", ("retry-after", "5")
)


class BodyTooLarge(Exception):
    """Raised by a body source when its framework already knows the body is over a limit.

    The receiver answers it with the same JSON 413 as a body it measured itself.
    """


@dataclass(frozen=True, slots=True)
class Accepted:
    """A verified delivery whose lease this request holds; pass it to ``finish`` when done."""

    event: Event[Any]
    key: str
    delivery_id: str | None
    secret_index: int


@dataclass(frozen=True, slots=True)
class _Headers:
    signature: str | None = None
    timestamp: str | None = None
    delivery_id: str | None = None
    content_length: str | None = None


_WANTED = {
    "x-webhook-signature": "signature",
    "x-webhook-timestamp": "timestamp",
    "x-webhook-delivery-id": "delivery_id",
    "content-length": "content_length",
}


def _pick_headers(headers: HeadersInput) -> _Headers:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, str] = {}
    for name, value in pairs:
        key = _WANTED.get((name.decode("latin-1") if isinstance(name, bytes) else name).lower())
        if key is not None and key not in found:
            found[key] = value.decode("latin-1") if isinstance(value, bytes) else value
    return _Headers(**found)


def _accumulate(buffer: bytearray, chunk: bytes, limit: int) -> None:
    # Checked before appending: the buffer never grows past the limit.
    if len(buffer) + len(chunk) > limit:
        raise BodyTooLarge
    buffer += chunk


def _read_body(source: BodySource, limit: int) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) > limit:
            raise BodyTooLarge
        return bytes(source)
    buffer = bytearray()
    if hasattr(source, "read"):
        read = source.read
        while True:
            # Ask for at most one byte past the limit, so a huge body is never pulled in.
            chunk = read(min(READ_CHUNK, limit + 1 - len(buffer)))
            if not chunk:
                return bytes(buffer)
            _accumulate(buffer, chunk, limit)
    for chunk in source:
        _accumulate(buffer, chunk, limit)
    return bytes(buffer)


async def _aread_body(source: AsyncBodySource, limit: int) -> bytes:
    if not isinstance(source, AsyncIterable):
        return _read_body(source, limit)
    buffer = bytearray()
    async for chunk in source:
        _accumulate(buffer, chunk, limit)
    return bytes(buffer)


class WebhookReceiver:
    """Answers deliveries as CONTRACT.md's HTTP table says: verify, de-duplicate, dispatch.

    ``secret`` is one secret or several (rotation, several lines). Handlers come from ``router``
    (the default router unless given). ``store`` remembers delivery ids; the default keeps them in
    this process's memory.
    """

    def __init__(
        self,
        *,
        secret: SecretsInput | Secrets,
        router: WebhookRouter | None = None,
        tolerance: float | None = DEFAULT_TOLERANCE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        store: DeliveryStore | None = None,
        dedup_ttl: float = DEFAULT_DEDUP_TTL,
        lease: float = DEFAULT_LEASE,
        thread_sensitive: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_body_size < 1:
            raise ValueError("max_body_size must be a positive number of bytes")
        if tolerance is not None and tolerance < 0:
            raise ValueError("tolerance must be a number of seconds, or None to turn it off")
        self.secrets = secret if isinstance(secret, Secrets) else Secrets(secret)
        self.router = router if router is not None else default_router
        self.tolerance = tolerance
        self.max_body_size = max_body_size
        self.store = store if store is not None else InMemoryDeliveryStore()
        self.dedup_ttl = dedup_ttl
        self.lease = lease
        self.thread_sensitive = thread_sensitive
        self.clock = clock

    def __repr__(self) -> str:
        return (
            f"<WebhookReceiver {self.secrets!r} tolerance={self.tolerance} "
            f"max_body_size={self.max_body_size}>"
        )

    # --- the steps shared by handle() and ahandle() ---------------------------------------------

    def _precheck(self, method: str, headers: _Headers) -> WebhookResponse | None:
        if method.upper() != "POST":
            return _METHOD_NOT_ALLOWED
        declared = (headers.content_length or "").strip()
        # A blank Content-Length (some gateways pass one on) is the same as none.
        if declared:
            if not declared.isdigit() or not declared.isascii():
                return _error(400, "invalid_request", "Content-Length is not a number")
            if int(declared) > self.max_body_size:
                return self._too_large(headers)
        return None

    def _too_large(self, headers: _Headers) -> WebhookResponse:
        logger.warning(
            "refused delivery %s: body larger than %d bytes",
            headers.delivery_id or "(no id)",
            self.max_body_size,
        )
        return _error(
            413, "payload_too_large", f"the body exceeds {self.max_body_size} bytes", close=True
        )

    def _authenticate(self, headers: _Headers, body: bytes) -> Verified | WebhookResponse:
        try:
            verified = verify(
                body,
                headers.signature,
                self.secrets,
                timestamp=headers.timestamp,
                tolerance=self.tolerance,
                clock=self.clock,
            )
        except SignatureVerificationError as exc:
            logger.warning("refused delivery %s: %s", headers.delivery_id or "(no id)", exc)
            return _error(401, "invalid_signature", str(exc))
        except InvalidPayloadError as exc:
            logger.warning(
                "refused delivery %s: authenticated but invalid: %s",
                headers.delivery_id or "(no id)",
                exc,
            )
            return _error(400, "invalid_payload", str(exc))
        event = verified.event
        logger.debug(
            "delivery %s (%s) verified by the secret at position %d of %d, %s scheme",
            _delivery_id(verified, headers),
            event.event,
            verified.secret_index,
            len(self.secrets),
            verified.scheme,
        )
        return verified

    def _key(self, verified: Verified, headers: _Headers) -> Accepted:
        delivery_id = _delivery_id(verified, headers)
        if delivery_id:
            key = f"delivery:{delivery_id}"
        else:
            # No id at all: the signature itself, so that an exact replay is still caught.
            key = f"signature:{(headers.signature or '').strip().lower()}"
        return Accepted(verified.event, key, delivery_id, verified.secret_index)

    @staticmethod
    def _claimed(claim: Claim, accepted: Accepted) -> Accepted | WebhookResponse:
        if claim is Claim.NEW:
            return accepted
        name = accepted.event.event
        if claim is Claim.DONE:
            logger.info(
                "delivery %s (%s) already handled; handlers not run again",
                accepted.delivery_id,
                name,
            )
            return _respond(
                200, {"status": "duplicate", "event": name, "delivery_id": accepted.delivery_id}
            )
        logger.info(
            "delivery %s (%s) is still being handled; answered 409", accepted.delivery_id, name
        )
        return _IN_PROGRESS

    @staticmethod
    def _handled(accepted: Accepted, error: BaseException | None) -> WebhookResponse:
        name = accepted.event.event
        if error is not None:
            logger.error(
                "handler failed for delivery %s (%s)", accepted.delivery_id, name, exc_info=error
            )
            return _HANDLER_FAILED
        return _respond(200, {"status": "ok", "event": name, "delivery_id": accepted.delivery_id})

    @staticmethod
    def _store_failed(accepted: Accepted) -> WebhookResponse:
        logger.exception(
            "delivery store failed for delivery %s (%s)", accepted.delivery_id, accepted.event.event
        )
        return _STORE_FAILED

    def _read(self, headers: _Headers, read: Callable[[], bytes]) -> bytes | WebhookResponse:
        try:
            return read()
        except BodyTooLarge:
            return self._too_large(headers)
        except OSError:
            return _error(400, "invalid_request", "the body could not be read")

    # --- the entry points -----------------------------------------------------------------------

    def receive(
        self, method: str, headers: HeadersInput, body: BodySource
    ) -> Accepted | WebhookResponse:
        """Check a request and take its delivery's lease; or return the refusal to send.

        An :class:`Accepted` delivery must be passed to :meth:`finish` once handled. Use this to
        run your own code instead of the router (a decorated view); :meth:`handle` does both.
        """
        picked = _pick_headers(headers)
        early = self._precheck(method, picked)
        if early is not None:
            return early
        raw = self._read(picked, lambda: _read_body(body, self.max_body_size))
        if isinstance(raw, WebhookResponse):
            return raw
        verified = self._authenticate(picked, raw)
        if isinstance(verified, WebhookResponse):
            return verified
        accepted = self._key(verified, picked)
        try:
            claim = self.store.claim(accepted.key, lease=self.lease)
        except Exception:  # noqa: BLE001 - a store outage is a 500, never a crash
            return self._store_failed(accepted)
        return self._claimed(claim, accepted)

    def finish(self, accepted: Accepted, error: BaseException | None = None) -> WebhookResponse:
        """Record the outcome of an accepted delivery and return the answer for it.

        Success marks the delivery done; an ``error`` releases it so that a retry runs in full.
        """
        try:
            if error is None:
                self.store.complete(accepted.key, ttl=self.dedup_ttl)
            else:
                self.store.release(accepted.key)
        except Exception:  # noqa: BLE001
            return self._store_failed(accepted)
        return self._handled(accepted, error)

    def handle(self, method: str, headers: HeadersInput, body: BodySource) -> WebhookResponse:
        """Answer one request from sync code (WSGI). Handlers run in this thread."""
        accepted = self.receive(method, headers, body)
        if isinstance(accepted, WebhookResponse):
            return accepted
        try:
            self.router.dispatch(accepted.event)
        except Exception as exc:  # noqa: BLE001 - the handler's error is logged, never sent
            return self.finish(accepted, exc)
        return self.finish(accepted)

    async def areceive(
        self, method: str, headers: HeadersInput, body: AsyncBodySource
    ) -> Accepted | WebhookResponse:
        """Async :meth:`receive`: the body may be an async iterable of chunks."""
        picked = _pick_headers(headers)
        early = self._precheck(method, picked)
        if early is not None:
            return early
        try:
            raw: bytes | WebhookResponse = await _aread_body(body, self.max_body_size)
        except BodyTooLarge:
            raw = self._too_large(picked)
        except OSError:
            raw = _error(400, "invalid_request", "the body could not be read")
        if isinstance(raw, WebhookResponse):
            return raw
        verified = self._authenticate(picked, raw)
        if isinstance(verified, WebhookResponse):
            return verified
        accepted = self._key(verified, picked)
        try:
            claim = await self.store.aclaim(accepted.key, lease=self.lease)
        except Exception:  # noqa: BLE001
            return self._store_failed(accepted)
        return self._claimed(claim, accepted)

    async def afinish(
        self, accepted: Accepted, error: BaseException | None = None
    ) -> WebhookResponse:
        """Async :meth:`finish`."""
        try:
            if error is None:
                await self.store.acomplete(accepted.key, ttl=self.dedup_ttl)
            else:
                await self.store.arelease(accepted.key)
        except Exception:  # noqa: BLE001
            return self._store_failed(accepted)
        return self._handled(accepted, error)

    async def ahandle(
        self, method: str, headers: HeadersInput, body: AsyncBodySource
    ) -> WebhookResponse:
        """Answer one request from async code (ASGI). Sync handlers run in a worker thread."""
        accepted = await self.areceive(method, headers, body)
        if isinstance(accepted, WebhookResponse):
            return accepted
        try:
            await self.router.adispatch(accepted.event, thread_sensitive=self.thread_sensitive)
        except Exception as exc:  # noqa: BLE001
            return await self.afinish(accepted, exc)
        except BaseException:
            # Cancelled (a server shutting down, a client gone): release the lease at once, without
            # awaiting in a cancelled task, or every retry would get 409 until the lease expires.
            self._release_now(accepted)
            raise
        return await self.afinish(accepted)

    def _release_now(self, accepted: Accepted) -> None:
        try:
            self.store.release(accepted.key)
        except Exception:  # the cancellation that brought us here matters more
            logger.exception("could not release delivery %s", accepted.delivery_id)


def _delivery_id(verified: Verified, headers: _Headers) -> str | None:
    return verified.event.delivery_id or headers.delivery_id
