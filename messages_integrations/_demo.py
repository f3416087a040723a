"""``messages-integrations demo``: every example project on a real server, every event delivered.

Starts each example project on a free 127.0.0.1 port (uvicorn for Starlette, FastAPI and Django
ASGI; gunicorn for Flask and Django WSGI), sends it a signed delivery of every event, a duplicate,
a forged and a stale one, reads back what its handlers received, and prints one table.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable, Iterator, Sequence
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


def _uvicorn(app: str) -> Callable[[int], list[str]]:
    return lambda port: [
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def _gunicorn(app: str) -> Callable[[int], list[str]]:
    return lambda port: [
        "-m",
        "gunicorn",
        "-k",
        "gthread",
        "--threads",
        "8",
        "-w",
        "1",
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
    argv: Callable[[int], list[str]]
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
            target.argv(port),
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
    rows = [header] + [
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
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for number, row in enumerate(rows):
        yield " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        if number == 0:
            yield "-+-".join("-" * width for width in widths)


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
    return 0 if passed == len(outcomes) else 1


def _importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None
