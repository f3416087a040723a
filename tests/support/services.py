"""Private redis-server and memcached instances on free loopback ports, for tests that need them.

Each test session starts its own servers (no persistence, a temporary folder) and stops them at
the end. Where the binary is missing, the tests that need it are skipped with a hint, except under
CI (``CI=true``), where a missing server is a failure: ``.ci/run`` installs both.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.servers import HOST, free_port

__all__ = [
    "Service",
    "memcached_service",
    "redis_cluster_service",
    "redis_service",
    "require_binary",
]

_INSTALL_HINT = {
    "redis-server": "apt-get install redis-server (Debian/Ubuntu) or brew install redis",
    "memcached": "apt-get install memcached (Debian/Ubuntu) or brew install memcached",
}


def require_binary(name: str) -> str:
    """The path of ``name``; skip the test without it, or fail under CI."""
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not installed: {_INSTALL_HINT.get(name, 'install it')}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{message}. CI must install it (.ci/run does).", pytrace=False)
    pytest.skip(message)


@dataclass
class Service:
    """A server process on 127.0.0.1 that a test can stop and start again on the same port."""

    argv: list[str]
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"{HOST}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it accepts connections."""
        log = (self.workdir / "server.log").open("ab")
        self.process = subprocess.Popen(
            self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} exited: {self.log()}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.2):
                return
            time.sleep(0.02)
        raise RuntimeError(f"{self.argv[0]} did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        """Stop the server (a clean shutdown, then a kill if it lingers)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def log(self) -> str:
        """What the server printed."""
        path = self.workdir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def _service(binary: str, make_argv: Callable[[str, int, str], list[str]]) -> Iterator[Service]:
    path = require_binary(binary)
    with tempfile.TemporaryDirectory(prefix=f"{binary}-") as workdir:
        port = free_port()
        service = Service(make_argv(path, port, workdir), port, Path(workdir))
        service.start()
        try:
            yield service
        finally:
            service.stop()


def _redis_argv(path: str, port: int, workdir: str) -> list[str]:
    # No persistence and no protected mode games: a throwaway server for one test session.
    return [
        path,
        "--port",
        str(port),
        "--bind",
        HOST,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        workdir,
    ]


def _memcached_argv(path: str, port: int, workdir: str) -> list[str]:
    return [path, "-l", HOST, "-p", str(port), "-U", "0", "-m", "64", "-u", "root"]


@contextlib.contextmanager
def redis_service() -> Iterator[Service]:
    """A private ``redis-server`` on a free port of 127.0.0.1 (``redis://127.0.0.1:PORT/0``)."""
    with _service("redis-server", _redis_argv) as service:
        yield service


@contextlib.contextmanager
def redis_cluster_service(nodes: int = 3) -> Iterator[list[Service]]:
    """A private Redis Cluster: ``nodes`` primaries on free loopback ports, the slots shared out.

    Built with the cluster commands themselves (``CLUSTER ADDSLOTSRANGE``, ``CLUSTER MEET``), so
    that only redis-server and redis-py are needed; ready once every node says ``cluster_state:ok``.
    """
    import redis

    path = require_binary("redis-server")
    with contextlib.ExitStack() as stack:
        services: list[Service] = []
        for _ in range(nodes):
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="redis-cluster-"))
            port = free_port()
            argv = _redis_argv(path, port, workdir)
            argv += ["--cluster-enabled", "yes", "--cluster-port", str(free_port())]
            argv += ["--cluster-config-file", f"{workdir}/nodes.conf"]
            service = Service(argv, port, Path(workdir))
            service.start()
            stack.callback(service.stop)
            services.append(service)
        clients = [redis.Redis(host=HOST, port=service.port) for service in services]
        for client in clients:
            stack.callback(client.close)
        share = 16384 // nodes
        for number, client in enumerate(clients):
            last = 16383 if number == nodes - 1 else (number + 1) * share - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", number * share, last)  # type: ignore[no-untyped-call]
        for service in services[1:]:
            bus = int(service.argv[service.argv.index("--cluster-port") + 1])
            clients[0].execute_command("CLUSTER", "MEET", HOST, service.port, bus)  # type: ignore[no-untyped-call]
        deadline = time.monotonic() + 30
        while not all(_cluster_ready(client, nodes) for client in clients):
            if time.monotonic() > deadline:
                raise RuntimeError("the test Redis Cluster did not come up within 30 s")
            time.sleep(0.05)
        yield services


def _cluster_ready(client: object, nodes: int) -> bool:
    info = client.execute_command("CLUSTER", "INFO")  # type: ignore[attr-defined]
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text and f"cluster_known_nodes:{nodes}" in text


@contextlib.contextmanager
def memcached_service() -> Iterator[Service]:
    """A private ``memcached`` on a free port of 127.0.0.1."""
    with _service("memcached", _memcached_argv) as service:
        yield service
