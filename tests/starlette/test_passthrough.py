"""Everything that is not a delivery reaches the wrapped application untouched, whatever it is."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, WebSocketRoute
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from messages_integrations import ConfigurationError, WebhookRouter
from messages_integrations.starlette import MessagesWebhookMiddleware
from messages_integrations.testing import Recorder, build_delivery

from .helpers import (
    SECRET,
    CountingBody,
    EchoApp,
    asgi_client,
    lifespan_running,
    post_delivery,
    websocket_session,
)


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_requests_to_other_paths_keep_their_method_and_body(
    method: str, router: WebhookRouter
) -> None:
    downstream = EchoApp()
    app = MessagesWebhookMiddleware(downstream, secret=SECRET, router=router)

    async with asgi_client(app) as client:
        response = await client.request(method, "/orders?page=2", content=b'{"id": 7}')

    assert response.headers["x-echo-method"] == method
    assert response.headers["x-echo-path"] == "/orders"
    assert response.content == b'{"id": 7}'
    assert downstream.scopes[0]["query_string"] == b"page=2"


@pytest.mark.anyio
async def test_streamed_body_larger_than_max_body_size_passes_through_whole(
    router: WebhookRouter,
) -> None:
    app = MessagesWebhookMiddleware(EchoApp(), secret=SECRET, router=router, max_body_size=1024)
    body = CountingBody(3 * 1024 * 1024)

    async with asgi_client(app) as client:
        response = await client.post("/uploads", content=body)

    assert response.status_code == 200
    assert len(response.content) == body.total


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/webhooks/", "/webhooks/extra", "/webhooksx", "/"])
async def test_paths_that_only_resemble_the_webhook_path_pass_through(
    path: str, router: WebhookRouter, recorder: Recorder
) -> None:
    downstream = EchoApp()
    app = MessagesWebhookMiddleware(downstream, secret=SECRET, router=router)
    delivery = build_delivery("message.received", secret=SECRET)

    async with asgi_client(app) as client:
        response = await post_delivery(client, delivery, path)

    assert response.content == delivery.body
    assert downstream.http_paths() == [path]
    assert recorder.count() == 0


@pytest.mark.anyio
@pytest.mark.parametrize("scope_type", ["http", "websocket", "lifespan"])
async def test_scopes_not_ours_are_handed_on_as_the_same_objects(
    scope_type: str, router: WebhookRouter
) -> None:
    handed: list[tuple[Scope, Receive, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        handed.append((scope, receive, send))

    async def receive() -> Message:
        raise AssertionError("the middleware must not read from a scope it does not answer")

    async def send(message: Message) -> None:
        raise AssertionError("the middleware must not answer a scope it does not own")

    path = "/elsewhere" if scope_type == "http" else "/webhooks"
    scope: Scope = {"type": scope_type, "path": path, "method": "POST", "headers": []}
    if scope_type == "lifespan":
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}

    await MessagesWebhookMiddleware(app, secret=SECRET, router=router)(scope, receive, send)

    assert len(handed) == 1
    assert handed[0][0] is scope
    assert handed[0][1] is receive
    assert handed[0][2] is send


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/ws", "/webhooks"])
async def test_websockets_pass_through_even_on_the_webhook_path(
    path: str, router: WebhookRouter
) -> None:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(f"echo: {await websocket.receive_text()}")
        await websocket.close()

    inner = Starlette(routes=[WebSocketRoute(path, echo)])
    app = MessagesWebhookMiddleware(inner, secret=SECRET, router=router)

    sent = await websocket_session(app, path, "hello")

    assert [message["type"] for message in sent] == [
        "websocket.accept",
        "websocket.send",
        "websocket.close",
    ]
    assert sent[1]["text"] == "echo: hello"


@pytest.mark.anyio
async def test_lifespan_of_the_wrapped_application_runs(router: WebhookRouter) -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = Starlette(
        lifespan=lifespan,
        middleware=[Middleware(MessagesWebhookMiddleware, secret=SECRET, router=router)],
    )

    async with lifespan_running(app), asgi_client(app) as client:
        assert events == ["startup"]
        delivery = build_delivery("message.received", secret=SECRET)
        assert (await post_delivery(client, delivery)).status_code == 200
    assert events == ["startup", "shutdown"]


@pytest.mark.anyio
async def test_missing_secret_fails_the_application_at_startup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MESSAGES_WEBHOOK_SECRET", raising=False)
    app = Starlette()
    app.add_middleware(MessagesWebhookMiddleware)

    with pytest.raises(ExceptionGroup) as failure:
        async with lifespan_running(app):
            pass

    assert failure.group_contains(ConfigurationError, match="MESSAGES_WEBHOOK_SECRET")


@pytest.mark.anyio
async def test_webhook_path_is_relative_to_a_mount(
    router: WebhookRouter, recorder: Recorder
) -> None:
    inner = MessagesWebhookMiddleware(EchoApp(), secret=SECRET, router=router)
    app = Starlette(routes=[Mount("/api", app=inner)])
    delivery = build_delivery("message.received", secret=SECRET)

    async with asgi_client(app) as client:
        mounted = await post_delivery(client, delivery, "/api/webhooks")
        other = await client.post("/api/orders", content=b"kept")

    assert mounted.json()["status"] == "ok"
    assert other.content == b"kept"
    assert recorder.count() == 1


class Item(BaseModel):
    name: str
    quantity: int


@pytest.mark.anyio
async def test_wraps_a_fastapi_application(router: WebhookRouter, recorder: Recorder) -> None:
    api = FastAPI()
    api.add_middleware(MessagesWebhookMiddleware, secret=SECRET, router=router)

    @api.post("/items")
    async def create_item(item: Item) -> Item:
        return item

    delivery = build_delivery("reaction.added", secret=SECRET)
    async with asgi_client(api) as client:
        answered = await post_delivery(client, delivery)
        item = await client.post("/items", json={"name": "pasta", "quantity": 2})
        refused = await client.get("/webhooks")

    assert answered.json()["status"] == "ok"
    assert item.json() == {"name": "pasta", "quantity": 2}
    assert refused.status_code == 405
    assert recorder.count() == 1


@pytest.fixture
def django_application() -> Iterator[Any]:
    """Django's own ASGI application, with minimal settings and one echo view."""
    django = pytest.importorskip("django")
    from django.conf import settings
    from django.core.asgi import get_asgi_application
    from django.test.utils import override_settings

    if not settings.configured:
        settings.configure(INSTALLED_APPS=[], DATABASES={}, USE_TZ=True, SECRET_KEY="tests")
        django.setup()
    urls = "tests.starlette.django_urls"
    with override_settings(ROOT_URLCONF=urls, ALLOWED_HOSTS=["testserver"], MIDDLEWARE=[]):
        yield get_asgi_application()


@pytest.mark.anyio
async def test_wraps_django_asgi_application(
    django_application: Any, router: WebhookRouter, recorder: Recorder
) -> None:
    app = MessagesWebhookMiddleware(django_application, secret=SECRET, router=router)
    delivery = build_delivery("message.received", secret=SECRET)

    async with asgi_client(app) as client:
        answered = await post_delivery(client, delivery)
        duplicate = await post_delivery(client, delivery)
        order = await client.put("/orders", content=b"two pizzas")
        missing = await client.get("/nowhere")

    assert answered.json()["status"] == "ok"
    assert duplicate.json()["status"] == "duplicate"
    assert order.content == b"two pizzas"
    assert order.headers["x-django-method"] == "PUT"
    assert missing.status_code == 404
    assert recorder.count() == 1
