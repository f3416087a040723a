"""Django: the webhook view at /webhooks, hand-written views at /bare, under WSGI and ASGI.

One module is settings, URLconf and both applications: ``django_app:wsgi`` for gunicorn,
``django_app:asgi`` for uvicorn (``BENCH_DJANGO_ASGI=1``: the async handler). The bare view is
sync under WSGI and async under ASGI, the natural choice for each; so is the library's view:
``webhook_view`` under WSGI, ``async_webhook_view`` under ASGI.
"""

from __future__ import annotations

import os

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path
from shared import OK, SECRET, UNAUTHORIZED, async_router, floor, handle_bare, sync_router

ASGI = os.environ.get("BENCH_DJANGO_ASGI") == "1"

settings.configure(
    DEBUG=False,
    SECRET_KEY="benchmark-only",
    ALLOWED_HOSTS=["127.0.0.1"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=["messages_integrations.django"],
    DATABASES={},
    MESSAGES_WEBHOOK_SECRET=SECRET,
    MESSAGES_WEBHOOK_ROUTER=async_router if ASGI else sync_router,
)
django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402 - after settings
from django.core.wsgi import get_wsgi_application  # noqa: E402

from messages_integrations.django import async_webhook_view, webhook_view  # noqa: E402


def _answer(request: HttpRequest) -> HttpResponse:
    document = floor(request.headers, request.body)
    if document is None:
        return HttpResponse(UNAUTHORIZED, status=401, content_type="application/json")
    handle_bare(document)
    return HttpResponse(OK, content_type="application/json")


def bare_sync(request: HttpRequest) -> HttpResponse:
    """The floor's work by hand, as a sync view (WSGI)."""
    return _answer(request)


async def bare_async(request: HttpRequest) -> HttpResponse:
    """The floor's work by hand, as an async view (ASGI)."""
    return _answer(request)


urlpatterns = [
    path("webhooks", async_webhook_view if ASGI else webhook_view),
    path("bare", bare_sync),
    path("bare-async", bare_async),
]

wsgi = get_wsgi_application()
asgi = get_asgi_application()
