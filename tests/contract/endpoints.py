"""Every way the library answers a delivery, behind one ``post(body, headers) -> Answer`` interface.

The HTTP table is written once (``test_http_table.py``) and run against each of these: the core
receiver (sync and async), the Starlette middleware, the FastAPI dependency, the Flask blueprint,
and Django's view (WSGI and ASGI) and decorator, each through its framework's own test client.
"""

# No `from __future__ import annotations`: FastAPI resolves the route's annotations at runtime.

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from messages_integrations import WebhookReceiver, WebhookRouter

Headers = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Answer:
    """A response, whichever framework gave it."""

    status: int
    headers: dict[str, str]  # lowercase names
    body: bytes

    def json(self) -> dict[str, Any]:
        """The body, decoded."""
        result: dict[str, Any] = json.loads(self.body)
        return result


class Endpoint(Protocol):
    """One adapter serving one webhook endpoint."""

    name: str
    #: Whether the framework, not the library, answers other methods (FastAPI's routing).
    own_405: bool
    #: Whether the user's own route or view answers a verified delivery (refusals stay the
    #: library's): the FastAPI dependency and Django's decorator.
    own_success_body: bool

    def post(self, body: bytes, headers: Headers, method: str = "POST") -> Answer:
        """Send one request; return the answer."""
        ...

    def post_chunked(self, chunks: Sequence[bytes], headers: Headers) -> Answer:
        """POST a body in pieces without Content-Length, as a server passes on a chunked body."""
        ...


#: make(router, **options) -> Endpoint
Factory = Callable[..., Endpoint]


def _lower(pairs: Any) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in pairs}


