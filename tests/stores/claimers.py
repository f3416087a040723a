"""Claimers that run in separate processes (spawned), so that the stores prove atomic across them.

Each child builds its own store from a picklable recipe, connects, waits at a barrier with the
others, then claims every key once and reports the keys it won.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from messages_integrations import Claim, DeliveryStore

#: ("redis" or "cluster", url, decode_responses, use_asyncio) or ("django", backend, location)
Recipe = tuple[Any, ...]

LEASE = 60.0


def redis_client(recipe: Recipe) -> Any:
    """The redis-py client of a "redis" or "cluster" recipe: sync or asyncio, bytes or str."""
    import redis
    import redis.asyncio

    kind, url, decode, use_asyncio = recipe
    factories: dict[tuple[str, bool], Any] = {
        ("redis", False): redis.Redis,
        ("redis", True): redis.asyncio.Redis,
        ("cluster", False): redis.RedisCluster,
        ("cluster", True): redis.asyncio.RedisCluster,
    }
    return factories[kind, use_asyncio].from_url(url, decode_responses=decode)


def build(recipe: Recipe) -> DeliveryStore:
    """A store from a recipe, in this process (Django is configured here for a Django recipe)."""
    kind = recipe[0]
    if kind in ("redis", "cluster"):
        from messages_integrations.stores import RedisDeliveryStore

        return RedisDeliveryStore(redis_client(recipe))
    if kind == "django":
        import django
        from django.conf import settings

        from messages_integrations.stores import DjangoCacheDeliveryStore

        _, backend, location = recipe
        if not settings.configured:
            settings.configure(CACHES={"default": {"BACKEND": backend, "LOCATION": location}})
            django.setup()
        return DjangoCacheDeliveryStore("default")
    raise ValueError(f"unknown recipe {recipe!r}")


def claim_all(
    recipe: Recipe, keys: Sequence[str], barrier: Barrier, results: Queue[list[str]]
) -> None:
    """Claim every key once, after the barrier; put the keys this process won on ``results``."""
    store = build(recipe)
    token = secrets.token_hex(16)
    if recipe[0] in ("redis", "cluster") and recipe[3]:
        results.put(asyncio.run(_aclaim_all(store, token, keys, barrier)))
        return
    store.release("warm-up", token)  # connects now, changes nothing: the race starts together
    barrier.wait(60)
    results.put([key for key in keys if store.claim(key, token, lease=LEASE) is Claim.NEW])


async def _aclaim_all(
    store: DeliveryStore, token: str, keys: Sequence[str], barrier: Barrier
) -> list[str]:
    await store.arelease("warm-up", token)
    barrier.wait(60)
    won = [key for key in keys if await store.aclaim(key, token, lease=LEASE) is Claim.NEW]
    client = getattr(store, "async_client", None)
    if client is not None:
        await client.aclose()
    return won
