"""Each adapter's endpoint against a hand-written endpoint of the same framework, same server.

Both endpoints live in one server process (``apps/``): the adapter at ``/webhooks`` and a bare
endpoint doing the floor's work (HMAC, ``compare_digest``, ``json.loads``, the handler). They are
loaded alternately from another process, ``wrk`` when installed (a Lua script cycles through
pre-signed requests), otherwise a small asyncio client. Every request carries a fresh
signature and a delivery id never sent before, so the adapter really handles each one.

    python benchmarks/http_load.py [--seconds 2] [--trials 3] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import importlib.util
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from _common import Section, Target, table

from messages_integrations._serve import HOST, RunningServer, free_port, serve
from messages_integrations.testing import build_delivery

APPS = Path(__file__).resolve().parent / "apps"
sys.path.insert(0, str(APPS))

from shared import KEY, SECRET  # noqa: E402 - the apps folder is not a package

LUA = r"""
local deliveries = {}
local index = 0

function init(args)
  local path, first, count = args[1], tonumber(args[2]), tonumber(args[3])
  local file = assert(io.open(args[4], "rb"))
  local data = file:read("*a")
  file:close()
  local position, number = 1, 0
  while position <= #data do
    local newline = data:find("\n", position, true)
    local signature, timestamp, id, length =
      data:sub(position, newline - 1):match("(%S+) (%S+) (%S+) (%d+)")
    length = tonumber(length)
    if number >= first and number < first + count then
      deliveries[#deliveries + 1] = wrk.format("POST", path, {
        ["Content-Type"] = "application/json",
        ["X-Webhook-Signature"] = signature,
        ["X-Webhook-Timestamp"] = timestamp,
        ["X-Webhook-Delivery-Id"] = id,
      }, data:sub(newline + 1, newline + length))
    end
    number = number + 1
    position = newline + length + 1
  end
end

function request()
  index = index % #deliveries + 1
  return deliveries[index]
end
"""


@dataclass(frozen=True)
class App:
    """One framework's server: the command, and the two endpoints it serves."""

    name: str
    server: str  # "uvicorn" or "gunicorn"
    target: str  # module:attribute in benchmarks/apps
    bare_path: str
    needs: tuple[str, ...]
    adapter_path: str = "/webhooks"
    env: tuple[tuple[str, str], ...] = ()
    #: The adapter's requests/s must reach this share of the bare endpoint's.
    required: float = 0.95
    #: Server worker processes (the HTTP benchmark runs one).
    workers: int = 1

    def available(self) -> bool:
        """Whether the framework and the server are installed."""
        return all(importlib.util.find_spec(name) is not None for name in self.needs)

    def argv(self, port: int) -> list[str]:
        """The server command on 127.0.0.1."""
        if self.server == "uvicorn":
            return [
                "-m", "uvicorn", self.target, "--host", HOST, "--port", str(port),
                "--workers", str(self.workers), "--no-access-log", "--log-level", "warning",
            ]  # fmt: skip
        return [
            "-m", "gunicorn", self.target, "--bind", f"{HOST}:{port}",
            "--workers", str(self.workers), "--worker-class", "gthread", "--threads", "4",
            "--log-level", "warning",
        ]  # fmt: skip


APPS_UNDER_TEST = [
    App(
        "Starlette",
        "uvicorn",
        "starlette_app:app",
        "/bare",
        ("starlette", "uvicorn"),
        required=1.0,
    ),
    App(
        "FastAPI, middleware",
        "uvicorn",
        "fastapi_app:app",
        "/bare",
        ("fastapi", "uvicorn"),
        required=1.0,
    ),
    App(
        "FastAPI, dependency",
        "uvicorn",
        "fastapi_app:app",
        "/bare",
        ("fastapi", "uvicorn"),
        adapter_path="/dependency",
        required=1.0,
    ),
    App("Flask", "gunicorn", "flask_app:app", "/bare", ("flask", "gunicorn")),
    App("Django, WSGI", "gunicorn", "django_app:wsgi", "/bare", ("django", "gunicorn")),
    App(
        "Django, ASGI",
        "uvicorn",
        "django_app:asgi",
        "/bare-async",
        ("django", "uvicorn"),
        env=(("BENCH_DJANGO_ASGI", "1"),),
    ),
]

#: Shown beside the targets, not measured against one: the library's dependency against a
#: hand-written dependency that does the floor's work through the same FastAPI machinery.
COMPARISONS = [
    App(
        "FastAPI, dependency, against a hand-written dependency",
        "uvicorn",
        "fastapi_app:app",
        "/bare-dependency",
        ("fastapi", "uvicorn"),
        adapter_path="/dependency",
    ),
]


