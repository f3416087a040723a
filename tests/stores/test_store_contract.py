"""One contract, every store: leases held under a token, done markers, real servers, real time.

Stores: in memory (sync and async methods), Redis through redis-py (sync and asyncio clients,
``decode_responses`` off and on), Django's RedisCache and PyMemcacheCache. Timings are real: the
servers expire the keys, not a fake clock.
"""

from __future__ import annotations

import multiprocessing
import secrets
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from messages_integrations import Claim, ConfigurationError, InMemoryDeliveryStore
from messages_integrations.stores import (
    DjangoCacheDeliveryStore,
    RedisDeliveryStore,
    store_from_url,
)
from tests.stores.claimers import LEASE, claim_all
from tests.stores.conftest import (
    LOCMEM_CACHE,
    MEMCACHED_CACHE,
    REDIS_CACHE,
    Case,
    django_caches,
)
from tests.support.servers import free_port
from tests.support.services import Service

LONG = 30.0  # seconds: a lease or done marker that outlasts any test


def new_key() -> str:
    """A delivery key no other test uses (memcached is shared by the whole session)."""
    return f"delivery:dlv_{uuid.uuid4().hex}"


def token() -> str:
    """A holder's token, as the receiver makes one per delivery."""
    return secrets.token_hex(16)


# --- atomic across processes ----------------------------------------------------------------------

CLAIMERS = 5
KEYS = 150


def test_only_one_of_many_concurrent_claimers_gets_new(case: Case) -> None:
    """Separate processes race for the same keys; the in-memory store, per process by design,
    races threads instead."""
    keys = [new_key() for _ in range(KEYS)]
    won = _race_threads(case, keys) if case.recipe is None else _race_processes(case.recipe, keys)
    assert len(won) == CLAIMERS
    winners = [key for keys_won in won for key in keys_won]
    assert sorted(winners) == sorted(keys), "every key must be won exactly once"
    # The race left every key held: a late claimer still sees it in progress.
    assert case.store.claim(keys[0], token(), lease=LEASE) is Claim.IN_PROGRESS


