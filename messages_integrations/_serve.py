"""Run a real server process (uvicorn, gunicorn, ...) on 127.0.0.1, and stop it afterwards.

Used by the demo and by test suites that need a server of their own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HOST", "RunningServer", "free_port", "serve"]

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RunningServer:
    """A server process started by :func:`serve`."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``."""
        return (self.host, self.port)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    def log(self) -> str:
        """What the server has printed so far."""
        return self.log_path.read_text(errors="replace")


def _wait_until_listening(server: RunningServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection((server.host, server.port), 0.2),
        ):
            return
        time.sleep(0.05)
    raise RuntimeError(
        f"server did not listen on {server.port} within {timeout} s:\n{server.log()}"
    )


@contextlib.contextmanager
def serve(
    argv: Sequence[str],
    *,
    port: int,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Iterator[RunningServer]:
    """Run ``argv`` (which must listen on 127.0.0.1:``port``) until the block ends.

    ``argv[0]`` may be a module run with this interpreter: ``["-m", "uvicorn", ...]``.
    The server's output goes to a temporary file, shown if it fails to start.
    """
    command = [sys.executable, *argv] if argv[0] == "-m" else list(argv)
    # gunicorn opens a control socket in XDG_RUNTIME_DIR: one folder per server, never shared.
    runtime = tempfile.TemporaryDirectory(prefix="server-run-")
    full_env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "XDG_RUNTIME_DIR": runtime.name,
        **(env or {}),
    }
    with tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", delete=False) as log_file:
        log_path = Path(log_file.name)
        process = subprocess.Popen(  # noqa: S603 - the caller's own server command
            command,
            cwd=cwd,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RunningServer(HOST, port, process, log_path)
    try:
        _wait_until_listening(server, timeout)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log_path.unlink(missing_ok=True)
        runtime.cleanup()
