"""Deliver many signed webhooks concurrently over real HTTP, as Messages.dev would, and check them.

Used by every adapter's real-server tests: several hundred deliveries of every event type, a
third of them sent twice at once, 409 answers retried as the sender retries. The server under test
counts what its handlers received (``GET`` of a summary URL, see
``messages_integrations.testing.Recorder.summary``), so "handled exactly once" is checked on the
receiving side.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from dataclasses import dataclass, field

import httpx

from messages_integrations import EVENT_NAMES
from messages_integrations.testing import Delivery, build_delivery


@dataclass
class LoadReport:
    """What a load run sent and what came back."""

    unique: int
    requests: int = 0
    retries_after_409: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    final_statuses: dict[str, int] = field(default_factory=dict)  # delivery id -> last status
    seconds: float = 0.0

    @property
    def requests_per_second(self) -> float:
        """Requests answered per second over the whole run."""
        return self.requests / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        """One line for the test log and the issue note."""
        return (
            f"{self.unique} unique deliveries, {self.requests} requests "
            f"({self.retries_after_409} retries after 409) in {self.seconds:.2f} s "
            f"= {self.requests_per_second:.0f} req/s; statuses {sorted(self.statuses.items())}"
        )


async def _send(
    client: httpx.AsyncClient, url: str, delivery: Delivery, report: LoadReport, attempts: int = 50
) -> int:
    for _ in range(attempts):
        response = await client.post(url, content=delivery.body, headers=delivery.headers)
        report.requests += 1
        report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
        if response.status_code != 409:
            return response.status_code
        report.retries_after_409 += 1
        await asyncio.sleep(
            0.05
        )  # the first copy is still being handled: retry, as the sender does
    return 409


def make_deliveries(secret: str, count: int) -> list[Delivery]:
    """``count`` deliveries cycling through every event type, each with its own delivery id."""
    names = itertools.cycle(EVENT_NAMES)
    return [build_delivery(next(names), secret=secret) for _ in range(count)]


async def deliver_concurrently(
    url: str,
    secret: str,
    *,
    count: int = 300,
    duplicate_every: int = 3,
    concurrency: int = 32,
    timeout: float = 60.0,
) -> LoadReport:
    """POST ``count`` unique deliveries; every ``duplicate_every``-th is sent twice at once."""
    deliveries = make_deliveries(secret, count)
    sends = [
        (d, copy)
        for i, d in enumerate(deliveries)
        for copy in range(2 if i % duplicate_every == 0 else 1)
    ]
    report = LoadReport(unique=count)
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def one(delivery: Delivery) -> None:
            async with gate:
                status = await _send(client, url, delivery, report)
            assert delivery.delivery_id is not None
            previous = report.final_statuses.get(delivery.delivery_id)
            if previous is None or previous == 200:
                report.final_statuses[delivery.delivery_id] = status

        started = time.perf_counter()
        await asyncio.gather(*(one(d) for d, _ in sends))
        report.seconds = time.perf_counter() - started
    return report


def check_exactly_once(report: LoadReport, summary: dict[str, object]) -> None:
    """Assert every delivery was answered 200 and its handlers ran exactly once, none lost."""
    not_ok = {k: v for k, v in report.final_statuses.items() if v != 200}
    assert not not_ok, f"deliveries not answered 200: {not_ok}"
    counts = summary["by_delivery_id"]
    assert isinstance(counts, dict)
    missing = set(report.final_statuses) - set(counts)
    assert not missing, f"{len(missing)} deliveries never reached a handler"
    repeated = {k: n for k, n in counts.items() if k in report.final_statuses and n != 1}
    assert not repeated, f"deliveries handled more than once: {repeated}"


def send_oversized_chunked(
    host: str,
    port: int,
    path: str,
    *,
    total: int = 64 * 1024 * 1024,
    chunk: int = 64 * 1024,
    timeout: float = 30.0,
) -> int | None:
    """Stream ``total`` bytes with chunked encoding and no Content-Length.

    Returns the status the server answered with, or ``None`` when it closed the connection
    before answering (both are acceptable refusals). Stops sending as soon as the server answers.
    """
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"X-Webhook-Signature: {'0' * 64}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = f"{chunk:x}\r\n".encode() + b"x" * chunk + b"\r\n"
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(head)
        sent = 0
        try:
            while sent < total:
                sock.sendall(piece)
                sent += chunk
                if _answer_waiting(sock):
                    break
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        return _read_status(sock)


def _answer_waiting(sock: socket.socket) -> bool:
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)  # setblocking(True) would drop the timeout: never hang


def _read_status(sock: socket.socket) -> int | None:
    try:
        first = sock.recv(4096)
    except OSError:
        return None
    if not first.startswith(b"HTTP/1."):
        return None
    return int(first.split(b" ", 2)[1])