def _race_threads(case: Case, keys: list[str]) -> list[list[str]]:
    barrier, won = threading.Barrier(CLAIMERS), []
    lock = threading.Lock()

    def claimer() -> None:
        mine = token()
        barrier.wait(30)
        result = [
            key for key in keys if case.store.store.claim(key, mine, lease=LEASE) is Claim.NEW
        ]
        with lock:
            won.append(result)

    threads = [threading.Thread(target=claimer) for _ in range(CLAIMERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return won


def _race_processes(recipe: tuple[Any, ...], keys: list[str]) -> list[list[str]]:
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(CLAIMERS), spawn.Queue()
    processes = [
        spawn.Process(target=claim_all, args=(recipe, keys, barrier, results))
        for _ in range(CLAIMERS)
    ]
    for process in processes:
        process.start()
    try:
        won = [results.get(timeout=120) for _ in processes]
    finally:
        for process in processes:
            process.join(30)
    assert all(process.exitcode == 0 for process in processes)
    results.close()
    results.join_thread()
    return won


# --- leases and done markers ----------------------------------------------------------------------


def test_a_second_claim_sees_the_lease_in_progress(case: Case) -> None:
    key = new_key()
    assert case.store.claim(key, token(), lease=LONG) is Claim.NEW
    assert case.other.claim(key, token(), lease=LONG) is Claim.IN_PROGRESS
    assert case.store.claim(new_key(), token(), lease=LONG) is Claim.NEW, "keys are independent"


def test_a_lease_runs_out_so_a_crashed_copy_is_retried(case: Case) -> None:
    key = new_key()
    assert case.store.claim(key, token(), lease=case.lease) is Claim.NEW
    assert case.other.claim(key, token(), lease=case.lease) is Claim.IN_PROGRESS
    time.sleep(case.late)
    assert case.other.claim(key, token(), lease=case.lease) is Claim.NEW


def test_done_outlives_the_lease(case: Case) -> None:
    key, mine = new_key(), token()
    assert case.store.claim(key, mine, lease=case.lease) is Claim.NEW
    assert case.store.complete(key, mine, ttl=LONG) is True
    assert case.other.claim(key, token(), lease=case.lease) is Claim.DONE
    time.sleep(case.late)
    assert case.other.claim(key, token(), lease=case.lease) is Claim.DONE


def test_a_done_marker_is_forgotten_after_its_ttl(case: Case) -> None:
    key, mine = new_key(), token()
    case.store.claim(key, mine, lease=LONG)
    assert case.store.complete(key, mine, ttl=case.lease) is True
    time.sleep(case.late)
    assert case.other.claim(key, token(), lease=LONG) is Claim.NEW


def test_release_after_done_changes_nothing(case: Case) -> None:
    key, mine = new_key(), token()
    case.store.claim(key, mine, lease=LONG)
    case.store.complete(key, mine, ttl=LONG)
    assert case.store.release(key, mine) is False
    assert case.store.complete(key, mine, ttl=LONG) is False, "already done"
    assert case.store.extend(key, mine, lease=LONG) is False
    assert case.other.claim(key, token(), lease=LONG) is Claim.DONE


def test_release_lets_a_retry_claim_at_once(case: Case) -> None:
    key, mine = new_key(), token()
    case.store.claim(key, mine, lease=LONG)
    assert case.store.release(key, mine) is True
    assert case.store.release(key, mine) is False, "nothing left to release"
    assert case.other.claim(key, token(), lease=LONG) is Claim.NEW


def test_a_stale_token_can_neither_complete_nor_release_nor_extend(case: Case) -> None:
    key, first, second = new_key(), token(), token()
    assert case.store.claim(key, first, lease=case.lease) is Claim.NEW
    time.sleep(case.late)  # the first holder overran its lease ...
    assert case.other.claim(key, second, lease=LONG) is Claim.NEW  # ... and a retry took over

    assert case.store.complete(key, first, ttl=LONG) is False
    assert case.store.release(key, first) is False
    assert case.store.extend(key, first, lease=LONG) is False
    assert case.store.claim(key, token(), lease=LONG) is Claim.IN_PROGRESS, "second still holds"

    assert case.other.complete(key, second, ttl=LONG) is True
    assert case.store.release(key, first) is False
    assert case.store.complete(key, first, ttl=LONG) is False
    assert case.store.claim(key, token(), lease=LONG) is Claim.DONE


def test_another_holders_lease_is_never_touched(case: Case) -> None:
    key, holder = new_key(), token()
    case.store.claim(key, holder, lease=LONG)
    stranger = token()
    assert case.other.release(key, stranger) is False
    assert case.other.complete(key, stranger, ttl=LONG) is False
    assert case.other.extend(key, stranger, lease=LONG) is False
    assert case.other.claim(key, stranger, lease=LONG) is Claim.IN_PROGRESS
    assert case.store.release(key, holder) is True


def test_a_free_key_may_be_completed_by_the_copy_that_did_the_work(case: Case) -> None:
    key, mine = new_key(), token()
    case.store.claim(key, mine, lease=case.lease)
    time.sleep(case.late)  # the lease ran out, nobody took over: the work was still done
    assert case.store.complete(key, mine, ttl=LONG) is True
    assert case.other.claim(key, token(), lease=LONG) is Claim.DONE


def test_extend_keeps_a_lease_alive_past_its_first_expiry(case: Case) -> None:
    key, mine = new_key(), token()
    case.store.claim(key, mine, lease=case.lease)
    time.sleep(case.lease / 2)
    assert case.store.extend(key, mine, lease=3 * case.lease) is True
    time.sleep(case.late - case.lease / 2)  # past the first lease's end, inside the extension
    assert case.other.claim(key, token(), lease=LONG) is Claim.IN_PROGRESS
    assert case.store.complete(key, mine, ttl=LONG) is True


def test_extend_of_a_lease_that_ran_out_fails(case: Case) -> None:
    key, mine = new_key(), token()
    case.store.claim(key, mine, lease=case.lease)
    time.sleep(case.late)
    assert case.store.extend(key, mine, lease=LONG) is False
    assert case.other.claim(key, token(), lease=LONG) is Claim.NEW


def test_any_delivery_key_is_accepted(case: Case) -> None:
    # Spaces, non-ASCII, and longer than memcached's 250 bytes: some stores hash such keys.
    odd = f"delivery:{uuid.uuid4().hex} dlv é {'x' * 300}"
    mine = token()
    assert case.store.claim(odd, mine, lease=LONG) is Claim.NEW
    assert case.other.claim(odd, token(), lease=LONG) is Claim.IN_PROGRESS
    assert case.other.claim(odd[:-1], token(), lease=LONG) is Claim.NEW, "a different key"
    assert case.store.complete(odd, mine, ttl=LONG) is True
    assert case.other.claim(odd, token(), lease=LONG) is Claim.DONE


@pytest.mark.parametrize(
    ("lease", "error"),
    [(0, ValueError), (-1, ValueError), (float("inf"), ValueError), ("60", TypeError)],
)
def test_a_nonsense_lease_is_refused_and_changes_nothing(
    case: Case, lease: float, error: type[Exception]
) -> None:
    key = new_key()
    with pytest.raises(error):
        case.store.claim(key, token(), lease=lease)
    with pytest.raises(ValueError, match="token"):
        case.store.claim(key, "", lease=LONG)
    assert case.store.claim(key, token(), lease=LONG) is Claim.NEW


def test_describe_names_the_store(case: Case) -> None:
    described = case.store.store.describe()
    expected = {
        "memory": "in-memory",
        "redis": "redis://127.0.0.1:",
        "cluster": "Redis Cluster via 127.0.0.1:",
        "django": "Django cache",
    }
    assert described.startswith(expected[case.name.split("-")[0]])


# --- store_from_url -------------------------------------------------------------------------------


def test_a_redis_url_gives_a_store_for_sync_and_async_code(redis_url: str) -> None:
    import asyncio

    store = store_from_url(redis_url)
    assert isinstance(store, RedisDeliveryStore)
    assert store.sync_client is not None
    assert store.async_client is not None
    key, mine = new_key(), token()
    assert store.claim(key, mine, lease=LONG) is Claim.NEW

    async def from_async_code() -> tuple[Claim, bool]:
        try:
            return await store.aclaim(key, token(), lease=LONG), await store.acomplete(
                key, mine, ttl=LONG
            )
        finally:
            assert store.async_client is not None
            await store.async_client.aclose()

    assert asyncio.run(from_async_code()) == (Claim.IN_PROGRESS, True)
    assert store.claim(key, token(), lease=LONG) is Claim.DONE
    store.sync_client.close()


def test_a_unix_socket_url_gives_a_redis_store(redis_socket_server: Path) -> None:
    store = store_from_url(f"unix://{redis_socket_server}?db=3")
    assert isinstance(store, RedisDeliveryStore)
    assert store.describe() == f"unix://{redis_socket_server}?db=3"
    key, mine = new_key(), token()
    assert store.claim(key, mine, lease=LONG) is Claim.NEW
    assert store.claim(key, token(), lease=LONG) is Claim.IN_PROGRESS
    assert store.sync_client is not None
    store.sync_client.close()


def test_a_rediss_url_constructs_without_connecting() -> None:
    store = store_from_url(f"rediss://:s3cret@127.0.0.1:{free_port()}/2")
    assert isinstance(store, RedisDeliveryStore)
    assert store.describe() == store.describe().replace("s3cret", "")
    assert store.describe().startswith("rediss://:***@127.0.0.1:")


def test_a_memory_url_gives_the_in_memory_store() -> None:
    store = store_from_url("memory://")
    assert isinstance(store, InMemoryDeliveryStore)
    assert store.describe() == "in-memory"


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("memcached://user:s3cret@127.0.0.1:11211", "'memcached'"),
        ("http://:s3cret@127.0.0.1/", "'http'"),
        ("user:s3cret@127.0.0.1:6379", "no scheme"),
        ("redis://:s3cret@127.0.0.1:port/0", "Redis URL"),
        ("redis://:s3cret@127.0.0.1:6379/0?socket_timeout=soon", "Redis URL"),
        ("memory://s3cret", "memory://"),
    ],
)
def test_an_unusable_url_is_a_configuration_error_without_the_password(
    url: str, named: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        store_from_url(url)
    message = str(raised.value)
    assert named in message
    assert "s3cret" not in message
    if "scheme" in message:
        assert "redis://, rediss://, unix:// or memory://" in message


# --- a store whose server is down -----------------------------------------------------------------


def test_a_redis_store_whose_server_is_down_constructs_and_raises_on_use() -> None:
    import asyncio

    import redis

    store = store_from_url(f"redis://127.0.0.1:{free_port()}/0")
    assert isinstance(store, RedisDeliveryStore)
    with pytest.raises(redis.ConnectionError):
        store.claim(new_key(), token(), lease=LONG)

    async def from_async_code() -> None:
        assert store.async_client is not None
        try:
            with pytest.raises(redis.ConnectionError):
                await store.aclaim(new_key(), token(), lease=LONG)
        finally:
            await store.async_client.aclose()

    asyncio.run(from_async_code())


def test_a_redis_store_raises_while_its_server_is_stopped_and_recovers(
    redis_url: str, redis_server: Service
) -> None:
    import redis

    store = store_from_url(redis_url)
    assert isinstance(store, RedisDeliveryStore)
    redis_server.stop()
    with pytest.raises(redis.ConnectionError):
        store.claim(new_key(), token(), lease=LONG)
    redis_server.start()
    assert store.claim(new_key(), token(), lease=LONG) is Claim.NEW
    assert store.sync_client is not None
    store.sync_client.close()


@pytest.mark.parametrize("backend", [REDIS_CACHE, MEMCACHED_CACHE])
def test_a_django_cache_store_whose_server_is_down_raises_on_every_use(backend: str) -> None:
    import redis
    from pymemcache.exceptions import MemcacheError

    port = free_port()
    location = f"redis://127.0.0.1:{port}/0" if backend == REDIS_CACHE else f"127.0.0.1:{port}"
    with django_caches(down={"BACKEND": backend, "LOCATION": location}):
        store = DjangoCacheDeliveryStore("down")
        # pymemcache raises once, then answers "nothing here" while the server is marked failed:
        # the store must still raise, or every delivery would look in progress.
        for _ in range(3):
            with pytest.raises((OSError, redis.ConnectionError, MemcacheError)):
                store.claim(new_key(), token(), lease=LONG)


# --- describe() never shows a password ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "described"),
    [
        ("redis://:s3cret@127.0.0.1:{port}/0", "redis://:***@127.0.0.1:{port}/0"),
        ("redis://alice:s3cret@127.0.0.1:{port}/1", "redis://alice:***@127.0.0.1:{port}/1"),
        ("redis://127.0.0.1:{port}", "redis://127.0.0.1:{port}/0"),
        ("rediss://:s3cret@[::1]:{port}/0", "rediss://:***@[::1]:{port}/0"),
        ("redis://127.0.0.1:{port}/0?password=s3cret", "redis://:***@127.0.0.1:{port}/0"),
    ],
)
def test_describe_masks_any_password(url: str, described: str) -> None:
    import redis
    import redis.asyncio

    port = free_port()
    for client in (redis.Redis.from_url(url.format(port=port)),):
        assert RedisDeliveryStore(client).describe() == described.format(port=port)
    async_only = RedisDeliveryStore(redis.asyncio.Redis.from_url(url.format(port=port)))
    assert async_only.describe() == described.format(port=port)
    assert "s3cret" not in repr(async_only)


