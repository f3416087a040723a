"""``manage.py messages``: the ``messages-integrations`` commands with this project's settings.

``manage.py messages check`` describes every webhook view of the URLconf: its secrets, store,
queue, whether Prometheus, OpenTelemetry and callbacks watch it, and its handlers.
``manage.py messages webhooks create --from +1555… --url https://…/webhooks/messages`` reads
``MESSAGES_API_KEY`` (and ``MESSAGES_API_BASE_URL``) from the settings, and ``send``, ``sign`` and
``verify`` read ``MESSAGES_WEBHOOK_SECRET``; the environment still applies where they are unset.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import URLPattern, URLResolver, get_resolver

from messages_integrations import ConfigurationError, cli
from messages_integrations._startup import describe
from messages_integrations.django.conf import Endpoint
from messages_integrations.django.views import ENDPOINT_ATTRIBUTE


def _webhook_views(patterns: list[Any], prefix: str = "/") -> Iterator[tuple[str, str, Endpoint]]:
    """Each routed webhook view: its path, its view's name, its endpoint."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _webhook_views(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            view = pattern.callback
            endpoint = getattr(view, ENDPOINT_ATTRIBUTE, None)
            if isinstance(endpoint, Endpoint):
                yield prefix + str(pattern.pattern), pattern.lookup_str, endpoint


class Command(BaseCommand):
    """Send test deliveries, check signatures and manage webhooks with the project's settings."""

    help = (
        "Messages.dev webhooks with this project's settings: check, send, sign, verify, "
        "webhooks create|list|delete. 'manage.py messages -- --help' lists them."
    )
    requires_system_checks: list[str] = []  # noqa: RUF012 - Django's own attribute type

    def add_arguments(self, parser: CommandParser) -> None:
        """Everything after ``messages`` goes to the command line tool untouched."""
        parser.add_argument("arguments", nargs=argparse.REMAINDER)

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the command; a failure exits with its code."""
        argv = [a for a in options["arguments"] if a != "--"] or ["--help"]
        if argv == ["check"]:
            self.check_endpoints()
            return
        defaults = cli.settings_defaults(lambda name: getattr(settings, name, None))
        code = cli.main(argv, prog="manage.py messages", defaults=defaults)
        if code:
            raise CommandError(f"messages {argv[0]} failed (exit {code})", returncode=code)

    def check_endpoints(self) -> None:
        """Describe each webhook view of the URLconf; fail when one cannot work."""
        found = list(_webhook_views(get_resolver().url_patterns))
        if not found:
            raise CommandError("no Messages.dev webhook view is routed in ROOT_URLCONF")
        failed = False
        for path, view, endpoint in found:
            self.stdout.write(f"{path}: {view}")
            try:
                receiver = endpoint.receiver()
            except ConfigurationError as exc:
                self.stderr.write(f"  error: {exc}")
                failed = True
                continue
            for line in describe(receiver):
                self.stdout.write(f"  {line}")
        if failed:
            raise CommandError("a webhook view is not configured", returncode=1)
