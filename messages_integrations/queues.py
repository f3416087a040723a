"""Task queues for background handlers: Celery, and Django's Tasks framework.

``@on("message.received", background=True)`` handlers run in a worker of the queue an adapter is
given as ``queue=``. Celery and Django are imported only when a queue is built. Any other queue
(RQ, arq, Dramatiq) is a :class:`TaskQueue` with one ``enqueue`` method whose worker calls
:func:`run_job`: see ``docs/background.md``.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import itertools
import logging
import os
import random
import threading
import time
import uuid
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable
from typing import Any

import msgspec

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
from ._redis_connections import AsyncConnections, Connections
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

    Publishing is worked out once, at the first job: the task's route, and on a Redis broker
    connections kept for the queue's lifetime, so that each job costs one ``LPUSH`` of the
    message Celery would publish. Other brokers, and apps set up beyond the plain case (sent
    events, compression, priorities, exchanges of their own, Sentinel), publish through Celery's
    own message sender, as does every job while something listens to Celery's publish signals;
    an eager app runs the task through ``apply_async``.
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
        # How jobs are published: worked out at the first publish, once the app is configured.
        self._publisher_cache: _Publisher | None = None
        self._publisher_lock = threading.Lock()

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
            if self.app.conf.task_always_eager:
                self._apply_async(job)  # Celery runs the task right here, as for any task
            else:
                self._publisher().publish(job)
        except Exception as exc:  # kombu's OperationalError, socket errors, a refused message
            raise EnqueueError(f"the Celery broker did not accept job {job.key!r}") from exc

    async def aenqueue(self, job: Job) -> None:
        """Async :meth:`enqueue`: on a Redis broker the ``LPUSH`` is awaited on the event loop."""
        try:
            if self.app.conf.task_always_eager:
                await asyncio.to_thread(self._apply_async, job)
                return
            publisher = self._publisher_cache
            if publisher is None:  # the first job connects to the broker: not on the loop
                publisher = await asyncio.to_thread(self._publisher)
            await publisher.apublish(job)
        except Exception as exc:
            raise EnqueueError(f"the Celery broker did not accept job {job.key!r}") from exc

    def _publisher(self) -> _Publisher:
        publisher = self._publisher_cache
        if publisher is None:
            with self._publisher_lock:
                if self._publisher_cache is None:
                    self._publisher_cache = _plan_publisher(self)
                publisher = self._publisher_cache
        return publisher

    def _apply_async(self, job: Job) -> None:
        """Celery's whole ``apply_async``: for eager apps and apps set up beyond the plain case."""
        self.task.apply_async(
            args=(job.to_dict(),),
            task_id=job.key,
            serializer="json",
            queue=self.queue,
            retry=True,
            retry_policy=_PUBLISH_RETRY_POLICY,
            argsrepr=_argsrepr(job),
            kwargsrepr="{}",
        )

    def describe(self) -> str:
        """The app and queue, never the broker's URL (it may carry a password)."""
        return f"Celery app {self.app.main!r}, queue {self.queue or 'default'!r}"


def _argsrepr(job: Job) -> str:
    # Monitoring (Flower, `celery inspect`, the worker's logs) shows this instead of the
    # arguments: the job's key, never the text of someone's message. It also spares a repr of
    # the whole body on every publish.
    return f"(<job {job.key} {job.event}>,)"


def _retry_delays() -> tuple[float, ...]:
    """The pauses between publish attempts that :data:`_PUBLISH_RETRY_POLICY` describes."""
    policy = _PUBLISH_RETRY_POLICY
    return tuple(
        min(policy["interval_start"] + attempt * policy["interval_step"], 1.0)
        for attempt in range(int(policy["max_retries"]))
    )


