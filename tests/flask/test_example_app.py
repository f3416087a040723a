"""The example Flask app under gunicorn (threads), over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from messages_integrations.testing import build_delivery
from tests.support.load import check_exactly_once, deliver_concurrently, send_oversized_chunked
from tests.support.servers import RunningServer, free_port, serve

EXAMPLE = Path(__file__).parents[2] / "example_projects" / "flask_app"
SECRET = "whsec_example"

pytestmark = pytest.mark.http


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    """The example app served by gunicorn: one worker process, eight threads."""
    port = free_port()
    argv = ["-m", "gunicorn", "-k", "gthread", "--threads", "8", "-w", "1"]
    argv += ["-b", f"127.0.0.1:{port}", "app:app"]
    env = {"MESSAGES_WEBHOOK_SECRET": SECRET}
    with serve(argv, port=port, cwd=EXAMPLE, env=env) as running:
        yield running


def received(server: RunningServer) -> dict[str, object]:
    """What the example app's handlers have received so far."""
    summary: dict[str, object] = httpx.get(f"{server.url}/received", timeout=30).json()
    return summary


@pytest.mark.anyio
async def test_concurrent_deliveries_are_each_handled_exactly_once(server: RunningServer) -> None:
    report = await deliver_concurrently(f"{server.url}/webhooks", SECRET, count=300)
    print(f"flask gunicorn gthread x8: {report.describe()}")
    check_exactly_once(report, received(server))


def test_oversized_chunked_body_is_refused_and_the_server_still_serves(
    server: RunningServer,
) -> None:
    status = send_oversized_chunked(server.host, server.port, "/webhooks")
    assert status in (413, None), server.log()
    delivery = build_delivery("message.received", secret=SECRET)
    response = httpx.post(
        f"{server.url}/webhooks", content=delivery.body, headers=delivery.headers, timeout=30
    )
    assert response.status_code == 200
    assert received(server)["by_delivery_id"][delivery.delivery_id] == 1  # type: ignore[index]


def test_forged_delivery_is_refused_over_http(server: RunningServer) -> None:
    delivery = build_delivery("message.received", secret="whsec_forger")
    response = httpx.post(
        f"{server.url}/webhooks", content=delivery.body, headers=delivery.headers, timeout=30
    )
    assert response.status_code == 401
    assert delivery.delivery_id not in received(server)["by_delivery_id"]  # type: ignore[operator]
