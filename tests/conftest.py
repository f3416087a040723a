"""Fixtures shared by every test folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from messages_integrations import WebhookRouter
from messages_integrations.testing import Recorder
from tests.cli.servers import FakeMessagesAPI, fake_messages_api

# The official SDK's deliveries live in ../shared/vectors beside the checkout; a copy ships in
# tests/vectors so that the suite also runs from an sdist.
_VECTOR_PLACES = [
    Path(__file__).parent / "vectors" / "official-sdk-deliveries.json",
    Path(__file__).parents[2] / "shared" / "vectors" / "official-sdk-deliveries.json",
]


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
