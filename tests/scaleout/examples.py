"""The example projects under the servers a deployment uses, and what their handlers ran.

Each example is started as it ships, with no store argument: its store comes from
``MESSAGES_WEBHOOK_STORE`` (absent: the in-memory default). ``tests/scaleout/counting.py`` is
added to its handlers through ``MESSAGES_WEBHOOK_ROUTER``, and writes each run to a file of the
worker process that ran it; :class:`Runs` reads those files back.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import HOST, RunningServer, free_port, serve

__all__ = ["EXAMPLES", "SECRET", "WORKERS", "Example", "Runs", "Served", "start"]

ROOT = Path(__file__).parents[2]
PROJECTS = ROOT / "example_projects"
LOG_CONFIG = Path(__file__).with_name("log-config.json")
SECRET = "whsec_scaleout_tests"
WORKERS = 4


@dataclass(frozen=True)
class Example:
    """One example project under one server."""

    name: str
    folder: str
    server: str  # "gunicorn" or "uvicorn"
    app: str  # module:attribute, from the project's folder
    path: str  # where deliveries go
    needs: str  # the framework's import name
    #: The Django project configures its own logging; the others get LOG_CONFIG from the server.
    own_logging: bool = False
    lifespan: str = "on"  # uvicorn's --lifespan: Django's ASGI handler has none

    def argv(self, port: int, *, workers_from_env: bool = False) -> list[str]:
        """The server command: four worker processes on 127.0.0.1:``port``."""
        workers = [] if workers_from_env else ["--workers", str(WORKERS)]
        if self.server == "gunicorn":
            argv = ["-m", "gunicorn", *workers, "--bind", f"{HOST}:{port}"]
            logging = ["--log-config-json", str(LOG_CONFIG)]
        else:
            argv = ["-m", "uvicorn", *workers, "--host", HOST, "--port", str(port)]
            argv += ["--no-access-log", "--lifespan", self.lifespan]
            logging = ["--log-config", str(LOG_CONFIG)]
        return [*argv, *([] if self.own_logging else logging), self.app]


EXAMPLES = [
    Example("starlette", "starlette_app", "uvicorn", "app:app", "/webhooks", "starlette"),
    Example("fastapi", "fastapi_app", "uvicorn", "app:app", "/webhooks", "fastapi"),
    Example("flask", "flask_app", "gunicorn", "app:app", "/webhooks", "flask"),
    Example(
        "django-wsgi",
        "django_project",
        "gunicorn",
        "project.wsgi:application",
        "/webhooks/messages",
        "django",
        own_logging=True,
    ),
    Example(
        "django-asgi",
        "django_project",
        "uvicorn",
        "project.asgi:application",
        "/webhooks/messages",
        "django",
        own_logging=True,
        lifespan="off",
    ),
]

#: Settings from the surrounding environment that would change what is under test.
_INHERITED = ("MESSAGES_WEBHOOK_", "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "DJANGO_SETTINGS_MODULE")


@contextlib.contextmanager
def start(
    example: Example,
    runs_dir: Path,
    *,
    store_url: str | None,
    env: Mapping[str, str] | None = None,
    workers_from_env: bool = False,
) -> Iterator[RunningServer]:
    """Run ``example`` with four workers; its store from ``MESSAGES_WEBHOOK_STORE`` (None: unset).

    ``workers_from_env``: the worker count comes from ``WEB_CONCURRENCY=4`` instead of the
    server's option (uvicorn reads it). The lease is 2 s, so that a killed worker's delivery is
    free again soon.
    """
    if importlib.util.find_spec(example.needs) is None:
        pytest.skip(f"{example.needs} is not installed")
    port = free_port()
    full_env = {
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
        "MESSAGES_WEBHOOK_SECRET": SECRET,
        "MESSAGES_WEBHOOK_ROUTER": "tests.scaleout.counting:router",
        "MESSAGES_WEBHOOK_LEASE": "2",
        "SCALEOUT_RUNS_DIR": str(runs_dir),
        "SCALEOUT_HOLD_FILE": str(runs_dir / "hold"),
        **({"MESSAGES_WEBHOOK_STORE": store_url} if store_url is not None else {}),
        **({"WEB_CONCURRENCY": str(WORKERS)} if workers_from_env else {}),
        **(env or {}),
    }
    argv = example.argv(port, workers_from_env=workers_from_env)
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(_INHERITED):
                patch.delenv(name)
        with serve(
            argv, port=port, cwd=PROJECTS / example.folder, env=full_env, timeout=90
        ) as server:
            yield server


@dataclass(frozen=True)
class Runs:
    """What the counting handler recorded: for each delivery id, the pids that started and ended
    a run of its handlers, in order."""

    started: dict[str, list[int]]
    ended: dict[str, list[int]]

    @classmethod
    def read(cls, runs_dir: Path) -> Runs:
        """Read every worker's file."""
        started: dict[str, list[int]] = {}
        ended: dict[str, list[int]] = {}
        for path in sorted(runs_dir.glob("*.runs")):
            pid = int(path.stem)
            for line in path.read_text(encoding="ascii").splitlines():
                what, delivery_id = line.split(" ", 1)
                (started if what == "start" else ended).setdefault(delivery_id, []).append(pid)
        return cls(started, ended)

    def pids(self) -> set[int]:
        """Every process that completed a run."""
        return {pid for pids in self.ended.values() for pid in pids}


@dataclass(frozen=True)
class Served:
    """An example running under its server, and the folder its counting handler writes to."""

    example: Example
    server: RunningServer
    runs_dir: Path

    @property
    def url(self) -> str:
        """Where deliveries go."""
        return self.server.url + self.example.path

    def runs(self) -> Runs:
        """What the handlers have run so far."""
        return Runs.read(self.runs_dir)

    def is_worker(self, pid: int) -> bool:
        """Whether ``pid`` is a worker process of this server (a child of the process started)."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        # The fields after the command name, which is in parentheses and may contain spaces.
        parent = int(stat.rpartition(")")[2].split()[1])
        return parent == self.server.process.pid

    def log_lines(self, containing: str) -> list[str]:
        """The server's log lines that contain ``containing``."""
        return [line for line in self.server.log().splitlines() if containing in line]