class _Publisher(ABC):
    """One way of publishing a job, chosen once per :class:`CeleryQueue`."""

    @abstractmethod
    def publish(self, job: Job) -> None:
        """Hand ``job`` to the broker, retrying as :data:`_PUBLISH_RETRY_POLICY` says."""

    async def apublish(self, job: Job) -> None:
        """:meth:`publish` from an event loop: in a worker thread unless a publisher can await."""
        await asyncio.to_thread(self.publish, job)


class _ApplyAsync(_Publisher):
    """Celery's ``apply_async``, for apps this module does not publish for itself."""

    def __init__(self, queue: CeleryQueue) -> None:
        self._queue = queue

    def publish(self, job: Job) -> None:
        self._queue._apply_async(job)


class _SendTaskMessage(_Publisher):
    """Celery's own message builder and sender, with the routing worked out once.

    This is what ``apply_async`` does for this task, less the work that does not apply to it:
    routing on every call, a result object, parent-task bookkeeping. Celery still builds the
    message, declares the queue, sends the publish signals and retries a refused publish.
    """

    def __init__(self, app: Any, route: dict[str, Any]) -> None:
        self._app = app
        self._route = route

    def publish(self, job: Job) -> None:
        app = self._app
        message = _task_message(app, job, sent_event=bool(app.conf.task_send_sent_event))
        with app.producer_pool.acquire(block=True) as producer:
            app.amqp.send_task_message(
                producer,
                CELERY_TASK_NAME,
                message,
                serializer="json",
                retry=True,
                retry_policy=_PUBLISH_RETRY_POLICY,
                **self._route,
            )


