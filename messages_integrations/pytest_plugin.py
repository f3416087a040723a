"""pytest fixtures for testing Messages.dev webhook handlers; loaded automatically by pytest.

``webhook_secret`` (override it to match your settings), ``messages_delivery`` (build a signed
delivery), ``send_webhook`` (sign and POST one through your framework's test client in one line)
and ``messages_event`` (a typed event to call a handler with directly).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Literal

import pytest

from ._config import secret_from_environment
from .testing import Delivery, build_delivery, make_event, post_delivery

__all__ = ["messages_delivery", "messages_event", "send_webhook", "webhook_secret"]

DEFAULT_TEST_SECRET = "whsec_test_pytest_plugin"  # noqa: S105 - a test-only value

DeliveryFactory = Callable[..., Delivery]


@pytest.fixture
def webhook_secret() -> str:
    """The secret deliveries are signed with: ``MESSAGES_WEBHOOK_SECRET`` if set, else a test value.

    Override this fixture in your ``conftest.py`` to return the secret your app is configured with.
    """
    configured = secret_from_environment(os.environ)
    return configured[0] if configured else DEFAULT_TEST_SECRET


@pytest.fixture
def messages_delivery(webhook_secret: str) -> DeliveryFactory:
    """Build signed deliveries: ``messages_delivery("reaction.added", data=None, **options)``."""

    def factory(
        event: str,
        data: Mapping[str, Any] | None = None,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        delivery_id: str | None = None,
        scheme: Literal["timestamped", "body"] = "timestamped",
    ) -> Delivery:
        return build_delivery(
            event,
            data,
            secret=webhook_secret if secret is None else secret,
            timestamp=timestamp,
            delivery_id=delivery_id,
            scheme=scheme,
        )

    return factory


@pytest.fixture
def send_webhook(messages_delivery: DeliveryFactory) -> Callable[..., Any]:
    """Sign and POST a delivery through a test client: ``send_webhook(client, url, event)``.

    Takes Django's ``Client``/``AsyncClient``, Flask's test client, Starlette's ``TestClient`` or an
    httpx client, and returns that client's response (an awaitable for async clients). Keyword
    arguments (``data=``, ``secret=``, ``timestamp=``, ``delivery_id=``) go to the delivery.
    """

    def send(
        client: Any, url: str, event: str, data: Mapping[str, Any] | None = None, **options: Any
    ) -> Any:
        return post_delivery(client, url, messages_delivery(event, data, **options))

    return send


@pytest.fixture
def messages_event() -> Callable[..., Any]:
    """Typed events to call handlers with: ``messages_event("reaction.added", type="like")``."""
    return make_event
