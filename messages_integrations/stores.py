"""De-duplication stores shared by every process: Redis (redis-py) and Django's cache framework.

"Handled once" holds per store, so every process and machine receiving the same webhook must use
one shared store. Pick :class:`RedisDeliveryStore` when you have Redis or Redis Cluster (every
operation is one atomic Lua script), :class:`DjangoCacheDeliveryStore` to reuse a Django
project's Redis or Memcached cache, or :func:`store_from_url` to build one from
``MESSAGES_WEBHOOK_STORE``. redis-py and Django are imported only when a store needs them.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlsplit

from ._errors import ConfigurationError
from ._redis_pipeline import AsyncPipeline, Call, Script, SyncPipeline
from ._store import Claim, DeliveryStore, InMemoryDeliveryStore, check_seconds, check_token

if TYPE_CHECKING:
    from types import ModuleType

    import redis
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.cluster

    SyncRedis = redis.Redis | redis.cluster.RedisCluster
    AsyncRedis = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster

__all__ = ["DjangoCacheDeliveryStore", "RedisDeliveryStore", "store_from_url"]

DEFAULT_PREFIX: Final = "messages-webhooks:"
_DONE: Final = "done"
_LEASE: Final = "lease:"
_CLAIM_ANSWERS: Final = (Claim.NEW, Claim.IN_PROGRESS, Claim.DONE)


def _lease_value(token: str) -> str:
    # The token is in the value, so only its holder can extend, complete or release the lease.
    return _LEASE + check_token(token)


def _milliseconds(name: str, seconds: float) -> int:
    # Rounded up: a lease is never shorter than asked.
    return max(1, math.ceil(check_seconds(name, seconds) * 1000))


# --- Redis ----------------------------------------------------------------------------------------

# One script runs every operation of the store, so that the operations of concurrent deliveries
# go to Redis as one call (see _redis_pipeline). For operation i, KEYS[i] is its key and ARGV holds
# three values: the operation (1 claim, 2 extend, 3 complete, 4 release), the caller's lease
# value ("lease:" .. token) and a duration in milliseconds (release has none). It answers one
# integer per operation, the same whatever the client's decode_responses. On Redis Cluster each
# call carries one operation, so one key.
_CLAIM: Final = 1
_EXTEND: Final = 2
_COMPLETE: Final = 3
_RELEASE: Final = 4
_SCRIPT: Final = Script(
    """
local function claim(key, mine, ms)
  if redis.call('SET', key, mine, 'NX', 'PX', ms) then return 0 end
  if redis.call('GET', key) == 'done' then return 2 end
  return 1
end

local function extend(key, mine, ms)
  if redis.call('GET', key) == mine then return redis.call('PEXPIRE', key, ms) end
  return 0
end

-- A free key (the lease ran out and nobody took it over) is completed too: the work is done.
local function complete(key, mine, ms)
  local held = redis.call('GET', key)
  if held == false or held == mine then
    redis.call('SET', key, 'done', 'PX', ms)
    return 1
  end
  return 0
end

local function release(key, mine)
  if redis.call('GET', key) == mine then return redis.call('DEL', key) end
  return 0
end

local operations = {claim, extend, complete, release}
local answers = {}
for i, key in ipairs(KEYS) do
  local operation = operations[tonumber(ARGV[3 * i - 2])]
  if operation == nil then return redis.error_reply('unknown store operation') end
  -- An error (a key of another type, say) is that operation's answer alone.
  local ok, answer = pcall(operation, key, ARGV[3 * i - 1], ARGV[3 * i])
  if ok or type(answer) == 'table' then
    answers[i] = answer
  else
    answers[i] = redis.error_reply(tostring(answer))
  end
