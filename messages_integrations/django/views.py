"""The webhook views: ``webhook_view``, ``MessagesWebhookView`` and ``@messages_webhook``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, overload

from asgiref.sync import iscoroutinefunction
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from messages_integrations import DeliveryStore, Event, WebhookResponse, WebhookRouter
from messages_integrations._handling import BodySource
from messages_integrations._signing import SecretsInput

from .conf import UNSET, Endpoint, Unset
from .signals import adispatch, combined, dispatch

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
    response = HttpResponse(answer.body, status=answer.status)
    for name, value in answer.headers:
        response[name] = value
    return response


def _exempt(view: Callable[P, Any]) -> Callable[P, Any]:
    # Deliveries carry a signature, not a CSRF token or a session.
    return login_not_required(csrf_exempt(view))


class MessagesWebhookView(View):
    """A webhook endpoint; ``as_view(secret=..., router=...)`` overrides the settings."""

    secret: SecretsInput | None = None
    router: WebhookRouter | None = None
    tolerance: float | Unset | None = UNSET
    max_body_size: int | None = None
    store: DeliveryStore | None = None
    _endpoint: Endpoint = Endpoint()

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        """The view function, exempt from CSRF checks and from ``LoginRequiredMiddleware``."""
        names = ("secret", "router", "tolerance", "max_body_size", "store")
        options = {name: initkwargs.get(name, getattr(cls, name)) for name in names}
        # One Endpoint per as_view() call: its store outlives the per-request view instances.
        return _exempt(super().as_view(**initkwargs, _endpoint=Endpoint(**options)))

    # A sync view: under WSGI an async one would start an event loop for every request (about
    # 1 ms); under ASGI Django runs this in its thread for sync code, off the event loop, and
    # async handlers are still awaited on the loop.
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Answer one request as the HTTP table says; handlers run before the answer."""
        receiver = self._endpoint.receiver()
        accepted = receiver.receive(request.method or "", request.headers, _body(request))
        if isinstance(accepted, WebhookResponse):
            return _response(accepted)
        errors = dispatch(receiver, accepted.event, request)
        return _response(receiver.finish(accepted, combined(errors)))

    # Every method reaches the core, which answers all but POST with a JSON 405 and Allow: POST.
    dispatch = post


class AsyncMessagesWebhookView(MessagesWebhookView):
    """The same endpoint as an async view, for ASGI deployments: no thread hop per request."""

    async def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:  # type: ignore[override]
        """Answer one request; sync handlers run in a worker thread, async ones on the loop."""
        receiver = self._endpoint.receiver()
        accepted = await receiver.areceive(request.method or "", request.headers, _body(request))
        if isinstance(accepted, WebhookResponse):
            return _response(accepted)
        errors = await adispatch(receiver, accepted.event, request)
        return _response(await receiver.afinish(accepted, combined(errors)))

    dispatch = post  # type: ignore[assignment]


#: The ready view: ``path("webhooks/messages", webhook_view)``, configured by the settings.
webhook_view = MessagesWebhookView.as_view()
#: The same as an async view, the faster choice under ASGI (``webhook_view`` is under WSGI).
async_webhook_view = AsyncMessagesWebhookView.as_view()


class ViewFailedError(Exception):
    """A ``@messages_webhook`` view answered 5xx: the delivery is left for a retry."""


def _outcome(
    errors: list[Exception], response: HttpResponseBase | None
) -> tuple[Exception | None, Callable[[WebhookResponse], HttpResponseBase]]:
    """What to pass to ``finish``, and how to turn its answer into the one to send."""
    if errors or response is None:
        return combined(errors), _response
    if response.status_code >= 500:
        return ViewFailedError(f"the view answered {response.status_code}"), lambda _: response
    # A store failure while marking the delivery done is the core's 500; else the view's answer.
    return None, lambda answer: response if answer.status == 200 else _response(answer)


def _sync_wrapper(endpoint: Endpoint, view: SyncView[P]) -> SyncWrapped[P]:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        receiver = endpoint.receiver()
        accepted = receiver.receive(request.method or "", request.headers, _body(request))
        if isinstance(accepted, WebhookResponse):
            return _response(accepted)
        errors = dispatch(receiver, accepted.event, request)
        response = None
        try:
            response = view(request, accepted.event, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - logged by the core, answered 500
            errors.append(exc)
        error, convert = _outcome(errors, response)
        return convert(receiver.finish(accepted, error))

    return wrapper


def _async_wrapper(endpoint: Endpoint, view: AsyncView[P]) -> AsyncWrapped[P]:
    @functools.wraps(view)
    async def wrapper(
        request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs
    ) -> HttpResponseBase:
        receiver = endpoint.receiver()
        accepted = await receiver.areceive(request.method or "", request.headers, _body(request))
        if isinstance(accepted, WebhookResponse):
            return _response(accepted)
        errors = await adispatch(receiver, accepted.event, request)
        response = None
        try:
            response = await view(request, accepted.event, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        error, convert = _outcome(errors, response)
        return convert(await receiver.afinish(accepted, error))

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
def messages_webhook(
    *,
    secret: SecretsInput | None = None,
    router: WebhookRouter | None = None,
    tolerance: float | Unset | None = UNSET,
    max_body_size: int | None = None,
    store: DeliveryStore | None = None,
) -> WebhookDecorator: ...
def messages_webhook(
    view: Any = None,
    /,
    *,
    secret: SecretsInput | None = None,
    router: WebhookRouter | None = None,
    tolerance: float | Unset | None = UNSET,
    max_body_size: int | None = None,
    store: DeliveryStore | None = None,
) -> Any:
    """Turn ``view(request, event, *args, **kwargs)`` into a webhook endpoint, sync or async.

    Use it bare (``@messages_webhook``) or with options (``@messages_webhook(secret=...)``).
    The view runs only for a verified delivery not handled before, after the router's handlers
    and ``webhook_received``; its response is sent. Refusals never call it. If it raises or
    answers 5xx, the delivery is not marked handled, so the sender's retry calls it again.
    """
    endpoint = Endpoint(
        secret=secret, router=router, tolerance=tolerance, max_body_size=max_body_size, store=store
    )

    def decorate(view: Any) -> Any:
        if iscoroutinefunction(view):
            return _exempt(_async_wrapper(endpoint, view))
        return _exempt(_sync_wrapper(endpoint, view))

    return decorate if view is None else decorate(view)
