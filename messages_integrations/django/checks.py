"""System checks of the webhook settings (``manage.py check``, and at ``runserver`` start-up)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from messages_integrations import ConfigurationError, DeliveryStore, WebhookRouter, resolve_secret
from messages_integrations._config import coerce_max_body_size, coerce_tolerance

from .conf import (
    MAX_BODY_SIZE,
    ROUTER,
    SECRET,
    STORE,
    TOLERANCE,
    configured,
    secret_setting,
)

__all__ = ["check_settings"]

_SECRET_HINT = (
    f"Set {SECRET} in your settings (a string, or a list for several lines or a rotation), or "
    f"in the environment (comma-separated for several). If every webhook view is given "
    f"secret=..., add 'messages_integrations.E001' to SILENCED_SYSTEM_CHECKS."
)


def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Report a missing secret (E001), an unusable router or store (E002, E003), bad numbers,
    a store on the database cache (W003)."""
    return [
        *_secret(),
        *_number(TOLERANCE, coerce_tolerance, "300 seconds", "W001"),
        *_number(MAX_BODY_SIZE, coerce_max_body_size, "1048576 bytes (1 MiB)", "W002"),
        *_object(ROUTER, WebhookRouter, "E002"),
        *_object(STORE, DeliveryStore, "E003"),
        *_store_on_database_cache(),
    ]


def _secret() -> list[CheckMessage]:
    try:
        resolve_secret(None, secret_setting(), where="Django settings")
    except ConfigurationError as exc:
        return [Error(str(exc), hint=_SECRET_HINT, id="messages_integrations.E001")]
    return []


def _number(
    name: str, coerce: Callable[[Any], object], default: str, code: str
) -> list[CheckMessage]:
    if not hasattr(settings, name):
        return []
    try:
        coerce(getattr(settings, name))
    except ConfigurationError as exc:
        why = str(exc)
    else:
        return []
    return [
        Warning(
            f"{why}; the default of {default} is used instead.",
            hint=f"Set {name} to a number, or remove it.",
            id=f"messages_integrations.{code}",
        )
    ]


def _object(name: str, kind: type[Any], code: str) -> list[CheckMessage]:
    try:
        configured(name, kind)
    except (ImportError, TypeError) as exc:
        return [
            Error(
                f"{name} is not usable: {exc}",
                hint=f"Set {name} to a {kind.__name__}, or to the dotted path of one.",
                id=f"messages_integrations.{code}",
            )
        ]
    return []


def _store_on_database_cache() -> list[CheckMessage]:
    from django.core.cache.backends.db import DatabaseCache

    from messages_integrations.stores import DjangoCacheDeliveryStore

    try:
        store = configured(STORE, DeliveryStore)
        on_database = isinstance(store, DjangoCacheDeliveryStore) and issubclass(
            store.backend, DatabaseCache
        )
    except (ImportError, TypeError, ValueError, ConfigurationError):
        return []  # E003, or the store's own error, says what is wrong
    if not on_database:
        return []
    return [
        Warning(
            f"{STORE} is a DjangoCacheDeliveryStore on the database cache {store.alias!r}, whose "
            f"add() is not atomic for an expired key: two copies of a delivery can both run.",
            hint=f"Point {STORE} at a Redis or Memcached cache, or at redis://...",
            id="messages_integrations.W003",
        )
    ]