end
return answers
"""
)


def _import_redis() -> ModuleType:
    try:
        import redis.asyncio
    except ImportError:
        raise ConfigurationError(
            "Redis stores need redis-py: pip install 'messages-integrations[redis]'"
        ) from None
    return redis


class _ClusterScripts:
    """The script on a Redis Cluster client, one operation a call (keys span several nodes)."""

    def __init__(self, client: Any) -> None:
        self._script = client.register_script(_SCRIPT.source)

    def call(self, call: Call) -> int:
        op, key, first, second = call
        return _one(_SCRIPT.answers([call], self._script(keys=[key], args=[op, first, second])))


class _AsyncClusterScripts(_ClusterScripts):
    async def call(self, call: Call) -> int:  # type: ignore[override]
        op, key, first, second = call
        reply = await self._script(keys=[key], args=[op, first, second])
        return _one(_SCRIPT.answers([call], reply))


def _one(answers: list[int | BaseException]) -> int:
    [answer] = answers
    if isinstance(answer, BaseException):
        raise answer
    return answer


class RedisDeliveryStore(DeliveryStore):
    """A store on Redis or Redis Cluster through redis-py: each operation is an atomic Lua script.

    ``client`` is a ``redis.Redis`` (or ``redis.cluster.RedisCluster``) for sync code, or a
    ``redis.asyncio.Redis`` (or its ``RedisCluster``) for async code. To serve both WSGI and ASGI
    from one store, pass the sync client and ``async_client=`` as well, both on the same server.
    With a sync client only, the async methods run it in a worker thread; with an asyncio client
    only, the sync methods raise :class:`ConfigurationError`. Keys are ``prefix`` + the
    delivery's key; the client's ``decode_responses`` does not matter. Connecting is redis-py's
    business: lazy, so a store whose server is down constructs fine and raises on use.
    """

    def __init__(
        self,
        client: SyncRedis | AsyncRedis,
        *,
        async_client: AsyncRedis | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        redis = _import_redis()
        sync_types = (redis.Redis, redis.RedisCluster)
        async_types = (redis.asyncio.Redis, redis.asyncio.RedisCluster)
        sync_client: SyncRedis | None = None
        if isinstance(client, async_types):
            if async_client is not None:
                raise TypeError("client is already a redis.asyncio client: pass one async client")
            async_client = client
        elif isinstance(client, sync_types):
            sync_client = client
        else:
            raise TypeError(
                f"client must be a redis.Redis or redis.asyncio.Redis, not {type(client).__name__}"
            )
        if async_client is not None and not isinstance(async_client, async_types):
            raise TypeError(
                f"async_client must be a redis.asyncio.Redis, not {type(async_client).__name__}"
            )
        if not isinstance(prefix, str):
            raise TypeError("prefix must be a string")
        self.prefix = prefix
        self.sync_client = sync_client
        self.async_client = async_client
        # Calls from concurrent deliveries share round trips (see _redis_pipeline); a cluster's
        # keys live on several nodes, so there each call goes on its own.
        self._sync: SyncPipeline | _ClusterScripts | None = None
        self._async: AsyncPipeline | _AsyncClusterScripts | None = None
        if sync_client is not None:
            cluster = isinstance(sync_client, redis.RedisCluster)
            self._sync = (
                _ClusterScripts(sync_client) if cluster else SyncPipeline(sync_client, _SCRIPT)
            )
        if async_client is not None:
            cluster = isinstance(async_client, redis.asyncio.RedisCluster)
            self._async = (
                _AsyncClusterScripts(async_client)
                if cluster
                else AsyncPipeline(async_client, _SCRIPT)
            )

    def __repr__(self) -> str:
        return f"<RedisDeliveryStore {self.describe()} prefix={self.prefix!r}>"

    def describe(self) -> str:
        """The server's URL, any password masked: ``redis://:***@127.0.0.1:6379/0``."""
        client = self.sync_client if self.sync_client is not None else self.async_client
        return _describe_redis(client)

    def _scripts(self) -> SyncPipeline | _ClusterScripts:
        if self._sync is None:
            raise ConfigurationError(
                "this RedisDeliveryStore has only a redis.asyncio client, and sync code called it: "
                "pass a sync client too, RedisDeliveryStore(redis.Redis(...), async_client=...)"
            )
        return self._sync

    def claim(self, key: str, token: str, *, lease: float) -> Claim:
        """Take the lease on ``key`` under ``token`` unless it is in progress or done."""
        call = (_CLAIM, self.prefix + key, _lease_value(token), _milliseconds("lease", lease))
        return _CLAIM_ANSWERS[self._scripts().call(call)]

    def extend(self, key: str, token: str, *, lease: float) -> bool:
        """Push the lease's expiry to now + ``lease`` while ``token`` holds it."""
        call = (_EXTEND, self.prefix + key, _lease_value(token), _milliseconds("lease", lease))
        return bool(self._scripts().call(call))

    def complete(self, key: str, token: str, *, ttl: float) -> bool:
        """Mark ``key`` done for ``ttl`` seconds if ``token`` holds it or it is free."""
        call = (_COMPLETE, self.prefix + key, _lease_value(token), _milliseconds("ttl", ttl))
        return bool(self._scripts().call(call))

    def release(self, key: str, token: str) -> bool:
        """Drop the lease on ``key`` if ``token`` holds it."""
        return bool(self._scripts().call((_RELEASE, self.prefix + key, _lease_value(token), 0)))

    async def aclaim(self, key: str, token: str, *, lease: float) -> Claim:
        """Async :meth:`claim`: on the asyncio client when there is one."""
        if self._async is None:
            return await super().aclaim(key, token, lease=lease)
        call = (_CLAIM, self.prefix + key, _lease_value(token), _milliseconds("lease", lease))
        return _CLAIM_ANSWERS[await self._async.call(call)]

    async def aextend(self, key: str, token: str, *, lease: float) -> bool:
        """Async :meth:`extend`: on the asyncio client when there is one."""
        if self._async is None:
            return await super().aextend(key, token, lease=lease)
        call = (_EXTEND, self.prefix + key, _lease_value(token), _milliseconds("lease", lease))
        return bool(await self._async.call(call))

    async def acomplete(self, key: str, token: str, *, ttl: float) -> bool:
        """Async :meth:`complete`: on the asyncio client when there is one."""
        if self._async is None:
            return await super().acomplete(key, token, ttl=ttl)
        call = (_COMPLETE, self.prefix + key, _lease_value(token), _milliseconds("ttl", ttl))
        return bool(await self._async.call(call))

    async def arelease(self, key: str, token: str) -> bool:
        """Async :meth:`release`: on the asyncio client when there is one."""
        if self._async is None:
            return await super().arelease(key, token)
        call = (_RELEASE, self.prefix + key, _lease_value(token), 0)
        return bool(await self._async.call(call))


