"""The webhook, and a page showing what the handlers received."""

from django.urls import path
from inbox.views import metrics, received

from messages_integrations.django import webhook_view

urlpatterns = [
    path("webhooks/messages", webhook_view),
    path("received", received),
    path("metrics", metrics),
]
