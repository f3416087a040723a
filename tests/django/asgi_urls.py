"""The URLconf behind the guarded ASGI application of test_asgi_application."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from messages_integrations import Event
from messages_integrations.django import (
    MessagesWebhookView,
    async_webhook_view,
    messages_webhook,
    webhook_view,
)

#: Every body the echo view received, in full.
echoed: list[bytes] = []


@login_not_required
@csrf_exempt
def echo(request: HttpRequest) -> HttpResponse:
    """Not a webhook: answers with the body it was given."""
    echoed.append(request.body)
    return HttpResponse(request.body, headers={"x-echo-method": request.method or ""})


@messages_webhook(max_body_size=4096)
async def small_view(request: HttpRequest, event: Event[Any]) -> HttpResponse:
    """A decorated webhook view with its own, smaller limit."""
    return JsonResponse({"view": "small", "event": event.event}, status=202)


urlpatterns = [
    path("webhooks/messages", webhook_view),
    path("webhooks/async", async_webhook_view),
    path("webhooks/line/<str:line>", MessagesWebhookView.as_view(max_body_size=2048)),
    path("webhooks/small", small_view),
    path("echo", echo),
]