class _RedisPush(_Publisher):
    """Redis brokers: the message kombu's Redis transport would publish, in one ``LPUSH``.

    The message is Celery's own: its headers and properties are taken once per process from
    Celery's message builder, and each job fills in what is its own (its id, its argument, the
    tag the worker acknowledges it by), so that a job costs an encoding and one ``LPUSH``, whose
    command and queue name are put in Redis's protocol once (redis-py's general encoder walks
    and encodes every argument of every command, about 6% of a queued delivery's work). The
    push goes on connections kept for the queue's lifetime, taken from the pool kombu built from
    the broker settings (kombu itself builds a new client for every publish, which costs more
    than the round trip), without redis-py's per-command pool checks (see
    ``_redis_connections``); from an event loop, on connections of a ``redis.asyncio`` pool of
    that loop with the same connection settings. While anything listens to Celery's
    publish signals, jobs go through Celery's own sender.
    """

    def __init__(
        self,
        app: Any,
        *,
        connection: Any,
        pool: Any,
        queue_name: str,
        delivery_mode: int,
        fallback: _Publisher,
    ) -> None:
        import redis
        from celery import signals

        self._app = app
        self._amqp = app.amqp  # a lazy attribute of the app, looked up once
        self._connection = connection  # owns the pool: kept open with it
        self._queue_name = queue_name
        self._fallback = fallback
        self._retried = (redis.ConnectionError, redis.TimeoutError)
        self._delays = _retry_delays()
        self._signals = [
            signal
            for signal in (
                signals.before_task_publish,
                signals.after_task_publish,
                getattr(signals, "task_sent", None),  # deprecated, still sent by Celery 5
            )
            if signal is not None
        ]
        # What kombu adds to every message's properties for this queue: the same each time.
        self._properties = {
            "delivery_mode": delivery_mode,
            "priority": 0,
            "body_encoding": "base64",
            "delivery_info": {"exchange": "", "routing_key": queue_name},
        }
        name = pool.get_encoder().encode(queue_name)  # as redis-py would send it
        self._lpush_head = b"*3\r\n$5\r\nLPUSH\r\n$%d\r\n%s\r\n" % (len(name), name)
        self._template: _MessageTemplate | None = None
        self._template_lock = threading.Lock()
        self._connections = Connections(pool)
        self._loop_connections = _LoopConnections(pool)

    def publish(self, job: Job) -> None:
        if any(signal.receivers for signal in self._signals):
            self._fallback.publish(job)  # a listener (tracing, say) expects Celery's own path
            return
        command = self._lpush(self._payload(job))
        for delay in self._delays:
            try:
                self._connections.execute_packed(command)
            except self._retried:
                # Pushed twice if the first reply was lost: the job's key runs it once anyway.
                time.sleep(delay)
            else:
                return
        self._connections.execute_packed(command)

    async def apublish(self, job: Job) -> None:
        if any(signal.receivers for signal in self._signals):
            await asyncio.to_thread(self._fallback.publish, job)
            return
        connections = await self._loop_connections.get()
        if connections is None:  # connection settings redis.asyncio cannot take
            await asyncio.to_thread(self.publish, job)
            return
        command = self._lpush(self._payload(job))
        for delay in self._delays:
            try:
                await connections.execute_packed(command)
            except self._retried:
                await asyncio.sleep(delay)
            else:
                return
        await connections.execute_packed(command)

    def _lpush(self, payload: bytes) -> list[bytes]:
        """``LPUSH <queue> <payload>`` in Redis's protocol (RESP): the command and the queue's
        name are the same for every job, so only the payload's length is written per job.
        One buffer: redis-py's sync connection sends each item of the list on its own."""
        return [b"%s$%d\r\n%s\r\n" % (self._lpush_head, len(payload), payload)]

    def _payload(self, job: Job) -> bytes:
        """The JSON kombu's Redis transport stores in the queue's list for ``job``."""
        template = self._template
        if template is None or template.pid != os.getpid():
            with self._template_lock:  # once per process (a forked worker works out its own)
                template = self._template
                if template is None or template.pid != os.getpid():
                    template = self._template = _MessageTemplate.work_out(self)
        # The worker acknowledges the message by this tag, and Redis keeps it until then.
        tag = f"{template.tag_prefix}{next(template.tags)}"
        if template.content is None:  # a Celery whose message this module cannot fill in
            headers, properties, body, _ = _task_message(
                self._app, job, sent_event=False, amqp=self._amqp
            )
            content_type, encoding, data = _kombu_json(body)
            properties.update(self._properties, delivery_tag=tag)
            return _envelope(data, content_type, encoding, headers, properties)
        headers = {
            **template.headers,
            "id": job.key,
            "root_id": job.key,
            "argsrepr": _argsrepr(job),
        }
        properties = {
            **self._properties,
            "correlation_id": job.key,
            "reply_to": self._app.thread_oid,
            "delivery_tag": tag,
        }
        data = _to_json(((job.to_dict(),), {}, template.embed))
        return _envelope(data, *template.content, headers, properties)


_to_json = msgspec.json.Encoder().encode


def _envelope(
    data: bytes,
    content_type: str,
    encoding: str,
    headers: dict[str, Any],
    properties: dict[str, Any],
) -> bytes:
    """One message as kombu's Redis transport stores it in a queue's list."""
    return _to_json(
        {
            "body": base64.b64encode(data).decode("ascii"),
            "content-encoding": encoding,
            "content-type": content_type,
            "headers": headers,
            "properties": properties,
        }
    )


def _kombu_json(body: object) -> tuple[str, str, bytes]:
    """Kombu's JSON serializer: content type, encoding and the encoded ``body``."""
    from kombu.serialization import dumps

    serialize: Callable[..., tuple[str, str, str | bytes]] = dumps
    content_type, encoding, data = serialize(body, serializer="json")
    return content_type, encoding, data.encode(encoding) if isinstance(data, str) else data


# What a job fills in of Celery's message, beside its body; everything else is the same for
# every job of one process (``origin`` names the process).
_JOB_HEADERS = frozenset({"id", "root_id", "argsrepr"})
_JOB_PROPERTIES = frozenset({"correlation_id", "reply_to"})


