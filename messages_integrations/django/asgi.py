"""Django under ASGI with oversized webhook bodies refused as they arrive, not after.

Django's ASGI handler reads every request body to its end (into memory, then a temporary file)
before any view runs, so a view's own 413 comes only once the sender has finished. In
``asgi.py``, ``application = get_asgi_application()`` from this module instead of Django's
answers a POST to a webhook view whose body is over that view's limit with the library's JSON
413 as soon as the limit is passed, and hands every other request to Django untouched.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from django.conf import settings
from django.core.asgi import get_asgi_application as django_asgi_application
from django.urls import Resolver404, resolve

from messages_integrations._config import MAX_BODY_SIZE_SETTING, coerce_max_body_size
from messages_integrations._errors import ConfigurationError
from messages_integrations._handling import DEFAULT_MAX_BODY_SIZE, WebhookResponse, _error

from .views import ENDPOINT_ATTRIBUTE

__all__ = ["WebhookBodyGuard", "get_asgi_application", "guard"]

logger = logging.getLogger("messages_integrations")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: What guard() wraps: any ASGI application, Django's ASGIHandler (typed with dicts) included.
AnyASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

#: How far down a chain of decorators (``functools.wraps``'s ``__wrapped__``) a view is searched.
_MAX_WRAPPERS = 16


def get_asgi_application(
    *, paths: Iterable[str] | None = None, max_body_size: int | None = None
) -> WebhookBodyGuard:
    """Django's ASGI application, with oversized webhook bodies refused as they stream.

    A drop-in for ``django.core.asgi.get_asgi_application``; see :func:`guard` for the options.
    """
    return guard(django_asgi_application(), paths=paths, max_body_size=max_body_size)


def guard(
    application: AnyASGIApp, *, paths: Iterable[str] | None = None, max_body_size: int | None = None
) -> WebhookBodyGuard:
    """Wrap an ASGI application so that webhook bodies over the limit get a 413 as they arrive.

    Without ``paths``, each POST's path is resolved in the URLconf and guarded when it leads to
    one of this library's webhook views (``webhook_view``, ``MessagesWebhookView.as_view()``,
    ``@messages_webhook``), with that view's own ``max_body_size``. With ``paths`` (relative to
    the ASGI ``root_path``, as Django's routes are), exactly those are guarded. ``max_body_size``
    overrides every view's limit; otherwise ``MESSAGES_WEBHOOK_MAX_BODY_SIZE`` or 1 MiB applies.
    """
    return WebhookBodyGuard(application, paths=paths, max_body_size=max_body_size)


class WebhookBodyGuard:
    """An ASGI application that refuses oversized webhook bodies before the wrapped one reads them.

    A guarded POST declaring a ``Content-Length`` over the limit is answered at once, without
    reading the body; one sent without it (chunked) is read up to the limit, answered 413 on the
    first byte past it, and otherwise replayed to the wrapped application unchanged. Both
    refusals carry ``connection: close``, so the server drops the rest instead of reading it.
    Other requests, websockets and lifespan events reach the wrapped application untouched.
    """

    def __init__(
        self,
        app: AnyASGIApp,
        *,
        paths: Iterable[str] | None = None,
        max_body_size: int | None = None,
    ) -> None:
        if isinstance(paths, str):
            raise TypeError("paths must be a list of paths, not one string")
        self.app: ASGIApp = app
        self.paths = None if paths is None else frozenset(_absolute(path) for path in paths)
        self.max_body_size = (
            None
            if max_body_size is None
            else coerce_max_body_size(max_body_size, name="max_body_size")
        )

    def __repr__(self) -> str:
        where = "webhook views" if self.paths is None else ", ".join(sorted(self.paths))
        return f"<WebhookBodyGuard {where} of {self.app!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse an oversized webhook body, or pass the request on."""
        limit = self.limit_for(scope)
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None:
            if declared > limit:
                await _refuse(send, scope, limit)
                return
            # The server delivers no more than the declared length: nothing to count.
            await self.app(scope, receive, send)
            return
        chunks: deque[bytes] = deque()
        size = 0
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the sender is gone: nobody to answer
            body: bytes = message.get("body", b"")
            size += len(body)
            if size > limit:
                chunks.clear()  # the body's memory goes back before the answer is sent
                await _refuse(send, scope, limit)
                return
            if body:
                chunks.append(body)
            more_body = message.get("more_body", False)
        await self.app(scope, _Replay(chunks, receive), send)

    def limit_for(self, scope: Scope) -> int | None:
        """The body limit for this request, or ``None`` when it is not a guarded webhook POST."""
        if scope["type"] != "http" or scope.get("method") != "POST":
            return None
        path = _path_info(scope)
        if self.paths is not None:
            return self._limit(None) if path in self.paths else None
        try:
            endpoint = _route_endpoint(settings.ROOT_URLCONF, path)
        except Resolver404:
            return None  # not routed: Django answers 404
        except Exception:  # noqa: BLE001 - a broken URLconf is Django's to report, not ours
            return None
        if endpoint is None:
            return None
        try:
            return self._limit(endpoint.receiver().max_body_size)
        except ConfigurationError:
            return self._limit(None)  # the view answers 500 not_configured

    def _limit(self, view_limit: int | None) -> int:
        if self.max_body_size is not None:
            return self.max_body_size
        if view_limit is not None:
            return view_limit
        # Read per request, as the views do, so that override_settings applies.
        try:
            return coerce_max_body_size(
                getattr(settings, MAX_BODY_SIZE_SETTING, DEFAULT_MAX_BODY_SIZE)
            )
        except ConfigurationError:
            # The same fallback as the views'; the system check reports the bad setting.
            return DEFAULT_MAX_BODY_SIZE


