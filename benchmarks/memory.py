"""Peak memory of each server while it refuses oversized bodies, declared and chunked.

The server's peak resident memory (``VmHWM``, reset through ``/proc/<pid>/clear_refs`` before
each attack, else ``VmRSS`` sampled every few milliseconds) is compared with its idle baseline.
The target: a refused body never costs more than the limit plus one read chunk (1 MiB + 64 KiB).

    python benchmarks/memory.py [--concurrency 16]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from _common import Section, Target, table
from http_load import APPS_UNDER_TEST, App, running, write_deliveries

from messages_integrations import WebhookReceiver, WebhookRouter
from messages_integrations._handling import DEFAULT_MAX_BODY_SIZE, READ_CHUNK
from messages_integrations._serve import HOST

MiB = 1024 * 1024
ALLOWANCE = DEFAULT_MAX_BODY_SIZE + READ_CHUNK
DECLARED = 64 * MiB  # what the oversized requests claim
SENT = 16 * MiB  # the most each attacker sends before giving up
PIECE = 64 * 1024


# --- the attackers ----------------------------------------------------------------------------


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


def attack(port: int, path: str, *, chunked: bool, timeout: float = 5.0) -> str:
    """Send an oversized body until the server answers; return its status, or what happened."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {DECLARED}"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"X-Webhook-Signature: {'0' * 64}\r\n{framing}\r\n\r\n"
    ).encode()
    piece = b"x" * PIECE
    if chunked:
        piece = f"{PIECE:x}\r\n".encode() + piece + b"\r\n"
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(head)
        sent = 0
        with contextlib.suppress(OSError):
            while sent < SENT and not _answered(sock):
                sock.sendall(piece)
                sent += PIECE
        return _status(sock)


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


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """The memory an attack cost a server, over its idle baseline."""

    growth: int
    statuses: set[str]


def _warm_up(port: int, app: App, folder: Path) -> None:
    """Serve a few valid deliveries and refusals first, so that imports and caches settle."""
    import http.client

    pool = folder / "memory-warm-up.deliveries"
    write_deliveries(pool, 50)
    data = pool.read_bytes()
    position = 0
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
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
    for chunked in (False, True):
        attack(port, app.adapter_path, chunked=chunked)


def _measure(pids: list[int], count: int, concurrency: int, run: Callable[[], str]) -> Outcome:
    time.sleep(0.3)  # let the server settle after the previous attack
    baseline = rss(pids)
    with peak_of(pids) as peak, ThreadPoolExecutor(concurrency) as pool:
        statuses = set(pool.map(lambda _: run(), range(count)))
        growth = peak() - baseline
    return Outcome(growth, statuses)


def measure(app: App, concurrency: int, folder: Path) -> dict[str, Outcome]:
    """The three attacks against one server."""
    with running(app) as server:
        port = server.port
        _warm_up(port, app, folder)
        pids = processes(server.process.pid)

        def declared() -> str:
            return attack(port, app.adapter_path, chunked=False)

        def chunked() -> str:
            return attack(port, app.adapter_path, chunked=True)

        return {
            "declared": _measure(pids, concurrency * 2, concurrency, declared),
            "chunked, one at a time": _measure(pids, 3, 1, chunked),
            "chunked, concurrent": _measure(pids, concurrency, concurrency, chunked),
        }


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


def _mib(value: int) -> str:
    return f"{value / MiB:.2f}"


def run(concurrency: int = 16) -> Section:
    """Attack every installed server; return the table and the targets."""
    import tempfile

    core = core_alone()
    rows = [
        [
            "core alone (`WebhookReceiver.handle`, tracemalloc)",
            "-",
            "-",
            f"{core / MiB:.3f}, 413",
            "-",
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
        for app in APPS_UNDER_TEST:
            if not app.available():
                continue
            outcomes = measure(app, concurrency, Path(folder))
            cells = [app.name, app.server]
            for name, outcome in outcomes.items():
                per = concurrency if name != "chunked, one at a time" else 1
                statuses = "/".join(sorted(outcome.statuses))
                cells.append(
                    f"{_mib(outcome.growth)} ({_mib(outcome.growth // per)} each), {statuses}"
                )
            rows.append(cells)
            worst = max(
                outcomes["declared"].growth // concurrency,
                outcomes["chunked, one at a time"].growth,
                outcomes["chunked, concurrent"].growth // concurrency,
            )
            targets.append(
                Target(
                    f"{app.name}: memory per refused body over the idle baseline",
                    worst / MiB,
                    ALLOWANCE / MiB,
                    unit=" MiB",
                )
            )
    headers = [
        "framework",
        "server",
        f"{concurrency * 2} declared 64 MiB, {concurrency} at once",
        "3 chunked, one at a time",
        f"{concurrency} chunked at once",
    ]
    markdown = "\n\n".join(
        [
            "Growth of the server's peak resident memory over its idle baseline, in MiB "
            "(per refused request in brackets), and the answers seen (`closed`: the server "
            "closed the connection; `no answer`: none within 5 s of the attacker's last byte). "
            f"Each attacker sends at most {SENT // MiB} MiB; the limit is "
            f"{DEFAULT_MAX_BODY_SIZE // MiB} MiB and a read chunk {READ_CHUNK // 1024} KiB. "
            "The first row is the library alone: its own peak allocation (tracemalloc) while it "
            "refuses a 16 MiB body fed as one 64 KiB chunk object again and again.",
            table(headers, rows),
        ]
    )
    return Section("Memory: refusing oversized bodies", markdown, targets)


def main() -> None:
    """Print the memory table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    section = run(args.concurrency)
    print(f"## {section.title}\n\n{section.markdown}")


if __name__ == "__main__":
    main()