class _MessageTemplate:
    """Celery's task message for this queue in one process, less what each job fills in."""

    def __init__(
        self,
        pid: int,
        *,
        content: tuple[str, str] | None = None,
        headers: dict[str, Any] | None = None,
        embed: object = None,
    ) -> None:
        self.pid = pid
        # Unique delivery tags without a uuid4 each (5 µs): random per process, then counted.
        self.tag_prefix = f"{uuid.uuid4()}."
        self.tags = itertools.count()
        self.content = content  # content type and encoding; None: Celery builds each message
        self.headers = headers or {}
        self.embed = embed

    @classmethod
    def work_out(cls, push: _RedisPush) -> _MessageTemplate:
        """Ask Celery for two messages and keep what they share, if only the job differs."""
        pid = os.getpid()
        first, second = (Job(body="{}", key=key, event="probe") for key in ("probe-1", "probe-2"))
        one = _task_message(push._app, first, sent_event=False, amqp=push._amqp)
        two = _task_message(push._app, second, sent_event=False, amqp=push._amqp)
        headers, properties, body, _ = one
        content_type, encoding, _data = _kombu_json(body)
        differ = {
            name for name in set(headers) | set(two[0]) if headers.get(name) != two[0].get(name)
        }
        shape_holds = (
            differ <= _JOB_HEADERS
            and set(properties) <= _JOB_PROPERTIES
            and isinstance(body, tuple | list)
            and len(body) == 3
            and tuple(body[0]) == (first.to_dict(),)
            and body[1] == {}
            and (content_type, encoding) == ("application/json", "utf-8")
        )
        if not shape_holds:
            return cls(pid)
        return cls(
            pid,
            content=(content_type, encoding),
            headers={name: value for name, value in headers.items() if name not in _JOB_HEADERS},
            embed=body[2],
        )


# Keyword arguments of redis-py's connection pools that do not change where or how a
# connection talks to Redis (redis-py's own bookkeeping): left out of an asyncio pool.
_POOL_BOOKKEEPING = frozenset(
    {
        "himport_registry",
        "maint_notifications_pool_handler",
        "maint_notifications_config",
        "orig_host_address",
        "orig_socket_timeout",
        "orig_socket_connect_timeout",
    }
)


def _asyncio_pool_settings(pool: Any) -> tuple[type[Any], dict[str, Any]] | None:
    """The ``redis.asyncio`` connection class and arguments matching a redis-py pool's."""
    import redis
    import redis.asyncio

    twins: dict[type[Any], type[Any]] = {
        redis.Connection: redis.asyncio.Connection,
        redis.SSLConnection: redis.asyncio.SSLConnection,
        redis.UnixDomainSocketConnection: redis.asyncio.UnixDomainSocketConnection,
    }
    twin = twins.get(pool.connection_class)
    if twin is None:
        return None
    accepted = {
        name
        for klass in twin.__mro__
        if "__init__" in vars(klass)
        for name, parameter in inspect.signature(vars(klass)["__init__"]).parameters.items()
        if parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    }
    settings: dict[str, Any] = {}
    for name, value in pool.connection_kwargs.items():
        if name in accepted:
            settings[name] = value
        elif name not in _POOL_BOOKKEEPING and value is not None:
            return None  # a setting the asyncio connection has no word for: keep the thread
    return twin, settings


