"""The example apps under uvicorn on 127.0.0.1: concurrent deliveries and an endless body."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from messages_integrations.testing import build_delivery
from tests.support.load import check_exactly_once, deliver_concurrently, send_oversized_chunked
from tests.support.servers import RunningServer, free_port, serve

from .helpers import SECRET

pytestmark = pytest.mark.http

EXAMPLES = Path(__file__).parents[2] / "example_projects"


def _uvicorn(example: str) -> Iterator[RunningServer]:
    port = free_port()
    argv = ["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--lifespan", "on", "--log-level", "warning"]
    env = {"MESSAGES_WEBHOOK_SECRET": SECRET}
    with serve(argv, port=port, cwd=EXAMPLES / example, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def starlette_server() -> Iterator[RunningServer]:
    yield from _uvicorn("starlette_app")


@pytest.fixture(scope="module")
def fastapi_server() -> Iterator[RunningServer]:
    yield from _uvicorn("fastapi_app")


def _load_then_oversized(server: RunningServer, path: str) -> None:
    url = f"{server.url}{path}"
    report = asyncio.run(deliver_concurrently(url, SECRET, count=300))
    print(f"\n{server.url} {path}: {report.describe()}")
    check_exactly_once(report, httpx.get(f"{server.url}/received", timeout=30).json())

    status = send_oversized_chunked(server.host, server.port, path)
    print(f"{server.url} {path}: 64 MiB chunked body answered {status}")
    assert status in (413, None), server.log()

    delivery = build_delivery("message.received", secret=SECRET)
    after = httpx.post(url, content=delivery.body, headers=delivery.headers, timeout=30)
    assert after.status_code == 200, server.log()
    assert "Traceback" not in server.log()


def test_starlette_example_handles_each_delivery_once_under_load(
    starlette_server: RunningServer,
) -> None:
    _load_then_oversized(starlette_server, "/webhooks")


def test_fastapi_example_middleware_handles_each_delivery_once_under_load(
    fastapi_server: RunningServer,
) -> None:
    _load_then_oversized(fastapi_server, "/webhooks")


def test_fastapi_example_dependency_route_handles_each_delivery_once_under_load(
    fastapi_server: RunningServer,
) -> None:
    _load_then_oversized(fastapi_server, "/inbox")


def test_missing_secret_stops_the_example_at_startup() -> None:
    port = free_port()
    argv = ["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--lifespan", "on"]
    env = {"MESSAGES_WEBHOOK_SECRET": ""}
    with (
        pytest.raises(RuntimeError, match="MESSAGES_WEBHOOK_SECRET"),
        serve(argv, port=port, cwd=EXAMPLES / "starlette_app", env=env),
    ):
        pass