# --- Redis specifics -----------------------------------------------------------------------------


def test_keys_live_under_the_prefix(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    store = RedisDeliveryStore(client, prefix="app-a:")
    mine = token()
    store.claim("delivery:dlv_1", mine, lease=LONG)
    assert client.get("app-a:delivery:dlv_1") == f"lease:{mine}".encode()
    ttl_ms = client.pttl("app-a:delivery:dlv_1")
    assert 0 < ttl_ms <= LONG * 1000
    store.complete("delivery:dlv_1", mine, ttl=LONG)
    assert client.get("app-a:delivery:dlv_1") == b"done"
    # Another prefix is another store on the same server.
    assert RedisDeliveryStore(client, prefix="app-b:").claim("delivery:dlv_1", mine, lease=1) is (
        Claim.NEW
    )
    client.close()


def test_a_store_with_only_an_asyncio_client_refuses_sync_calls() -> None:
    import redis.asyncio

    store = RedisDeliveryStore(redis.asyncio.Redis.from_url(f"redis://127.0.0.1:{free_port()}"))
    with pytest.raises(ConfigurationError, match="async_client="):
        store.claim(new_key(), token(), lease=LONG)


def test_a_client_that_is_not_redis_py_is_refused() -> None:
    import redis
    import redis.asyncio

    with pytest.raises(TypeError, match=r"redis\.Redis"):
        RedisDeliveryStore(object())  # type: ignore[arg-type]
    sync_client = redis.Redis()
    with pytest.raises(TypeError, match="async_client"):
        RedisDeliveryStore(sync_client, async_client=redis.Redis())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="one async client"):
        RedisDeliveryStore(redis.asyncio.Redis(), async_client=redis.asyncio.Redis())


