"""Fixtures for the Flask adapter: an app with the webhook blueprint, its client, signed posts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from messages_integrations import WebhookRouter
from messages_integrations.flask import create_blueprint
from messages_integrations.testing import Delivery, Recorder

SECRET = "whsec_flask_test"


@pytest.fixture(autouse=True)
def _no_secret_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESSAGES_WEBHOOK_SECRET", raising=False)


@pytest.fixture
def make_app() -> Callable[..., Flask]:
    """Build an app with one webhook blueprint at /webhooks, given create_blueprint's options."""

    def make(config: dict[str, Any] | None = None, **options: Any) -> Flask:
        app = Flask(__name__)
        app.config.update({"TESTING": True, **(config or {})})
        app.register_blueprint(create_blueprint(**options), url_prefix="/webhooks")
        return app

    return make


@pytest.fixture
def app(make_app: Callable[..., Flask], router: WebhookRouter, recorder: Recorder) -> Flask:
    """An app whose endpoint /webhooks uses SECRET and the test's router."""
    return make_app(secret=SECRET, router=router)


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    """The test client of ``app``."""
    with app.test_client() as client:
        yield client


def post(client: FlaskClient, delivery: Delivery, path: str = "/webhooks") -> TestResponse:
    """POST a signed delivery as Messages.dev sends it."""
    return client.post(path, data=delivery.body, headers=delivery.headers)
