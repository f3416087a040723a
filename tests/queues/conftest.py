"""Real workers for the queue tests: a Celery worker, Django's db_worker and an RQ worker, each a
subprocess on the private test Redis (or SQLite) that a test can kill and start again."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]


def require_module(name: str) -> ModuleType:
    """Import ``name``; skip without it, but fail under CI, where every component is installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        message = f"{name} is not installed (pip install -e '.[all]' and the test group)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{message}; CI must install it", pytrace=False)
        pytest.skip(message)


def wait_for(check: Callable[[], Any], timeout: float = 30.0, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {check}")
        time.sleep(every)


@dataclass
class Worker:
    """A worker command in its own process group, logging to a file, restartable."""

    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready_marker: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = 60.0) -> None:
        """Start the worker and wait until it says it is ready."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: kill() reaches every child
            )
        process = self.process

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log()}")
            return self.ready_marker in self.log()[offset:]

        try:
            wait_for(ready, timeout, every=0.1)
        except AssertionError:
            self.kill()
            raise

    def kill(self) -> None:
        """``kill -9`` the worker and every process it started."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        """Ask the worker to stop; kill it when it lingers."""
        process = self.process
        if process is None or process.poll() is not None:
            self.process = None
            return
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
        self.kill()

    def log(self) -> str:
        """What the worker printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def worker_env(**extra: str) -> dict[str, str]:
    """The environment of a worker subprocess: this one, plus the repository on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@pytest.fixture
def records_url(redis_url: str) -> str:
    """Redis db 1: the job leases and what the handlers recorded (db 0 is the broker's)."""
    return redis_url.rsplit("/", 1)[0] + "/1"


@pytest.fixture
def records(records_url: str) -> Iterator[Any]:
    """A redis-py client on the records database."""
    redis = require_module("redis")
    client = redis.Redis.from_url(records_url, socket_timeout=5)
    yield client
    client.close()


@pytest.fixture
def celery_env(redis_url: str, records_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What tests/queues/celery_app.py reads, in this process and the worker's."""
    require_module("celery")
    values = {"MI_TEST_BROKER": redis_url, "MI_TEST_RECORDS": records_url, "MI_TEST_LEASE": "3"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def celery_app(celery_env: dict[str, str]) -> ModuleType:
    """The test Celery application module, as the web process imports it."""
    return importlib.import_module("tests.queues.celery_app")


@pytest.fixture
def celery_worker(celery_env: dict[str, str], tmp_path: Path) -> Iterator[Worker]:
    """``celery -A tests.queues.celery_app worker --pool=prefork -c 2`` on the test Redis."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.queues.celery_app",
        "worker",
        "--pool=prefork",
        "--concurrency=2",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--hostname=messages-tests@%h",
    ]
    worker = Worker(argv, worker_env(**celery_env), tmp_path / "celery.log", " ready.")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def django_env(records_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of the Django Tasks project's processes, its SQLite database migrated."""
    require_module("django")
    require_module("django_tasks_db")
    env = worker_env(
        DJANGO_SETTINGS_MODULE="tests.queues.django_settings",
        MI_TEST_DB=str(tmp_path / "tasks.sqlite3"),
        MI_TEST_RECORDS=records_url,
    )
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--verbosity=0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    return env


def django_command(env: dict[str, str], *args: str) -> str:
    """Run ``django-admin`` with the test project's settings and return what it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def db_workers(django_env: dict[str, str], tmp_path: Path) -> Iterator[list[Worker]]:
    """Two ``manage.py db_worker`` processes (django-tasks' database backend)."""
    argv = [
        sys.executable,
        "-m",
        "django",
        "db_worker",
        "--interval=0.1",
        "--no-startup-delay",
        "--no-reload",
    ]
    workers = [
        Worker(argv, django_env, tmp_path / f"db_worker{n}.log", "Starting worker")
        for n in range(2)
    ]
    for worker in workers:
        worker.start()
    yield workers
    for worker in workers:
        worker.stop()
