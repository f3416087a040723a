"""Receive Messages.dev webhooks in Django: a ready view, a class-based view and a decorator.

``path("webhooks/messages", webhook_view)`` serves the webhook with the settings and the ``@on``
handlers. Add ``"messages_integrations.django"`` to ``INSTALLED_APPS`` for system checks, the
``webhook_received`` signal's users, and the import of every app's ``messages_webhooks`` module.
"""

from .signals import webhook_received
from .views import (
    AsyncMessagesWebhookView,
    MessagesWebhookView,
    async_webhook_view,
    messages_webhook,
    webhook_view,
)

__all__ = [
    "AsyncMessagesWebhookView",
    "MessagesWebhookView",
    "async_webhook_view",
    "messages_webhook",
    "webhook_received",
    "webhook_view",
]
