"""The endpoints under test, each with the recorders that show what its handlers saw."""

from __future__ import annotations

import threading
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from messages_integrations import Event, WebhookRouter
from messages_integrations.django import (
    MessagesWebhookView,
    async_webhook_view,
    messages_webhook,
    webhook_view,
)
from messages_integrations.testing import Recorder

LINE_B_SECRET = "whsec_line_b"
DECORATED_SECRET = "whsec_decorated"

line_b_router = WebhookRouter()
line_b_seen = Recorder()
line_b_router.on("*")(line_b_seen)
handler_threads: list[int] = []


@line_b_router.on("*")
def note_thread(event: Event[Any]) -> None:
    handler_threads.append(threading.get_ident())


# The decorated views: what they were called with, in order with the router's handlers.
calls: list[tuple[str, str, dict[str, Any]]] = []
decorated_router = WebhookRouter()


@decorated_router.on("*")
def note_handler(event: Event[Any]) -> None:
    calls.append(("handler", event.event, {}))


def _answer(
    kind: str, request: HttpRequest, event: Event[Any], kwargs: dict[str, Any]
) -> HttpResponse:
    calls.append((kind, event.event, kwargs))
    outcome = request.GET.get("outcome")
    if outcome == "raise":
        raise ValueError("view exploded near sensitive-detail-5678")
    if outcome == "unavailable":
        return JsonResponse({"view": kind, "retry": True}, status=503)
    return JsonResponse({"view": kind, "event": event.event, "kwargs": kwargs}, status=202)


@messages_webhook
def bare_sync_view(request: HttpRequest, event: Event[Any], tag: str) -> HttpResponse:
    return _answer("bare-sync", request, event, {"tag": tag})


@messages_webhook(router=decorated_router)
def sync_view(request: HttpRequest, event: Event[Any], tag: str) -> HttpResponse:
    return _answer("sync", request, event, {"tag": tag})


@messages_webhook(router=decorated_router)
async def async_view(request: HttpRequest, event: Event[Any], tag: str) -> HttpResponse:
    return _answer("async", request, event, {"tag": tag})


@messages_webhook(
    secret=DECORATED_SECRET, router=decorated_router, tolerance=None, max_body_size=4096
)
async def options_view(request: HttpRequest, event: Event[Any]) -> HttpResponse:
    return _answer("options", request, event, {})


def needs_login(request: HttpRequest) -> HttpResponse:
    return HttpResponse("private")


@login_not_required
def needs_csrf_token(request: HttpRequest) -> HttpResponse:
    return HttpResponse("posted")


urlpatterns = [
    path("webhooks/messages", webhook_view),
    path("webhooks/async", async_webhook_view),
    path(
        "webhooks/line-b", MessagesWebhookView.as_view(secret=LINE_B_SECRET, router=line_b_router)
    ),
    path("decorated/bare/<str:tag>", bare_sync_view),
    path("decorated/sync/<str:tag>", sync_view),
    path("decorated/async/<str:tag>", async_view),
    path("decorated/options", options_view),
    path("private", needs_login),
    path("form", needs_csrf_token),
]
