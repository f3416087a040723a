"""The framework-neutral webhook endpoint: request in, status and JSON body out.

One delivery travels one straight path, the same in sync and async code::

    bounded read -> authenticate -> decode -> replay window -> claim -> dispatch -> finish

Each step either passes or raises; :func:`_refusal` turns what was raised into the answer, and
:meth:`Delivery._conclude` ends every delivery in one outcome (a log record, the observers).
Adapters convert their request into a method, headers and a body source, call
:meth:`WebhookReceiver.handle` (or ``ahandle``, or ``accept`` for their own code), and convert
the :class:`WebhookResponse` back. Every decision of the HTTP table is taken here, and only here.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets as _random
import threading
import time
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Final, Protocol

import msgspec

from . import _outcomes
from ._config import (
    DEFAULT_DEDUP_TTL,
    DEFAULT_LEASE,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_TOLERANCE,
    Options,
    coerce_max_body_size,
    coerce_on_store_error,
    coerce_tolerance,
)
from ._errors import (
    ConfigurationError,
    InvalidPayloadError,
    SignatureVerificationError,
    StaleDeliveryError,
    WebhookError,
)
from ._events import Event, decode_event
from ._outcomes import (
    GLOBAL_OBSERVERS,
    DeliveryRecord,
    DeliverySpan,
    HandlerRecord,
    HandlersStarted,
    Metering,
    Observers,
    Outcome,
)
from ._router import WebhookRouter, default_router
from ._signing import Authenticated, Secrets, SecretsInput, authenticate, check_window
from ._store import Claim, DeliveryStore, InMemoryDeliveryStore

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_TOLERANCE",
    "AsyncBodySource",
    "BodySource",
    "BodyTooLarge",
    "Delivery",
    "HeadersInput",
    "Refused",
    "WebhookReceiver",
    "WebhookResponse",
    "not_configured",
]

logger = logging.getLogger("messages_integrations")

READ_CHUNK: Final = 64 * 1024
#: Seconds a sender is asked to wait before retrying a delivery refused for an outage.
RETRY_AFTER: Final = "5"


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


#: The body of a request: the bytes, a file-like object to read, or an iterable of chunks.
BodySource = bytes | bytearray | memoryview | _Readable | Iterable[bytes]
#: What ``ahandle`` also accepts: an async iterable of chunks (an ASGI ``receive`` loop).
AsyncBodySource = BodySource | AsyncIterable[bytes]
#: Headers as a mapping (any case) or as (name, value) pairs, ASGI's raw bytes included.
HeadersInput = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]


# A Struct rather than a frozen dataclass: as immutable, built in a fraction of the time, once
# per delivery.
class WebhookResponse(msgspec.Struct, frozen=True, gc=False):
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


_JSON: Final = ("content-type", "application/json")


_encode: Final = msgspec.json.Encoder().encode


def _respond(
    status: int, payload: dict[str, Any], *extra: tuple[str, str], close: bool = False
) -> WebhookResponse:
    return WebhookResponse(status, _encode(payload), (_JSON, *extra), close)


def _error(
    status: int, code: str, message: str, *extra: tuple[str, str], close: bool = False
) -> WebhookResponse:
    return _respond(status, {"error": code, "message": message}, *extra, close=close)


_METHOD_NOT_ALLOWED: Final = _error(
    405, "method_not_allowed", "this endpoint accepts POST deliveries only", ("allow", "POST")
)
_HANDLER_FAILED: Final = _error(
    500, "handler_failed", "a handler failed; the delivery may be retried"
)
_STORE_FAILED: Final = _error(
    503,
    "store_unavailable",
    "the delivery could not be recorded; retry later",
    ("retry-after", RETRY_AFTER),
)
_QUEUE_FAILED: Final = _error(
    503,
    "queue_unavailable",
    "the delivery could not be queued; retry later",
    ("retry-after", RETRY_AFTER),
)
_IN_PROGRESS: Final = _error(
    409,
    "in_progress",
    "this delivery is still being handled; retry later",
    ("retry-after", RETRY_AFTER),
)
_NOT_CONFIGURED: Final = _error(
    500, "not_configured", "the webhook endpoint is not configured; see the server log"
)


class BodyTooLarge(Exception):
    """Raised by a body source when its framework already knows the body is over a limit.

    The receiver answers it with the same JSON 413 as a body it measured itself.
    """


class Refused(WebhookError):
    """A delivery that :meth:`WebhookReceiver.accept` did not hand over; send :attr:`response`."""

    def __init__(self, response: WebhookResponse, outcome: Outcome) -> None:
        super().__init__(outcome)
        self.response = response
        self.outcome = outcome


class _MethodNotAllowed(Exception):
    pass


class _Duplicate(Exception):
    pass


class _InProgress(Exception):
    pass


class _StoreUnavailable(Exception):
    pass


class QueueUnavailable(Exception):
    """The task queue's broker did not accept a background job (answered 503, claim released)."""


