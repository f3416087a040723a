"""The answer to a delivery whose only handler is a background one, queued on Celery with a
loopback Redis as broker, beside the same delivery with one empty inline handler.

One server process serves both endpoints (``apps/background_app.py``); one client sends signed
``reaction.added`` deliveries one at a time over a keep-alive connection, alternating between the
endpoints, and times each answer. The same receivers are also timed in this process, without a
server (``WebhookReceiver.handle`` and ``ahandle``). Beside them: a Redis round trip (redis-py's
``PING``, as kombu talks to Redis through redis-py) and the Redis commands the broker received
per queued delivery.

    python benchmarks/background.py [--count 2000] [--warm-up 200]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import Section, Target, redis_server, table

from messages_integrations._serve import HOST, RunningServer, free_port, serve
from messages_integrations.testing import build_delivery

APPS = Path(__file__).resolve().parent / "apps"
sys.path.insert(0, str(APPS))

from shared import SECRET  # noqa: E402 - the apps folder is not a package

INLINE, BACKGROUND = "/inline", "/background"
PING = "ping"  # the broker round trips timed between the deliveries


@dataclass(frozen=True)
class Server:
    """One framework on one server, one worker process."""

    name: str
    argv: Callable[[int], list[str]]
    needs: tuple[str, ...]

    def available(self) -> bool:
        """Whether the framework and the server are installed."""
        return all(importlib.util.find_spec(name) is not None for name in self.needs)


def _uvicorn(port: int) -> list[str]:
    return [
        "-m", "uvicorn", "background_app:asgi", "--host", HOST, "--port", str(port),
        "--workers", "1", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def _gunicorn(port: int) -> list[str]:
    return [
        "-m", "gunicorn", "background_app:wsgi", "--bind", f"{HOST}:{port}", "--workers", "1",
        "--worker-class", "gthread", "--threads", "4", "--log-level", "warning",
    ]  # fmt: skip


SERVERS = [
    Server("Starlette, uvicorn", _uvicorn, ("starlette", "uvicorn", "celery", "redis")),
    Server("Flask, gunicorn", _gunicorn, ("flask", "gunicorn", "celery", "redis")),
]


def deliveries(count: int) -> list[tuple[bytes, dict[str, str]]]:
    """``count`` signed reaction.added deliveries, each with its own id."""
    signed = [build_delivery("reaction.added", secret=SECRET) for _ in range(count)]
    return [(d.body, d.headers) for d in signed]


def answer_times(port: int, count: int, warm_up: int, broker: Any = None) -> dict[str, list[float]]:
    """Seconds to answer each delivery, per endpoint, the endpoints alternating; with a
    ``broker`` client, a ``PING`` round trip timed after each pair too."""
    sent = deliveries(2 * (count + warm_up))
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    times: dict[str, list[float]] = {INLINE: [], BACKGROUND: [], PING: []}
    expected = {INLINE: 200, BACKGROUND: 202}
    for number in range(count + warm_up):
        # Which endpoint goes first alternates too, so that neither always follows the other.
        order = (INLINE, BACKGROUND) if number % 2 else (BACKGROUND, INLINE)
        for path in order:
            body, headers = sent.pop()
            started = time.perf_counter()
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            if response.status != expected[path]:
                raise RuntimeError(f"{path} answered {response.status}")
            if number >= warm_up:
                times[path].append(elapsed)
        _ping(broker, times[PING] if number >= warm_up else [])
    connection.close()
    return times


def _ping(broker: Any, times: list[float]) -> None:
    """One redis-py ``PING`` on the broker, timed: a round trip under the same load."""
    if broker is not None:
        started = time.perf_counter()
        broker.ping()
        times.append(time.perf_counter() - started)


# INFO and PING are the benchmark's own; HELLO, CLIENT SETINFO and a health-check PING are what
# redis-py sends on each new connection, once per event loop and client rather than per delivery.
_NOT_PER_DELIVERY = frozenset(
    {"cmdstat_info", "cmdstat_ping", "cmdstat_client|setinfo", "cmdstat_hello"}
)


def command_calls(client: object) -> int:
    """The commands the Redis server has run so far for deliveries (see above)."""
    stats = client.info("commandstats")  # type: ignore[attr-defined]
    return sum(v["calls"] for k, v in stats.items() if k not in _NOT_PER_DELIVERY)


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (0.5: median, 0.99: p99)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class Result:
    """One way in's figures, in seconds."""

    name: str
    inline: list[float]
    background: list[float]
    ping: list[float]
    commands_per_delivery: float

    def added(self, fraction: float) -> float:
        """How much longer the background endpoint took at this quantile."""
        return percentile(self.background, fraction) - percentile(self.inline, fraction)