async def _pieces(chunks: Sequence[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def _through_asgi(app: Any, path: str, body: Any, headers: Headers, method: str) -> Answer:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.request(method, path, content=body, headers=list(headers))

    response = asyncio.run(go())
    return Answer(response.status_code, _lower(response.headers.items()), response.content)


# --- the core, with no framework -------------------------------------------------------------


@dataclass
class CoreEndpoint:
    """``WebhookReceiver.handle`` (or ``ahandle``) called directly."""

    receiver: WebhookReceiver
    use_async: bool
    name: str = "core"
    own_405: bool = False
    own_success_body: bool = False

    def post(self, body: bytes, headers: Headers, method: str = "POST") -> Answer:
        if self.use_async:
            answer = asyncio.run(self.receiver.ahandle(method, list(headers), body))
        else:
            answer = self.receiver.handle(method, list(headers), body)
        return Answer(answer.status, _lower(answer.headers), answer.body)

    def post_chunked(self, chunks: Sequence[bytes], headers: Headers) -> Answer:
        if self.use_async:
            answer = asyncio.run(self.receiver.ahandle("POST", list(headers), _pieces(chunks)))
        else:
            answer = self.receiver.handle("POST", list(headers), iter(chunks))
        return Answer(answer.status, _lower(answer.headers), answer.body)


def core(use_async: bool) -> Factory:
    def make(router: WebhookRouter, **options: Any) -> Endpoint:
        return CoreEndpoint(
            WebhookReceiver(router=router, **options),
            use_async,
            name="core-async" if use_async else "core-sync",
        )

    return make


# --- ASGI: Starlette middleware, FastAPI dependency ------------------------------------------


@dataclass
class AsgiEndpoint:
    """An ASGI application called in process through httpx."""

    app: Any
    path: str
    name: str
    own_405: bool = False
    own_success_body: bool = False

    def post(self, body: bytes, headers: Headers, method: str = "POST") -> Answer:
        return _through_asgi(self.app, self.path, body, headers, method)

    def post_chunked(self, chunks: Sequence[bytes], headers: Headers) -> Answer:
        return _through_asgi(self.app, self.path, _pieces(chunks), headers, "POST")


def starlette_middleware(router: WebhookRouter, **options: Any) -> Endpoint:
    from starlette.applications import Starlette

    from messages_integrations.starlette import MessagesWebhookMiddleware

    app = Starlette()
    app.add_middleware(MessagesWebhookMiddleware, path="/webhooks", router=router, **options)
    return AsgiEndpoint(app, "/webhooks", "starlette")


def fastapi_dependency(router: WebhookRouter, **options: Any) -> Endpoint:
    from typing import Annotated

    from fastapi import Depends, FastAPI

    from messages_integrations import Event
    from messages_integrations.fastapi import MessagesWebhook

    verified = MessagesWebhook(router=router, **options)
    app = FastAPI()

    @app.post("/webhooks")
    async def receive(event: Annotated[Event[Any], Depends(verified)]) -> dict[str, Any]:
        return {"status": "ok", "event": event.event, "delivery_id": event.delivery_id}

    return AsgiEndpoint(app, "/webhooks", "fastapi", own_405=True, own_success_body=True)


# --- Flask -------------------------------------------------------------------------------------


@dataclass
class FlaskEndpoint:
    """A Flask app with the webhook blueprint, through Flask's test client."""

    app: Any
    name: str = "flask"
    own_405: bool = False
    own_success_body: bool = False

    def post(self, body: bytes, headers: Headers, method: str = "POST") -> Answer:
        with self.app.test_client() as client:
            response = client.open("/webhooks", method=method, data=body, headers=list(headers))
            return Answer(response.status_code, _lower(response.headers.items()), response.data)

    def post_chunked(self, chunks: Sequence[bytes], headers: Headers) -> Answer:
        from werkzeug.test import EnvironBuilder, run_wsgi_app

        pairs = [*headers, ("Transfer-Encoding", "chunked")]
        environ = EnvironBuilder(path="/webhooks", method="POST", headers=pairs).get_environ()
        # What a WSGI server passes on for a chunked body: no length, a stream that ends.
        environ.update({"wsgi.input": io.BytesIO(b"".join(chunks)), "wsgi.input_terminated": True})
        body, status, response_headers = run_wsgi_app(self.app, environ, buffered=True)
        code = int(status.split()[0])
        return Answer(code, _lower(response_headers.items()), b"".join(body))


def flask_blueprint(router: WebhookRouter, **options: Any) -> Endpoint:
    from flask import Flask

    from messages_integrations.flask import create_blueprint

    app = Flask("contract")
    app.config["TESTING"] = True
    app.register_blueprint(create_blueprint(router=router, **options), url_prefix="/webhooks")
    return FlaskEndpoint(app)


# --- Django ------------------------------------------------------------------------------------


@dataclass
class DjangoEndpoint:
    """A Django view routed at /webhooks, through Django's test client (CSRF enforced)."""

    view: Any
    use_async: bool
    name: str
    own_405: bool = False
    own_success_body: bool = False
    urls: list[Any] = field(default_factory=list)

    def post(self, body: bytes, headers: Headers, method: str = "POST") -> Answer:
        from asgiref.sync import async_to_sync
        from django.test import AsyncClient, Client, override_settings

        from tests.contract import django_urls

        django_urls.route(self.view)
        with override_settings(ROOT_URLCONF="tests.contract.django_urls"):
            return self._send(body, headers, method, async_to_sync, AsyncClient, Client)

    def post_chunked(self, chunks: Sequence[bytes], headers: Headers) -> Answer:
        from django.core.handlers.asgi import ASGIHandler
        from django.test import Client, override_settings

        from tests.contract import django_urls

        django_urls.route(self.view)
        with override_settings(ROOT_URLCONF="tests.contract.django_urls"):
            if self.use_async:
                return _through_asgi(ASGIHandler(), "/webhooks", _pieces(chunks), headers, "POST")
            # What gunicorn hands Django for a chunked body: no CONTENT_LENGTH, a stream that ends.
            environ: dict[str, Any] = {
                "wsgi.input": io.BytesIO(b"".join(chunks)),
                "wsgi.input_terminated": True,
            }
            response = Client(enforce_csrf_checks=True).generic(
                "POST", "/webhooks", b"", headers=dict(headers), **environ
            )
            return Answer(response.status_code, _lower(response.headers.items()), response.content)

    def _send(
        self,
        body: bytes,
        headers: Headers,
        method: str,
        async_to_sync: Any,
        AsyncClient: Any,
        Client: Any,
    ) -> Answer:
        # A WSGI or ASGI server joins repeated headers with commas before Django sees them.
        joined: dict[str, str] = {}
        for name, value in headers:
            joined[name] = f"{joined[name]},{value}" if name in joined else value
        content_type = joined.pop("Content-Type", "application/json")
        if self.use_async:
            client: Any = AsyncClient(enforce_csrf_checks=True)

            async def go() -> Any:
                return await client.generic(method, "/webhooks", body, content_type, headers=joined)

            response = async_to_sync(go)()
        else:
            response = Client(enforce_csrf_checks=True).generic(
                method, "/webhooks", body, content_type, headers=joined
            )
        return Answer(response.status_code, _lower(response.headers.items()), response.content)


def django_view(use_async: bool) -> Factory:
    def make(router: WebhookRouter, **options: Any) -> Endpoint:
        from messages_integrations.django import AsyncMessagesWebhookView, MessagesWebhookView

        cls = AsyncMessagesWebhookView if use_async else MessagesWebhookView
        view = cls.as_view(router=router, **options)
        return DjangoEndpoint(view, use_async, "django-asgi" if use_async else "django-wsgi")

    return make


def django_decorator(router: WebhookRouter, **options: Any) -> Endpoint:
    from django.http import HttpRequest, JsonResponse

    from messages_integrations import Event
    from messages_integrations.django import messages_webhook

    @messages_webhook(router=router, **options)
    def view(request: HttpRequest, event: Event[Any]) -> JsonResponse:
        return JsonResponse({"status": "ok", "event": event.event})

    return DjangoEndpoint(view, False, "django-decorator", own_success_body=True)


FACTORIES: dict[str, Factory] = {
    "core-sync": core(False),
    "core-async": core(True),
    "starlette": starlette_middleware,
    "fastapi": fastapi_dependency,
    "flask": flask_blueprint,
    "django-wsgi": django_view(False),
    "django-asgi": django_view(True),
    "django-decorator": django_decorator,
}


def names() -> Iterator[str]:
    """The endpoints' names, for parametrization."""
    yield from FACTORIES