class _Request:
    """The few headers the receiver reads, picked from the request's in one pass."""

    __slots__ = ("content_length", "delivery_id", "several_signatures", "signature", "timestamp")

    def __init__(self, found: dict[str, str], several_signatures: bool) -> None:
        get = found.get
        self.signature = get("signature")
        self.timestamp = get("timestamp")
        self.delivery_id = get("delivery_id")  # the unsigned header: for log lines, never the key
        self.content_length = get("content_length")
        # WSGI servers join repeated headers with commas; a hex signature never has one.
        self.several_signatures = several_signatures or "," in (self.signature or "")


_WANTED: Final = {
    "x-webhook-signature": "signature",
    "x-webhook-timestamp": "timestamp",
    "x-webhook-delivery-id": "delivery_id",
    "content-length": "content_length",
}
#: The same names as ASGI's raw headers (lowercase bytes), looked up without decoding each name.
_WANTED_ANY: Final[dict[str | bytes, str]] = {
    spelling: key for name, key in _WANTED.items() for spelling in (name, name.encode("latin-1"))
}
#: Where a WSGI environ (and Django's ``request.META``) keeps each of them.
_ENVIRON_KEYS: Final = (
    ("x-webhook-signature", "HTTP_X_WEBHOOK_SIGNATURE"),
    ("x-webhook-timestamp", "HTTP_X_WEBHOOK_TIMESTAMP"),
    ("x-webhook-delivery-id", "HTTP_X_WEBHOOK_DELIVERY_ID"),
    ("content-length", "CONTENT_LENGTH"),
)


