"""The worker side of background handlers: the job that travels through a broker, and running it.

The request verifies a delivery, runs its inline handlers and enqueues one :class:`Job` on a
:class:`TaskQueue`; a worker calls :func:`run_job`, which runs the background handlers once per
delivery, guarded by a lease in a :class:`DeliveryStore` that every worker process shares.
Framework-neutral: the queues themselves (Celery, Django Tasks) live in ``queues.py``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from ._errors import InvalidPayloadError, WebhookError
from ._events import Event, parse_event
from ._router import WebhookRouter, default_router
from ._store import Claim

__all__ = [
    "DEFAULT_DONE_TTL",
    "DEFAULT_JOB_LEASE",
    "JOB_KEY_PREFIX",
    "EnqueueError",
    "InvalidJobError",
    "Job",
    "JobInProgress",
    "LeaseStore",
    "TaskQueue",
    "arun_job",
    "run_job",
]

logger = logging.getLogger("messages_integrations")

#: Jobs are claimed under their own keys, apart from the request's ``delivery:`` keys.
JOB_KEY_PREFIX = "job:"
#: A short lease, renewed every third of it while handlers run: a dead worker frees it soon.
DEFAULT_JOB_LEASE = 30.0
#: How long a handled job is remembered, so that a late copy of it is not run again.
DEFAULT_DONE_TTL = 72 * 3600.0

_FIELDS = ("body", "key", "event")


class InvalidJobError(WebhookError, ValueError):
    """A job's data is not a job this library enqueued; retrying it cannot help."""


class JobInProgress(WebhookError):
    """Another worker holds this job's lease; the queue should try again later."""


class EnqueueError(WebhookError):
    """The broker did not accept the job (it is down or refused it)."""


@dataclass(frozen=True, slots=True)
class Job:
    """What travels through the broker for one delivery, as JSON (never pickle)."""

    body: str  #: the verified body, as UTF-8 text
    key: str  #: the delivery's de-duplication key (its ``delivery_id``, else its signature)
    event: str  #: the event name, for logs and routing

    @classmethod
    def from_delivery(cls, body: bytes, *, key: str, event: str) -> Job:
        """The job for a verified body; the body must be UTF-8, as JSON is."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJobError("a job's body must be UTF-8 text") from exc
        return cls(body=text, key=key, event=event)

    def to_dict(self) -> dict[str, str]:
        """The job as a JSON object of three strings."""
        return {"body": self.body, "key": self.key, "event": self.event}

    @classmethod
    def from_dict(cls, data: object) -> Job:
        """Rebuild a job from :meth:`to_dict`'s output, or raise :class:`InvalidJobError`."""
        if not isinstance(data, Mapping):
            raise InvalidJobError(f"a job is a JSON object, not {type(data).__name__}")
        missing = [name for name in _FIELDS if name not in data]
        if missing:
            raise InvalidJobError(f"a job needs the fields {', '.join(missing)}")
        extra = sorted(str(name) for name in data if name not in _FIELDS)
        if extra:
            raise InvalidJobError(f"unexpected job fields: {', '.join(extra)}")
        for name in _FIELDS:
            if not isinstance(data[name], str):
                raise InvalidJobError(
                    f"the job field {name!r} must be a string, not {type(data[name]).__name__}"
                )
        if not data["key"]:
            raise InvalidJobError("the job field 'key' must not be empty")
        return cls(body=data["body"], key=data["key"], event=data["event"])


class TaskQueue(ABC):
    """A task queue that adapters accept as ``queue=``: it hands a job to a broker.

    Implement :meth:`enqueue`; a worker of the queue calls :func:`run_job` with the job.
    """

    @abstractmethod
    def enqueue(self, job: Job) -> None:
        """Return once the broker has accepted ``job``; raise when it has not."""

    async def aenqueue(self, job: Job) -> None:
        """Async :meth:`enqueue`; by default :meth:`enqueue` in a worker thread."""
        # The event loop's own executor: a third less CPU per call than asgiref's
        # sync_to_async, whose extras (context copied back, thread-sensitive mode) a publish
        # does not need. A queue that must run in Django's database thread overrides this.
        await asyncio.to_thread(self.enqueue, job)

    def describe(self) -> str:
        """A short description for the start-up log line (never a password)."""
        return type(self).__name__


