"""Fixtures shared by every test folder."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from messages_integrations import WebhookRouter
from messages_integrations.testing import Recorder
from tests.cli.servers import FakeMessagesAPI, fake_messages_api
from tests.support.services import Service, memcached_service, redis_service

# Deliveries produced by the official TypeScript SDK's own buildWebhookDelivery and signWebhook.
_VECTOR_PLACES = [Path(__file__).parent / "vectors" / "official-sdk-deliveries.json"]


def load_vectors() -> list[dict[str, Any]]:
    """The deliveries produced by the official TypeScript SDK."""
    for place in _VECTOR_PLACES:
        if place.exists():
            vectors: list[dict[str, Any]] = json.loads(place.read_text(encoding="utf-8"))
            return vectors
    raise FileNotFoundError("official-sdk-deliveries.json not found")


@pytest.fixture
def router() -> WebhookRouter:
    """A fresh router, so that tests never share handlers."""
    return WebhookRouter()


@pytest.fixture
def recorder(router: WebhookRouter) -> Recorder:
    """Records every event ``router`` dispatches."""
    recorder = Recorder()
    router.on("*")(recorder)
    return recorder


@pytest.fixture
def api() -> Iterator[FakeMessagesAPI]:
    """A fake of the Messages.dev REST API on 127.0.0.1 (tests/cli/servers.py)."""
    with fake_messages_api() as fake:
        yield fake


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, the loop every supported server uses."""
    return "asyncio"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Service]:
    """A private redis-server for the whole test session (tests/support/services.py)."""
    with redis_service() as service:
        yield service


@pytest.fixture
def redis_url(redis_server: Service) -> Iterator[str]:
    """``redis://`` URL of a running private Redis, flushed after each test."""
    if redis_server.process is None:  # a test stopped it: bring it back for the next one
        redis_server.start()
    yield f"redis://{redis_server.address}/0"
    if redis_server.process is None:
        redis_server.start()
    _flush_redis(redis_server)


def _flush_redis(service: Service) -> None:
    with socket.create_connection(("127.0.0.1", service.port), 5) as sock:
        sock.sendall(b"FLUSHALL\r\n")
        sock.recv(64)


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[Service]:
    """A private memcached for the whole test session."""
    with memcached_service() as service:
        yield service
