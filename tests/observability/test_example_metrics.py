"""Each example project serves ``/metrics`` when ``MESSAGES_WEBHOOK_PROMETHEUS=1`` is set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from messages_integrations.testing import build_delivery
from tests.observability.observed import parse_metrics, value
from tests.support.servers import RunningServer, free_port, serve

pytestmark = pytest.mark.http

EXAMPLES = Path(__file__).parents[2] / "example_projects"
SECRET = "whsec_example_metrics"
DELIVERIES = "messages_webhook_deliveries_total"

#: Each example: its folder, its server command, and its webhook path.
SERVERS = {
    "starlette": ("starlette_app", ["-m", "uvicorn", "app:app", "--port", "{port}"], "/webhooks"),
    "fastapi": ("fastapi_app", ["-m", "uvicorn", "app:app", "--port", "{port}"], "/inbox"),
    "flask": ("flask_app", ["-m", "gunicorn", "app:app"], "/webhooks"),
    "django": ("django_project", ["-m", "gunicorn", "project.wsgi"], "/webhooks/messages"),
}


def _example(name: str, *, prometheus: bool) -> Iterator[tuple[RunningServer, str]]:
    if not EXAMPLES.exists():
        pytest.skip("example_projects/ is not part of this checkout")
    folder, argv, path = SERVERS[name]
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in argv]
    argv += ["-b", f"127.0.0.1:{port}"] if "gunicorn" in argv else ["--host", "127.0.0.1"]
    env = {
        "MESSAGES_WEBHOOK_SECRET": SECRET,
        "MESSAGES_WEBHOOK_PROMETHEUS": "1" if prometheus else "0",
        "DJANGO_SETTINGS_MODULE": "project.settings",
    }
    with serve(argv, port=port, cwd=EXAMPLES / folder, env=env, timeout=60) as server:
        yield server, path


@pytest.fixture(params=list(SERVERS))
def example(request: pytest.FixtureRequest) -> Iterator[tuple[RunningServer, str]]:
    """One example project under its usual server, Prometheus on."""
    yield from _example(request.param, prometheus=True)


def test_each_example_counts_its_deliveries_at_metrics(example: tuple[RunningServer, str]) -> None:
    server, path = example
    good = build_delivery("message.received", secret=SECRET)
    forged = build_delivery("message.received", secret="whsec_forged")
    for delivery in (good, forged):
        httpx.post(server.url + path, content=delivery.body, headers=delivery.headers, timeout=30)
    response = httpx.get(server.url + "/metrics", timeout=30)
    assert response.status_code == 200, server.log()
    assert response.headers["content-type"].startswith("text/plain")
    metrics = parse_metrics(response.text)
    assert value(metrics, DELIVERIES, event="message.received", outcome="ok") == 1
    assert value(metrics, DELIVERIES, event="unknown", outcome="refused_signature") == 1


def test_metrics_are_off_unless_asked_for() -> None:
    for server, _ in _example("starlette", prometheus=False):
        response = httpx.get(server.url + "/metrics", timeout=30)
        assert response.status_code == 404
        assert "MESSAGES_WEBHOOK_PROMETHEUS" in response.text
