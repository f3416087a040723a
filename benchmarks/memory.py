"""Peak memory of each server while it refuses oversized bodies: declared, chunked, one chunk.

The server's peak resident memory (``VmHWM``, reset through ``/proc/<pid>/clear_refs`` before
each attack, else ``VmRSS`` sampled every few milliseconds) is compared with its idle baseline,
and each attacker times the answer from its first byte past the limit. The bound: a refused body
is answered with 413 within a second and never costs more than the limit plus one read chunk
(1 MiB + 64 KiB).

``--trace`` measures instead the Python allocations of each server process (tracemalloc, started
by ``memtrace/sitecustomize.py``) while it refuses chunked bodies one at a time (in 64 KiB
chunks, and as one 64 MiB chunk), and names the allocation sites that hold the most at the peak:
where the memory goes. ``--env NAME=VALUE``
passes an environment variable to the servers (``MALLOC_ARENA_MAX=2``, for example).

    python benchmarks/memory.py [--concurrency 16] [--only NAME] [--env NAME=VALUE] [--trace]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import socket
import statistics
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import httpx
from _common import ROOT, Section, Target, table
from http_load import APPS, APPS_UNDER_TEST, App, write_deliveries
from shared import SECRET

from messages_integrations import WebhookReceiver, WebhookRouter
from messages_integrations._handling import DEFAULT_MAX_BODY_SIZE, READ_CHUNK
from messages_integrations._serve import HOST, RunningServer, free_port, serve

MiB = 1024 * 1024
ALLOWANCE = DEFAULT_MAX_BODY_SIZE + READ_CHUNK
PROMPT = 1.0  # seconds from the first byte past the limit to the answer
DECLARED = 64 * MiB  # what the oversized requests claim
SENT = 16 * MiB  # the most each attacker sends before giving up
PIECE = 64 * 1024
MEMTRACE = Path(__file__).resolve().parent / "memtrace"

#: Every server of the HTTP benchmark, and Django's ASGI application behind the library's guard.
SERVERS = [
    *APPS_UNDER_TEST,
    App(
        "Django, ASGI + get_asgi_application()",
        "uvicorn",
        "django_guarded_app:application",
        "/bare-async",
        ("django", "uvicorn"),
        env=(("BENCH_DJANGO_ASGI", "1"),),
    ),
]


# --- the attackers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What one attacker saw: the status (or what happened instead) and how soon it came."""

    status: str
    after_limit: float | None  # seconds from the first byte past the limit to the answer


def _answered(sock: socket.socket) -> bool:
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)


def _status(sock: socket.socket) -> str:
    try:
        first = sock.recv(64)
    except TimeoutError:
        return "no answer"
    except OSError:
        return "closed"
    if not first.startswith(b"HTTP/1."):
        return "closed" if not first else "garbled"
    return first.split(b" ", 2)[1].decode()


#: How an attacker frames its body: a declared Content-Length, chunks of 64 KiB, or one chunk
#: whose size line announces all 64 MiB (the server then reads as much as it may at once).
Framing = Literal["declared", "chunked", "one chunk"]


def attack(port: int, path: str, framing: Framing, *, timeout: float = 5.0) -> Answer:
    """Send an oversized body until the server answers; return its status and how soon."""
    chunked = framing != "declared"
    header = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {DECLARED}"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"X-Webhook-Signature: {'0' * 64}\r\n{header}\r\n\r\n"
    ).encode()
    piece = b"x" * PIECE
    if framing == "chunked":
        piece = f"{PIECE:x}\r\n".encode() + piece + b"\r\n"
    elif framing == "one chunk":
        head += f"{DECLARED:x}\r\n".encode()
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(head)
        # A declared length is past the limit from its header on.
        crossed = None if chunked else time.monotonic()
        sent = 0
        with contextlib.suppress(OSError):
            while sent < SENT and not _answered(sock):
                sock.sendall(piece)
                sent += PIECE
                if crossed is None and sent > DEFAULT_MAX_BODY_SIZE:
                    crossed = time.monotonic()
        status = _status(sock)
    answered = status not in ("no answer", "closed", "garbled")
    return Answer(status, time.monotonic() - crossed if answered and crossed else None)


# --- the server's memory ----------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def processes(root: int) -> list[int]:
    """The server process and all its descendants (gunicorn's worker)."""
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(_children(pid))
    return found


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def rss(pids: list[int]) -> int:
    """Resident memory of each process, summed, in bytes."""
    return sum(_status_kib(pid, "VmRSS") for pid in pids) * 1024