@dataclass
class Trial:
    """One load run against one endpoint."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int  # non-2xx answers and socket errors


@dataclass
class Result:
    """The trials of one app, adapter and bare alternating."""

    app: App
    adapter: list[Trial] = field(default_factory=list)
    bare: list[Trial] = field(default_factory=list)
    note: str = ""

    def ratios(self) -> list[float]:
        """Adapter requests/s over bare requests/s, per pair of neighbouring trials."""
        return [
            a.requests_per_second / b.requests_per_second
            for a, b in zip(self.adapter, self.bare, strict=True)
        ]


# --- the deliveries ---------------------------------------------------------------------------


def write_deliveries(path: Path, count: int) -> None:
    """Sign ``count`` distinct ``reaction.added`` deliveries, each with its own delivery id."""
    placeholder = "dlv_" + "0" * 32
    now = int(time.time() * 1000)
    template = build_delivery("reaction.added", secret=SECRET, delivery_id=placeholder)
    body = template.body.replace(str(template.timestamp).encode(), str(now).encode())
    prefix = f"{now}.".encode()
    with path.open("wb") as out:
        for _ in range(count):
            delivery_id = "dlv_" + secrets.token_hex(16)
            signed = body.replace(placeholder.encode(), delivery_id.encode())
            signature = hmac.new(KEY, prefix + signed, hashlib.sha256).hexdigest()
            out.write(f"{signature} {now} {delivery_id} {len(signed)}\n".encode() + signed)


def read_deliveries(path: Path, first: int, count: int) -> list[tuple[dict[str, str], bytes]]:
    """The headers and bodies of ``count`` deliveries from ``first`` on (for the Python client)."""
    data = path.read_bytes()
    out: list[tuple[dict[str, str], bytes]] = []
    position, number = 0, 0
    while position < len(data) and len(out) < count:
        newline = data.index(b"\n", position)
        signature, timestamp, delivery_id, length = data[position:newline].decode().split()
        end = newline + 1 + int(length)
        if number >= first:
            headers = {
                "Content-Type": "application/json",
                "X-Webhook-Signature": signature,
                "X-Webhook-Timestamp": timestamp,
                "X-Webhook-Delivery-Id": delivery_id,
            }
            out.append((headers, data[newline + 1 : end]))
        number += 1
        position = end
    return out


# --- load generators ----------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_wrk(
    url: str, path: str, pool: Path, first: int, count: int, seconds: float, connections: int
) -> Trial:
    """One wrk run; raises if wrk failed."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA)
    try:
        output = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--latency",
                "--timeout",
                "10s",
                "-s",
                script.name,
                url,
                "--",
                path,
                str(first),
                str(count),
                str(pool),
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    finally:
        Path(script.name).unlink()
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not (total and rate and "50" in latency and "99" in latency):
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    failures = int(non_2xx.group(1)) if non_2xx else 0
    failures += sum(int(n) for n in errors.groups()) if errors else 0
    return Trial(
        float(rate.group(1)),
        _milliseconds(latency["50"]),
        _milliseconds(latency["99"]),
        int(total.group(1)),
        failures,
    )


