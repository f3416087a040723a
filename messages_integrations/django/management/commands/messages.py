"""``manage.py messages``: the ``messages-integrations`` commands with this project's settings.

``manage.py messages webhooks create --from +1555… --url https://…/webhooks/messages`` reads
``MESSAGES_API_KEY`` (and ``MESSAGES_API_BASE_URL``) from the settings, and ``send``, ``sign`` and
``verify`` read ``MESSAGES_WEBHOOK_SECRET``; the environment still applies where they are unset.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from messages_integrations import cli


class Command(BaseCommand):
    """Send test deliveries, check signatures and manage webhooks with the project's settings."""

    help = (
        "Messages.dev webhooks with this project's settings: send, sign, verify, "
        "webhooks create|list|delete. 'manage.py messages -- --help' lists them."
    )
    requires_system_checks: list[str] = []  # noqa: RUF012 - Django's own attribute type

    def add_arguments(self, parser: CommandParser) -> None:
        """Everything after ``messages`` goes to the command line tool untouched."""
        parser.add_argument("arguments", nargs=argparse.REMAINDER)

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the command; a failure exits with its code."""
        argv = [a for a in options["arguments"] if a != "--"] or ["--help"]
        defaults = cli.settings_defaults(lambda name: getattr(settings, name, None))
        code = cli.main(argv, prog="manage.py messages", defaults=defaults)
        if code:
            raise CommandError(f"messages {argv[0]} failed (exit {code})", returncode=code)