def _describe_redis(client: Any) -> str:
    if hasattr(client, "get_default_node"):  # a cluster: name the node it starts from
        node = client.get_default_node()
        if node is None:  # an asyncio cluster client learns its nodes at its first command
            startup = getattr(getattr(client, "nodes_manager", None), "startup_nodes", None)
            node = next(iter(startup.values()), None) if startup else None
        where = f"{node.host}:{node.port}" if node is not None else "no node"
        return f"Redis Cluster via {where}"
    pool = client.connection_pool
    service = getattr(pool, "service_name", None)
    if service is not None:
        return f"Redis Sentinel service {service!r}"
    kwargs: dict[str, Any] = pool.connection_kwargs
    user = kwargs.get("username")
    userinfo = ""
    if user or kwargs.get("password"):
        # Whatever the password is, it is never shown; the user name is not a secret.
        userinfo = quote(user or "", safe="") + (":***" if kwargs.get("password") else "") + "@"
    db = kwargs.get("db", 0)
    if "path" in kwargs:
        return f"unix://{userinfo}{kwargs['path']}?db={db}"
    scheme = "rediss" if "SSL" in pool.connection_class.__name__ else "redis"
    host = str(kwargs.get("host", "localhost"))
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{userinfo}{host}:{kwargs.get('port', 6379)}/{db}"


# --- Django's cache -------------------------------------------------------------------------------

_REFUSED: Final = {
    "django.core.cache.backends.locmem.LocMemCache": (
        "keeps its keys in each process's memory, so other processes never see them"
    ),
    "django.core.cache.backends.filebased.FileBasedCache": (
        "its add() is not atomic across processes, so two copies could both run"
    ),
    "django.core.cache.backends.dummy.DummyCache": (
        "drops everything, so every copy of a delivery would run"
    ),
}
_SHARED: Final = (
    "django.core.cache.backends.redis.RedisCache",
    "django.core.cache.backends.memcached.BaseMemcachedCache",
)
_DATABASE: Final = "django.core.cache.backends.db.DatabaseCache"
_MEMCACHED: Final = "django.core.cache.backends.memcached.BaseMemcachedCache"
# Memcached refuses keys with spaces or control characters or over 250 bytes, and Django adds
# its own prefix and version: other keys are hashed.
_SAFE_KEY: Final = re.compile(r"[!-~]{1,200}")
# Attempts of add-then-get before concluding that the cache is not answering.
_CLAIM_ATTEMPTS: Final = 3


def _import_django_cache() -> tuple[Any, Any, Any]:
    try:
        from django.conf import settings
        from django.core.cache import caches
        from django.utils.module_loading import import_string
    except ImportError:
        raise ConfigurationError(
            "DjangoCacheDeliveryStore needs Django: pip install 'messages-integrations[django]'"
        ) from None
    return settings, caches, import_string


