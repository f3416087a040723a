"""What the benchmarks share: interleaved timing, Markdown tables, targets and the machine."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from itertools import repeat
from pathlib import Path

from messages_integrations._serve import HOST, free_port

ROOT = Path(__file__).resolve().parent.parent

#: The packages whose versions a report records, when installed.
PACKAGES = (
    "messages-integrations",
    "msgspec",
    "orjson",
    "stripe",
    "standardwebhooks",
    "svix",
    "slack_sdk",
    "starlette",
    "fastapi",
    "flask",
    "django",
    "uvicorn",
    "uvloop",
    "httptools",
    "gunicorn",
    "celery",
    "kombu",
    "redis",
)


@dataclass(frozen=True)
class Target:
    """One performance target of the issue, and whether this run met it."""

    name: str
    measured: float | None
    limit: float
    higher_is_better: bool = False
    unit: str = "x"
    note: str = ""

    @property
    def holds(self) -> bool | None:
        """True or False, or None when it could not be measured here."""
        if self.measured is None:
            return None
        if self.higher_is_better:
            return self.measured >= self.limit
        return self.measured <= self.limit

    def row(self) -> list[str]:
        """The target as a row of the targets table."""
        sign = ">=" if self.higher_is_better else "<="
        measured = "n/a" if self.measured is None else f"{self.measured:.2f}{self.unit}"
        verdict = {True: "yes", False: "**no**", None: "not measured"}[self.holds]
        return [self.name, f"{sign} {self.limit:g}{self.unit}", measured, verdict, self.note]


@dataclass
class Section:
    """A benchmark's printed result: Markdown text and the targets it checked."""

    title: str
    markdown: str
    targets: list[Target] = field(default_factory=list)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, numbers right-aligned."""
    align = ["---" if i == 0 else "--:" for i in range(len(headers))]
    lines = [headers, align, *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def targets_table(targets: Sequence[Target]) -> str:
    """The targets of a run with their verdicts."""
    return table(
        ["target", "limit", "measured", "holds", "note"], [target.row() for target in targets]
    )


def time_batch(call: Callable[[], object], count: int) -> float:
    """Seconds per call over ``count`` calls."""
    start = time.perf_counter_ns()
    for _ in repeat(None, count):
        call()
    return (time.perf_counter_ns() - start) / count / 1e9


def calibrate(call: Callable[[], object], batch_seconds: float) -> int:
    """How many calls make a batch of about ``batch_seconds``."""
    count = 1
    while True:
        elapsed = time_batch(call, count) * count
        if elapsed >= batch_seconds / 4 or count >= 10_000_000:
            return max(1, round(count * batch_seconds / max(elapsed, 1e-9)))
        count *= 4


def interleave(
    calls: dict[str, Callable[[], object]],
    rounds: int,
    batch_seconds: float,
    before: dict[str, Callable[[], object]] | None = None,
) -> dict[str, list[float]]:
    """Time every call once per round, the order rotating, so that noise hits all alike.

    ``before[name]`` runs, untimed, before each batch of ``name``. Returns the seconds per call
    of each round, per name.
    """
    before = before or {}
    counts = {}
    for name, call in calls.items():
        before.get(name, _nothing)()
        counts[name] = calibrate(call, batch_seconds)
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            before.get(name, _nothing)()
            times[name].append(time_batch(calls[name], counts[name]))
    return times


def _nothing() -> None:
    return None


def ratios(times: Sequence[float], floor: Sequence[float]) -> list[float]:
    """Per-round ratios of a contender's time to the floor's."""
    return [mine / base for mine, base in zip(times, floor, strict=True)]


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """Median, first and third quartile."""
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return median, q1, q3


def machine() -> str:
    """The machine and versions a run is measured on, as Markdown."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    return "\n".join(
        [
            f"- CPU: {model}, `nproc` = {os.cpu_count()}, load average at the start {load}",
            f"- Python {platform.python_version()} ({sys.implementation.name}), "
            f"{platform.system()} {platform.release()}",
            "- " + ", ".join(versions),
        ]
    )


@contextlib.contextmanager
def redis_server() -> Iterator[int]:
    """A private redis-server on a free loopback port, without persistence; yields its port."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as folder:
        argv = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        process = subprocess.Popen(
            [*argv, "--dir", folder], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    socket.create_connection((HOST, port), 0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.05)
            yield port
        finally:
            process.terminate()
            process.wait(timeout=10)
