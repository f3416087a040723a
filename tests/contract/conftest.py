"""The contract suite's fixtures: one endpoint per adapter, each skipped without its framework."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from messages_integrations import WebhookRouter
from tests.contract.endpoints import FACTORIES, Endpoint, Factory

SECRET = "whsec_contract_tests"

_NEEDS = {
    "starlette": "starlette",
    "fastapi": "fastapi",
    "flask": "flask",
    "django-wsgi": "django",
    "django-asgi": "django",
    "django-decorator": "django",
}


@pytest.fixture(params=list(FACTORIES))
def factory(request: pytest.FixtureRequest) -> Factory:
    """make(router, **options) -> Endpoint, for each adapter in turn."""
    name: str = request.param
    framework = _NEEDS.get(name)
    if framework is not None and importlib.util.find_spec(framework) is None:
        pytest.skip(f"{framework} is not installed")
    if framework == "django":
        from tests.support.django_settings import configure_django

        configure_django()
    return FACTORIES[name]


@pytest.fixture
def make(factory: Factory, router: WebhookRouter, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Build the endpoint under test with the test's router and the given options."""
    monkeypatch.delenv("MESSAGES_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("MESSAGES_WEBHOOK_STORE", raising=False)

    def build(**options: Any) -> Endpoint:
        options.setdefault("secret", SECRET)
        return factory(options.pop("router", router), **options)

    return build


@pytest.fixture
def endpoint(make: Any) -> Endpoint:
    """The endpoint under test with the default options and the test's router."""
    built: Endpoint = make()
    return built