class _LoopConnections:
    """One ``redis.asyncio`` pool per event loop, disconnected when ``asyncio.run`` ends its loop
    (its connections in use by :class:`AsyncConnections` included)."""

    def __init__(self, pool: Any) -> None:
        self._settings = _asyncio_pool_settings(pool)
        self._loops: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[AsyncConnections, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()

    async def get(self) -> AsyncConnections | None:
        """This loop's connections (made at its first job), or None to publish from a thread."""
        if self._settings is None:
            return None
        loop = asyncio.get_running_loop()
        entry = self._loops.get(loop)
        if entry is None:
            import redis.asyncio

            connection_class, settings = self._settings
            pool = redis.asyncio.ConnectionPool(connection_class=connection_class, **settings)
            connections = AsyncConnections(pool)
            closer = _close_with_loop(pool)
            entry = self._loops[loop] = (connections, closer)
            # An async generator started on a loop is finalized by the loop's
            # shutdown_asyncgens(), which asyncio.run() and uvicorn call before closing it.
            await anext(closer)
        return entry[0]


async def _close_with_loop(pool: Any) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await pool.disconnect()


def _task_message(app: Any, job: Job, *, sent_event: bool, amqp: Any = None) -> Any:
    """Celery's message for ``job``: headers, properties, body, and the sent event."""
    return (amqp or app.amqp).create_task_message(
        job.key,
        CELERY_TASK_NAME,
        (job.to_dict(),),
        {},
        reply_to=app.thread_oid,
        create_sent_event=sent_event,
        root_id=job.key,
        ignore_result=True,
        argsrepr=_argsrepr(job),
        kwargsrepr="{}",
    )


def _plan_publisher(queue: CeleryQueue) -> _Publisher:
    """The cheapest way to publish that gives the worker what ``apply_async`` would.

    Routing is worked out here, once: a ``task_routes`` entry for the task's name applies, and
    a router function is asked without the job's arguments.
    """
    app = queue.app
    if app.conf.task_protocol != 2:
        return _ApplyAsync(queue)
    options: dict[str, Any] = {"queue": queue.queue} if queue.queue else {}
    if queue.task.priority is not None:
        options["priority"] = queue.task.priority
    try:
        route: dict[str, Any] = dict(
            app.amqp.router.route(options, CELERY_TASK_NAME, (), {}, queue.task)
        )
    except Exception:  # noqa: BLE001 - a router that needs the arguments: route every call
        return _ApplyAsync(queue)
    general = _SendTaskMessage(app, route)
    return _redis_publisher(app, route, general) or general


def _redis_publisher(app: Any, route: dict[str, Any], general: _Publisher) -> _Publisher | None:
    """A :class:`_RedisPush` when the broker is a single Redis and the job goes to a plain list."""
    conf = app.conf
    target = route.get("queue")
    if (
        target is None
        or set(route) != {"queue"}  # an exchange, routing key or priority of its own
        or conf.task_send_sent_event
        or conf.task_compression
        or conf.task_default_priority
        or target.exchange.type != "direct"  # so Celery publishes straight to the queue's list
        or target.queue_arguments  # expiry, TTL, priorities: kombu's transport handles those
        or getattr(target, "expires", None)
        or getattr(target, "message_ttl", None)
    ):
        return None
    try:
        from kombu.common import maybe_declare
        from kombu.entity import DELIVERY_MODES
        from kombu.transport.redis import Transport
    except ImportError:  # no redis-py: not a Redis broker
        return None
    connection = app.connection_for_write()
    # Sentinel (a subclass), fail-over URL lists and key prefixes stay with kombu.
    if type(connection.transport) is not Transport or connection.alt:
        connection.release()
        return None
    try:
        connection.ensure_connection(
            max_retries=_PUBLISH_RETRY_POLICY["max_retries"],
            interval_start=_PUBLISH_RETRY_POLICY["interval_start"],
            interval_step=_PUBLISH_RETRY_POLICY["interval_step"],
        )
        channel = connection.default_channel
        if getattr(channel, "global_keyprefix", ""):
            connection.release()
            return None
        declare: Callable[[Any, Any], object] = maybe_declare
        declare(target, channel)  # once per process, as kombu's producer does
    except BaseException:
        connection.release()
        raise
    mode = getattr(target.exchange, "delivery_mode", None) or conf.task_default_delivery_mode
    return _RedisPush(
        app,
        connection=connection,
        pool=channel.pool,
        queue_name=target.name,
        delivery_mode=DELIVERY_MODES.get(mode, mode),
        fallback=general,
    )


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
