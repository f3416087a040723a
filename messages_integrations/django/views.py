"""The webhook views: ``webhook_view``, ``MessagesWebhookView`` and ``@messages_webhook``."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, Unpack, overload

from asgiref.sync import iscoroutinefunction
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from messages_integrations import ConfigurationError, Event, WebhookResponse
from messages_integrations._config import OPTION_NAMES, EndpointOptions
from messages_integrations._handling import (
    BodySource,
    Delivery,
    Refused,
    environ_headers,
    not_configured,
)

from .conf import Endpoint
from .signals import asend, send

__all__ = [
    "AsyncMessagesWebhookView",
    "MessagesWebhookView",
    "async_webhook_view",
    "messages_webhook",
    "webhook_view",
]

P = ParamSpec("P")
SyncView = Callable[Concatenate[HttpRequest, Event[Any], P], HttpResponseBase]
AsyncView = Callable[Concatenate[HttpRequest, Event[Any], P], Coroutine[Any, Any, HttpResponseBase]]
SyncWrapped = Callable[Concatenate[HttpRequest, P], HttpResponseBase]
AsyncWrapped = Callable[Concatenate[HttpRequest, P], Coroutine[Any, Any, HttpResponseBase]]
#: What runs inside an accepted delivery: returns the view's own response, or None.
Work = Callable[[Delivery, Event[Any]], HttpResponseBase | None]
AsyncWork = Callable[[Delivery, Event[Any]], Awaitable[HttpResponseBase | None]]


def _body(request: HttpRequest) -> BodySource:
    environ: dict[str, Any] | None = getattr(request, "environ", None)
    if environ and not environ.get("CONTENT_LENGTH") and environ.get("wsgi.input_terminated"):
        # Without Content-Length (a chunked body) Django's WSGI request reads nothing; a server
        # that sets wsgi.input_terminated (gunicorn) ends its own stream at the body's end.
        return environ["wsgi.input"]  # type: ignore[no-any-return]
    # Read as a stream, never request.body: the core stops one byte past max_body_size, before
    # DATA_UPLOAD_MAX_MEMORY_SIZE could refuse a body this endpoint accepts.
    return request


def _response(answer: WebhookResponse) -> HttpResponse:
    # answer.close_connection is left to the server: a WSGI app may not send hop-by-hop
    # headers, and Django's ASGI handler has read the whole body before any view runs.
    return HttpResponse(answer.body, status=answer.status, headers=dict(answer.headers))


#: The attribute naming a webhook view's Endpoint (read by ``messages_integrations.django.asgi``).
ENDPOINT_ATTRIBUTE = "messages_webhook_endpoint"


def _exempt(view: Callable[P, Any], endpoint: Endpoint) -> Callable[P, Any]:
    # Deliveries carry a signature, not a CSRF token or a session.
    exempt = login_not_required(csrf_exempt(view))
    setattr(exempt, ENDPOINT_ATTRIBUTE, endpoint)
    return exempt


class _ViewFailedError(Exception):
    """A ``@messages_webhook`` view answered 5xx: its answer is sent, the delivery is retried."""

    def __init__(self, response: HttpResponseBase) -> None:
        super().__init__(f"the view answered {response.status_code}")
        self.response = response


def _start(endpoint: Endpoint, request: HttpRequest, body: Any) -> Delivery | HttpResponseBase:
    try:
        receiver = endpoint.receiver()
    except ConfigurationError as exc:
        return _response(not_configured(exc, request.headers))
    # From request.META: request.headers would convert every header's name first.
    return receiver.accept(request.method or "", environ_headers(request.META), body)


def _after(delivery: Delivery, reply: HttpResponseBase | None) -> HttpResponseBase:
    assert delivery.response is not None
    # A store failure while marking the delivery done is the core's answer; else the view's.
    if reply is not None and delivery.response.status < 300:
        return reply
    return _response(delivery.response)


def _failed(delivery: Delivery, exc: Exception) -> HttpResponseBase:
    if isinstance(exc, _ViewFailedError):
        return exc.response
    assert delivery.response is not None
    return _response(delivery.response)


def serve(endpoint: Endpoint, request: HttpRequest, work: Work) -> HttpResponseBase:
    """Answer one request, running ``work`` inside the accepted delivery (sync)."""
    delivery = _start(endpoint, request, _body(request))
    if not isinstance(delivery, Delivery):
        return delivery
    try:
        with delivery as event:
            reply = work(delivery, event)
    except Refused as refused:
        return _response(refused.response)
    except Exception as exc:  # noqa: BLE001 - logged and answered 500 by the delivery
        return _failed(delivery, exc)
    return _after(delivery, reply)


async def aserve(endpoint: Endpoint, request: HttpRequest, work: AsyncWork) -> HttpResponseBase:
    """Answer one request, running ``work`` inside the accepted delivery (async)."""
    delivery = _start(endpoint, request, _body(request))
    if not isinstance(delivery, Delivery):
        return delivery
    try:
        async with delivery as event:
            reply = await work(delivery, event)
    except Refused as refused:
        return _response(refused.response)
    except Exception as exc:  # noqa: BLE001
        return _failed(delivery, exc)
    return _after(delivery, reply)


def _handlers(request: HttpRequest) -> Work:
    def work(delivery: Delivery, event: Event[Any]) -> None:
        try:
            delivery.dispatch()
        finally:  # the signal's receivers run even when a handler failed
            send(event, request)

    return work


def _ahandlers(request: HttpRequest) -> AsyncWork:
    async def work(delivery: Delivery, event: Event[Any]) -> None:
        try:
            await delivery.adispatch()
        finally:
            await asend(event, request)

    return work


class MessagesWebhookView(View):
    """A webhook endpoint; ``as_view(secret=..., router=...)`` overrides the settings."""

    _endpoint: Endpoint = Endpoint()

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        """The view function, exempt from CSRF checks and from ``LoginRequiredMiddleware``."""
        options = {name: initkwargs.pop(name) for name in list(initkwargs) if name in OPTION_NAMES}
        # One Endpoint per as_view() call: its store outlives the per-request view instances.
        endpoint = Endpoint(**options)
        return _exempt(super().as_view(**initkwargs, _endpoint=endpoint), endpoint)

    # A sync view: under WSGI an async one would start an event loop for every request (about
    # 1 ms); under ASGI Django runs this in its thread for sync code, off the event loop, and
    # async handlers are still awaited on the loop.
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Answer one request as the HTTP table says; handlers run before the answer."""
        return serve(self._endpoint, request, _handlers(request))

    # Every method reaches the core, which answers all but POST with a JSON 405 and Allow: POST.
    dispatch = post


