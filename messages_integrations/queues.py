"""Task queues for background handlers: Celery, and Django's Tasks framework.

``@on("message.received", background=True)`` handlers run in a worker of the queue an adapter is
given as ``queue=``. Celery and Django are imported only when a queue is built. Any other queue
(RQ, arq, Dramatiq) is a :class:`TaskQueue` with one ``enqueue`` method whose worker calls
:func:`run_job`: see ``docs/background.md``.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from typing import Any

from ._background import (
    DEFAULT_DONE_TTL,
    DEFAULT_JOB_LEASE,
    EnqueueError,
    InvalidJobError,
    Job,
    JobInProgress,
    LeaseStore,
    TaskQueue,
    arun_job,
    run_job,
)
from ._config import STORE_SETTING, Options, coerce_store
from ._errors import ConfigurationError
from ._router import WebhookRouter, default_router
from ._store import InMemoryDeliveryStore

__all__ = [
    "CELERY_TASK_NAME",
    "DEFAULT_DONE_TTL",
    "DEFAULT_JOB_LEASE",
    "CeleryQueue",
    "DjangoTasksQueue",
    "EnqueueError",
    "InvalidJobError",
    "Job",
    "JobInProgress",
    "TaskQueue",
    "arun_job",
    "retry_delay",
    "run_job",
]

logger = logging.getLogger("messages_integrations")

#: The one task :class:`CeleryQueue` registers on a Celery app.
CELERY_TASK_NAME = "messages_integrations.run_background_handlers"

# Publishing to a broker that is down fails within about a second instead of retrying for
# minutes: the request is waiting, and it answers 503 so that the sender retries later.
_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2}


def retry_delay(attempt: int, *, base: float = 2.0, limit: float = 600.0) -> float:
    """Seconds before retry number ``attempt`` (from 1): exponential, capped, with jitter."""
    delay: float = min(base * 2 ** max(attempt - 1, 0), limit)
    return delay * random.uniform(0.8, 1.2)  # jitter: failed jobs do not all return at once


def _store_from_environment() -> LeaseStore:
    """The Celery worker's store: ``MESSAGES_WEBHOOK_STORE`` (a URL or a ``"module:attribute"``
    path, read as the adapters read it), else this process's memory."""
    value = os.environ.get(STORE_SETTING, "").strip()
    if value:
        store: LeaseStore = coerce_store(value, STORE_SETTING)
        return store
    return _memory_store()


def _memory_store() -> LeaseStore:
    logger.warning(
        "background handlers: no %s configured, so each worker process de-duplicates jobs in "
        "its own memory; set it to a shared store (redis://...) when workers run in parallel",
        STORE_SETTING,
    )
    return InMemoryDeliveryStore()


class _LazyStore:
    """The worker's store, built on first use: after a prefork worker forked its children."""

    def __init__(self, store: LeaseStore | None) -> None:
        self._store = store
        self._lock = threading.Lock()

    def get(self) -> LeaseStore:
        with self._lock:
            if self._store is None:
                self._store = _store_from_environment()
            return self._store