def test_a_script_flushed_from_the_server_is_loaded_again(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    store = RedisDeliveryStore(client)
    assert store.claim(new_key(), token(), lease=LONG) is Claim.NEW
    client.script_flush()  # a restarted or failed-over server has no scripts
    assert store.claim(new_key(), token(), lease=LONG) is Claim.NEW
    client.close()


# --- Django's caches ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "why"),
    [
        (LOCMEM_CACHE, "each process's memory"),
        ("django.core.cache.backends.filebased.FileBasedCache", "not atomic"),
        ("django.core.cache.backends.dummy.DummyCache", "drops everything"),
    ],
)
def test_the_django_store_refuses_caches_that_cannot_de_duplicate(
    backend: str, why: str, tmp_path: Path
) -> None:
    with (
        django_caches(bad={"BACKEND": backend, "LOCATION": str(tmp_path)}),
        pytest.raises(ConfigurationError) as raised,
    ):
        DjangoCacheDeliveryStore("bad")
    message = str(raised.value)
    assert why in message
    assert "'bad'" in message
    assert "Redis or Memcached" in message


def test_the_django_store_names_a_missing_alias() -> None:
    with django_caches(), pytest.raises(ConfigurationError, match="no cache 'missing'"):
        DjangoCacheDeliveryStore("missing")