def _reset_peaks(pids: list[int]) -> bool:
    try:
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@contextlib.contextmanager
def peak_of(pids: list[int]) -> Iterator[Callable[[], int]]:
    """Yield a function returning the peak resident memory (bytes) since the block began."""
    if _reset_peaks(pids):
        yield lambda: sum(_status_kib(pid, "VmHWM") for pid in pids) * 1024
        return
    highest = rss(pids)
    stop = threading.Event()

    def sample() -> None:
        nonlocal highest
        while not stop.is_set():
            highest = max(highest, rss(pids))
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield lambda: highest
    finally:
        stop.set()
        sampler.join()


# --- the servers ------------------------------------------------------------------------------


@contextlib.contextmanager
def running(app: App, env: Mapping[str, str]) -> Iterator[RunningServer]:
    """Serve ``app`` on a free port of 127.0.0.1, answering, until the block ends."""
    port = free_port()
    path = os.pathsep.join([*([str(MEMTRACE)] if "BENCH_MEMTRACE" in env else []), str(APPS)])
    full_env = {"PYTHONPATH": path, "MESSAGES_WEBHOOK_SECRET": SECRET, **dict(app.env), **env}
    with serve(app.argv(port), port=port, cwd=APPS, env=full_env, timeout=60) as server:
        _wait_until_answering(server, app)
        yield server


def _wait_until_answering(server: RunningServer, app: App, timeout: float = 180.0) -> None:
    # gunicorn listens before its worker has imported the application (slow under tracemalloc).
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.post(server.url + app.adapter_path, content=b"{}", timeout=timeout)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _warm_up(port: int, app: App, folder: Path) -> None:
    """Serve a few valid deliveries and refusals first, so that imports and caches settle."""
    import http.client

    pool = folder / "memory-warm-up.deliveries"
    write_deliveries(pool, 50)
    data = pool.read_bytes()
    position = 0
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    while position < len(data):
        newline = data.index(b"\n", position)
        signature, timestamp, delivery_id, length = data[position:newline].decode().split()
        body = data[newline + 1 : newline + 1 + int(length)]
        position = newline + 1 + int(length)
        headers = {
            "Content-Type": "application/json",
            "X-Webhook-Signature": signature,
            "X-Webhook-Timestamp": timestamp,
            "X-Webhook-Delivery-Id": delivery_id,
        }
        connection.request("POST", app.adapter_path, body, headers)
        connection.getresponse().read()
    connection.close()
    for framing in get_args(Framing):
        attack(port, app.adapter_path, framing)


# --- resident memory --------------------------------------------------------------------------


@dataclass
class Outcome:
    """The memory an attack cost a server over its idle baseline, and the answers it gave."""

    growth: int
    requests: int
    answers: list[Answer] = field(default_factory=list)

    @property
    def per_request(self) -> int:
        """Growth divided among the requests that ran at once."""
        return self.growth // self.requests

    @property
    def statuses(self) -> str:
        """The distinct answers, such as ``413`` or ``no answer``."""
        return "/".join(sorted({answer.status for answer in self.answers}))

    @property
    def slowest(self) -> float | None:
        """The longest wait for a 413 past the limit; ``None`` if any request got none."""
        waits = [answer.after_limit for answer in self.answers if answer.status == "413"]
        if len(waits) < len(self.answers) or None in waits:
            return None
        return max(wait for wait in waits if wait is not None)


def _measure(pids: list[int], count: int, concurrency: int, run: Callable[[], Answer]) -> Outcome:
    time.sleep(0.3)  # let the server settle after the previous attack
    baseline = rss(pids)
    with peak_of(pids) as peak, ThreadPoolExecutor(concurrency) as pool:
        answers = list(pool.map(lambda _: run(), range(count)))
        growth = peak() - baseline
    return Outcome(growth, min(count, concurrency), answers)


def measure(app: App, concurrency: int, folder: Path, env: Mapping[str, str]) -> list[Outcome]:
    """The attacks against one server: declared, chunked one at a time and at once, one chunk."""
    with running(app, env) as server:
        port = server.port
        _warm_up(port, app, folder)
        pids = processes(server.process.pid)

        def declared() -> Answer:
            return attack(port, app.adapter_path, "declared")

        def chunked() -> Answer:
            return attack(port, app.adapter_path, "chunked")

        def one_chunk() -> Answer:
            return attack(port, app.adapter_path, "one chunk")

        return [
            _measure(pids, concurrency * 2, concurrency, declared),
            _measure(pids, 3, 1, chunked),
            _measure(pids, concurrency, concurrency, chunked),
            _measure(pids, 3, 1, one_chunk),
        ]


