"""The Django app ``messages_integrations.django``: system checks and handler autodiscovery."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.utils.module_loading import autodiscover_modules

from .checks import check_settings

__all__ = ["HANDLERS_MODULE", "MessagesIntegrationsConfig"]

#: Imported from every installed app at start-up, so that its ``@on`` handlers are registered.
HANDLERS_MODULE = "messages_webhooks"


class MessagesIntegrationsConfig(AppConfig):
    """Checks the webhook settings and imports each app's ``messages_webhooks`` module."""

    name = "messages_integrations.django"
    label = "messages_integrations"
    verbose_name = "Messages.dev webhooks"

    def ready(self) -> None:
        """Register the system checks, then import the handler modules."""
        checks.register(check_settings)
        autodiscover_modules(HANDLERS_MODULE)
