"""The control: the same example apps and the same load with the in-memory default store.

Each worker remembers only the deliveries it handled itself, so copies that reach different
workers all run: the scale-out tests can fail, and this is what a shared store fixes. Each worker
warns about it at start-up (Django: at its first request). FastAPI's worker count comes from
``WEB_CONCURRENCY=4`` instead of ``--workers 4``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from messages_integrations.testing import build_delivery

from .examples import EXAMPLES, SECRET, WORKERS, Example, Served, start
from .sender import Attempts, new_client, send_until_answered

pytestmark = pytest.mark.http

DELIVERIES = 20
COPIES = 8


@pytest.fixture(scope="module", params=EXAMPLES, ids=lambda example: example.name)
def alone(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The example under its server with no store configured; each handler run takes 50 ms."""
    example: Example = request.param
    runs_dir = tmp_path_factory.mktemp(f"runs-memory-{example.name}")
    env = {"SCALEOUT_HANDLER_SECONDS": "0.05"}
    from_env = example.name == "fastapi"
    with start(example, runs_dir, store_url=None, env=env, workers_from_env=from_env) as server:
        yield Served(example, server, runs_dir)


async def _send_copies(url: str, count: int) -> tuple[list[str], list[Attempts]]:
    deliveries = [build_delivery("message.received", secret=SECRET) for _ in range(count)]
    async with new_client() as client:
        answers: list[Attempts] = []
        for delivery in deliveries:
            sends = [send_until_answered(client, url, delivery) for _ in range(COPIES)]
            answers += await asyncio.gather(*sends)
    return [str(d.delivery_id) for d in deliveries], answers


def test_the_in_memory_store_runs_copies_once_per_worker(alone: Served) -> None:
    ids, answers = asyncio.run(_send_copies(alone.url, DELIVERIES))
    runs = alone.runs()
    counts = [len(runs.ended.get(i, [])) for i in ids]
    print(f"\n{alone.example.name}, in-memory store: runs per delivery {counts}")
    assert {a.final for a in answers} == {200}
    assert min(counts) >= 1
    assert max(counts) > 1, "no delivery ran twice: this test could not tell a shared store apart"
    # Never more than once per worker: each one de-duplicates its own copies.
    assert max(counts) <= WORKERS
    assert all(len(set(runs.ended[i])) == len(runs.ended[i]) for i in ids)


def test_each_worker_warns_that_the_in_memory_store_is_per_process(alone: Served) -> None:
    if alone.example.own_logging:
        asyncio.run(_send_copies(alone.url, 2))  # Django logs at each worker's first request
    warnings = alone.log_lines("keep delivery ids in this process's memory")
    assert warnings, alone.server.log()
    assert all(f"{WORKERS} worker processes" in line for line in warnings), warnings
    assert all("MESSAGES_WEBHOOK_STORE=redis://" in line for line in warnings)
    assert all("store in-memory" in line for line in alone.log_lines("secret(s), replay window"))
    if not alone.example.own_logging:
        assert all(line.split()[1] == "WARNING" for line in warnings), warnings
        assert len({line.split()[0] for line in warnings}) == WORKERS, warnings