def environ_headers(environ: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The headers the receiver reads, taken from a WSGI environ (or Django's ``request.META``).

    Much cheaper than a framework's headers object, which converts every header's name.
    """
    return [(name, environ[key]) for name, key in _ENVIRON_KEYS if key in environ]


def _pick_headers(headers: HeadersInput) -> _Request:
    pairs: Iterable[tuple[str | bytes, str | bytes]]
    # A list (ASGI's, environ_headers') skips the check for a Mapping, an ABC's and slower.
    if type(headers) is not list and isinstance(headers, Mapping):
        pairs = headers.items()
    else:
        pairs = headers
    found: dict[str, str] = {}
    several = False
    for name, value in pairs:
        key = _WANTED_ANY.get(name)
        if key is None:
            # Other names, and ours in another case: no decoding for the ones we skip.
            key = _WANTED_ANY.get(name.lower() if type(name) is bytes else str(name).lower())
            if key is None:
                continue
        if key in found:
            several = several or key == "signature"
        else:
            found[key] = value.decode("latin-1") if isinstance(value, bytes) else value
    return _Request(found, several)


class _Chunks:
    """A body as the chunks read, joined once at the end, never past the limit.

    Growing one buffer would copy it (realloc) whenever it outgrows its allocation, briefly
    holding the body twice: measured, that doubled a refused body's cost under gunicorn.
    """

    __slots__ = ("limit", "parts", "size")

    def __init__(self, limit: int) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.limit = limit

    def add(self, chunk: bytes) -> None:
        # Checked before keeping it: what is held never grows past the limit.
        if self.size + len(chunk) > self.limit:
            self.parts.clear()
            raise BodyTooLarge
        if chunk:
            self.parts.append(bytes(chunk))
            self.size += len(chunk)

    def join(self) -> bytes:
        return self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)


def _read_body(source: BodySource, limit: int, declared: int | None = None) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) > limit:
            raise BodyTooLarge
        return bytes(source)
    chunks = _Chunks(limit)
    if hasattr(source, "read"):
        read = source.read
        # Ask for at most one byte past the limit, so a huge body is never pulled in, and never
        # past a declared length: PEP 3333 lets a server block there.
        most = limit + 1 if declared is None else declared
        while True:
            chunk = read(min(READ_CHUNK, most - chunks.size))
            if not chunk:
                return chunks.join()
            chunks.add(chunk)
            if chunks.size == declared:
                # All that was declared: a server's stream ends there, no need to ask it again.
                return chunks.join()
    for chunk in source:
        chunks.add(chunk)
    return chunks.join()


async def _aread_body(source: AsyncBodySource, limit: int, declared: int | None) -> bytes:
    if not isinstance(source, AsyncIterable):
        return _read_body(source, limit, declared)
    chunks = _Chunks(limit)
    async for chunk in source:
        chunks.add(chunk)
    return chunks.join()


class Delivery:
    """One request on its way through the receiver, and how it ended.

    Use it as ``with receiver.accept(...) as event:`` (or ``async with``): entering reads,
    verifies and claims the delivery, or raises :class:`Refused`; leaving marks it done, or
    releases it when the block raised (or was cancelled) so that the sender's retry runs in full.
    :attr:`response` is the answer to send once the block has ended.
    """

    __slots__ = (
        "_body",
        "_meter",
        "_method",
        "_raw",
        "_request",
        "_span",
        "_span_scope",
        "_started",
        "authenticated",
        "event",
        "handled",
        "key",
        "outcome",
        "queued",
        "receiver",
        "response",
        "token",
    )

    def __init__(
        self, receiver: WebhookReceiver, method: str, headers: HeadersInput, body: Any
    ) -> None:
        self._started = time.perf_counter()
        self.receiver = receiver
        self._method = method
        self._request = _pick_headers(headers)
        self._body = body
        self._raw = b""
        self.authenticated: Authenticated | None = None
        self.event: Event[Any] | None = None
        self.key = ""
        self.token = ""
        self.queued = False
        self.handled = False
        self.outcome: Outcome | None = None
        self.response: WebhookResponse | None = None
        self._meter: Metering | None = None
        tracer = _outcomes.tracing
        self._span_scope: AbstractContextManager[DeliverySpan] | None = None
        self._span: DeliverySpan | None = None
        if tracer is not None:
            self._span_scope = tracer.delivery()
            self._span = self._span_scope.__enter__()

    # --- the steps, in order ----------------------------------------------------------------

    def _precheck(self) -> int | None:
        """Refuse what the method and headers alone refuse; return the declared body size."""
        request = self._request
        if self._method.upper() != "POST":
            raise _MethodNotAllowed
        text = (request.content_length or "").strip()
        # A blank Content-Length (some gateways pass one on) is the same as none.
        declared = None
        if text:
            if not text.isdigit() or not text.isascii():
                raise InvalidPayloadError("Content-Length is not a number")
            declared = int(text)
            if declared > self.receiver.max_body_size:
                raise BodyTooLarge
        if request.several_signatures:
            raise SignatureVerificationError(
                "several X-Webhook-Signature headers: a delivery carries exactly one"
            )
        return declared

    def _verify(self, raw: bytes) -> None:
        receiver, request = self.receiver, self._request
        self._raw = raw
        self.authenticated = authenticate(
            raw, request.signature, receiver.secrets, timestamp=request.timestamp
        )
        self.event = event = decode_event(raw)
        signed = self.authenticated.timestamp
        check_window(
            event.timestamp if signed is None else signed, receiver.tolerance, receiver.clock
        )
        # The body's delivery_id is signed; without one, the signature itself (an exact replay).
        self.key = (
            f"delivery:{event.delivery_id}"
            if event.delivery_id
            else f"signature:{(request.signature or '').strip().lower()}"
        )
        self.token = _new_token(receiver.store)

    def _claimed(self, claim: Claim | None) -> None:
        if claim is Claim.DONE:
            raise _Duplicate
        if claim is Claim.IN_PROGRESS:
            raise _InProgress
        if claim is Claim.NEW:
            self.receiver._heartbeat.hold(self)
        self.handled = True
        meter = _outcomes.metering
        if meter is not None:
            self._meter = meter  # the one to count the delivery down at its end
            meter.started()
        observers = self.receiver.observers.current()
        if observers:
            assert self.event is not None
            started = HandlersStarted(self.event.event, self.event.delivery_id)
            self.receiver.observers.notify(started, observers)

    def __enter__(self) -> Event[Any]:
        receiver = self.receiver
        try:
            declared = self._precheck()
            raw = _read_body(self._body, receiver.max_body_size, declared)
            self._verify(raw)
            self._claimed(receiver._claim(self))
        except Exception as exc:  # noqa: BLE001 - every refusal becomes its answer
            raise self._refuse(exc) from None
        assert self.event is not None
        return self.event

    async def __aenter__(self) -> Event[Any]:
        receiver = self.receiver
        try:
            declared = self._precheck()
            raw = await _aread_body(self._body, receiver.max_body_size, declared)
            self._verify(raw)
            self._claimed(await receiver._aclaim(self))
        except Exception as exc:  # noqa: BLE001
            raise self._refuse(exc) from None
        assert self.event is not None
        return self.event

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        receiver = self.receiver
        receiver._heartbeat.drop(self)
        if error is None:
            self._done(receiver._complete(self))
        else:
            receiver._release(self)
            self._failed(error)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        receiver = self.receiver
        receiver._heartbeat.drop(self)
        if error is None:
            self._done(await receiver._acomplete(self))
        elif isinstance(error, Exception):
            await receiver._arelease(self)
            self._failed(error)
        else:
            # Cancelled (a server shutting down, a client gone): release without awaiting in a
            # cancelled task, or every retry would get 409 until the lease expires.
            receiver._release_soon(self)
            self._failed(error)

    @property
    def body(self) -> bytes:
        """The body as read and verified (empty before the delivery is accepted)."""
        return self._raw

    # --- the handlers ---------------------------------------------------------------------------

    def dispatch(self) -> None:
        """Run the event's inline handlers, then queue its background ones (if any)."""
        assert self.event is not None, "dispatch() runs inside 'with receiver.accept(...)'"
        receiver = self.receiver
        receiver.router.dispatch(self.event, observer=self._handler_observer())
        if receiver.queue is not None:
            receiver._enqueue(self)

    async def adispatch(self) -> None:
        """Async :meth:`dispatch`: sync handlers run in a worker thread."""
        assert self.event is not None, "adispatch() runs inside 'async with receiver.accept(...)'"
        receiver = self.receiver
        await receiver.router.adispatch(
            self.event,
            thread_sensitive=receiver.thread_sensitive,
            observer=self._handler_observer(),
        )
        if receiver.queue is not None:
            await receiver._aenqueue(self)

    def _handler_observer(self) -> Callable[[HandlerRecord], None] | None:
        observers = self.receiver.observers
        current = observers.current()
        if not current:
            return None
        return lambda record: observers.notify(record, current)

    # --- the answers ------------------------------------------------------------------------

    def _refuse(self, exc: Exception) -> Refused:
        response, outcome = _refusal(exc, self.receiver)
        if outcome == "duplicate":
            assert self.event is not None
            payload = {
                "status": "duplicate",
                "event": self.event.event,
                "delivery_id": self.event.delivery_id,
            }
            response = _respond(200, payload)
        if outcome == "store_failed":
            logger.error(
                "delivery store failed for delivery %s (%s); answered 503",
                self.delivery_id,
                self.event_name,
                exc_info=exc.__cause__ or exc,
            )
        # Some refusals carry no text of their own (an oversized body, a GET): the answer says why.
        reason = str(exc) or response.json().get("message", "")
        self._conclude(outcome, response, reason=reason)
        return Refused(response, outcome)

    def _done(self, recorded: bool) -> None:
        outcome: Outcome
        event = self.event
        assert event is not None
        if not recorded:
            logger.error(
                "delivery %s (%s) was handled but could not be marked done; a retry may run "
                "its handlers again",
                self.delivery_id,
                event.event,
            )
        status, outcome = 200, "ok"
        if self.queued and not self._has_inline():
            status, outcome = 202, "queued"
        payload = {"status": outcome, "event": event.event, "delivery_id": event.delivery_id}
        self._conclude(outcome, _respond(status, payload))

    def _has_inline(self) -> bool:
        assert self.event is not None
        return bool(self.receiver.router.handlers_for(self.event.event))

    def _failed(self, error: BaseException) -> None:
        if isinstance(error, QueueUnavailable):
            logger.error(
                "the task queue refused delivery %s (%s); answered 503 and released it",
                self.delivery_id,
                self.event_name,
                exc_info=error.__cause__ or error,
            )
            self._conclude("store_failed", _QUEUE_FAILED)
            return
        if isinstance(error, Exception):
            logger.error(
                "handler failed for delivery %s (%s)",
                self.delivery_id,
                self.event_name,
                exc_info=error,
            )
        self._conclude("handler_failed", _HANDLER_FAILED)

    @property
    def delivery_id(self) -> str | None:
        """The delivery id: the signed body's once verified, the header's before that."""
        if self.event is not None and self.event.delivery_id:
            return self.event.delivery_id
        return self._request.delivery_id

    @property
    def event_name(self) -> str | None:
        """The event's name, once the body was decoded."""
        return None if self.event is None else self.event.event

    def _conclude(self, outcome: Outcome, response: WebhookResponse, reason: str = "") -> None:
        self.outcome, self.response = outcome, response
        receiver = self.receiver
        level = _LEVELS[outcome]
        meter = _outcomes.metering
        if meter is not None:
            event = self.event
            meter.delivered(None if event is None else event.event, outcome, self._meter is meter)
        observers = receiver.observers.current()
        if not observers and self._span is None and not logger.isEnabledFor(level):
            return
        position = None if self.authenticated is None else self.authenticated.secret_index + 1
        record = DeliveryRecord(
            outcome=outcome,
            http_status=response.status,
            event=self.event_name,
            delivery_id=self.delivery_id,
            duration_s=time.perf_counter() - self._started,
            secret_position=position,
            reason=reason,
            handled=self.handled,
        )
        if self._span is not None and self._span_scope is not None:
            self._span.conclude(record)
            self._span_scope.__exit__(None, None, None)
        if logger.isEnabledFor(level):
            verified = self.authenticated
            logger.log(
                level,
                "delivery %s (%s): %s, %d%s",
                record.delivery_id or "(no id)",
                record.event or "unknown event",
                outcome,
                response.status,
                f" ({reason})"
                if reason
                else f", verified by secret {position} of {len(receiver.secrets)}, "
                f"{verified.scheme} scheme"
                if verified is not None
                else "",
                extra=record.log_extra(),
            )
        receiver.observers.notify(record, observers)


_LEVELS: Final[dict[str, int]] = {
    "ok": logging.INFO,
    "queued": logging.INFO,
    "duplicate": logging.INFO,
    "in_progress": logging.INFO,
    # A flood of forged or malformed requests must not flood the log at WARNING: the metrics
    # count them, and the messages say why at INFO.
    "refused_signature": logging.INFO,
    "refused_stale": logging.INFO,
    "refused_payload": logging.INFO,
    "refused_size": logging.INFO,
    "refused_method": logging.DEBUG,
    "handler_failed": logging.WARNING,
    "store_failed": logging.WARNING,
    "not_configured": logging.ERROR,
}


def _refusal(exc: Exception, receiver: WebhookReceiver) -> tuple[WebhookResponse, Outcome]:
    """The answer and outcome for whatever stopped a delivery before its handlers."""
    if isinstance(exc, _Duplicate):
        return _DUPLICATE_PLACEHOLDER, "duplicate"
    if isinstance(exc, _InProgress):
        return _IN_PROGRESS, "in_progress"
    if isinstance(exc, StaleDeliveryError):
        return _error(401, "invalid_signature", str(exc)), "refused_stale"
    if isinstance(exc, SignatureVerificationError):
        return _error(401, "invalid_signature", str(exc)), "refused_signature"
    if isinstance(exc, InvalidPayloadError):
        return _error(400, "invalid_payload", str(exc)), "refused_payload"
    if isinstance(exc, BodyTooLarge):
        message = f"the body exceeds {receiver.max_body_size} bytes"
        return _error(413, "payload_too_large", message, close=True), "refused_size"
    if isinstance(exc, _MethodNotAllowed):
        return _METHOD_NOT_ALLOWED, "refused_method"
    if isinstance(exc, _StoreUnavailable):
        return _STORE_FAILED, "store_failed"
    if isinstance(exc, OSError):
        # The client went away, or the server could not give us its body.
        return _error(400, "invalid_request", "the body could not be read"), "refused_payload"
    raise exc


_DUPLICATE_PLACEHOLDER: Final = _respond(200, {"status": "duplicate"})  # named per delivery


def _new_token(store: DeliveryStore) -> str:
    """A lease's token: it only has to differ from every other holder's of the same store."""
    if type(store) is InMemoryDeliveryStore:
        # Every holder is in this process: a process-wide counter is unique, at no syscall.
        return str(next(_LOCAL_TOKENS))
    # A shared store is held from other processes and machines too: only chance keeps apart.
    return _random.token_hex(16)


_LOCAL_TOKENS: Final = itertools.count(1)


class _Heartbeat:
    """Renews the leases of deliveries whose handlers run long, from one daemon thread.

    A lease is short (``lease`` seconds) so that a crashed process frees its delivery soon; while
    the process lives, its leases are extended every third of that.
    """

    def __init__(self, store: DeliveryStore, lease: float) -> None:
        self._store = store
        self._lease = lease
        self._held: dict[Delivery, float] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # One dict operation each, atomic on its own: no lock on the path every delivery takes.
    def hold(self, delivery: Delivery) -> None:
        self._held[delivery] = delivery._started
        if self._thread is None:
            self._start()

    def drop(self, delivery: Delivery) -> None:
        self._held.pop(delivery, None)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="messages-webhooks-lease", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        period = self._lease / 3
        while True:
            time.sleep(period)
            now = time.perf_counter()  # the clock of Delivery._started
            # A copy, taken in one step, while deliveries come and go.
            due = [d for d, since in self._held.copy().items() if now - since >= period]
            for delivery in due:
                try:
                    kept = self._store.extend(delivery.key, delivery.token, lease=self._lease)
                except Exception:  # noqa: BLE001 - the next beat tries again
                    logger.warning(
                        "could not extend the lease of delivery %s", delivery.delivery_id
                    )
                    continue
                if not kept:
                    logger.warning(
                        "delivery %s lost its lease while its handlers ran; a retry may run them "
                        "again",
                        delivery.delivery_id,
                    )


class WebhookReceiver:
    """Answers deliveries as the HTTP table says: verify, de-duplicate, dispatch.

    ``secret`` is one secret or several (rotation, several lines). Handlers come from ``router``
    (the default router unless given). ``store`` remembers delivery ids; the default keeps them in
    this process's memory. ``queue`` runs background handlers (``@on(..., background=True)``).
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
        queue: Any = None,
        on_store_error: str = "refuse",
        thread_sensitive: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secrets = secret if isinstance(secret, Secrets) else Secrets(secret)
        self.router = router if router is not None else default_router
        self.tolerance = coerce_tolerance(tolerance, "tolerance=")
        self.max_body_size = coerce_max_body_size(max_body_size, "max_body_size=")
        self.store = store if store is not None else InMemoryDeliveryStore()
        if dedup_ttl <= 0 or lease <= 0:
            raise ConfigurationError("dedup_ttl= and lease= must be more than 0 seconds")
        self.dedup_ttl = dedup_ttl
        self.lease = lease
        self.queue = queue
        self.on_store_error = coerce_on_store_error(on_store_error, "on_store_error=")
        self.thread_sensitive = thread_sensitive
        self.clock = clock
        self.observers = Observers(parent=GLOBAL_OBSERVERS)
        self._heartbeat = _Heartbeat(self.store, lease)
        self._check_queue()

    @classmethod
    def from_options(
        cls, options: Options, *, store: DeliveryStore | None = None, thread_sensitive: bool = False
    ) -> WebhookReceiver:
        """A receiver for a resolved settings snapshot; ``store`` when the options name none."""
        return cls(
            secret=options.secret,
            router=options.router,
            tolerance=options.tolerance,
            max_body_size=options.max_body_size,
            store=options.store if options.store is not None else store,
            dedup_ttl=options.dedup_ttl,
            lease=options.lease,
            queue=options.queue,
            on_store_error=options.on_store_error,
            thread_sensitive=thread_sensitive,
        )

    def __repr__(self) -> str:
        return (
            f"<WebhookReceiver {self.secrets!r} tolerance={self.tolerance} "
            f"max_body_size={self.max_body_size}>"
        )

    def _check_queue(self) -> None:
        # Fail at start-up, never at the first delivery.
        if self.queue is None and self.router.needs_queue():
            raise ConfigurationError(
                "background handlers are registered but no task queue is configured: pass "
                "queue=... or set MESSAGES_WEBHOOK_QUEUE (a CeleryQueue or DjangoTasksQueue)"
            )

    # --- the entry points -----------------------------------------------------------------------

    def accept(self, method: str, headers: HeadersInput, body: BodySource) -> Delivery:
        """A scoped delivery: ``with receiver.accept(...) as event:`` runs your code on it.

        Entering raises :class:`Refused` (send its ``response``) for anything but a verified
        delivery not handled before. Leaving marks it done, or releases it for a retry when the
        block raised; then ``delivery.response`` is the answer.
        """
        return Delivery(self, method, headers, body)

    def handle(self, method: str, headers: HeadersInput, body: BodySource) -> WebhookResponse:
        """Answer one request from sync code (WSGI). Handlers run in this thread."""
        delivery = Delivery(self, method, headers, body)
        try:
            with delivery:
                delivery.dispatch()
        except Refused as refused:
            return refused.response
        except Exception:  # noqa: BLE001, S110 - logged and answered 500 by the delivery
            pass
        assert delivery.response is not None
        return delivery.response

    async def ahandle(
        self, method: str, headers: HeadersInput, body: AsyncBodySource
    ) -> WebhookResponse:
        """Answer one request from async code (ASGI). Sync handlers run in a worker thread."""
        delivery = Delivery(self, method, headers, body)
        try:
            async with delivery:
                await delivery.adispatch()
        except Refused as refused:
            return refused.response
        except Exception:  # noqa: BLE001, S110
            pass
        assert delivery.response is not None
        return delivery.response

    def aaccept(self, method: str, headers: HeadersInput, body: AsyncBodySource) -> Delivery:
        """:meth:`accept` for ``async with``: the body may be an async iterable of chunks."""
        return Delivery(self, method, headers, body)

    # --- the store and the queue, each call guarded -------------------------------------------

    def _claim(self, delivery: Delivery) -> Claim | None:
        try:
            return self.store.claim(delivery.key, delivery.token, lease=self.lease)
        except Exception as exc:  # noqa: BLE001 - an outage of any kind is a 503
            self._store_down(exc)
            return None

    async def _aclaim(self, delivery: Delivery) -> Claim | None:
        try:
            return await self.store.aclaim(delivery.key, delivery.token, lease=self.lease)
        except Exception as exc:  # noqa: BLE001
            self._store_down(exc)
            return None

    def _store_down(self, exc: Exception) -> None:
        if self.on_store_error != "handle":
            raise _StoreUnavailable from exc
        logger.error(
            "delivery store unreachable: handling the delivery WITHOUT de-duplication "
            "(on_store_error='handle')",
            exc_info=exc,
        )

    def _complete(self, delivery: Delivery) -> bool:
        try:
            return self.store.complete(delivery.key, delivery.token, ttl=self.dedup_ttl)
        except Exception:  # noqa: BLE001 - the work is done: still a 200, logged by _done
            return False

    async def _acomplete(self, delivery: Delivery) -> bool:
        try:
            return await self.store.acomplete(delivery.key, delivery.token, ttl=self.dedup_ttl)
        except Exception:  # noqa: BLE001
            return False

    def _release(self, delivery: Delivery) -> None:
        try:
            self.store.release(delivery.key, delivery.token)
        except Exception:
            logger.warning("could not release delivery %s", delivery.delivery_id, exc_info=True)

    async def _arelease(self, delivery: Delivery) -> None:
        try:
            await self.store.arelease(delivery.key, delivery.token)
        except Exception:
            logger.warning("could not release delivery %s", delivery.delivery_id, exc_info=True)

    def _release_soon(self, delivery: Delivery) -> None:
        task = asyncio.get_running_loop().create_task(self._arelease(delivery))
        _PENDING.add(task)
        task.add_done_callback(_PENDING.discard)

    def _job(self, delivery: Delivery) -> Any:
        event = delivery.event
        if event is None or self.queue is None or not self.router.has_background(event.event):
            return None
        from ._background import Job

        return Job.from_delivery(delivery._raw, key=delivery.key, event=event.event)

    def _enqueue(self, delivery: Delivery) -> None:
        job = self._job(delivery)
        if job is None:
            return
        try:
            self.queue.enqueue(job)
        except Exception as exc:
            raise QueueUnavailable from exc
        delivery.queued = True

    async def _aenqueue(self, delivery: Delivery) -> None:
        job = self._job(delivery)
        if job is None:
            return
        try:
            await self.queue.aenqueue(job)
        except Exception as exc:
            raise QueueUnavailable from exc
        delivery.queued = True


_PENDING: set[asyncio.Task[None]] = set()


def not_configured(error: ConfigurationError, headers: HeadersInput = ()) -> WebhookResponse:
    """The JSON 500 for an endpoint that cannot be built (no secret, a bad setting), logged."""
    record = DeliveryRecord(
        outcome="not_configured",
        http_status=500,
        event=None,
        delivery_id=_pick_headers(headers).delivery_id,
        duration_s=0.0,
        secret_position=None,
        reason=str(error),
    )
    # The same traces as any other delivery: one log record with the fields, the metrics, a span,
    # the observers (no receiver exists, so only those of the whole process).
    meter = _outcomes.metering
    if meter is not None:
        meter.delivered(None, "not_configured", False)
    tracer = _outcomes.tracing
    if tracer is not None:
        with tracer.delivery() as span:
            span.conclude(record)
    logger.error(
        "the Messages.dev webhook endpoint is not configured: %s",
        error,
        extra=record.log_extra(),
    )
    GLOBAL_OBSERVERS.notify(record, GLOBAL_OBSERVERS.current())
    return _NOT_CONFIGURED