class _Replay:
    """A ``receive`` that gives the buffered body first, then the server's own messages."""

    def __init__(self, chunks: deque[bytes], receive: Receive) -> None:
        self.chunks = chunks
        self.receive = receive
        self.replayed = False

    async def __call__(self) -> Message:
        if self.replayed:
            return await self.receive()
        # popleft: each chunk is freed as soon as the application has taken it.
        body = self.chunks.popleft() if self.chunks else b""
        self.replayed = not self.chunks
        return {"type": "http.request", "body": body, "more_body": not self.replayed}


def _absolute(path: str) -> str:
    if not isinstance(path, str) or not path.strip("/"):
        raise ValueError(f"each webhook path must be a non-empty path, not {path!r}")
    return path if path.startswith("/") else "/" + path


def _path_info(scope: Scope) -> str:
    # Django's own rule (ASGIRequest): the path less the script prefix, so both resolve alike.
    path: str = scope["path"]
    prefix: str = getattr(settings, "FORCE_SCRIPT_NAME", None) or scope.get("root_path", "") or ""
    return path.removeprefix(prefix) if prefix else path


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope["headers"]:
        if name.lower() == wanted:
            return bytes(value)
    return None


def _declared_length(scope: Scope) -> int | None:
    text = (_header(scope, b"content-length") or b"").strip()
    # A malformed length is the view's to refuse (400); servers usually refuse it first.
    return int(text) if text.isdigit() else None


def _wrapped_chain(view: Any) -> Iterable[Any]:
    for _ in range(_MAX_WRAPPERS):
        if view is None:
            return
        yield view
        view = getattr(view, "__wrapped__", None)


def _webhook_endpoint(view: Any) -> Any:
    """The Endpoint of ``view`` when it is one of this library's webhook views, else None."""
    for layer in _wrapped_chain(view):
        endpoint = getattr(layer, ENDPOINT_ATTRIBUTE, None)
        if endpoint is not None:
            return endpoint
    return None


@functools.lru_cache(maxsize=1024)
def _route_endpoint(urlconf: Any, path: str) -> Any:
    """:func:`_webhook_endpoint` of the view ``path`` resolves to; raises ``Resolver404``.

    Cached, as resolving costs more than the rest of the guard: a route's view never changes
    while its URLconf stays the same (``override_settings(ROOT_URLCONF=...)`` is a new key), and
    paths that resolve to nothing are not cached, so the cache holds routed paths only. The
    limit itself is read per request, from the endpoint's receiver (rebuilt on setting changes).
    """
    return _webhook_endpoint(resolve(path, urlconf).func)


def _too_large(scope: Scope, limit: int) -> WebhookResponse:
    delivery_id = (_header(scope, b"x-webhook-delivery-id") or b"(no id)").decode("latin-1")
    logger.info("refused delivery %s: body larger than %d bytes", delivery_id, limit)
    return _error(413, "payload_too_large", f"the body exceeds {limit} bytes", close=True)


async def _refuse(send: Send, scope: Scope, limit: int) -> None:
    answer = _too_large(scope, limit)
    headers = [
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.asgi_headers
    ]
    headers.append((b"content-length", str(len(answer.body)).encode("ascii")))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
