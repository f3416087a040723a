"""System checks of the webhook settings (``manage.py check``, and at ``runserver`` start-up)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Warning

from messages_integrations import ConfigurationError, InMemoryDeliveryStore, resolve_secret
from messages_integrations._config import (
    QUEUE_SETTING,
    SECRET_SETTING,
    STORE_SETTING,
    UNSET,
    Options,
)

from .conf import WHERE, lookup, resolve

__all__ = ["check_deploy", "check_settings"]

_SECRET_HINT = (
    f"Set {SECRET_SETTING} in your settings (a string, or a list for several lines or a rotation), "
    f"or in the environment (comma-separated for several). If every webhook view is given "
    f"secret=..., add 'messages_integrations.E001' to SILENCED_SYSTEM_CHECKS."
)


def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report a missing secret (E001), any unusable setting (E002), naming it, background handlers
    without a task queue (E003), and a store on the database cache (W003)."""
    setting = lookup(SECRET_SETTING)
    try:
        resolve_secret(None, None if setting is UNSET else setting, where=WHERE)
    except ConfigurationError as exc:
        return [Error(str(exc), hint=_SECRET_HINT, id="messages_integrations.E001")]
    try:
        options = resolve()
    except ConfigurationError as exc:
        return [
            Error(
                str(exc),
                hint="Fix or remove that setting: the webhook views answer 500 until then.",
                id="messages_integrations.E002",
            )
        ]
    return _queue_missing(options) + _store_on_database_cache(options)


def _queue_missing(options: Options) -> list[CheckMessage]:
    if options.queue is not None or not options.router.needs_queue():
        return []
    return [
        Error(
            "Background handlers (@on(..., background=True)) are registered, but no task queue "
            "is configured to run them: the webhook views answer 500 until one is.",
            hint=f"Set {QUEUE_SETTING} to a queue, such as 'yourproject.webhooks:webhook_queue' "
            f"holding DjangoTasksQueue() (see docs/background.md), or drop background=True.",
            id="messages_integrations.E003",
        )
    ]


def _store_on_database_cache(options: Options) -> list[CheckMessage]:
    from django.core.cache.backends.db import DatabaseCache

    from messages_integrations.stores import DjangoCacheDeliveryStore

    store = options.store
    if not (
        isinstance(store, DjangoCacheDeliveryStore) and issubclass(store.backend, DatabaseCache)
    ):
        return []
    return [
        Warning(
            f"{STORE_SETTING} is a DjangoCacheDeliveryStore on the database cache {store.alias!r}, "
            f"whose add() is not atomic for an expired key: two copies of a delivery can both run.",
            hint=f"Point {STORE_SETTING} at a Redis or Memcached cache, or at redis://...",
            id="messages_integrations.W003",
        )
    ]


def check_deploy(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``check --deploy``: warn (W004) when delivery ids are kept in one process's memory."""
    try:
        options = resolve()
    except ConfigurationError:
        return []  # check_settings reports it
    if options.store is not None and not isinstance(options.store, InMemoryDeliveryStore):
        return []
    return [
        Warning(
            "Delivery ids are remembered in each process's memory: with several worker processes "
            "or machines, a retried delivery can be handled once per process.",
            hint="Set MESSAGES_WEBHOOK_STORE to a redis:// URL, or use a Redis or Memcached "
            "CACHES['default'] (shared through DjangoCacheDeliveryStore).",
            id="messages_integrations.W004",
        )
    ]
