"""``messages-integrations demo``: every example project on a real server, every event delivered.

Starts each example project on a free 127.0.0.1 port (uvicorn for Starlette, FastAPI and Django
ASGI; gunicorn for Flask and Django WSGI), sends it a signed delivery of every event, a duplicate,
a forged and a stale one, reads back what its handlers received, and prints one table. Then, when
``redis-server`` is installed, each again under four worker processes sharing a private Redis as
their de-duplication store, with copies of each delivery sent at once: a second table shows every
delivery handled exactly once across the workers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ._events import EVENT_NAMES
from ._serve import RunningServer, free_port, serve
from .testing import Delivery, build_delivery

__all__ = ["TARGETS", "Target", "find_projects", "run_demo"]

DEMO_SECRET = "whsec_demo_0f8e4c2a9b7d4e1f"  # noqa: S105 - a throwaway secret for the demo
FORGER_SECRET = "whsec_an_attacker_guess"  # noqa: S105 - signs the forged delivery
STALE_MS = 10 * 60 * 1000


WORKERS = 4
#: Where messages_integrations._demo_counting counts the runs of the multi-worker rows.
COUNTS_KEY = "messages-demo:runs"
PIDS_KEY = "messages-demo:pids"
#: The multi-worker rows: deliveries, and copies of each sent at once.
MULTI_DELIVERIES = 20
MULTI_COPIES = 4


def _uvicorn(app: str) -> Callable[[int, int], list[str]]:
    return lambda port, workers: [
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]


def _gunicorn(app: str) -> Callable[[int, int], list[str]]:
    return lambda port, workers: [
        "-m",
        "gunicorn",
        "-k",
        "gthread",
        "--threads",
        "8",
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        app,
    ]


@dataclass(frozen=True)
class Target:
    """One example project on one server."""

    name: str
    server: str
    folder: str
    argv: Callable[[int, int], list[str]]
    path: str


TARGETS: tuple[Target, ...] = (
    Target("Starlette", "uvicorn", "starlette_app", _uvicorn("app:app"), "/webhooks"),
    Target("FastAPI", "uvicorn", "fastapi_app", _uvicorn("app:app"), "/webhooks"),
    Target("Flask", "gunicorn", "flask_app", _gunicorn("app:app"), "/webhooks"),
    Target(
        "Django WSGI",
        "gunicorn",
        "django_project",
        _gunicorn("project.wsgi:application"),
        "/webhooks/messages",
    ),
    Target(
        "Django ASGI",
        "uvicorn",
        "django_project",
        _uvicorn("project.asgi:application"),
        "/webhooks/messages",
    ),
)


@dataclass
class Outcome:
    """What one target answered and what its handlers received."""

    target: Target
    checks: dict[str, bool] = field(default_factory=dict)
    handled: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every check held."""
        return bool(self.checks) and all(self.checks.values()) and not self.problems


