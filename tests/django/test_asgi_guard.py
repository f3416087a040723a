"""The example project under a real uvicorn: an oversized webhook body is refused as it streams.

``example_projects/django_project/project/asgi.py`` uses the library's ``get_asgi_application``.
A 64 MiB chunked body must get the JSON 413 within a second of its first byte past the limit,
while the server's resident memory grows by no more than the limit plus uvicorn's own read
buffers; a declared 64 MiB body must be refused before it is sent; the server must go on serving.
Served by Django's own handler instead, the same bodies get no answer at all.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from messages_integrations.testing import build_delivery
from tests.support.servers import RunningServer, free_port, serve

pytestmark = pytest.mark.http

PROJECT = Path(__file__).parents[2] / "example_projects" / "django_project"
SECRET = "whsec_django_asgi_guard"
WEBHOOK = "/webhooks/messages"
MiB = 1024 * 1024
LIMIT = MiB  # MESSAGES_WEBHOOK_MAX_BODY_SIZE's default
PIECE = 64 * 1024
#: uvicorn's largest ``http.request`` message: what it buffers before pausing reads (64 KiB)
#: plus one read from the socket (uvloop's 256,000 bytes; asyncio's 256 KiB).
UVICORN_MESSAGE = 64 * 1024 + 256 * 1024
#: What one refused body may cost the server: the limit, plus the message that crossed it and
#: uvicorn's own copy of the next one.
CEILING = LIMIT + 2 * UVICORN_MESSAGE


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    """The example project under uvicorn, warmed up: imports and caches settled."""
    if not PROJECT.exists():
        pytest.skip("example_projects/ is not part of this checkout")
    port = free_port()
    argv = [
        "-m", "uvicorn", "project.asgi:application", "--host", "127.0.0.1", "--port", str(port),
        "--lifespan", "off", "--no-access-log",
    ]  # fmt: skip
    env = {"MESSAGES_WEBHOOK_SECRET": SECRET, "DJANGO_SETTINGS_MODULE": "project.settings"}
    with serve(argv, port=port, cwd=PROJECT, env=env, timeout=60) as running:
        for _ in range(20):
            assert deliver(running).status_code == 200
        stream_oversized(running)
        yield running


def deliver(server: RunningServer) -> httpx.Response:
    """POST one signed delivery."""
    delivery = build_delivery("reaction.added", secret=SECRET)
    return httpx.post(server.url + WEBHOOK, content=delivery.body, headers=delivery.headers)


@dataclass
class Refusal:
    """What the sender of an oversized body saw."""

    status: int | None
    seconds_after_limit: float  # from sending the first byte past the limit to the answer
    sent: int
    answer: bytes


def stream_oversized(server: RunningServer, total: int = 64 * MiB) -> Refusal:
    """Send a chunked body of ``total`` bytes, stopping when the server answers.

    The terminating chunk is never sent: a server that reads the whole body before answering
    gives no answer at all, rather than a late one.
    """
    head = (
        f"POST {WEBHOOK} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        f"X-Webhook-Signature: {'0' * 64}\r\n\r\n"
    ).encode()
    piece = f"{PIECE:x}\r\n".encode() + b"x" * PIECE + b"\r\n"
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(head)
        sent, past_limit = 0, None
        with contextlib.suppress(OSError):  # a server that closes mid-body resets the sender
            while sent < total and not answer_waiting(sock):
                sock.sendall(piece)
                sent += PIECE
                if past_limit is None and sent > LIMIT:
                    past_limit = time.monotonic()
        answer = read_answer(sock)
    assert past_limit is not None, (sent, answer)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return Refusal(status, time.monotonic() - past_limit, sent, answer)


def answer_waiting(sock: socket.socket) -> bool:
    """Whether the server has answered (or closed), without blocking."""
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


def read_answer(sock: socket.socket) -> bytes:
    """The server's whole answer, up to its closing the connection (or 5 s of silence)."""
    sock.settimeout(5)
    answer = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


class PeakMemory:
    """The highest resident memory of a process while the block runs, over its start.

    The kernel's own peak (``VmHWM``, reset through ``clear_refs``) where this user may reset
    it; otherwise ``VmRSS`` sampled every millisecond.
    """

    def __init__(self, pid: int) -> None:
        self.proc = Path(f"/proc/{pid}")
        self.baseline = self.peak = self.read("VmRSS")
        self._exact = False
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def read(self, field: str) -> int:
        """A memory figure of /proc/<pid>/status, in bytes."""
        for line in (self.proc / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise LookupError(field)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.read("VmRSS"))
            time.sleep(0.001)

    def __enter__(self) -> PeakMemory:
        try:
            (self.proc / "clear_refs").write_text("5")  # VmHWM := VmRSS
            self._exact = True
        except OSError:
            self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._exact:
            self.peak = self.read("VmHWM")
            return
        self._stop.set()
        self._sampler.join()
        self.peak = max(self.peak, self.read("VmRSS"))

    @property
    def growth(self) -> int:
        """Peak over the resident memory when the block began, in bytes."""
        return self.peak - self.baseline


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_64_mib_chunked_body_gets_413_within_a_second_in_bounded_memory(
    server: RunningServer,
) -> None:
    time.sleep(0.3)  # let the warm-up's memory settle before the baseline
    with PeakMemory(server.process.pid) as memory:
        refusal = stream_oversized(server)
    print(
        f"\n413 after {refusal.seconds_after_limit * 1000:.0f} ms past the limit, "
        f"{refusal.sent / MiB:.2f} MiB sent; server grew {memory.growth / MiB:.3f} MiB "
        f"(ceiling {CEILING / MiB:.3f})"
    )
    assert refusal.status == 413, refusal.answer
    assert b'"error":"payload_too_large"' in refusal.answer
    assert b"connection: close" in refusal.answer.lower()
    assert refusal.seconds_after_limit < 1.0
    assert refusal.sent < 64 * MiB  # answered while the sender was still sending
    assert memory.growth <= CEILING


def test_declared_64_mib_body_gets_413_before_any_of_it_is_sent(server: RunningServer) -> None:
    head = (
        f"POST {WEBHOOK} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {64 * MiB}\r\n"
        f"X-Webhook-Signature: {'0' * 64}\r\n\r\n"
    ).encode()
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(head)
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.endswith(b'"message":"the body exceeds 1048576 bytes"}')


def test_the_server_goes_on_serving_after_refusals(server: RunningServer) -> None:
    for _ in range(3):
        assert stream_oversized(server).status == 413
    assert deliver(server).status_code == 200
    summary = httpx.get(server.url + "/received", timeout=10).json()
    assert summary["total"] >= 21
