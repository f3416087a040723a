"""The pytest plugin, used the way a user's own test suite uses it, one suite per framework."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

FLASK_SUITE = """
    import pytest
    from flask import Flask

    from messages_integrations import ReactionAdded, WebhookRouter
    from messages_integrations.flask import create_blueprint

    router = WebhookRouter()
    seen = []

    @router.on("reaction.added")
    def remember(event: ReactionAdded) -> None:
        seen.append(event.data.type)

    @pytest.fixture
    def webhook_secret():
        return "whsec_flask_sample"

    @pytest.fixture
    def client(webhook_secret):
        app = Flask(__name__)
        blueprint = create_blueprint(secret=webhook_secret, router=router)
        app.register_blueprint(blueprint, url_prefix="/webhooks")
        return app.test_client()

    def test_a_signed_delivery_reaches_the_handler(client, send_webhook):
        seen.clear()
        response = send_webhook(client, "/webhooks", "reaction.added")
        assert response.status_code == 200
        assert seen == ["love"]

    def test_a_delivery_signed_with_another_secret_is_refused(client, send_webhook):
        seen.clear()
        response = send_webhook(client, "/webhooks", "reaction.added", secret="whsec_other")
        assert response.status_code == 401
        assert seen == []

    def test_a_handler_called_directly_with_a_typed_event(messages_event):
        seen.clear()
        remember(messages_event("reaction.added", type="like"))
        assert seen == ["like"]

    def test_a_delivery_built_by_the_factory_has_its_own_id(messages_delivery):
        first = messages_delivery("message.sent")
        second = messages_delivery("message.sent")
        assert first.delivery_id != second.delivery_id
        assert first.headers["X-Webhook-Signature"]
"""

STARLETTE_SUITE = """
    import httpx
    import pytest
    from starlette.applications import Starlette
    from starlette.middleware import Middleware

    from messages_integrations import MessageReceived, WebhookRouter
    from messages_integrations.starlette import MessagesWebhookMiddleware

    router = WebhookRouter()
    seen = []

    @router.on("message.received")
    async def remember(event: MessageReceived) -> None:
        seen.append(event.data.text)

    @pytest.fixture
    def anyio_backend():
        return "asyncio"

    @pytest.fixture
    def webhook_secret():
        return "whsec_starlette_sample"

    @pytest.fixture
    async def client(webhook_secret):
        middleware = Middleware(
            MessagesWebhookMiddleware, path="/webhooks", secret=webhook_secret, router=router
        )
        app = Starlette(middleware=[middleware])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c

    @pytest.mark.anyio
    async def test_a_signed_delivery_reaches_the_handler(client, send_webhook):
        seen.clear()
        data = {"id": "msg_1", "chat_id": "cht_1", "sender": "+15550001111",
                "is_from_me": False, "sent_at": 1, "text": "hello"}
        response = await send_webhook(client, "/webhooks", "message.received", data)
        assert response.status_code == 200
        assert seen == ["hello"]

    @pytest.mark.anyio
    async def test_a_duplicate_runs_the_handler_once(client, send_webhook):
        seen.clear()
        first = await send_webhook(client, "/webhooks", "message.received", delivery_id="dlv_x")
        again = await send_webhook(client, "/webhooks", "message.received", delivery_id="dlv_x")
        assert (first.status_code, again.json()["status"]) == (200, "duplicate")
        assert len(seen) == 1
"""


DJANGO_CONFTEST = """
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="sample",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF="sample_urls",
        INSTALLED_APPS=["messages_integrations.django"],
        MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
        MESSAGES_WEBHOOK_SECRET="whsec_django_sample",
    )
    django.setup()
"""

DJANGO_URLS = """
    from django.http import JsonResponse
    from django.urls import path

    from messages_integrations.django import messages_webhook

    seen = []

    @messages_webhook
    def inbox(request, event):
        seen.append(event.event)
        return JsonResponse({"handled": event.event})

    urlpatterns = [path("inbox", inbox)]
"""

DJANGO_SUITE = """
    import pytest
    from django.test import AsyncClient, Client

    from sample_urls import seen

    @pytest.fixture
    def webhook_secret():
        return "whsec_django_sample"

    def test_the_decorated_view_gets_the_event(send_webhook):
        seen.clear()
        response = send_webhook(Client(enforce_csrf_checks=True), "/inbox", "receipt.read")
        assert response.status_code == 200
        assert response.json() == {"handled": "receipt.read"}
        assert seen == ["receipt.read"]

    def test_a_stale_delivery_never_reaches_the_view(send_webhook):
        seen.clear()
        response = send_webhook(Client(), "/inbox", "receipt.read", timestamp=1_000)
        assert response.status_code == 401
        assert seen == []

    @pytest.mark.anyio
    async def test_the_async_client_works_too(send_webhook):
        seen.clear()
        response = await send_webhook(AsyncClient(), "/inbox", "typing.stopped")
        assert response.status_code == 200
        assert seen == ["typing.stopped"]

    @pytest.fixture
    def anyio_backend():
        return "asyncio"
"""


def run_suite(pytester: pytest.Pytester, suite: str) -> pytest.RunResult:
    pytester.makepyfile(test_sample=textwrap.dedent(suite))
    return pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")


def test_flask_suite_uses_the_fixtures(pytester: pytest.Pytester) -> None:
    pytest.importorskip("flask")
    result = run_suite(pytester, FLASK_SUITE)
    result.assert_outcomes(passed=4)


def test_starlette_suite_uses_the_fixtures(pytester: pytest.Pytester) -> None:
    pytest.importorskip("starlette")
    result = run_suite(pytester, STARLETTE_SUITE)
    result.assert_outcomes(passed=2)


def test_django_suite_uses_the_fixtures(pytester: pytest.Pytester) -> None:
    pytest.importorskip("django")
    pytester.makeconftest(textwrap.dedent(DJANGO_CONFTEST))
    pytester.makepyfile(sample_urls=textwrap.dedent(DJANGO_URLS))
    result = run_suite(pytester, DJANGO_SUITE)
    result.assert_outcomes(passed=3)


def test_the_default_secret_comes_from_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", "whsec_from_env,whsec_second")
    pytester.makepyfile(
        test_secret="""
        def test_secret(webhook_secret, messages_delivery):
            assert webhook_secret == "whsec_from_env"
            delivery = messages_delivery("typing.started")
            from messages_integrations import verify_webhook
            verify_webhook(delivery.body, delivery.signature, "whsec_from_env",
                           timestamp=delivery.timestamp)
        """
    )
    pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider").assert_outcomes(passed=1)