def _is_backend(backend: type, path: str, import_string: Any) -> bool:
    return issubclass(backend, import_string(path))


class DjangoCacheDeliveryStore(DeliveryStore):
    """A store on one of Django's caches (``settings.CACHES[alias]``): Redis or Memcached.

    ``claim`` is the cache's atomic ``add``. The cache API has no compare-and-set, so
    ``extend``, ``complete`` and ``release`` read the value, compare the token, then write: if the
    lease runs out inside that window (a millisecond or so) and another copy takes it over, the
    write can touch the newcomer's lease. Leases are kept well above the handling time, so this
    needs a delivery that overran its lease by exactly that moment; :class:`RedisDeliveryStore`
    has no such window. Durations are rounded up to whole seconds (plus one on Memcached, whose
    clock ticks in seconds), so a lease is never shorter than asked.

    The local-memory, file and dummy caches are refused (per process, not atomic, drop
    everything). The database cache is accepted, but its ``add`` is not atomic for an expired
    key: the system check ``messages_integrations.W003`` warns about it. The cache itself is
    looked up on first use; its backend class is checked at construction when the settings are
    ready, otherwise on first use.
    """

    def __init__(self, alias: str = "default", *, prefix: str = DEFAULT_PREFIX) -> None:
        if not isinstance(alias, str) or not alias:
            raise TypeError("alias must be the name of a cache in settings.CACHES")
        self.alias = alias
        self.prefix = prefix
        self._backend: type | None = None
        self._memcached = False
        settings, _, _ = _import_django_cache()
        if settings.configured:
            self._check_backend()

    @classmethod
    def auto(cls, alias: str = "default") -> DjangoCacheDeliveryStore | None:
        """A store on ``alias`` when it is a Redis or Memcached cache, else None.

        The fallback when no store is configured: those caches are shared and atomic.
        """
        settings, _, import_string = _import_django_cache()
        config = settings.CACHES.get(alias)
        if not config:
            return None
        try:
            backend = import_string(config["BACKEND"])
        except (ImportError, KeyError):
            return None
        if any(_is_backend(backend, path, import_string) for path in _SHARED):
            return cls(alias)
        if backend.__module__.split(".")[0] == "django_redis":
            return cls(alias)
        return None

    @property
    def backend(self) -> type:
        """The cache backend's class, as ``settings.CACHES[alias]["BACKEND"]`` names it."""
        return self._check_backend()

    def _check_backend(self) -> type:
        if self._backend is not None:
            return self._backend
        settings, _, import_string = _import_django_cache()
        config = settings.CACHES.get(self.alias)
        if not config:
            raise ConfigurationError(
                f"DjangoCacheDeliveryStore: there is no cache {self.alias!r} in settings.CACHES"
            )
        path = config.get("BACKEND", "")
        try:
            backend: type = import_string(path)
        except ImportError as exc:
            raise ConfigurationError(
                f"DjangoCacheDeliveryStore: the backend of cache {self.alias!r} cannot be "
                f"imported: {exc}"
            ) from None
        for refused, why in _REFUSED.items():
            if _is_backend(backend, refused, import_string):
                raise ConfigurationError(
                    f"DjangoCacheDeliveryStore cannot use cache {self.alias!r} "
                    f"({backend.__name__}): it {why}. Use a Redis or Memcached cache, or "
                    f"MESSAGES_WEBHOOK_STORE=redis://..."
                )
        self._memcached = _is_backend(backend, _MEMCACHED, import_string)
        self._backend = backend
        return backend

    def describe(self) -> str:
        """``Django cache 'default' (django / RedisCache)``: the alias and the backend's class."""
        backend = self._check_backend()
        package = backend.__module__.split(".")[0]
        return f"Django cache {self.alias!r} ({package} / {backend.__name__})"

    def __repr__(self) -> str:
        return f"<DjangoCacheDeliveryStore alias={self.alias!r}>"

    def _cache(self) -> Any:
        self._check_backend()
        _, caches, _ = _import_django_cache()
        # Looked up per call: Django keeps one cache object per thread.
        return caches[self.alias]

    def _key(self, key: str) -> str:
        full = self.prefix + key
        if _SAFE_KEY.fullmatch(full):
            return full
        return self.prefix + "sha256:" + hashlib.sha256(key.encode()).hexdigest()

    def _seconds(self, name: str, seconds: float) -> int:
        whole = math.ceil(check_seconds(name, seconds))
        return whole + 1 if self._memcached else whole

    def claim(self, key: str, token: str, *, lease: float) -> Claim:
        """Take the lease with the cache's atomic ``add``, unless it is in progress or done."""
        mine, cache_key, cache = _lease_value(token), self._key(key), self._cache()
        timeout = self._seconds("lease", lease)
        for _ in range(_CLAIM_ATTEMPTS):
            if cache.add(cache_key, mine, timeout):
                return Claim.NEW
            held = cache.get(cache_key)
            if held == _DONE:
                return Claim.DONE
            if held is not None:
                return Claim.IN_PROGRESS
            # Gone between add and get: the lease just expired. Try again.
        # pymemcache answers "not added" and "absent" while its server is failing.
        raise ConnectionError(
            f"Django cache {self.alias!r} neither added nor returned a key: is its server up?"
        )

    def extend(self, key: str, token: str, *, lease: float) -> bool:
        """Push the lease's expiry to now + ``lease`` while ``token`` holds it."""
        mine, cache_key, cache = _lease_value(token), self._key(key), self._cache()
        timeout = self._seconds("lease", lease)
        if cache.get(cache_key) != mine:
            return False
        # touch(), not set(): should the lease change hands in between, the value stays theirs.
        return bool(cache.touch(cache_key, timeout))

    def complete(self, key: str, token: str, *, ttl: float) -> bool:
        """Mark ``key`` done for ``ttl`` seconds if ``token`` holds it or it is free."""
        mine, cache_key, cache = _lease_value(token), self._key(key), self._cache()
        timeout = self._seconds("ttl", ttl)
        held = cache.get(cache_key)
        if held is None:
            # Free: add() so that a lease taken meanwhile is never overwritten.
            return bool(cache.add(cache_key, _DONE, timeout))
        if held != mine:
            return False
        cache.set(cache_key, _DONE, timeout)
        return True

    def release(self, key: str, token: str) -> bool:
        """Drop the lease on ``key`` if ``token`` holds it."""
        mine, cache_key, cache = _lease_value(token), self._key(key), self._cache()
        if cache.get(cache_key) != mine:
            return False
        cache.delete(cache_key)
        return True