async def _python_client(
    host: str,
    port: int,
    requests: Sequence[bytes],
    seconds: float,
    connections: int,
) -> Trial:
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds
    next_index = 0

    async def connection() -> None:
        nonlocal next_index, failures
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline and next_index < len(requests):
                raw = requests[next_index]
                next_index += 1
                started = time.perf_counter()
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length:\s*(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                latencies.append(time.perf_counter() - started)
                if not head.startswith(b"HTTP/1.1 2"):
                    failures += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Trial(
        len(latencies) / elapsed,
        latencies[len(latencies) // 2] * 1e3,
        latencies[int(len(latencies) * 0.99)] * 1e3,
        len(latencies),
        failures,
    )


def run_python_client(
    host: str,
    port: int,
    path: str,
    pool: Path,
    first: int,
    count: int,
    seconds: float,
    connections: int,
) -> Trial:
    """The fallback load generator, run in a separate process by the caller of this module."""
    raw = []
    for headers, body in read_deliveries(pool, first, count):
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        raw.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return asyncio.run(_python_client(host, port, raw, seconds, connections))


def _client_main(argv: Sequence[str]) -> None:
    host, port, path, pool, first, count, seconds, connections = argv
    trial = run_python_client(
        host, int(port), path, Path(pool), int(first), int(count), float(seconds), int(connections)
    )
    print(trial.requests_per_second, trial.p50_ms, trial.p99_ms, trial.requests, trial.failures)


def load(
    port: int, path: str, pool: Path, first: int, count: int, seconds: float, connections: int
) -> Trial:
    """One trial with wrk, or with the Python client in its own process."""
    if shutil.which("wrk"):
        return run_wrk(f"http://{HOST}:{port}", path, pool, first, count, seconds, connections)
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--client",
            HOST,
            str(port),
            path,
            str(pool),
            str(first),
            str(count),
            str(seconds),
            str(connections),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=True,
    ).stdout.split()
    rate, p50, p99, requests, failures = output
    return Trial(float(rate), float(p50), float(p99), int(requests), int(failures))


# --- the run ----------------------------------------------------------------------------------


@contextmanager
def running(app: App) -> Iterator[RunningServer]:
    """Serve ``app`` on a free port of 127.0.0.1 until the block ends."""
    port = free_port()
    # The apps' folder, then PYTHONPATH's (to measure a checkout without installing it).
    path = os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": path, "MESSAGES_WEBHOOK_SECRET": SECRET, **dict(app.env)}
    with serve(app.argv(port), port=port, cwd=APPS, env=env, timeout=60) as server:
        yield server


def measure(app: App, seconds: float, trials: int, connections: int, folder: Path) -> Result:
    """Alternate the adapter and the bare endpoint, ``trials`` times each, after a warm-up;
    the one that goes first alternates too.

    The warm-up also measures the adapter's rate, to pre-sign enough deliveries: each trial has
    its own, shared by the two endpoints (the bare one does not de-duplicate).
    """
    result = Result(app)
    warm = folder / "warm-up.deliveries"
    write_deliveries(warm, 5000)
    with running(app) as server:
        port = server.port
        rate = 0.0
        for path in (app.adapter_path, app.bare_path):
            trial = load(port, path, warm, 0, 5000, min(1.0, seconds), connections)
            rate = max(rate, trial.requests_per_second)
        per_trial = int(rate * seconds * 1.5) + 1000
        for number in range(trials):
            pool = folder / f"trial-{number}.deliveries"
            write_deliveries(pool, per_trial)
            endpoints = [(app.adapter_path, result.adapter), (app.bare_path, result.bare)]
            # Which endpoint goes first alternates, so that neither always meets the server
            # in the state the other left it in.
            for path, into in endpoints if number % 2 == 0 else endpoints[::-1]:
                trial = load(port, path, pool, 0, per_trial, seconds, connections)
                if path == app.adapter_path and trial.requests > per_trial:
                    result.note = "more requests than pre-signed deliveries: some were repeats"
                if trial.failures:
                    result.note = f"{trial.failures} failed requests in a trial"
                into.append(trial)
            pool.unlink()
    return result


def _row(result: Result) -> list[str]:
    def median(values: list[float]) -> float:
        return statistics.median(values)

    adapter, bare = result.adapter, result.bare
    ratios = result.ratios()
    return [
        result.app.name,
        result.app.server,
        f"{median([t.requests_per_second for t in adapter]):,.0f}",
        f"{median([t.p50_ms for t in adapter]):.2f} / {median([t.p99_ms for t in adapter]):.2f}",
        f"{median([t.requests_per_second for t in bare]):,.0f}",
        f"{median([t.p50_ms for t in bare]):.2f} / {median([t.p99_ms for t in bare]):.2f}",
        f"**{median(ratios):.2f}** ({min(ratios):.2f}-{max(ratios):.2f})",
        result.note,
    ]


def run(seconds: float = 2.0, trials: int = 5, connections: int = 16) -> Section:
    """Measure every installed adapter; return the table and the targets."""
    generator = "wrk (1 thread)" if shutil.which("wrk") else "the asyncio client of this script"
    results: list[Result] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-http-") as folder:
        for app in [*APPS_UNDER_TEST, *COMPARISONS]:
            if not app.available():
                skipped.append(app.name)
                continue
            results.append(measure(app, seconds, trials, connections, Path(folder)))
    rows = [_row(result) for result in results]
    headers = [
        "framework",
        "server",
        "adapter req/s",
        "adapter p50 / p99 ms",
        "bare req/s",
        "bare p50 / p99 ms",
        "adapter / bare",
        "note",
    ]
    lines = [
        f"{trials} trials of {seconds:g} s per endpoint, adapter and bare alternating (and "
        "which goes first), "
        f"{connections} keep-alive connections from {generator}; one server worker process. "
        "Figures are medians; the ratio's range is over the trial pairs. Each request is a "
        "`reaction.added` (382 B) with its own signature and delivery id; handlers are `async` "
        "under ASGI, plain under WSGI.",
        table(headers, rows),
    ]
    if skipped:
        lines.append("Not installed, so not measured: " + ", ".join(skipped) + ".")
    targets = [
        Target(
            f"{result.app.name} adapter / bare requests/s",
            statistics.median(result.ratios()),
            result.app.required,
            higher_is_better=True,
            note=result.note,
        )
        for result in results
        if result.app not in COMPARISONS
    ]
    return Section("HTTP: adapter against a hand-written endpoint", "\n\n".join(lines), targets)


def main() -> None:
    """Print the HTTP table."""
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        _client_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    section = run(args.seconds, args.trials, args.connections)
    print(f"## {section.title}\n\n{section.markdown}")


if __name__ == "__main__":
    main()