def find_projects() -> Path | None:
    """The example projects: those shipped in the package, else a checkout's, beside it."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "_example_projects", package.parent / "example_projects"):
        if candidate.is_dir():
            return candidate
    return None


def _expect(outcome: Outcome, label: str, response: Any, status: int, state: str | None) -> None:
    body = (
        response.json()
        if response.headers.get("content-type", "").startswith("application/json")
        else {}
    )
    good = response.status_code == status and (state is None or body.get("status") == state)
    outcome.checks[label] = good
    if not good:
        outcome.problems.append(f"{label}: expected {status}, got {response.status_code} {body}")


def _exercise(outcome: Outcome, server: RunningServer, out: TextIO) -> None:
    import httpx

    url = server.url + outcome.target.path
    sent: list[Delivery] = []
    with httpx.Client(timeout=15) as client:
        for name in EVENT_NAMES:
            delivery = build_delivery(name, secret=DEMO_SECRET)
            sent.append(delivery)
            response = client.post(url, content=delivery.body, headers=delivery.headers)
            _expect(outcome, name, response, 200, "ok")
            out.write("." if outcome.checks[name] else "x")
            out.flush()
        first = sent[0]
        duplicate = client.post(url, content=first.body, headers=first.headers)
        _expect(outcome, "duplicate", duplicate, 200, "duplicate")
        forged = build_delivery("message.received", secret=FORGER_SECRET)
        _expect(
            outcome,
            "forged",
            client.post(url, content=forged.body, headers=forged.headers),
            401,
            None,
        )
        stale = build_delivery(
            "message.received", secret=DEMO_SECRET, timestamp=int(time.time() * 1000) - STALE_MS
        )
        _expect(
            outcome, "stale", client.post(url, content=stale.body, headers=stale.headers), 401, None
        )
        out.write(".")
        summary = client.get(server.url + "/received").json()
    counts = summary.get("by_delivery_id", {})
    outcome.handled = sum(1 for d in sent if counts.get(d.delivery_id) == 1)
    outcome.checks["handled once"] = outcome.handled == len(sent) and summary.get("total") == len(
        sent
    )
    if not outcome.checks["handled once"]:
        outcome.problems.append(f"handlers received {summary}")


def _run_target(target: Target, projects: Path, out: TextIO) -> Outcome:
    outcome = Outcome(target)
    out.write(f"  {target.name:<12} on {target.server:<9}")
    out.flush()
    started = time.perf_counter()
    port = free_port()
    try:
        with serve(
            target.argv(port, 1),
            port=port,
            cwd=projects / target.folder,
            env={"MESSAGES_WEBHOOK_SECRET": DEMO_SECRET},
        ) as server:
            _exercise(outcome, server, out)
    except Exception as exc:  # noqa: BLE001 - reported in the table, the demo goes on
        outcome.problems.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    outcome.seconds = time.perf_counter() - started
    out.write(f" {'ok' if outcome.ok else 'FAILED'} ({outcome.seconds:.1f} s)\n")
    return outcome


def _table(outcomes: Sequence[Outcome]) -> Iterator[str]:
    def mark(outcome: Outcome, *labels: str) -> str:
        return "yes" if all(outcome.checks.get(label) for label in labels) else "NO"

    header = (
        "framework",
        "server",
        "7 events: 200",
        "handled once",
        "duplicate: 200",
        "forged: 401",
        "stale: 401",
    )
    return _aligned(
        header,
        [
            (
                o.target.name,
                o.target.server,
                mark(o, *EVENT_NAMES),
                f"{o.handled}/{len(EVENT_NAMES)}",
                mark(o, "duplicate"),
                mark(o, "forged"),
                mark(o, "stale"),
            )
            for o in outcomes
        ],
    )


def run_demo(projects: Path | None = None, *, out: TextIO = sys.stdout) -> int:
    """Run the demo; return 0 when every server behaved as the contract says, else 1."""
    projects = projects or find_projects()
    if projects is None:
        out.write(
            "error: the example projects are missing from this installation; "
            "pass --projects FOLDER (a checkout's example_projects)\n"
        )
        return 2
    missing = [name for name in ("uvicorn", "gunicorn", "httpx") if not _importable(name)]
    if missing:
        out.write(f"error: the demo needs {', '.join(missing)}: pip install {' '.join(missing)}\n")
        return 2
    out.write(
        f"Delivering every Messages.dev event to {len(TARGETS)} example servers "
        f"on 127.0.0.1 ({projects}):\n"
    )
    started = time.perf_counter()
    outcomes = [_run_target(target, projects, out) for target in TARGETS]
    out.write("\n" + "\n".join(_table(outcomes)) + "\n\n")
    for outcome in outcomes:
        for problem in outcome.problems:
            out.write(f"  {outcome.target.name} ({outcome.target.server}): {problem}\n")
    passed = sum(o.ok for o in outcomes)
    out.write(
        f"{passed} of {len(outcomes)} servers behaved as the contract says "
        f"({time.perf_counter() - started:.1f} s).\n"
    )
    shared = _run_multiworker(projects, out)
    return 0 if passed == len(outcomes) and shared else 1


@dataclass
class SharedOutcome:
    """One target under several workers sharing a Redis store."""

    target: Target
    once: int = 0
    workers: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every delivery handled exactly once, whichever workers took them."""
        return self.once == MULTI_DELIVERIES and self.workers >= 1 and not self.problems