def measure(server: Server, count: int, warm_up: int) -> Result:
    """Run the server on a fresh broker and time both endpoints."""
    import redis

    with redis_server() as redis_port:
        broker = f"redis://{HOST}:{redis_port}/0"
        client = redis.Redis(host=HOST, port=redis_port)
        port = free_port()
        env = {"BENCH_BROKER": broker, "PYTHONPATH": str(APPS)}
        with serve(server.argv(port), port=port, cwd=APPS, env=env, timeout=60) as running:
            answer_times(port, 0, 50)  # connect the producer, declare the queue
            before = command_calls(client)
            times = answer_times(port, count, warm_up, client)
            commands = command_calls(client) - before
            _check_quiet(running)
        queued = client.llen("celery")
        client.close()
    if queued < count:
        raise RuntimeError(f"only {queued} jobs reached the broker")
    per_delivery = commands / (count + warm_up)
    return Result(server.name, times[INLINE], times[BACKGROUND], times[PING], per_delivery)


def measure_in_process(count: int, warm_up: int) -> tuple[list[Result], dict[str, list[float]]]:
    """The same receivers called in this process: ``handle`` (sync) and ``ahandle`` (async)."""
    import redis

    from messages_integrations import WebhookReceiver

    results = []
    with redis_server() as redis_port:
        os.environ["BENCH_BROKER"] = f"redis://{HOST}:{redis_port}/0"
        # The app reads BENCH_BROKER when imported: import it afresh for this broker.
        sys.modules.pop("background_app", None)
        app: Any = importlib.import_module("background_app")

        client = redis.Redis(host=HOST, port=redis_port)
        queued = WebhookReceiver(secret=SECRET, router=app.background, queue=app.queue)
        ways = [
            ("in process, handle()", app.sync_inline, _handle),
            ("in process, ahandle()", app.async_inline, _ahandle),
        ]
        for name, inline, call in ways:
            receivers = {INLINE: WebhookReceiver(secret=SECRET, router=inline), BACKGROUND: queued}
            call(receivers, 0, 50, None)
            before = command_calls(client)
            times = call(receivers, count, warm_up, client)
            commands = command_calls(client) - before
            results.append(
                Result(
                    name,
                    times[INLINE],
                    times[BACKGROUND],
                    times[PING],
                    commands / (count + warm_up),
                )
            )
        publish = publish_times(app.queue, client, count)
        client.close()
    return results, publish


def publish_times(queue: Any, client: Any, count: int) -> dict[str, list[float]]:
    """``CeleryQueue.enqueue`` alone, beside redis-py pushing the same job's JSON to a list."""
    import json

    from messages_integrations.queues import Job

    jobs = []
    for body, headers in deliveries(count):
        key = "delivery:" + headers["X-Webhook-Delivery-Id"]
        jobs.append(Job.from_delivery(body, key=key, event="reaction.added"))
    times: dict[str, list[float]] = {"enqueue": [], "lpush": []}
    # CPU seconds per call too: on shared cores they vary less than the wall-clock times.
    cpu = dict.fromkeys(times, 0.0)
    for job in jobs:
        started, used = time.perf_counter(), time.process_time()
        queue.enqueue(job)
        times["enqueue"].append(time.perf_counter() - started)
        cpu["enqueue"] += time.process_time() - used
        text = json.dumps(job.to_dict())
        started, used = time.perf_counter(), time.process_time()
        client.lpush("bench-plain", text)
        times["lpush"].append(time.perf_counter() - started)
        cpu["lpush"] += time.process_time() - used
    for name, total in cpu.items():
        times[f"{name} cpu"] = [total / len(jobs)]
    return times


def _handle(
    receivers: dict[str, Any], count: int, warm_up: int, broker: Any
) -> dict[str, list[float]]:
    sent = deliveries(2 * (count + warm_up))
    times: dict[str, list[float]] = {INLINE: [], BACKGROUND: [], PING: []}
    for number in range(count + warm_up):
        order = (INLINE, BACKGROUND) if number % 2 else (BACKGROUND, INLINE)
        for path in order:
            body, headers = sent.pop()
            started = time.perf_counter()
            receivers[path].handle("POST", headers, body)
            if number >= warm_up:
                times[path].append(time.perf_counter() - started)
        _ping(broker, times[PING] if number >= warm_up else [])
    return times