# --- URLs -----------------------------------------------------------------------------------------

_REDIS_SCHEMES: Final = ("redis", "rediss", "unix")
_ACCEPTED: Final = "redis://, rediss://, unix:// or memory://"
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def store_from_url(url: str) -> DeliveryStore:
    """A store from a URL: ``redis://``, ``rediss://``, ``unix://`` (Redis) or ``memory://``.

    A Redis URL gives a :class:`RedisDeliveryStore` with a sync and an asyncio client, made by
    redis-py's ``from_url`` (so its query options apply); nothing connects until first use. Each
    client retries a command once, on a new connection, after a connection error: a connection
    pooled before Redis restarted fails once, and would otherwise answer one delivery 503.
    Anything else is a :class:`ConfigurationError` that never repeats a password.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"a store URL must be a string, not {type(url).__name__}")
    match = _SCHEME.match(url.strip())
    if match is None:
        raise ConfigurationError(f"the store URL has no scheme: use {_ACCEPTED}")
    scheme = match.group(1).lower()
    rest = url.strip()[match.end() :]
    if scheme == "memory":
        if rest not in ("", "/"):
            raise ConfigurationError("memory:// takes no host, path or options")
        return InMemoryDeliveryStore()
    if scheme not in _REDIS_SCHEMES:
        raise ConfigurationError(f"unsupported store URL scheme {scheme!r}: use {_ACCEPTED}")
    redis = _import_redis()
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # Retrying is safe: a claim whose first attempt did run finds its own lease and answers "in
    # progress" (409), never a second NEW; a second extend, complete or release changes nothing.
    try:
        sync_client = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 1))
        async_client = redis.asyncio.Redis.from_url(url, retry=AsyncRetry(NoBackoff(), 1))
    except (ValueError, TypeError) as exc:
        reason = _without_password(str(exc), url)
        raise ConfigurationError(f"not a usable Redis URL ({scheme}://...): {reason}") from None
    return RedisDeliveryStore(sync_client, async_client=async_client)


def _without_password(text: str, url: str) -> str:
    # redis-py's messages name the bad part (a port, an option); mask a password all the same.
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return text.replace(password, "***") if password else text
