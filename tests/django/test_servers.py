"""The example project over real HTTP: gunicorn (WSGI, threads) and uvicorn (ASGI) on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from messages_integrations.testing import build_delivery
from tests.support.load import check_exactly_once, deliver_concurrently, send_oversized_chunked
from tests.support.servers import RunningServer, free_port, serve

pytestmark = pytest.mark.http

PROJECT = Path(__file__).parents[2] / "example_projects" / "django_project"
SECRET = "whsec_django_load"
WEBHOOK = "/webhooks/messages"


def _argv(server: str, port: int) -> list[str]:
    if server == "gunicorn":
        return [
            "-m", "gunicorn", "--worker-class", "gthread", "--workers", "1", "--threads", "8",
            "--bind", f"127.0.0.1:{port}", "project.wsgi",
        ]  # fmt: skip
    return [
        "-m", "uvicorn", "project.asgi:application", "--host", "127.0.0.1",
        "--port", str(port), "--lifespan", "off", "--no-access-log",
    ]  # fmt: skip


@pytest.fixture(params=["gunicorn", "uvicorn"], scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """The example project, served by a real server (one process: the store is in memory)."""
    if not PROJECT.exists():
        pytest.skip("example_projects/ is not part of this checkout")
    port = free_port()
    env = {"MESSAGES_WEBHOOK_SECRET": SECRET, "DJANGO_SETTINGS_MODULE": "project.settings"}
    with serve(_argv(request.param, port), port=port, cwd=PROJECT, env=env, timeout=60) as running:
        yield running


def _deliver(server: RunningServer, event: str = "message.received") -> httpx.Response:
    delivery = build_delivery(event, secret=SECRET)
    return httpx.post(server.url + WEBHOOK, content=delivery.body, headers=delivery.headers)


@pytest.mark.anyio
async def test_concurrent_deliveries_are_each_handled_exactly_once(
    server: RunningServer, request: pytest.FixtureRequest
) -> None:
    report = await deliver_concurrently(server.url + WEBHOOK, SECRET, count=300)
    print(f"\n{request.node.callspec.id}: {report.describe()}", file=sys.stderr)
    summary = httpx.get(server.url + "/received", timeout=30).json()
    check_exactly_once(report, summary)


def test_chunked_delivery_without_content_length_is_accepted(server: RunningServer) -> None:
    delivery = build_delivery("reaction.added", secret=SECRET)
    pieces = [delivery.body[i : i + 50] for i in range(0, len(delivery.body), 50)]
    response = httpx.post(server.url + WEBHOOK, content=iter(pieces), headers=delivery.headers)
    assert "content-length" not in response.request.headers
    assert response.status_code == 200


def test_oversized_chunked_body_is_refused_and_the_server_still_serves(
    server: RunningServer,
) -> None:
    assert send_oversized_chunked(server.host, server.port, WEBHOOK) in (413, None)
    assert _deliver(server).status_code == 200


def test_declared_oversized_body_is_refused_with_413(server: RunningServer) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    big = delivery.body + b" " * (1024 * 1024)
    response = httpx.post(server.url + WEBHOOK, content=big, headers=delivery.headers)
    assert response.status_code == 413
    assert _deliver(server).status_code == 200
