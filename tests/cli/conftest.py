"""Fixtures of the command-line tests: a clean environment, a receiving endpoint, a fake API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .servers import Receiver, webhook_receiver

SECRET = "whsec_cli_test_secret"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets or keys in the developer's shell must not change what the tests see."""
    monkeypatch.delenv("MESSAGES_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("MESSAGES_API_KEY", raising=False)


@pytest.fixture
def endpoint() -> Iterator[Receiver]:
    """A webhook endpoint on 127.0.0.1 that verifies with :data:`SECRET`."""
    with webhook_receiver(SECRET) as receiver:
        yield receiver
