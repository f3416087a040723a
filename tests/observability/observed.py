"""A real server running one of ``apps/``, and what it recorded: log lines, callbacks, spans, jobs,
and its ``/metrics``.

Every file the server writes is read from an offset (:meth:`ObservedServer.mark`), so each test
sees only what its own requests produced.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import RunningServer, free_port, serve
from tests.support.services import Service, redis_service

ROOT = Path(__file__).parents[2]
APPS = "tests.observability.apps"
#: Two secrets configured, the second current: records name position 2, never the secret.
OLD_SECRET = "whsec_observability_old"
SECRET = "whsec_observability_current"
MAX_BODY_SIZE = 4096

T = TypeVar("T")


@dataclass(frozen=True)
class App:
    """How to start one app: the server command (``{port}`` filled in), its webhook path."""

    argv: tuple[str, ...]
    path: str
    env: Mapping[str, str]


_DJANGO = {"DJANGO_SETTINGS_MODULE": f"{APPS}.django_app.settings"}
APPS_UNDER_TEST: dict[str, App] = {
    # Starlette: both exporters turned on by the environment (it has no settings module).
    "starlette-uvicorn": App(
        ("-m", "uvicorn", f"{APPS}.starlette_app:app", "--port", "{port}", "--no-access-log"),
        "/webhooks",
        {"MESSAGES_WEBHOOK_PROMETHEUS": "1", "MESSAGES_WEBHOOK_OTEL": "1"},
    ),
    "flask-gunicorn": App(
        ("-m", "gunicorn", "-k", "gthread", "--threads", "4", f"{APPS}.flask_app:app"),
        "/webhooks",
        {},
    ),
    "django-gunicorn": App(
        (
            "-m",
            "gunicorn",
            "-k",
            "gthread",
            "--threads",
            "4",
            f"{APPS}.django_app.wsgi:application",
        ),
        "/webhooks/messages",
        _DJANGO,
    ),
    "django-uvicorn": App(
        (
            "-m",
            "uvicorn",
            f"{APPS}.django_app.asgi:application",
            "--port",
            "{port}",
            "--no-access-log",
        ),
        "/webhooks/async",
        _DJANGO,
    ),
}


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    """Poll ``probe`` until it returns something other than None (spans end after the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _lines(path: Path, start: int) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as file:
        file.seek(start)
        return [json.loads(line) for line in file.read().splitlines() if line.strip()]


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


@dataclass(frozen=True)
class Mark:
    """Where each record file ended at one moment."""

    log: int
    callbacks: int
    spans: int
    jobs: int


Metrics = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Metrics:
    """Every sample of a ``/metrics`` page, by name and labels."""
    samples: Metrics = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(metrics: Metrics, name: str, **labels: str) -> float:
    """One sample's value, 0 when the series does not exist yet."""
    return metrics.get((name, frozenset(labels.items())), 0.0)


def total(metrics: Metrics, name: str) -> float:
    """The sum of every series of one sample name."""
    return sum(v for (sample, _), v in metrics.items() if sample == name)


@dataclass
class ObservedServer:
    """A running app, its private Redis, and the files it records into."""

    name: str
    running: RunningServer
    path: str
    redis: Service
    folder: Path

    @property
    def url(self) -> str:
        """The webhook endpoint's URL."""
        return self.running.url + self.path

    @property
    def redis_url(self) -> str:
        """The store's URL."""
        return f"redis://{self.redis.address}/0"

    def mark(self) -> Mark:
        """The current end of every record file."""
        return Mark(
            _size(self.running.log_path),
            _size(self.folder / "callbacks.jsonl"),
            _size(self.folder / "spans.jsonl"),
            _size(self.folder / "jobs.jsonl"),
        )

    def log_lines(self, since: Mark) -> list[dict[str, Any]]:
        """The JSON log lines (one per delivery) printed since ``since``."""
        with self.running.log_path.open(encoding="utf-8", errors="replace") as file:
            file.seek(since.log)
            text = file.read()
        return [json.loads(line) for line in text.splitlines() if line.startswith('{"level"')]

    def callbacks(self, since: Mark | None = None) -> list[dict[str, Any]]:
        """Every record the app's observer received since ``since`` (all of them without it)."""
        return _lines(self.folder / "callbacks.jsonl", 0 if since is None else since.callbacks)

    def spans(self, since: Mark | None = None) -> list[dict[str, Any]]:
        """Every span finished since ``since`` (all of them without it)."""
        return _lines(self.folder / "spans.jsonl", 0 if since is None else since.spans)

    def jobs(self, since: Mark) -> list[dict[str, Any]]:
        """Every job the recording queue accepted since ``since``."""
        return _lines(self.folder / "jobs.jsonl", since.jobs)

    def metrics(self) -> Metrics:
        """``GET /metrics``, parsed."""
        response = httpx.get(f"{self.running.url}/metrics", timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        return parse_metrics(response.text)

    def post(
        self, body: bytes, headers: Mapping[str, str], *, path: str | None = None
    ) -> httpx.Response:
        """POST a delivery to the webhook (or to ``path``)."""
        url = self.url if path is None else self.running.url + path
        return httpx.post(url, content=body, headers=dict(headers), timeout=30)

    def request(self, method: str, headers: Mapping[str, str]) -> httpx.Response:
        """Any other method on the webhook."""
        return httpx.request(method, self.url, headers=dict(headers), timeout=30)


@contextlib.contextmanager
def observed_server(
    name: str,
    folder: Path,
    *,
    app: App | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[ObservedServer]:
    """Start the app ``name`` of :data:`APPS_UNDER_TEST` (or ``app``), with a Redis of its own."""
    app = APPS_UNDER_TEST[name] if app is None else app
    folder.mkdir(parents=True, exist_ok=True)
    with redis_service() as redis:
        port = free_port()
        argv = [part.replace("{port}", str(port)) for part in app.argv]
        if "gunicorn" in argv:
            argv += ["-b", f"127.0.0.1:{port}"]
        else:
            argv += ["--host", "127.0.0.1"]
        full_env = {
            "MESSAGES_WEBHOOK_SECRET": f"{OLD_SECRET},{SECRET}",
            "MESSAGES_WEBHOOK_STORE": f"redis://{redis.address}/0",
            "MESSAGES_WEBHOOK_ROUTER": f"{APPS}.telemetry:router",
            "MESSAGES_WEBHOOK_QUEUE": f"{APPS}.telemetry:queue",
            "MESSAGES_WEBHOOK_MAX_BODY_SIZE": str(MAX_BODY_SIZE),
            "OBS_CALLBACKS": str(folder / "callbacks.jsonl"),
            "OBS_SPANS": str(folder / "spans.jsonl"),
            "OBS_JOBS": str(folder / "jobs.jsonl"),
            **app.env,
            **(env or {}),
        }
        with serve(argv, port=port, cwd=ROOT, env=full_env, timeout=60) as running:
            yield ObservedServer(name, running, app.path, redis, folder)