class CeleryQueue(TaskQueue):
    """Background handlers on Celery: registers one task on ``celery_app``.

    Start a worker with ``celery -A yourproject worker``. Jobs are JSON, acknowledged only
    after the handlers ran (``acks_late``), put back on the queue when a worker process dies
    (``reject_on_worker_lost``), and retried with exponential backoff when a handler raises.
    ``queue`` is the Celery queue name (the app's default when None); ``store`` is the store
    the workers share to run each delivery once (default: ``MESSAGES_WEBHOOK_STORE``).
    """

    def __init__(
        self,
        celery_app: Any,
        *,
        router: WebhookRouter | None = None,
        queue: str | None = None,
        store: LeaseStore | None = None,
        lease: float = DEFAULT_JOB_LEASE,
        max_retries: int = 10,
        retry_backoff: float = 2.0,
        retry_backoff_max: float = 600.0,
    ) -> None:
        if not lease > 0:
            raise ConfigurationError("lease must be a positive number of seconds")
        self.app = celery_app
        self.router = router if router is not None else default_router
        self.queue = queue
        self.lease = lease
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.retry_backoff_max = retry_backoff_max
        self._store = _LazyStore(store)
        self.task = self._register()

    def _register(self) -> Any:
        # bind=True: the task retries itself through its own request (retries so far, its id).
        @self.app.task(  # type: ignore[misc, untyped-decorator, unused-ignore]
            name=CELERY_TASK_NAME,
            bind=True,
            acks_late=True,
            reject_on_worker_lost=True,
            serializer="json",
            ignore_result=True,
            max_retries=None,
        )
        def run_background_handlers(task: Any, data: object) -> str:
            return self.run(task, data)

        return run_background_handlers

    def run(self, task: Any, data: object) -> str:
        """The task's body, in the worker: run the job, or ask Celery to retry it."""
        job = Job.from_dict(data)  # an invalid job fails at once: retrying cannot help
        try:
            return run_job(job, router=self.router, store=self._store.get(), lease=self.lease)
        except JobInProgress as exc:
            # The live copy may still die: come back once its lease could have expired.
            raise task.retry(exc=exc, countdown=self.lease / 2, max_retries=None) from exc
        except Exception as exc:
            attempt = task.request.retries + 1
            if attempt > self.max_retries:
                raise
            delay = retry_delay(attempt, base=self.retry_backoff, limit=self.retry_backoff_max)
            raise task.retry(exc=exc, countdown=delay, max_retries=None) from exc

    def enqueue(self, job: Job) -> None:
        """Publish ``job`` under its key as task id; :class:`EnqueueError` if the broker is down."""
        try:
            self.task.apply_async(
                args=(job.to_dict(),),
                task_id=job.key,
                serializer="json",
                queue=self.queue,
                retry=True,
                retry_policy=_PUBLISH_RETRY_POLICY,
                # Monitoring (Flower, `celery inspect`, the worker's logs) shows these instead of
                # the arguments: the job's key, never the text of someone's message. It also
                # spares a repr of the whole body on every publish.
                argsrepr=f"(<job {job.key} {job.event}>,)",
                kwargsrepr="{}",
            )
        except Exception as exc:  # kombu's OperationalError, socket errors, a refused message
            raise EnqueueError(f"the Celery broker did not accept job {job.key!r}") from exc

    def describe(self) -> str:
        """The app and queue, never the broker's URL (it may carry a password)."""
        return f"Celery app {self.app.main!r}, queue {self.queue or 'default'!r}"


class DjangoTasksQueue(TaskQueue):
    """Background handlers on Django's Tasks framework (Django 6.0+, or the django-tasks backport).

    Inside a transaction the job is enqueued once it commits (``transaction.on_commit``). The
    worker is the backend's own (``manage.py db_worker`` for the database backend). A failed job
    is enqueued again with exponential backoff, up to ``max_attempts``, on backends that can
    defer a task; the Tasks framework itself never retries.
    """

    def __init__(
        self,
        backend: str = "default",
        *,
        router: WebhookRouter | None = None,
        lease: float = DEFAULT_JOB_LEASE,
        max_attempts: int = 8,
        retry_backoff: float = 2.0,
        retry_backoff_max: float = 600.0,
    ) -> None:
        if not lease > 0:
            raise ConfigurationError("lease must be a positive number of seconds")
        self.backend = backend
        self.router = router if router is not None else default_router
        self.lease = lease
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.retry_backoff_max = retry_backoff_max
        self._task = _django_task().using(backend=backend)

    def enqueue(self, job: Job) -> None:
        """Enqueue ``job`` now, or when the current transaction commits."""
        from django.db import connection, transaction

        if connection.in_atomic_block:
            # robust: a failure after the commit is logged; it cannot reach the request anymore.
            transaction.on_commit(lambda: self._send(job, 1, 0.0), robust=True)
        else:
            self._send(job, 1, 0.0)

    async def aenqueue(self, job: Job) -> None:
        """Async :meth:`enqueue`, in the thread Django keeps for database work."""
        from asgiref.sync import sync_to_async

        await sync_to_async(self.enqueue, thread_sensitive=True)(job)

    def _send(self, job: Job, attempt: int, delay: float) -> None:
        from datetime import timedelta

        from django.utils import timezone

        task = self._task
        if delay > 0:
            task = task.using(run_after=timezone.now() + timedelta(seconds=delay))
        try:
            task.enqueue(job.to_dict(), attempt)
        except Exception as exc:  # the backend's storage (a database, Redis) is down
            raise EnqueueError(f"the task backend did not accept job {job.key!r}") from exc

    def run(self, data: object, attempt: int) -> str:
        """The task's body, in the worker: run the job, enqueue a retry after a failure."""
        job = Job.from_dict(data)
        defer = bool(self._task.get_backend().supports_defer)
        try:
            return run_job(job, router=self.router, store=django_worker_store(), lease=self.lease)
        except JobInProgress:
            if not defer:
                raise
            self._send(job, attempt, self.lease / 2)
            return "in_progress"
        except Exception:
            if defer and attempt < self.max_attempts:
                delay = retry_delay(attempt, base=self.retry_backoff, limit=self.retry_backoff_max)
                self._send(job, attempt + 1, delay)
            raise  # this attempt is recorded as failed, with its error

    def describe(self) -> str:
        """The backend alias."""
        return f"Django Tasks backend {self.backend!r}"


