"""The Django app ``messages_integrations.django``: system checks and handler autodiscovery."""

from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.utils.module_loading import autodiscover_modules

from messages_integrations._config import UNSET
from messages_integrations._startup import enable_exporters

from .checks import check_deploy, check_settings

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
        checks.register(check_deploy, deploy=True)
        autodiscover_modules(HANDLERS_MODULE)
        enable_exporters(lambda name: getattr(settings, name, UNSET))
