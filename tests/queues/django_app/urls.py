"""The webhook of the Django Tasks end-to-end tests: the sync view (WSGI) and the async one."""

from __future__ import annotations

from django.urls import path

from messages_integrations.django import async_webhook_view, webhook_view

urlpatterns = [
    path("webhooks", webhook_view),
    path("webhooks/async", async_webhook_view),
]