def _django_task() -> Any:
    from .django.tasks import run_background_handlers

    return run_background_handlers


def django_worker_queue(backend: str = "default") -> DjangoTasksQueue:
    """The queue a Django Tasks worker runs a job of ``backend`` with.

    The settings' ``MESSAGES_WEBHOOK_QUEUE`` (resolved as the webhook view resolves it) when it
    is a :class:`DjangoTasksQueue` on that backend; else one on ``backend`` with the settings'
    router (``MESSAGES_WEBHOOK_ROUTER``, else the default router).
    """
    settings = _django_worker_settings()
    queue = settings.options.queue
    if isinstance(queue, DjangoTasksQueue) and queue.backend == backend:
        return queue
    if backend not in settings.queues:
        settings.queues[backend] = DjangoTasksQueue(backend, router=settings.options.router)
    return settings.queues[backend]


def django_worker_store() -> LeaseStore:
    """The store a Django Tasks worker claims jobs in: the same one the webhook view uses.

    The ``MESSAGES_WEBHOOK_STORE`` setting or environment variable (a store, a URL or a
    ``"module:attribute"`` path), else ``caches["default"]`` when it is a Redis or Memcached
    cache, else this process's memory (with a warning).
    """
    settings = _django_worker_settings()
    if settings.store is None:
        configured = settings.options.store
        settings.store = configured if configured is not None else _memory_store()
    return settings.store


class _DjangoWorkerSettings:
    """The worker's resolved options, and what it built from them, until a setting changes."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.queues: dict[str, DjangoTasksQueue] = {}
        self.store: LeaseStore | None = None


_django_worker: list[_DjangoWorkerSettings] = []
_django_worker_lock = threading.Lock()
#: The worker never verifies a signature: resolving with a secret of its own lets a worker find
#: its queue and store even where ``MESSAGES_WEBHOOK_SECRET`` is not set.
_WORKER_SECRET = "unused-by-workers"  # noqa: S105 - never used to verify anything


def _django_worker_settings() -> _DjangoWorkerSettings:
    with _django_worker_lock:
        if not _django_worker:
            from django.core.signals import setting_changed

            from .django.conf import resolve

            # One resolver for the view and its worker: the same store, queue and router.
            _django_worker.append(_DjangoWorkerSettings(resolve({"secret": _WORKER_SECRET})))
            setting_changed.connect(_forget_django_worker, dispatch_uid=__name__)
        return _django_worker[0]


def _forget_django_worker(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("MESSAGES_WEBHOOK_") or setting in ("CACHES", "TASKS"):
        with _django_worker_lock:
            _django_worker.clear()