def _ahandle(
    receivers: dict[str, Any], count: int, warm_up: int, broker: Any
) -> dict[str, list[float]]:
    async def run() -> dict[str, list[float]]:
        sent = deliveries(2 * (count + warm_up))
        times: dict[str, list[float]] = {INLINE: [], BACKGROUND: [], PING: []}
        for number in range(count + warm_up):
            order = (INLINE, BACKGROUND) if number % 2 else (BACKGROUND, INLINE)
            for path in order:
                body, headers = sent.pop()
                started = time.perf_counter()
                await receivers[path].ahandle("POST", headers, body)
                if number >= warm_up:
                    times[path].append(time.perf_counter() - started)
            _ping(broker, times[PING] if number >= warm_up else [])  # blocking: nothing else runs
        return times

    return asyncio.run(run())


def _check_quiet(running: RunningServer) -> None:
    if "Traceback" in running.log():
        raise RuntimeError(f"the server failed:\n{running.log()}")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f}"


def _both(values: list[float]) -> str:
    return f"{_ms(percentile(values, 0.5))} / {_ms(percentile(values, 0.99))}"


def _row(result: Result) -> list[str]:
    return [
        result.name,
        _both(result.inline),
        _both(result.background),
        f"{_ms(result.added(0.5))} / {_ms(result.added(0.99))}",
        _both(result.ping),
        f"{result.added(0.5) / percentile(result.ping, 0.5):.1f} / "
        f"{result.added(0.99) / percentile(result.ping, 0.99):.1f}",
        f"{result.commands_per_delivery:.2f}",
    ]


def run(count: int = 2000, warm_up: int = 200) -> Section:
    """Measure every available server, then the receivers in process; the table and targets."""
    results = [measure(server, count, warm_up) for server in SERVERS if server.available()]
    missing = [server.name for server in SERVERS if not server.available()]
    in_process, publish = measure_in_process(count, warm_up)
    results += in_process
    targets = []
    for result in results:
        targets.append(
            Target(
                f"{result.name}: broker commands per queued delivery",
                result.commands_per_delivery,
                1.0,
                unit="",
                note="one LPUSH: one round trip",
            )
        )
        # The measure: the answer's p99 against a round trip's p99 under the same load
        # (the p50s are in the table).
        targets.append(
            Target(
                f"{result.name}: extra p99 time, in Redis round trips (p99)",
                result.added(0.99) / percentile(result.ping, 0.99),
                1.0,
                unit="",
                note="the LPUSH itself is one; the rest builds the message",
            )
        )
    markdown = (
        f"{count} deliveries per endpoint after {warm_up} to warm up, one at a time (over one "
        "keep-alive connection to one server worker process, or called in process), the two "
        "endpoints alternating; no Celery worker runs (the jobs wait in Redis). Times in ms, "
        "p50 / p99; *extra* is the background endpoint's percentile minus the inline one's. "
        "A PING to the broker follows each pair of deliveries, so that the round trip is timed "
        "under the same load.\n\n"
        + table(
            [
                "way in",
                "inline handler (200)",
                "background handler (202)",
                "extra",
                "Redis round trip (PING)",
                "extra in round trips, p50 / p99",
                "broker commands per delivery",
            ],
            [_row(result) for result in results],
        )
        + "".join(f"\n\n{name}: not installed, skipped." for name in missing)
        + f"\n\nIn process, `CeleryQueue.enqueue()` alone: {_both(publish['enqueue'])} ms "
        f"({_us(publish['enqueue cpu'][0])} us of CPU per call); redis-py pushing the same job's "
        f"JSON to a list (one LPUSH): {_both(publish['lpush'])} ms "
        f"({_us(publish['lpush cpu'][0])} us of CPU per call)."
    )
    return Section("Background handlers: the answer with a job queued on Celery", markdown, targets)


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--warm-up", type=int, default=200)
    args = parser.parse_args()
    section = run(args.count, args.warm_up)
    print(f"## {section.title}\n\n{section.markdown}\n")
    for target in section.targets:
        print(" | ".join(target.row()))


if __name__ == "__main__":
    main()
