"""Concurrent deliveries share round trips to Redis, and each still gets its own answer.

Counted on real redis-py clients against the private redis-server: a client subclass counts the
commands it sends, one round trip each.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import uuid
from typing import Any

import pytest
import redis
import redis.asyncio

from messages_integrations import Claim
from messages_integrations.stores import RedisDeliveryStore
from tests.support.servers import free_port

LONG = 30.0
THREADS = 8
ROUNDS = 25
TASKS = 64


class CountingRedis(redis.Redis):
    """redis.Redis counting the commands it sends (one round trip each)."""

    round_trips = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        CountingRedis.round_trips += 1
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        CountingRedis.round_trips += 1
        return super().pipeline(transaction, shard_hint)


class CountingAsyncRedis(redis.asyncio.Redis):
    """redis.asyncio.Redis counting the commands it sends."""

    round_trips = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        CountingAsyncRedis.round_trips += 1
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        CountingAsyncRedis.round_trips += 1
        return super().pipeline(transaction, shard_hint)


def new_key() -> str:
    """A delivery key of its own."""
    return f"delivery:dlv_{uuid.uuid4().hex}"


def test_threads_claiming_at_once_share_round_trips_and_each_gets_its_answer(
    redis_url: str,
) -> None:
    client = CountingRedis.from_url(redis_url)
    store = RedisDeliveryStore(client)
    CountingRedis.round_trips = 0
    start = threading.Barrier(THREADS)
    answers: list[list[tuple[str, Claim, Claim, bool]]] = [[] for _ in range(THREADS)]

    def deliver(slot: int) -> None:
        for _ in range(ROUNDS):
            key, holder = new_key(), secrets.token_hex(16)
            start.wait()
            first = store.claim(key, holder, lease=LONG)
            second = store.claim(key, secrets.token_hex(16), lease=LONG)
            done = store.complete(key, holder, ttl=LONG)
            answers[slot].append((key, first, second, done))

    threads = [threading.Thread(target=deliver, args=(slot,)) for slot in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    calls = THREADS * ROUNDS * 3
    assert sum(map(len, answers)) == THREADS * ROUNDS
    for slot in answers:
        for key, first, second, done in slot:
            assert (first, second, done) == (Claim.NEW, Claim.IN_PROGRESS, True)
            assert store.claim(key, secrets.token_hex(16), lease=LONG) is Claim.DONE
    # Threads that arrive while a call is on its way go together in the next round trip.
    assert 0 < CountingRedis.round_trips < calls
    client.close()


def test_tasks_claiming_at_once_share_round_trips_and_each_gets_its_answer(
    redis_url: str,
) -> None:
    async def main() -> tuple[list[Claim], list[Claim], int]:
        client = CountingAsyncRedis.from_url(redis_url)
        store = RedisDeliveryStore(client)
        keys = [new_key() for _ in range(TASKS)]
        CountingAsyncRedis.round_trips = 0
        first = await asyncio.gather(
            *(store.aclaim(key, secrets.token_hex(16), lease=LONG) for key in keys)
        )
        again = await asyncio.gather(
            *(store.aclaim(key, secrets.token_hex(16), lease=LONG) for key in keys)
        )
        round_trips = CountingAsyncRedis.round_trips
        await client.aclose()
        return list(first), list(again), round_trips

    first, again, round_trips = asyncio.run(main())
    assert first == [Claim.NEW] * TASKS
    assert again == [Claim.IN_PROGRESS] * TASKS
    # The first call goes alone; the 63 made before it was answered, together.
    assert 1 <= round_trips <= 4


def test_an_error_in_one_call_is_that_call_s_alone(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    wrong = new_key()
    client.rpush("messages-webhooks:" + wrong, "not a lease")  # GET on a list: WRONGTYPE

    async def main() -> list[Any]:
        async_client = redis.asyncio.Redis.from_url(redis_url)
        store = RedisDeliveryStore(async_client)
        keys = [new_key(), wrong, new_key()]
        answers = await asyncio.gather(
            *(store.aclaim(key, secrets.token_hex(16), lease=LONG) for key in keys),
            return_exceptions=True,
        )
        await async_client.aclose()
        return list(answers)

    good, bad, also_good = asyncio.run(main())
    assert good is Claim.NEW
    assert also_good is Claim.NEW
    assert isinstance(bad, redis.ResponseError)
    assert "WRONGTYPE" in str(bad)
    client.close()


def test_a_cancelled_caller_leaves_the_others_answered(redis_url: str) -> None:
    async def main() -> tuple[list[Claim], Claim]:
        client = redis.asyncio.Redis.from_url(redis_url)
        store = RedisDeliveryStore(client)
        keys = [new_key() for _ in range(8)]
        tasks = [
            asyncio.ensure_future(store.aclaim(key, secrets.token_hex(16), lease=LONG))
            for key in keys
        ]
        await asyncio.sleep(0)
        tasks[3].cancel()
        answers = [await task for i, task in enumerate(tasks) if i != 3]
        with pytest.raises(asyncio.CancelledError):
            await tasks[3]
        after = await store.aclaim(new_key(), secrets.token_hex(16), lease=LONG)
        await client.aclose()
        return answers, after

    answers, after = asyncio.run(main())
    assert answers == [Claim.NEW] * 7
    assert after is Claim.NEW


def test_every_waiting_thread_hears_of_a_server_that_is_down() -> None:
    store = RedisDeliveryStore(redis.Redis(port=free_port(), socket_connect_timeout=2))
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def deliver() -> None:
        start.wait()
        try:
            store.claim(new_key(), secrets.token_hex(16), lease=LONG)
        except redis.ConnectionError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert len(errors) == THREADS
    # Each caller raises an exception of its own (tracebacks are not written over each other).
    assert len({id(error) for error in errors}) == THREADS
