"""The sync view (gunicorn), the async view (uvicorn), a decorated view, a view with a bad option,
and /metrics."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path

from messages_integrations import Event, prometheus
from messages_integrations.django import async_webhook_view, messages_webhook, webhook_view
from messages_integrations.django.views import MessagesWebhookView


def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus figures of this process."""
    body, content_type = prometheus.exposition()
    return HttpResponse(body, content_type=content_type)


@messages_webhook
def inbox(request: HttpRequest, event: Event[Any]) -> HttpResponse:
    """A view of the project's own, given the verified event."""
    return HttpResponse(status=204)


urlpatterns = [
    path("webhooks/messages", webhook_view),
    path("webhooks/async", async_webhook_view),
    # max_body_size=0 is refused when the endpoint is first used: not_configured.
    path("webhooks/broken", MessagesWebhookView.as_view(max_body_size=0)),
    path("inbox", inbox),
    path("metrics", metrics),
]
