"""Each adapter with a Redis store on loopback, against itself with the in-memory store and
against its bare endpoint; and the Redis commands each delivery costs.

The apps of ``apps/`` are started twice, unchanged: once as they are (the in-memory store) and
once with ``MESSAGES_WEBHOOK_STORE=redis://127.0.0.1:PORT/0``, a private ``redis-server``
started here. The bare endpoint, the adapter on the in-memory store and the adapter on Redis are
loaded in turn, the order rotating from trial to trial, each trial with deliveries never sent
before. Redis's ``INFO`` is read before and after each Redis trial: its ``EVALSHA`` calls per
answered request are the commands per delivery (each carries the store operations gathered while
the previous one was on its way: a delivery alone costs two, one to claim and one to mark done),
and the reads it made from its clients (``total_reads_processed``) the round trips.

    python benchmarks/redis_store.py [--seconds 2] [--trials 3] [--connections 16] [--workers 1]

``--workers`` starts that many server worker processes per app (gunicorn's ``--workers``,
uvicorn's ``--workers``); ``nox -s bench`` records one.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import Section, Target, redis_server, table
from http_load import APPS_UNDER_TEST, App, Trial, load, running, write_deliveries

from messages_integrations._serve import HOST

#: The adapter with the Redis store must keep this share of the bare endpoint's requests/s.
TARGET = 0.8
KINDS = ("bare", "memory", "redis")


def command_calls(client: Any) -> dict[str, int]:
    """Calls per command since the server started (``INFO commandstats``), and under ``"reads"``
    the reads the server made from its clients (``total_reads_processed``): one per round trip,
    however many commands it brought."""
    stats: dict[str, dict[str, int]] = client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    calls["reads"] = int(client.info("stats")["total_reads_processed"])
    return calls


@dataclass
class Result:
    """The trials of one app: bare endpoint, adapter on memory, adapter on Redis."""

    app: App
    trials: dict[str, list[Trial]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    evalsha_per_delivery: list[float] = field(default_factory=list)
    round_trips_per_delivery: list[float] = field(default_factory=list)
    note: str = ""

    def rates(self, kind: str) -> list[float]:
        """Requests/s of each trial of one kind."""
        return [trial.requests_per_second for trial in self.trials[kind]]

    def ratios(self, kind: str, base: str) -> list[float]:
        """Per trial round, the requests/s of ``kind`` over those of ``base``."""
        return [a / b for a, b in zip(self.rates(kind), self.rates(base), strict=True)]


def measure(
    app: App, redis_url: str, seconds: float, trials: int, connections: int, folder: Path
) -> Result:
    """Rotate the three endpoints ``trials`` times after a warm-up of each."""
    import redis

    result = Result(app)
    with_redis = dataclasses.replace(app, env=(*app.env, ("MESSAGES_WEBHOOK_STORE", redis_url)))
    client = redis.Redis.from_url(redis_url)
    with running(app) as memory_server, running(with_redis) as redis_server_:
        endpoints = {
            "bare": (memory_server.port, app.bare_path),
            "memory": (memory_server.port, app.adapter_path),
            "redis": (redis_server_.port, app.adapter_path),
        }
        warm = folder / "warm-up.deliveries"
        write_deliveries(warm, 5000)
        rate = max(
            load(port, path, warm, 0, 5000, min(1.0, seconds), connections).requests_per_second
            for port, path in endpoints.values()
        )
        # Enough fresh deliveries for a trial faster than the warm-up (several workers warm up).
        per_trial = int(rate * seconds * 3) + 5000
        for number in range(trials):
            pool = folder / f"trial-{number}.deliveries"
            write_deliveries(pool, per_trial)  # fresh ids: each store sees each id once
            shift = number % len(KINDS)
            for kind in KINDS[shift:] + KINDS[:shift]:
                port, path = endpoints[kind]
                before = command_calls(client) if kind == "redis" else {}
                trial = load(port, path, pool, 0, per_trial, seconds, connections)
                if kind == "redis":
                    _count_commands(result, before, command_calls(client), trial.requests)
                if trial.requests > per_trial:
                    result.note = "more requests than pre-signed deliveries: some were repeats"
                if trial.failures:
                    result.note = f"{trial.failures} failed requests in a trial"
                result.trials[kind].append(trial)
            pool.unlink()
    client.close()
    return result


def _count_commands(
    result: Result, before: dict[str, int], after: dict[str, int], requests: int
) -> None:
    delta = {name: calls - before.get(name, 0) for name, calls in after.items()}
    reads = delta.pop("reads") - 2  # the two INFO commands that read "before"
    result.evalsha_per_delivery.append(delta.get("evalsha", 0) / requests)
    result.round_trips_per_delivery.append(reads / requests)


def _row(result: Result) -> list[str]:
    median = statistics.median

    def rate(kind: str) -> str:
        return f"{median(result.rates(kind)):,.0f}"

    def ratio(kind: str, base: str) -> str:
        values = result.ratios(kind, base)
        return f"**{median(values):.2f}** ({min(values):.2f}-{max(values):.2f})"

    redis_trials = result.trials["redis"]
    p50 = median(t.p50_ms for t in redis_trials)
    p99 = median(t.p99_ms for t in redis_trials)
    return [
        result.app.name,
        result.app.server,
        rate("bare"),
        rate("memory"),
        rate("redis"),
        f"{p50:.2f} / {p99:.2f}",
        ratio("redis", "bare"),
        ratio("redis", "memory"),
        f"{median(result.evalsha_per_delivery):.2f}",
        f"{median(result.round_trips_per_delivery):.2f}",
        result.note,
    ]


def run(seconds: float = 2.0, trials: int = 3, connections: int = 16, workers: int = 1) -> Section:
    """Measure every installed adapter on Redis; return the table and the targets."""
    title = "Redis store: adapter on Redis against in-memory and bare"
    try:
        import redis  # noqa: F401 - only checks that redis-py is installed
    except ImportError:
        return Section(title, "redis-py is not installed, so not measured.")
    if shutil.which("redis-server") is None:
        return Section(title, "redis-server is not installed, so not measured.")
    generator = "wrk (1 thread)" if shutil.which("wrk") else "the asyncio client of http_load.py"
    processes = (
        "one server worker process" if workers == 1 else f"{workers} server worker processes"
    )
    results: list[Result] = []
    skipped: list[str] = []
    with redis_server() as port, tempfile.TemporaryDirectory(prefix="bench-redis-") as folder:
        url = f"redis://{HOST}:{port}/0"
        for app in APPS_UNDER_TEST:
            if not app.available():
                skipped.append(app.name)
                continue
            app = dataclasses.replace(app, workers=workers)
            results.append(measure(app, url, seconds, trials, connections, Path(folder)))
    headers = [
        "framework",
        "server",
        "bare req/s",
        "in-memory req/s",
        "Redis req/s",
        "Redis p50 / p99 ms",
        "Redis / bare",
        "Redis / in-memory",
        "commands (EVALSHA) per delivery",
        "round trips per delivery",
        "note",
    ]
    lines = [
        f"{trials} trials of {seconds:g} s per endpoint, the three endpoints in a rotating order, "
        f"{connections} keep-alive connections from {generator}; {processes} "
        "per app, and a redis-server on 127.0.0.1 sharing the same cores. Figures are "
        "medians; ratio ranges are over the trial rounds. Each request is a `reaction.added` "
        "(382 B) with its own signature and a delivery id never sent before. Commands: the "
        "`EVALSHA` calls of the Redis trials (`INFO commandstats`) per answered request, each "
        "carrying the store operations (two per delivery) of the deliveries that met in one "
        "round trip; round trips: the reads Redis made from its clients meanwhile "
        "(`total_reads_processed`).",
        table(headers, [_row(result) for result in results]),
    ]
    if skipped:
        lines.append("Not installed, so not measured: " + ", ".join(skipped) + ".")
    # Against the bare endpoint (the target), and against the same adapter in memory.
    against = {"bare": "bare requests/s", "memory": "on the in-memory store, requests/s"}
    targets = [
        Target(
            f"{result.app.name} adapter on Redis / {label}",
            statistics.median(result.ratios("redis", base)),
            TARGET,
            higher_is_better=True,
            note=result.note,
        )
        for base, label in against.items()
        for result in results
    ]
    return Section(title, "\n\n".join(lines), targets)


def main() -> None:
    """Print the Redis store table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    section = run(args.seconds, args.trials, args.connections, args.workers)
    print(f"## {section.title}\n\n{section.markdown}")
    for target in section.targets:
        print(" | ".join(target.row()))


if __name__ == "__main__":
    main()