class AsyncMessagesWebhookView(MessagesWebhookView):
    """The same endpoint as an async view, for ASGI deployments: no thread hop per request."""

    async def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        """Answer one request; sync handlers run in a worker thread, async ones on the loop."""
        return await aserve(self._endpoint, request, _ahandlers(request))

    dispatch = post  # type: ignore[assignment]


#: The ready view: ``path("webhooks/messages", webhook_view)``, configured by the settings.
webhook_view = MessagesWebhookView.as_view()
#: The same as an async view, the faster choice under ASGI (``webhook_view`` is under WSGI).
async_webhook_view = AsyncMessagesWebhookView.as_view()


def _sync_wrapper(endpoint: Endpoint, view: SyncView[P]) -> SyncWrapped[P]:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        handlers = _handlers(request)

        def work(delivery: Delivery, event: Event[Any]) -> HttpResponseBase:
            handlers(delivery, event)
            response = view(request, event, *args, **kwargs)
            if response.status_code >= 500:
                raise _ViewFailedError(response)
            return response

        return serve(endpoint, request, work)

    return wrapper


def _async_wrapper(endpoint: Endpoint, view: AsyncView[P]) -> AsyncWrapped[P]:
    @functools.wraps(view)
    async def wrapper(
        request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs
    ) -> HttpResponseBase:
        handlers = _ahandlers(request)

        async def work(delivery: Delivery, event: Event[Any]) -> HttpResponseBase:
            await handlers(delivery, event)
            response = await view(request, event, *args, **kwargs)
            if response.status_code >= 500:
                raise _ViewFailedError(response)
            return response

        return await aserve(endpoint, request, work)

    return wrapper


class WebhookDecorator(Protocol):
    """What ``messages_webhook(...)`` returns: it decorates a sync or an ``async`` view."""

    @overload
    def __call__(self, view: AsyncView[P], /) -> AsyncWrapped[P]: ...
    @overload
    def __call__(self, view: SyncView[P], /) -> SyncWrapped[P]: ...


@overload
def messages_webhook(view: AsyncView[P], /) -> AsyncWrapped[P]: ...
@overload
def messages_webhook(view: SyncView[P], /) -> SyncWrapped[P]: ...
@overload
def messages_webhook(**options: Unpack[EndpointOptions]) -> WebhookDecorator: ...
def messages_webhook(view: Any = None, /, **options: Any) -> Any:
    """Turn ``view(request, event, *args, **kwargs)`` into a webhook endpoint, sync or async.

    Use it bare (``@messages_webhook``) or with options (``@messages_webhook(secret=...)``).
    The view runs only for a verified delivery not handled before, after the router's handlers
    and ``webhook_received``; its response is sent. Refusals never call it. If it raises or
    answers 5xx, the delivery is not marked handled, so the sender's retry calls it again.
    """
    endpoint = Endpoint(**options)

    def decorate(view: Any) -> Any:
        if iscoroutinefunction(view):
            return _exempt(_async_wrapper(endpoint, view), endpoint)
        return _exempt(_sync_wrapper(endpoint, view), endpoint)

    return decorate if view is None else decorate(view)