class LeaseStore(Protocol):
    """The operations of a :class:`DeliveryStore` a worker uses: leases held by a token."""

    def claim(self, key: str, token: str, *, lease: float) -> Claim:
        """Take the lease on ``key`` unless it is in progress or done."""

    def extend(self, key: str, token: str, *, lease: float) -> bool:
        """Renew a lease this token holds."""

    def complete(self, key: str, token: str, *, ttl: float) -> bool:
        """Mark ``key`` done for ``ttl`` seconds."""

    def release(self, key: str, token: str) -> bool:
        """Drop a lease this token holds."""

    async def aclaim(self, key: str, token: str, *, lease: float) -> Claim:
        """Async :meth:`claim`."""

    async def aextend(self, key: str, token: str, *, lease: float) -> bool:
        """Async :meth:`extend`."""

    async def acomplete(self, key: str, token: str, *, ttl: float) -> bool:
        """Async :meth:`complete`."""

    async def arelease(self, key: str, token: str) -> bool:
        """Async :meth:`release`."""


def run_job(
    job: Job,
    *,
    router: WebhookRouter | None = None,
    store: LeaseStore,
    lease: float = DEFAULT_JOB_LEASE,
    done_ttl: float = DEFAULT_DONE_TTL,
) -> str:
    """Run the background handlers of ``job`` once per delivery; return ``"ok"`` or ``"duplicate"``.

    Raises :class:`JobInProgress` while another worker runs the same job (retry later), the
    handler's own error after a failure (retry with backoff), or :class:`InvalidJobError` for a
    job that can never run (do not retry). Signatures are not checked again: the broker is inside
    the application's trust boundary.
    """
    run = _Run(job, lease)
    event = run.decode()
    router = router if router is not None else default_router
    try:
        claim = store.claim(run.key, run.token, lease=lease)
    except Exception:
        run.log(logging.ERROR, "store_failed", "could not claim job", exc_info=True)
        raise
    if run.settled(claim):
        return "duplicate"
    with _Heartbeat(store, run):
        try:
            router.dispatch(event, background=True)
        except BaseException as exc:
            run.failed(exc)
            try:
                store.release(run.key, run.token)
            except Exception:  # noqa: BLE001 - the handler's error is the one the queue must see
                run.log(logging.WARNING, "store_failed", "could not release job", exc_info=True)
            raise
    try:
        held: bool | None = store.complete(run.key, run.token, ttl=done_ttl)
    except Exception:  # noqa: BLE001 - logged; the handlers ran, so the queue must not retry
        run.log(logging.ERROR, "store_failed", "could not mark job done", exc_info=True)
        held = None
    run.finish(held)
    return "ok"


async def arun_job(
    job: Job,
    *,
    router: WebhookRouter | None = None,
    store: LeaseStore,
    lease: float = DEFAULT_JOB_LEASE,
    done_ttl: float = DEFAULT_DONE_TTL,
    thread_sensitive: bool = False,
) -> str:
    """Async :func:`run_job`, for async workers (arq): the lease is renewed by a task."""
    run = _Run(job, lease)
    event = run.decode()
    router = router if router is not None else default_router
    try:
        claim = await store.aclaim(run.key, run.token, lease=lease)
    except Exception:
        run.log(logging.ERROR, "store_failed", "could not claim job", exc_info=True)
        raise
    if run.settled(claim):
        return "duplicate"
    beat = asyncio.create_task(_abeat(store, run))
    try:
        await router.adispatch(event, background=True, thread_sensitive=thread_sensitive)
    except BaseException as exc:
        run.failed(exc)
        try:
            await store.arelease(run.key, run.token)
        except Exception:  # noqa: BLE001 - the handler's error is the one the queue must see
            run.log(logging.WARNING, "store_failed", "could not release job", exc_info=True)
        raise
    finally:
        beat.cancel()
    try:
        held: bool | None = await store.acomplete(run.key, run.token, ttl=done_ttl)
    except Exception:  # noqa: BLE001 - logged; the handlers ran, so the queue must not retry
        run.log(logging.ERROR, "store_failed", "could not mark job done", exc_info=True)
        held = None
    run.finish(held)
    return "ok"