def test_the_django_store_checks_its_backend_on_first_use_when_made_before_settings() -> None:
    # A store made in settings.py exists before the settings do: the check waits for first use.
    script = textwrap.dedent(
        f"""
        import django
        from django.conf import settings
        from messages_integrations import ConfigurationError
        from messages_integrations.stores import DjangoCacheDeliveryStore

        store = DjangoCacheDeliveryStore()
        settings.configure(CACHES={{"default": {{"BACKEND": "{LOCMEM_CACHE}"}}}})
        django.setup()
        try:
            store.claim("delivery:dlv_1", "token", lease=60)
        except ConfigurationError as exc:
            print("refused:", exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert "refused:" in done.stdout
    assert "each process's memory" in done.stdout


def test_the_django_store_describes_its_cache_without_its_location(redis_url: str) -> None:
    location = redis_url.replace("redis://", "redis://:s3cret@")
    with django_caches(store={"BACKEND": REDIS_CACHE, "LOCATION": location}):
        described = DjangoCacheDeliveryStore("store").describe()
    assert described == "Django cache 'store' (django / RedisCache)"


def test_auto_picks_a_redis_or_memcached_default_cache_only(redis_url: str) -> None:
    with django_caches(default={"BACKEND": REDIS_CACHE, "LOCATION": redis_url}):
        store = DjangoCacheDeliveryStore.auto()
        assert isinstance(store, DjangoCacheDeliveryStore)
        assert store.alias == "default"
    with django_caches(default={"BACKEND": MEMCACHED_CACHE, "LOCATION": "127.0.0.1:1"}):
        assert isinstance(DjangoCacheDeliveryStore.auto(), DjangoCacheDeliveryStore)
    with django_caches():  # local memory
        assert DjangoCacheDeliveryStore.auto() is None
    with django_caches(db={"BACKEND": "django.core.cache.backends.db.DatabaseCache"}):
        assert DjangoCacheDeliveryStore.auto("db") is None
        assert DjangoCacheDeliveryStore.auto("absent") is None


def test_w003_warns_about_a_store_on_the_database_cache(redis_url: str) -> None:
    from django.test import override_settings

    from messages_integrations.django.checks import check_settings

    database = {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "cache"}
    with (
        django_caches(db=database, shared={"BACKEND": REDIS_CACHE, "LOCATION": redis_url}),
        # Without a secret the checks stop at E001, whichever folder configured Django first.
        override_settings(MESSAGES_WEBHOOK_SECRET="whsec_checks"),
    ):
        with override_settings(MESSAGES_WEBHOOK_STORE=DjangoCacheDeliveryStore("db")):
            found = {m.id: m for m in check_settings()}
        with override_settings(MESSAGES_WEBHOOK_STORE=DjangoCacheDeliveryStore("shared")):
            assert "messages_integrations.W003" not in {m.id for m in check_settings()}
    warning = found["messages_integrations.W003"]
    assert "database cache" in warning.msg
    assert "not atomic" in warning.msg
    assert "MESSAGES_WEBHOOK_STORE" in str(warning.hint)