def core_alone(repeat: int = 3) -> int:
    """The most the library allocates (tracemalloc's peak) while refusing an oversized body.

    The body comes as one 64 KiB chunk object yielded again and again, so that every byte
    counted is the library's own.
    """
    receiver = WebhookReceiver(secret="whsec_memory", router=WebhookRouter())
    piece = b"x" * PIECE

    def chunks() -> Iterator[bytes]:
        for _ in range(SENT // PIECE):
            yield piece

    worst = 0
    logging.disable(logging.WARNING)  # the refusal's log line is not the point here
    try:
        for _ in range(repeat):
            tracemalloc.start()
            baseline = tracemalloc.get_traced_memory()[0]
            answer = receiver.handle("POST", {"X-Webhook-Signature": "0" * 64}, chunks())
            worst = max(worst, tracemalloc.get_traced_memory()[1] - baseline)
            tracemalloc.stop()
            if answer.status != 413:
                raise RuntimeError(f"expected a 413, got {answer.status}")
    finally:
        logging.disable(logging.NOTSET)
    return worst


def _mib(value: float) -> str:
    return f"{value / MiB:.2f}"


def _verdict(outcomes: Sequence[Outcome]) -> tuple[int, str]:
    """The worst growth per refused body, and whether the bound holds (and if not, why)."""
    worst = max(outcome.per_request for outcome in outcomes)
    reasons = []
    if any(outcome.statuses != "413" for outcome in outcomes):
        reasons.append("not every body got a 413")
    elif any((outcome.slowest or 0) > PROMPT for outcome in outcomes):
        reasons.append(f"a 413 came later than {PROMPT:g} s")
    if worst > ALLOWANCE:
        reasons.append("memory")
    return worst, "yes" if not reasons else "**no**: " + ", ".join(reasons)


def _cell(outcome: Outcome) -> str:
    each = f" ({_mib(outcome.per_request)} each)" if outcome.requests > 1 else ""
    return f"{_mib(outcome.growth)}{each}, {outcome.statuses}"


def _slowest(outcomes: Sequence[Outcome]) -> str:
    waits = [outcome.slowest for outcome in outcomes]
    if None in waits:
        return "-"
    return f"{max(wait for wait in waits if wait is not None):.2f} s"


def run(
    concurrency: int = 16, only: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> Section:
    """Attack every installed server; return the table and the targets."""
    env = dict(env or {})
    core = core_alone()
    bound = _mib(ALLOWANCE)
    rows = [
        [
            "core alone (`WebhookReceiver.handle`, tracemalloc)",
            "-",
            "-",
            f"{core / MiB:.3f}, 413",
            "-",
            "-",
            "-",
            bound,
            "yes" if core <= ALLOWANCE else "**no**: memory",
        ]
    ]
    targets = [
        Target(
            "core alone: peak allocation per refused body",
            core / MiB,
            ALLOWANCE / MiB,
            unit=" MiB",
            note="Python allocations, exact",
        )
    ]
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        for app in _chosen(only):
            outcomes = measure(app, concurrency, Path(folder), env)
            worst, holds = _verdict(outcomes)
            rows.append(
                [
                    app.name,
                    app.server,
                    *(_cell(outcome) for outcome in outcomes),
                    _slowest(outcomes),
                    bound,
                    holds,
                ]
            )
            targets.append(
                Target(
                    f"{app.name}: memory per refused body over the idle baseline",
                    worst / MiB,
                    ALLOWANCE / MiB,
                    unit=" MiB",
                    note="" if holds == "yes" or "memory" in holds else holds.split(": ", 1)[1],
                )
            )
    headers = [
        "framework",
        "server",
        f"{concurrency * 2} declared 64 MiB, {concurrency} at once",
        "3 chunked, one at a time",
        f"{concurrency} chunked at once",
        "3 as one 64 MiB chunk, one at a time",
        "slowest 413",
        "bound per body",
        "holds",
    ]
    settings = "".join(f" The servers ran with `{name}={value}`." for name, value in env.items())
    markdown = "\n\n".join(
        [
            "Growth of the server's peak resident memory over its idle baseline, in MiB "
            "(per request running at once in brackets), and the answers seen (`closed`: the "
            "server closed the connection; `no answer`: none within 5 s of the attacker's last "
            f"byte). Each attacker sends at most {SENT // MiB} MiB; the limit is "
            f"{DEFAULT_MAX_BODY_SIZE // MiB} MiB and a read chunk {READ_CHUNK // 1024} KiB. "
            "*Slowest 413*: the longest an attacker waited for its answer after sending its first "
            "byte past the limit. *Holds*: every body got its 413 within "
            f"{PROMPT:g} s and no attack cost more than the bound per refused body. The first row "
            "is the library alone: its own peak allocation (tracemalloc) while it refuses a "
            f"16 MiB body fed as one 64 KiB chunk object again and again.{settings}",
            table(headers, rows),
        ]
    )
    return Section("Memory: refusing oversized bodies", markdown, targets)


def _chosen(only: Sequence[str]) -> list[App]:
    wanted = [app for app in SERVERS if not only or app.name in only]
    unknown = set(only) - {app.name for app in SERVERS}
    if unknown:
        raise SystemExit(f"unknown server(s): {', '.join(sorted(unknown))}")
    return [app for app in wanted if app.available()]


# --- where the memory goes: tracemalloc in the server -----------------------------------------


@dataclass
class Trace:
    """The Python allocations of one server process while it refused a body."""

    peak: int  # over the baseline, bytes
    sites: list[dict[str, Any]]


def _leaf(pids: list[int]) -> int:
    # The process that serves requests: gunicorn's worker, or uvicorn itself.
    return next(pid for pid in reversed(pids) if not _children(pid))


def _traced_attack(folder: Path, pid: int, port: int, path: str, framing: Framing) -> Trace:
    (folder / f"{pid}.start").touch()
    while (folder / f"{pid}.start").exists():
        time.sleep(0.005)
    attack(port, path, framing)
    time.sleep(0.2)  # the refusal's last frees
    report_path = folder / f"{pid}.json"
    (folder / f"{pid}.stop").touch()
    while not report_path.exists():
        time.sleep(0.005)
    time.sleep(0.05)  # written, not only created
    report = json.loads(report_path.read_text())
    report_path.unlink()
    return Trace(report["peak"] - report["baseline"], report["sites"])


def _where(frames: list[str]) -> str:
    # The innermost two frames: the allocating line and its caller, relative to their package.
    def short(frame: str) -> str:
        return re.sub(r"^.*/(site-packages|lib/python3\.\d+)/", "", frame).replace(f"{ROOT}/", "")

    return " ← ".join(f"`{short(frame)}`" for frame in frames[::-1][:2])


def trace(only: Sequence[str] = (), env: Mapping[str, str] | None = None) -> Section:
    """Each server's Python peak per refused chunked body, and where it is held."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-memtrace-") as folder:
        traces = Path(folder) / "traces"
        traces.mkdir()
        for app in _chosen(only):
            runs: dict[Framing, list[Trace]] = {"chunked": [], "one chunk": []}
            with running(app, {**(env or {}), "BENCH_MEMTRACE": str(traces)}) as server:
                _warm_up(server.port, app, Path(folder))
                pid = _leaf(processes(server.process.pid))
                for framing, found in runs.items():
                    for _ in range(3):
                        found.append(
                            _traced_attack(traces, pid, server.port, app.adapter_path, framing)
                        )
            cells = [app.name, app.server]
            for found in runs.values():
                worst = max(found, key=lambda run: run.peak)
                median = statistics.median(run.peak for run in found)
                sites = "; ".join(
                    f"{site['bytes'] // 1024} KiB in {site['count']}: {_where(site['frames'])}"
                    for site in worst.sites[:2]
                )
                cells += [f"{_mib(median)} ({_mib(worst.peak)})", sites]
            rows.append(cells)
    headers = [
        "framework",
        "server",
        "64 KiB chunks: median (worst)",
        "largest sites",
        "one 64 MiB chunk: median (worst)",
        "largest sites",
    ]
    markdown = "\n\n".join(
        [
            "Peak of the Python allocations (tracemalloc) in the server process over its level "
            "before each refused body, three sent one at a time for each framing, in MiB; and the "
            "two allocation sites that held the most at the highest point seen in the worst run "
            "(the allocating line first, then its caller). Resident memory is not comparable "
            "under tracing.",
            table(headers, rows),
        ]
    )
    return Section("Memory: where it goes (tracemalloc in the server)", markdown)


def main() -> None:
    """Print the memory table (or, with --trace, where the memory goes)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="a server, as in the table"
    )
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--trace", action="store_true", help="tracemalloc in each server")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    section = trace(args.only, env) if args.trace else run(args.concurrency, args.only, env)
    print(f"## {section.title}\n\n{section.markdown}")


if __name__ == "__main__":
    main()