class _Run:
    """One attempt at a job: its token, its clock, and its log lines."""

    def __init__(self, job: Job, lease: float) -> None:
        if not lease > 0:
            raise ValueError("lease must be a positive number of seconds")
        self.job = job
        self.key = JOB_KEY_PREFIX + job.key
        self.token = secrets.token_hex(16)
        self.lease = lease
        self.delivery_id: str | None = None
        self.started = time.perf_counter()

    def decode(self) -> Event[Any]:
        try:
            event = parse_event(self.job.body)
        except InvalidPayloadError as exc:
            raise InvalidJobError(
                f"job {self.job.key!r} does not hold a valid event: {exc}"
            ) from exc
        if event.event != self.job.event:
            raise InvalidJobError(
                f"job {self.job.key!r} names {self.job.event!r} but holds {event.event!r}"
            )
        self.delivery_id = event.delivery_id
        return event

    def log(self, level: int, outcome: str, message: str, *, exc_info: Any = None) -> None:
        logger.log(
            level,
            "%s %s (%s): %s",
            message,
            self.delivery_id or self.job.key,
            self.job.event,
            outcome,
            exc_info=exc_info,
            extra={
                "outcome": outcome,
                "delivery_id": self.delivery_id,
                "event": self.job.event,
                "duration_s": time.perf_counter() - self.started,
            },
        )

    def settled(self, claim: Claim) -> bool:
        """True when the claim says there is nothing to run now (or raises to retry later)."""
        if claim is Claim.DONE:
            self.log(logging.INFO, "duplicate", "background handlers already ran for")
            return True
        if claim is Claim.IN_PROGRESS:
            self.log(logging.INFO, "in_progress", "another worker is running")
            raise JobInProgress(f"job {self.job.key!r} is being run by another worker")
        return False

    def failed(self, exc: BaseException) -> None:
        self.log(logging.ERROR, "handler_failed", "background handler failed for", exc_info=exc)

    def finish(self, held: bool | None) -> None:
        """Log the success; ``held`` is what completing said (None: the store failed)."""
        if held is False:
            # The lease expired under a slow handler: another worker may have run it too.
            self.log(logging.WARNING, "ok", f"lease of {self.lease:g} s lost while running")
        # A store failure was logged already: the handlers ran, and the queue must not retry.
        self.log(logging.INFO, "ok", "background handlers ran for")


class _Heartbeat:
    """Renews a job's lease every third of it from a daemon thread while the handlers run."""

    def __init__(self, store: LeaseStore, run: _Run) -> None:
        self._store = store
        self._run = run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease {run.key}", daemon=True)

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        run = self._run
        while not self._stop.wait(run.lease / 3):
            try:
                if not self._store.extend(run.key, run.token, lease=run.lease):
                    run.log(logging.WARNING, "in_progress", "lease lost for")
                    return
            except Exception:  # a store blip: try again at the next beat
                logger.warning("could not renew the lease of job %s", run.job.key, exc_info=True)


async def _abeat(store: LeaseStore, run: _Run) -> None:
    while True:
        await asyncio.sleep(run.lease / 3)
        try:
            if not await store.aextend(run.key, run.token, lease=run.lease):
                run.log(logging.WARNING, "in_progress", "lease lost for")
                return
        except Exception:  # a store blip: try again at the next beat
            logger.warning("could not renew the lease of job %s", run.job.key, exc_info=True)
