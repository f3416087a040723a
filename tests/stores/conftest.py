"""Every store under test, built on the private Redis and memcached servers of tests/conftest.py.

A :class:`Case` gives one store and a second store object on the same backend (what another
process would hold), and calls the sync methods, or the async ones on one event loop, alike.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from messages_integrations import Claim, DeliveryStore, InMemoryDeliveryStore
from tests.stores.claimers import Recipe, redis_client
from tests.support.servers import free_port
from tests.support.services import Service, redis_cluster_service, require_binary

if TYPE_CHECKING:
    import redis.asyncio

T = TypeVar("T")

REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"
MEMCACHED_CACHE = "django.core.cache.backends.memcached.PyMemcacheCache"
LOCMEM_CACHE = "django.core.cache.backends.locmem.LocMemCache"


def ensure_django() -> None:
    """Configure Django once for this folder (tests/django's settings win when loaded first)."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            SECRET_KEY="stores-tests-only",
            DATABASES={},
            INSTALLED_APPS=["messages_integrations.django"],
            USE_TZ=True,
        )
        django.setup()


@contextlib.contextmanager
def django_caches(**aliases: dict[str, Any]) -> Iterator[None]:
    """``settings.CACHES`` set to these aliases (plus a local-memory default) for a while."""
    from django.test import override_settings

    ensure_django()
    with override_settings(CACHES={"default": {"BACKEND": LOCMEM_CACHE}, **aliases}):
        yield


class Driver:
    """One store's operations with the same sync signatures: async stores run on ``runner``."""

    def __init__(self, store: DeliveryStore, runner: asyncio.Runner | None) -> None:
        self.store, self._runner = store, runner

    def _run(self, sync: Callable[[], T], coroutine: Callable[[], Awaitable[T]]) -> T:
        if self._runner is None:
            return sync()

        async def run() -> T:
            return await coroutine()

        return self._runner.run(run())

    def claim(self, key: str, token: str, *, lease: float) -> Claim:
        """claim() or aclaim()."""
        s = self.store
        return self._run(
            lambda: s.claim(key, token, lease=lease), lambda: s.aclaim(key, token, lease=lease)
        )

    def extend(self, key: str, token: str, *, lease: float) -> bool:
        """extend() or aextend()."""
        s = self.store
        return self._run(
            lambda: s.extend(key, token, lease=lease), lambda: s.aextend(key, token, lease=lease)
        )

    def complete(self, key: str, token: str, *, ttl: float) -> bool:
        """complete() or acomplete()."""
        s = self.store
        return self._run(
            lambda: s.complete(key, token, ttl=ttl), lambda: s.acomplete(key, token, ttl=ttl)
        )

    def release(self, key: str, token: str) -> bool:
        """release() or arelease()."""
        s = self.store
        return self._run(lambda: s.release(key, token), lambda: s.arelease(key, token))


@dataclass
class Case:
    """A store under test, a second store object on the same backend, and its timings."""

    name: str
    store: Driver
    other: Driver
    #: a short lease, and a delay after which such a lease has surely run out on this backend
    lease: float
    late: float
    #: how a separate process builds the same store; None: the store lives in one process only
    recipe: Recipe | None
    cleanups: list[Callable[[], None]] = field(default_factory=list)


STORE_KINDS = [
    "memory",
    "memory-async",
    "redis",
    "redis-str",
    "redis-async",
    "redis-async-str",
    "cluster",
    "cluster-async",
    "django-redis",
    "django-memcached",
]


def _redis_case(kind: str, url: str, runner: asyncio.Runner | None) -> Case:
    from messages_integrations.stores import RedisDeliveryStore

    family = "cluster" if kind.startswith("cluster") else "redis"
    recipe = (family, url, kind.endswith("-str"), runner is not None)
    stores: list[RedisDeliveryStore] = []
    cleanups: list[Callable[[], None]] = []
    for _ in range(2):
        client = redis_client(recipe)
        cleanups.append(client.close if runner is None else _closer(runner, client))
        stores.append(RedisDeliveryStore(client))
    store, other = (Driver(each, runner) for each in stores)
    return Case(kind, store, other, lease=0.2, late=0.35, recipe=recipe, cleanups=cleanups)


def _closer(
    runner: asyncio.Runner, client: redis.asyncio.Redis | redis.asyncio.RedisCluster
) -> Callable[[], None]:
    def close() -> None:
        runner.run(client.aclose())

    return close


def _django_case(kind: str, request: pytest.FixtureRequest) -> Case:
    from messages_integrations.stores import DjangoCacheDeliveryStore

    if kind == "django-redis":
        backend, location = REDIS_CACHE, request.getfixturevalue("redis_url")
        # Whole seconds, rounded up: a 1 s lease lasts 1 s.
        lease, late = 1.0, 1.4
    else:
        backend, location = MEMCACHED_CACHE, request.getfixturevalue("memcached_server").address
        # Rounded up plus the one second memcached's clock may lag: 2 s lasts between 2 and 3 s.
        # Not 1 s: memcached updates its clock once a second, and on a loaded machine that tick
        # can come late and then jump, so a 1 s lease (2 s in memcached) was seen gone after 0.5 s.
        lease, late = 2.0, 3.4
    stack = contextlib.ExitStack()
    stack.enter_context(django_caches(store={"BACKEND": backend, "LOCATION": location}))
    store, other = (Driver(DjangoCacheDeliveryStore("store"), None) for _ in range(2))
    case = Case(kind, store, other, lease=lease, late=late, recipe=("django", backend, location))
    case.cleanups.append(stack.close)
    return case


@pytest.fixture(params=STORE_KINDS)
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    """Each store in turn: in memory, Redis (sync, asyncio, bytes and str), Redis Cluster (sync
    and asyncio), Django's caches."""
    kind: str = request.param
    runner = asyncio.Runner() if kind.endswith(("-async", "-async-str")) else None
    if kind.startswith("cluster"):
        built = _redis_case(kind, request.getfixturevalue("redis_cluster_url"), runner)
    elif kind.startswith("memory"):
        memory = InMemoryDeliveryStore()
        # One process: the "other" store is the same object, as every thread would share it.
        built = Case(kind, Driver(memory, runner), Driver(memory, runner), 0.2, 0.35, None)
    elif kind.startswith("redis"):
        built = _redis_case(kind, request.getfixturevalue("redis_url"), runner)
    else:
        built = _django_case(kind, request)
    try:
        yield built
    finally:
        for cleanup in reversed(built.cleanups):
            cleanup()
        if runner is not None:
            runner.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[list[Service]]:
    """A private three-node Redis Cluster for the whole session."""
    with redis_cluster_service() as nodes:
        yield nodes


@pytest.fixture
def redis_cluster_url(redis_cluster: list[Service]) -> Iterator[str]:
    """``redis://`` URL of the test cluster's first node, every node flushed after each test."""
    yield f"redis://{redis_cluster[0].address}/0"
    import redis

    for node in redis_cluster:
        with redis.Redis(host="127.0.0.1", port=node.port) as client:
            client.flushall()


@pytest.fixture(scope="module")
def redis_socket_server() -> Iterator[Path]:
    """A private redis-server listening on a Unix socket (and a loopback port), for unix://."""
    path = require_binary("redis-server")
    with contextlib.ExitStack() as stack:
        import tempfile

        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="redis-unix-")))
        socket = workdir / "redis.sock"
        port = free_port()
        argv = [path, "--port", str(port), "--bind", "127.0.0.1", "--unixsocket", str(socket)]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
        service = Service(argv, port, workdir)
        service.start()
        stack.callback(service.stop)
        yield socket
