"""The sync view (gunicorn), the async view (uvicorn), a view with a bad option, and /metrics."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from messages_integrations import prometheus
from messages_integrations.django import async_webhook_view, webhook_view
from messages_integrations.django.views import MessagesWebhookView


def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus figures of this process."""
    body, content_type = prometheus.exposition()
    return HttpResponse(body, content_type=content_type)


urlpatterns = [
    path("webhooks/messages", webhook_view),
    path("webhooks/async", async_webhook_view),
    # max_body_size=0 is refused when the endpoint is first used: not_configured.
    path("webhooks/broken", MessagesWebhookView.as_view(max_body_size=0)),
    path("metrics", metrics),
]
