"""Django configured for these tests: no database, CSRF enforced, login required by default."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from tests.support.django_settings import SECRET as SECRET  # re-exported for the tests
from tests.support.django_settings import configure_django

configure_django()

from messages_integrations import default_router  # noqa: E402

from . import urls  # noqa: E402 - needs the settings above
from .webhook_app import messages_webhooks  # noqa: E402

# The default router as autodiscovery left it: other test folders may clear it.
_STARTUP_HANDLERS = default_router.snapshot()


@dataclass(frozen=True)
class Answer:
    """A response from either test client."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        """The body, decoded."""
        result: dict[str, Any] = json.loads(self.body)
        return result


#: send(path, body=b"", headers=None, method="POST", **environ) -> Answer
Send = Callable[..., Answer]


def _split(headers: Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
    rest = dict(headers or {})
    return rest.pop("Content-Type", "application/json"), rest


@pytest.fixture(params=["wsgi", "asgi"])
def send(request: pytest.FixtureRequest) -> Send:
    """Send a request through Django's test client (WSGI) or async client (ASGI), CSRF enforced."""
    kind = request.param

    def send(
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
        **environ: Any,
    ) -> Answer:
        content_type, rest = _split(headers)
        if kind == "wsgi":
            client = Client(enforce_csrf_checks=True)
            response = client.generic(method, path, body, content_type, headers=rest, **environ)
        else:
            aclient = AsyncClient(enforce_csrf_checks=True)

            async def go() -> Any:
                return await aclient.generic(
                    method, path, body, content_type, headers=rest, **environ
                )

            response = async_to_sync(go)()
        return Answer(response.status_code, response.headers, response.content)

    return send


@pytest.fixture(autouse=True)
def _fresh_recorders() -> None:
    default_router.restore(_STARTUP_HANDLERS)
    for recorder in (messages_webhooks.received, messages_webhooks.messages, urls.line_b_seen):
        recorder.clear()
    urls.calls.clear()
    urls.handler_threads.clear()
