"""Prometheus under gunicorn with four worker processes: whichever worker answers the scrape,
``/metrics`` adds up every worker's figures (prometheus-client's multiprocess mode).

The deliveries are spread over the workers (each sync worker takes one request at a time and the
handler takes a while), then the counters must add up exactly and the in-progress gauge return to
0, also after a worker is killed in the middle of a handler (gunicorn's ``child_exit`` hook).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Iterator

import httpx
import pytest

from messages_integrations.testing import Delivery, build_delivery, sample_data
from tests.observability.observed import (
    APPS,
    SECRET,
    App,
    Metrics,
    ObservedServer,
    eventually,
    observed_server,
    total,
    value,
)

pytestmark = pytest.mark.http

WORKERS = 4
DELIVERIES = 40
AT_ONCE = 8
FOUR_WORKERS = App(
    (
        "-m",
        "gunicorn",
        "-w",
        str(WORKERS),
        "-c",
        f"python:{APPS}.gunicorn_conf",
        f"{APPS}.flask_app:app",
    ),
    "/webhooks",
    {},
)
DELIVERED = "messages_webhook_deliveries_total"
HANDLER_RUNS = "messages_webhook_handler_duration_seconds_count"
IN_PROGRESS = "messages_webhook_in_progress"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObservedServer]:
    """The Flask app under gunicorn -w 4, PROMETHEUS_MULTIPROC_DIR set to an empty folder."""
    folder = tmp_path_factory.mktemp("prometheus-workers")
    shared = folder / "prometheus"
    shared.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared)}
    with observed_server("flask-gunicorn-4", folder / "records", app=FOUR_WORKERS, env=env) as s:
        yield s


def _lingering(seconds: float) -> Delivery:
    """A delivery whose handler takes ``seconds`` (apps/telemetry.py's ``linger``)."""
    data = {**sample_data("message.received"), "text": f"linger {seconds}"}
    return build_delivery("message.received", data, secret=SECRET)


async def _deliver_all(url: str, deliveries: list[Delivery]) -> list[int]:
    gate = asyncio.Semaphore(AT_ONCE)
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(delivery: Delivery) -> int:
            async with gate:
                response = await client.post(url, content=delivery.body, headers=delivery.headers)
                return response.status_code

        return list(await asyncio.gather(*(one(d) for d in deliveries)))


def _scrapes(server: ObservedServer, count: int) -> list[Metrics]:
    return [server.metrics() for _ in range(count)]


def _handling_pids(server: ObservedServer) -> set[int]:
    return {record["pid"] for record in server.callbacks() if record["type"] == "HandlersStarted"}


def test_metrics_add_up_over_every_worker(server: ObservedServer) -> None:
    deliveries = [_lingering(0.1) for _ in range(DELIVERIES)]
    statuses = asyncio.run(_deliver_all(server.url, deliveries))
    assert statuses == [200] * DELIVERIES
    pids = _handling_pids(server)
    assert len(pids) >= 2, f"every delivery went to one worker: {pids}"
    # Each scrape is answered by whichever worker accepts it: every one says the same.
    for metrics in _scrapes(server, 2 * WORKERS):
        labels = {"event": "message.received", "outcome": "ok"}
        assert value(metrics, DELIVERED, **labels) == DELIVERIES
        assert total(metrics, DELIVERED) == DELIVERIES
        assert total(metrics, HANDLER_RUNS) == DELIVERIES
        assert value(metrics, IN_PROGRESS) == 0


def test_a_worker_killed_mid_handler_leaves_no_delivery_in_progress(
    server: ObservedServer,
) -> None:
    before = total(server.metrics(), DELIVERED)
    slow = _lingering(120)

    def send() -> None:
        # Its worker is killed: the connection drops.
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(server.url, content=slow.body, headers=slow.headers, timeout=180)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()

    def started() -> int | None:
        found = [
            record["pid"]
            for record in server.callbacks()
            if record["type"] == "HandlersStarted" and record["delivery_id"] == slow.delivery_id
        ]
        return found[0] if found else None

    pid = eventually(started, "the slow delivery's handler to start")
    # Another worker answers the scrape, and counts the busy one's delivery.
    assert value(server.metrics(), IN_PROGRESS) == 1
    os.kill(pid, signal.SIGKILL)
    sender.join(timeout=60)

    def settled() -> Metrics | None:
        metrics = server.metrics()
        return metrics if value(metrics, IN_PROGRESS) == 0 else None

    metrics = eventually(settled, "the killed worker's delivery to stop counting")
    # What the killed worker counted before stays counted.
    assert total(metrics, DELIVERED) == before
