"""Each example app with ``MESSAGES_WEBHOOK_STORE=redis://...`` under four worker processes.

Flask and Django (WSGI) under ``gunicorn -w 4``; Starlette, FastAPI and Django (ASGI) under
``uvicorn --workers 4``. Every delivery is handled exactly once whichever worker each copy
reaches, a worker killed mid-handler leaves the delivery to another once its lease runs out, and
a Redis outage is answered 503 until Redis is back.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from messages_integrations import EVENT_NAMES
from messages_integrations.testing import Delivery, build_delivery
from tests.support.services import Service

from .examples import EXAMPLES, SECRET, WORKERS, Example, Served, start
from .sender import DISCONNECTED, Attempts, new_client, send_until_answered

pytestmark = pytest.mark.http

DELIVERIES = 50
COPIES = 8
#: Deliveries in flight at once, each with all its copies: 32 requests at a time.
AT_ONCE = 4


@pytest.fixture(scope="module", params=EXAMPLES, ids=lambda example: example.name)
def served(
    request: pytest.FixtureRequest,
    redis_server: Service,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """The example under its server, on the test Redis; each handler run takes 50 ms."""
    example: Example = request.param
    if redis_server.process is None:
        redis_server.start()
    runs_dir = tmp_path_factory.mktemp(f"runs-{example.name}")
    store_url = f"redis://{redis_server.address}/0"
    env = {"SCALEOUT_HANDLER_SECONDS": "0.05"}
    with start(example, runs_dir, store_url=store_url, env=env) as server:
        yield Served(example, server, runs_dir)


async def _send_copies(url: str, deliveries: list[Delivery]) -> list[list[Attempts]]:
    gate = asyncio.Semaphore(AT_ONCE)
    async with new_client() as client:

        async def copies_of(delivery: Delivery) -> list[Attempts]:
            async with gate:
                sends = [send_until_answered(client, url, delivery) for _ in range(COPIES)]
                return list(await asyncio.gather(*sends))

        return list(await asyncio.gather(*(copies_of(d) for d in deliveries)))


def _post(url: str, delivery: Delivery) -> httpx.Response:
    # A new connection each time, as a sender's retry: it may reach any worker.
    return httpx.post(url, content=delivery.body, headers=delivery.headers, timeout=60)


def test_each_delivery_is_handled_once_by_the_workers_between_them(
    served: Served, redis_url: str
) -> None:
    names = itertools.cycle(EVENT_NAMES)
    deliveries = [build_delivery(next(names), secret=SECRET) for _ in range(DELIVERIES)]

    answers = asyncio.run(_send_copies(served.url, deliveries))

    runs = served.runs()
    ids = [d.delivery_id for d in deliveries]
    assert all(i is not None for i in ids)
    started = {i: runs.started.get(str(i), []) for i in ids}
    ended = {i: runs.ended.get(str(i), []) for i in ids}
    assert {i: len(p) for i, p in started.items() if len(p) != 1} == {}, served.server.log()
    assert {i: len(p) for i, p in ended.items() if len(p) != 1} == {}, served.server.log()
    statuses = Counter(s for copies in answers for copy in copies for s in copy.statuses)
    finals = Counter(copy.last_body.get("status") for copies in answers for copy in copies)
    assert set(statuses) <= {200, 409}, statuses
    # Each delivery: one copy answered "ok" (it ran the handlers), every other one "duplicate".
    assert finals == {"ok": DELIVERIES, "duplicate": DELIVERIES * (COPIES - 1)}, finals
    by_pid = Counter(pids[0] for pids in ended.values())
    print(
        f"\n{served.example.name}: {DELIVERIES} deliveries x {COPIES} copies, runs per worker "
        f"{sorted(by_pid.values(), reverse=True)}, answers {dict(statuses)}"
    )
    assert len(by_pid) > 1, f"every delivery ran in one process: {by_pid}"
    assert len(by_pid) <= WORKERS


async def _started_by(served: Served, delivery_id: str, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = served.runs().started.get(delivery_id)
        if pids:
            return pids[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no handler started {delivery_id}:\n{served.server.log()}")


async def _gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"process {pid} still runs {timeout} s after kill -9")


def test_a_worker_killed_mid_handler_leaves_the_delivery_to_another_worker(
    served: Served, redis_url: str
) -> None:
    hold = served.runs_dir / "hold"
    delivery = build_delivery("message.received", secret=SECRET)
    delivery_id = str(delivery.delivery_id)

    async def scenario() -> tuple[int, Attempts]:
        hold.touch()
        async with new_client() as client:
            sending = asyncio.create_task(send_until_answered(client, served.url, delivery))
            victim = await _started_by(served, delivery_id)
            assert served.is_worker(victim), f"{victim} is not a worker of the server under test"
            os.kill(victim, signal.SIGKILL)
            await _gone(victim)
            hold.unlink()  # the copy that takes over runs to its end
            return victim, await sending

    try:
        victim, attempts = asyncio.run(scenario())
    finally:
        hold.unlink(missing_ok=True)

    name = served.example.name
    print(f"\n{name}: worker {victim} killed mid-handler; answers {attempts.statuses}")
    assert attempts.statuses[0] == DISCONNECTED  # the killed worker's connection dropped
    assert 409 in attempts.statuses  # the lease kept the retries off until it ran out
    assert (attempts.final, attempts.last_body.get("status")) == (200, "ok"), served.server.log()
    runs = served.runs()
    [successor] = runs.ended[delivery_id]
    assert successor != victim
    assert Counter(runs.started[delivery_id]) == {victim: 1, successor: 1}
    # A later retry of the same delivery runs nothing.
    assert _post(served.url, delivery).json()["status"] == "duplicate"
    assert served.runs().started[delivery_id] == runs.started[delivery_id]


def test_redis_down_is_answered_503_and_the_retry_after_it_is_back_runs_once(
    served: Served, redis_server: Service, redis_url: str
) -> None:
    delivery = build_delivery("reaction.added", secret=SECRET)
    delivery_id = str(delivery.delivery_id)
    redis_server.stop()
    try:
        # One attempt per worker, or so: every worker answers 503 on its own.
        during = [_post(served.url, delivery) for _ in range(WORKERS)]
    finally:
        redis_server.start()
    assert [r.status_code for r in during] == [503] * WORKERS, served.server.log()
    assert all(r.headers.get("retry-after") for r in during)
    assert {r.json()["error"] for r in during} == {"store_unavailable"}
    assert delivery_id not in served.runs().started  # no handler ran without the store

    after = _post(served.url, delivery)
    assert (after.status_code, after.json()["status"]) == (200, "ok"), served.server.log()
    runs = served.runs()
    assert len(runs.started[delivery_id]) == len(runs.ended[delivery_id]) == 1
    assert _post(served.url, delivery).json()["status"] == "duplicate"
    assert len(served.runs().started[delivery_id]) == 1


def test_each_worker_logs_the_shared_store_at_start_up(served: Served, redis_url: str) -> None:
    # Django builds its view's receiver at the first request to it, in each worker.
    if served.example.own_logging:
        httpx.get(served.url, timeout=30)
    store = f"store {redis_url}"  # redis://127.0.0.1:PORT/0
    deadline = time.monotonic() + 30
    while not served.log_lines("secret(s), replay window") and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = served.log_lines("secret(s), replay window")
    assert lines, served.server.log()
    assert all(store in line for line in lines), lines
    assert not served.log_lines("in this process's memory")
    if not served.example.own_logging:
        # "<pid> INFO messages_integrations: ...": one line per worker (and endpoint) at start-up.
        assert all(line.split()[1] == "INFO" for line in lines), lines
        # Every worker logs its own line; one started in place of a killed worker, too.
        assert len({line.split()[0] for line in lines}) >= WORKERS, lines