def _run_multiworker(projects: Path, out: TextIO) -> bool:
    binary = shutil.which("redis-server")
    if binary is None or not _importable("redis"):
        out.write(
            "\nSeveral worker processes: skipped, they need a shared store. Install Redis "
            "(apt-get install redis-server, or brew install redis) and redis-py "
            "(pip install 'messages-integrations[redis]') to see each delivery handled once "
            "across four workers.\n"
        )
        return True
    out.write(
        f"\n{WORKERS} worker processes each, one private Redis as their store, "
        f"{MULTI_DELIVERIES} deliveries x {MULTI_COPIES} copies sent at once:\n"
    )
    with _private_redis(binary) as url:
        results = [_run_shared(target, projects, url, out) for target in TARGETS]
    out.write("\n" + "\n".join(_shared_table(results)) + "\n\n")
    for result in results:
        for problem in result.problems:
            out.write(f"  {result.target.name} ({result.target.server} x{WORKERS}): {problem}\n")
    passed = sum(r.ok for r in results)
    out.write(f"{passed} of {len(results)} multi-worker servers handled each delivery once.\n")
    return passed == len(results)


@contextlib.contextmanager
def _private_redis(binary: str) -> Iterator[str]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="messages-demo-redis-") as folder:
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", folder]
        process = subprocess.Popen(  # noqa: S603 - the redis-server found on the PATH
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                    break
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)


def _run_shared(target: Target, projects: Path, url: str, out: TextIO) -> SharedOutcome:
    import redis

    result = SharedOutcome(target)
    out.write(f"  {target.name:<12} on {target.server:<9}x{WORKERS} ")
    out.flush()
    client = redis.Redis.from_url(url)
    client.flushdb()
    port = free_port()
    env = {
        "MESSAGES_WEBHOOK_SECRET": DEMO_SECRET,
        "MESSAGES_WEBHOOK_STORE": url,
        "MESSAGES_WEBHOOK_ROUTER": "messages_integrations._demo_counting:router",
        "MESSAGES_DEMO_COUNTER": url,
    }
    try:
        with serve(target.argv(port, WORKERS), port=port, cwd=projects / target.folder, env=env):
            deliveries = [
                build_delivery("message.received", secret=DEMO_SECRET)
                for _ in range(MULTI_DELIVERIES)
            ]
            _send_copies(f"http://127.0.0.1:{port}{target.path}", deliveries, result)
            stored = client.hgetall(COUNTS_KEY).items()
            counts = {_text(key): int(value) for key, value in stored}
            result.once = sum(1 for d in deliveries if counts.get(str(d.delivery_id)) == 1)
            result.workers = int(client.scard(PIDS_KEY))
    except Exception as exc:  # noqa: BLE001 - reported in the table, the demo goes on
        result.problems.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    out.write("ok\n" if result.ok else "FAILED\n")
    return result


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _send_copies(url: str, deliveries: list[Delivery], result: SharedOutcome) -> None:
    import httpx

    def send(delivery: Delivery) -> None:
        with httpx.Client(timeout=15) as client:
            for _ in range(50):  # a 409 is retried, as Messages.dev retries it
                status = client.post(url, content=delivery.body, headers=delivery.headers)
                if status.status_code != 409:
                    if status.status_code != 200:
                        result.problems.append(f"answered {status.status_code}")
                    return
                time.sleep(0.05)
            result.problems.append("still 409 after 50 tries")

    copies = [d for d in deliveries for _ in range(MULTI_COPIES)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(send, copies))


def _shared_table(results: Sequence[SharedOutcome]) -> Iterator[str]:
    header = ("framework", "server", "handled exactly once", "worker processes that ran them")
    return _aligned(
        header,
        [
            (
                r.target.name,
                f"{r.target.server} x{WORKERS}",
                f"{r.once}/{MULTI_DELIVERIES}",
                str(r.workers),
            )
            for r in results
        ],
    )


def _aligned(header: tuple[str, ...], body: Iterable[tuple[str, ...]]) -> Iterator[str]:
    """A plain-text table: columns padded to their widest cell, a rule under the header."""
    rows = [header, *body]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for number, row in enumerate(rows):
        yield " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        if number == 0:
            yield "-+-".join("-" * width for width in widths)


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None
