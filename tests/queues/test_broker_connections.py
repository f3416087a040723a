"""The broker connections a queue keeps between jobs: each command finds a clean connection.

``CeleryQueue`` pushes its jobs on connections it keeps rather than through redis-py's
``execute_command`` (which checks each connection as it takes it from the pool). What that check
was there for must still hold: a connection the server closed while it sat idle, a command that
failed, timed out or was cancelled, and a forked worker must never cost the next job. Run on the
private redis-server, with redis-py's retries turned off where they would hide a broken
connection.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from messages_integrations import _redis_connections
from messages_integrations._redis_connections import AsyncConnections, Connections

NO_RETRY = Retry(NoBackoff(), 0)


def sync_client(url: str, **options: Any) -> redis.Redis:
    """A client that raises at the first failure instead of connecting again and retrying."""
    return redis.Redis.from_url(url, retry=NO_RETRY, **options)


def test_a_connection_the_server_closed_while_idle_is_replaced_before_the_next_command(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_redis_connections, "IDLE_CHECK", 0.05)
    connections = Connections(sync_client(redis_url).connection_pool)
    first = connections.execute("CLIENT", "ID")
    with redis.Redis.from_url(redis_url) as admin:
        assert admin.client_kill_filter(_id=first) == 1
    time.sleep(0.1)
    assert connections.execute("ECHO", "still here") == b"still here"
    assert connections.execute("CLIENT", "ID") != first


def test_an_error_reply_keeps_the_connection_and_the_next_reply_is_its_own(redis_url: str) -> None:
    connections = Connections(sync_client(redis_url).connection_pool)
    connections.execute("SET", "a-string", "value")
    first = connections.execute("CLIENT", "ID")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        connections.execute("LPUSH", "a-string", "job")
    assert connections.execute("ECHO", "next") == b"next"
    assert connections.execute("CLIENT", "ID") == first


def test_a_command_that_timed_out_does_not_hand_its_late_reply_to_the_next(
    redis_url: str,
) -> None:
    connections = Connections(sync_client(redis_url, socket_timeout=0.2).connection_pool)
    with pytest.raises(redis.TimeoutError):
        connections.execute("BLPOP", "nothing-comes", 1)
    time.sleep(1.0)  # the BLPOP's own answer (nil) has arrived by now on the old connection
    assert connections.execute("ECHO", "after") == b"after"


def test_a_cancelled_command_does_not_hand_its_late_reply_to_the_next(redis_url: str) -> None:
    async def main() -> Any:
        client = redis.asyncio.Redis.from_url(redis_url, retry=NO_RETRY)
        connections = AsyncConnections(client.connection_pool)
        waiting = asyncio.ensure_future(connections.execute("BLPOP", "nothing-comes", 1))
        await asyncio.sleep(0.2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.sleep(1.0)  # the BLPOP's nil would be waiting on a kept connection
        answer = await connections.execute("ECHO", "after")
        await client.connection_pool.disconnect()
        return answer

    assert asyncio.run(main()) == b"after"


def _child_client_id(connections: Connections, answers: Any) -> None:
    answers.put(connections.execute("CLIENT", "ID"))


def test_a_forked_child_uses_a_connection_of_its_own_and_leaves_the_parent_s_alone(
    redis_url: str,
) -> None:
    connections = Connections(sync_client(redis_url).connection_pool)
    parent = connections.execute("CLIENT", "ID")
    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    child = context.Process(target=_child_client_id, args=(connections, answers))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert answers.get(timeout=5) != parent
    assert connections.execute("CLIENT", "ID") == parent
    assert connections.execute("ECHO", "parent") == b"parent"
