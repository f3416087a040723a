"""The measured problem, fixed: several worker processes, copies of a delivery sent at once.

With the in-memory store every worker handled its own copy; with a shared store each delivery
runs once whatever the worker count. Real servers on 127.0.0.1: gunicorn with four sync workers
(WSGI, redis-py's sync client) and uvicorn with four workers (ASGI, its asyncio client).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from messages_integrations.testing import Delivery, build_delivery
from tests.support.servers import RunningServer, free_port, serve

pytestmark = pytest.mark.http

SECRET = "whsec_across_workers"
WORKERS = 4
COPIES = 8
DELIVERIES = 6
ROOT = Path(__file__).parents[2]

APPS = "tests.stores.worker_apps"
SERVERS = {
    "gunicorn-sync": ["-m", "gunicorn", "-w", str(WORKERS), f"{APPS}:flask_app"],
    "uvicorn-asgi": ["-m", "uvicorn", "--workers", str(WORKERS), f"{APPS}:starlette_app"],
}


@pytest.fixture
def running(request: pytest.FixtureRequest, redis_url: str) -> Iterator[RunningServer]:
    """One of SERVERS with its store ("redis" or "memory"); handler runs counted in Redis db 1."""
    kind, store = request.param
    port = free_port()
    argv = list(SERVERS[kind])
    if kind.startswith("gunicorn"):
        argv += ["-b", f"127.0.0.1:{port}"]
    else:
        argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    store_url = redis_url if store == "redis" else "memory://"
    env = {
        "WEBHOOK_SECRET": SECRET,
        "STORE_URL": store_url,
        "COUNTER_URL": redis_url.replace("/0", "/1"),
    }
    with serve(argv, port=port, cwd=ROOT, env=env, timeout=60) as server:
        yield server
    counter = redis.Redis.from_url(env["COUNTER_URL"])
    counter.flushdb()
    counter.close()


async def _send_copies(url: str, deliveries: list[Delivery]) -> list[int]:
    async with httpx.AsyncClient(timeout=60) as client:
        posts = [
            client.post(url, content=delivery.body, headers=delivery.headers)
            for delivery in deliveries
            for _ in range(COPIES)
        ]
        return [response.status_code for response in await asyncio.gather(*posts)]


def _runs(redis_url: str, deliveries: list[Delivery]) -> list[int]:
    counter = redis.Redis.from_url(redis_url.replace("/0", "/1"))
    try:
        return [int(counter.get(f"runs:{d.delivery_id}") or 0) for d in deliveries]
    finally:
        counter.close()


@pytest.mark.parametrize(
    "running",
    [("gunicorn-sync", "redis"), ("uvicorn-asgi", "redis")],
    indirect=True,
    ids=["gunicorn-sync", "uvicorn-asgi"],
)
def test_each_delivery_runs_once_across_worker_processes(
    running: RunningServer, redis_url: str
) -> None:
    deliveries = [build_delivery("message.received", secret=SECRET) for _ in range(DELIVERIES)]
    statuses = asyncio.run(_send_copies(f"{running.url}/webhooks", deliveries))
    runs = _runs(redis_url, deliveries)
    print(f"shared store, {WORKERS} workers, {COPIES} copies at once: runs {runs}, {statuses}")
    assert runs == [1] * DELIVERIES, running.log()
    assert set(statuses) <= {200, 409}
    # The sender's retry of any copy that got 409 is now a duplicate.
    again = asyncio.run(_send_copies(f"{running.url}/webhooks", deliveries[:1]))
    assert set(again) == {200}
    assert _runs(redis_url, deliveries[:1]) == [1]


@pytest.mark.parametrize(
    "running", [("gunicorn-sync", "memory")], indirect=True, ids=["gunicorn-sync"]
)
def test_the_in_memory_store_runs_a_delivery_once_per_worker(
    running: RunningServer, redis_url: str
) -> None:
    # The control: what a shared store fixes. Sync workers each take one copy at a time.
    deliveries = [build_delivery("message.received", secret=SECRET) for _ in range(DELIVERIES)]
    asyncio.run(_send_copies(f"{running.url}/webhooks", deliveries))
    runs = _runs(redis_url, deliveries)
    print(f"in-memory store, {WORKERS} workers, {COPIES} copies at once: runs {runs}")
    assert max(runs) > 1
