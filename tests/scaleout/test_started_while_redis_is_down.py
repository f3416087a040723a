"""An example app started while its Redis is down, Redis with a password in the store's URL.

The app starts (connections are made on first use), answers 503 with ``Retry-After`` and runs
no handler until Redis is up, then handles the sender's retry once. Its start-up line names the
store with the password masked, and the password appears nowhere in the server's log.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from messages_integrations.testing import build_delivery
from tests.support.servers import HOST, free_port
from tests.support.services import Service, require_binary

from .examples import EXAMPLES, SECRET, Example, Served, start

pytestmark = pytest.mark.http

PASSWORD = "s3cret-redis-pass"


@pytest.fixture
def password_redis() -> Iterator[Service]:
    """A private redis-server that requires PASSWORD, on a free port, NOT started yet."""
    binary = require_binary("redis-server")
    with tempfile.TemporaryDirectory(prefix="redis-auth-") as workdir:
        port = free_port()
        argv = [binary, "--port", str(port), "--bind", HOST, "--requirepass", PASSWORD]
        argv += ["--save", "", "--appendonly", "no", "--dir", workdir]
        service = Service(argv, port, Path(workdir))
        try:
            yield service
        finally:
            service.stop()


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.name)
def test_an_app_started_while_redis_is_down_answers_503_until_it_is_up(
    example: Example, password_redis: Service, tmp_path: Path
) -> None:
    store_url = f"redis://:{PASSWORD}@{password_redis.address}/0"
    with start(example, tmp_path, store_url=store_url) as server:
        served = Served(example, server, tmp_path)
        delivery = build_delivery("message.received", secret=SECRET)

        def post() -> httpx.Response:
            return httpx.post(
                served.url, content=delivery.body, headers=delivery.headers, timeout=60
            )

        down = [post() for _ in range(3)]
        assert [r.status_code for r in down] == [503] * 3, server.log()
        assert all(r.headers.get("retry-after") for r in down)
        assert not served.runs().started

        password_redis.start()
        up = post()
        assert (up.status_code, up.json()["status"]) == (200, "ok"), server.log()
        assert post().json()["status"] == "duplicate"
        runs = served.runs()
        assert [len(pids) for pids in runs.started.values()] == [1]
        assert [len(pids) for pids in runs.ended.values()] == [1]

        log = server.log()
        masked = f"store redis://:***@{password_redis.address}/0"
        lines = served.log_lines("secret(s), replay window")
        assert lines, log
        assert all(masked in line for line in lines), lines
        assert "store failed for delivery" in log  # the outage was logged...
        assert PASSWORD not in log  # ...and nothing anywhere shows the password
