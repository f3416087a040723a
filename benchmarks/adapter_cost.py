"""CPU cost per request of each adapter against its bare endpoint, in process, no network.

The apps of ``apps/`` are called directly, as their server would call them: an ASGI app with a
scope, ``receive`` and ``send`` on a plain asyncio loop (uvicorn without uvloop), a WSGI app with
an environ (gunicorn's keys). Each request is a distinct signed ``reaction.added``. Each app runs
in its own process. Two figures per endpoint: CPU time per request (adapter and bare in
alternating batches; the fastest batch of each, since other work on a shared machine only adds)
and, with valgrind, CPU instructions per request counted by callgrind (two runs of different
lengths, so that start-up cancels out): deterministic, even on a busy machine.

    python benchmarks/adapter_cost.py [--rounds 15] [--batch 300] [--no-instructions]
                                      [--only NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import table
from http_load import APPS, SECRET, read_deliveries, write_deliveries

HOST = "127.0.0.1"


@dataclass(frozen=True)
class InProcess:
    """One app as its server calls it: the module, the callable, ASGI or WSGI, the two paths."""

    name: str
    target: str
    interface: str  # "asgi" or "wsgi"
    bare_path: str
    adapter_path: str = "/webhooks"
    env: tuple[tuple[str, str], ...] = ()


APPS_IN_PROCESS = [
    InProcess("Starlette", "starlette_app:app", "asgi", "/bare"),
    InProcess("FastAPI, middleware", "fastapi_app:app", "asgi", "/bare"),
    InProcess("FastAPI, dependency", "fastapi_app:app", "asgi", "/bare", "/dependency"),
    InProcess(
        "FastAPI, dependency, against a hand-written dependency",
        "fastapi_app:app",
        "asgi",
        "/bare-dependency",
        "/dependency",
    ),
    InProcess("Flask", "flask_app:app", "wsgi", "/bare"),
    InProcess("Django, WSGI", "django_app:wsgi", "wsgi", "/bare"),
    InProcess(
        "Django, ASGI", "django_app:asgi", "asgi", "/bare-async", env=(("BENCH_DJANGO_ASGI", "1"),)
    ),
]
BY_NAME = {app.name: app for app in APPS_IN_PROCESS}

Deliveries = list[tuple[dict[str, str], bytes]]
#: Runs the given deliveries against one path; raises unless every answer is 2xx.
Runner = Callable[[str, Deliveries], None]


def _load(app: InProcess) -> Any:
    os.environ.update({"MESSAGES_WEBHOOK_SECRET": SECRET, **dict(app.env)})
    sys.path.insert(0, str(APPS))
    module_name, attribute = app.target.split(":")
    module = __import__(module_name)
    return getattr(module, attribute)


def asgi_runner(application: Any) -> Runner:
    """Call ``application`` as uvicorn does, one request after another on one loop."""
    loop = asyncio.new_event_loop()

    async def one(path: str, headers: dict[str, str], body: bytes) -> None:
        raw = [(b"host", f"{HOST}:8000".encode())]
        raw += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": (HOST, 8000),
            "client": (HOST, 50000),
            "scheme": "http",
            "method": "POST",
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": raw,
            "state": {},
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # no disconnect while the app runs
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 0

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await application(scope, receive, send)
        if not 200 <= status < 300:
            raise RuntimeError(f"{path} answered {status}")

    async def many(path: str, deliveries: Deliveries) -> None:
        for headers, body in deliveries:
            await one(path, headers, body)

    return lambda path, deliveries: loop.run_until_complete(many(path, deliveries))


def wsgi_runner(application: Any) -> Runner:
    """Call ``application`` with gunicorn's environ keys, one request after another."""

    def one(path: str, headers: dict[str, str], body: bytes) -> None:
        environ = {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "RAW_URI": path,
            "QUERY_STRING": "",
            "SERVER_NAME": HOST,
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": HOST,
            "HTTP_HOST": f"{HOST}:8000",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
        }
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
        status = ""

        def start_response(line: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
            nonlocal status
            status = line
            return lambda data: None

        result = application(environ, start_response)
        try:
            for _ in result:
                pass
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not status.startswith("2"):
            raise RuntimeError(f"{path} answered {status}")

    def many(path: str, deliveries: Deliveries) -> None:
        for headers, body in deliveries:
            one(path, headers, body)

    return many


def runner(app: InProcess) -> Runner:
    """The app, loaded in this process, behind the runner of its interface."""
    application = _load(app)
    return (asgi_runner if app.interface == "asgi" else wsgi_runner)(application)


def _pool(folder: Path, count: int) -> Deliveries:
    path = folder / "deliveries"
    write_deliveries(path, count)
    return read_deliveries(path, 0, count)


def time_app(app: InProcess, rounds: int, batch: int, folder: Path) -> dict[str, list[float]]:
    """CPU seconds per request, per round, of both paths (this process: start it per app)."""
    run = runner(app)
    pool = _pool(folder, batch * (rounds + 1))
    run(app.adapter_path, pool[:batch])  # warm-up: imports, caches, the first receiver
    run(app.bare_path, pool[:batch])
    times: dict[str, list[float]] = {"adapter": [], "bare": []}
    for number in range(1, rounds + 1):
        deliveries = pool[number * batch : (number + 1) * batch]
        order = [("adapter", app.adapter_path), ("bare", app.bare_path)]
        for kind, path in order if number % 2 else order[::-1]:
            started = time.process_time()
            run(path, deliveries)
            times[kind].append((time.process_time() - started) / batch)
    return times


def drive(app: InProcess, path: str, count: int, folder: Path) -> None:
    """Warm up, then run ``count`` requests at ``path`` (what callgrind counts)."""
    run = runner(app)
    pool = _pool(folder, count + 200)
    run(path, pool[:200])
    run(path, pool[200:])


def instructions(app: InProcess, path: str, folder: Path) -> float:
    """CPU instructions per request at ``path``, counted by callgrind over two run lengths."""
    totals = []
    for count in (100, 400):
        argv = [
            "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
            sys.executable, __file__, "--drive", app.name, path, str(count), str(folder),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        result = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
        found = re.search(r"Collected : (\d+)", result.stderr)
        assert found is not None, result.stderr
        totals.append(int(found.group(1)))
    return (totals[1] - totals[0]) / 300


def _in_subprocess(*argv: str) -> Any:
    output = subprocess.run(
        [sys.executable, __file__, *argv], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output.splitlines()[-1])


def main() -> None:
    """Print the table: µs and instructions per request, adapter against bare, per app."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--no-instructions", action="store_true")
    parser.add_argument("--only", action="append", help="an app's name (repeatable)")
    parser.add_argument("--drive", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--time", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        name, path, count, folder = args.drive
        drive(BY_NAME[name], path, int(count), Path(folder))
        return
    if args.time:
        name, rounds, batch, folder = args.time
        print(json.dumps(time_app(BY_NAME[name], int(rounds), int(batch), Path(folder))))
        return
    count = not args.no_instructions and shutil.which("valgrind") is not None
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as folder:
        for app in APPS_IN_PROCESS:
            if args.only and app.name not in args.only:
                continue
            times = _in_subprocess("--time", app.name, str(args.rounds), str(args.batch), folder)
            adapter = min(times["adapter"]) * 1e6
            bare = min(times["bare"]) * 1e6
            row = [app.name, f"{adapter:.1f}", f"{bare:.1f}", f"**{bare / adapter:.2f}**"]
            if count:
                ir_adapter = instructions(app, app.adapter_path, Path(folder))
                ir_bare = instructions(app, app.bare_path, Path(folder))
                row += [f"{ir_adapter:,.0f}", f"{ir_bare:,.0f}", f"**{ir_bare / ir_adapter:.2f}**"]
            rows.append(row)
            print(" | ".join(row), file=sys.stderr, flush=True)
    headers = ["framework", "adapter µs CPU", "bare µs CPU", "bare / adapter"]
    if count:
        headers += ["adapter instructions", "bare instructions", "bare / adapter"]
    print(
        "CPU per request in process (fastest of alternating batches); instructions per request "
        "counted by callgrind. `bare / adapter` above 1.00: the adapter costs less than the "
        "hand-written endpoint.\n"
    )
    print(table(headers, rows))


if __name__ == "__main__":
    main()
