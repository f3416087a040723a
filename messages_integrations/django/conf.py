"""Django settings for the webhook views: each option is the view's argument, else a setting.

The secret's last resort is the environment variable ``MESSAGES_WEBHOOK_SECRET``. Settings:
``MESSAGES_WEBHOOK_SECRET`` (a string or a list), ``MESSAGES_WEBHOOK_TOLERANCE`` (seconds, ``None``
turns the replay check off), ``MESSAGES_WEBHOOK_MAX_BODY_SIZE`` (bytes),
``MESSAGES_WEBHOOK_ROUTER`` and ``MESSAGES_WEBHOOK_STORE`` (an object or its dotted path).
"""

from __future__ import annotations

import enum
from typing import Any, Final

from django.conf import settings
from django.utils.module_loading import import_string

from messages_integrations import (
    ConfigurationError,
    DeliveryStore,
    InMemoryDeliveryStore,
    WebhookReceiver,
    WebhookRouter,
    default_router,
    resolve_secret,
)
from messages_integrations._config import (
    MAX_BODY_SIZE_SETTING,
    ROUTER_SETTING,
    SECRET_SETTING,
    STORE_SETTING,
    TOLERANCE_SETTING,
    coerce_max_body_size,
    coerce_tolerance,
)
from messages_integrations._handling import DEFAULT_MAX_BODY_SIZE, DEFAULT_TOLERANCE
from messages_integrations._signing import SecretsInput

__all__ = ["UNSET", "Endpoint", "Unset"]

SECRET: Final = SECRET_SETTING
TOLERANCE: Final = TOLERANCE_SETTING
MAX_BODY_SIZE: Final = MAX_BODY_SIZE_SETTING
ROUTER: Final = ROUTER_SETTING
STORE: Final = STORE_SETTING


class Unset(enum.Enum):
    """The type of :data:`UNSET`."""

    UNSET = "UNSET"


#: "Not given": ``tolerance=None`` already means "no replay check".
UNSET: Final = Unset.UNSET


def secret_setting() -> Any:
    """The raw value of ``MESSAGES_WEBHOOK_SECRET``, or ``None``."""
    return getattr(settings, SECRET, None)


def configured(name: str, kind: type[Any]) -> Any:
    """The object a setting names (given as itself or as a dotted path), or ``None`` if unset.

    Raises ``ImportError`` or ``TypeError`` when the setting is not a ``kind``.
    """
    value = getattr(settings, name, None)
    if isinstance(value, str):
        value = import_string(value)
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"{name} must be a {kind.__name__}, not {type(value).__name__}")
    return value


class Endpoint:
    """The options of one webhook endpoint, looked up in the settings at every request.

    An argument given here wins over the setting; settings are read per request so that
    ``override_settings`` and environment changes apply. Its own in-memory store is used
    unless a store is given or configured.
    """

    def __init__(
        self,
        *,
        secret: SecretsInput | None = None,
        router: WebhookRouter | None = None,
        tolerance: float | Unset | None = UNSET,
        max_body_size: int | None = None,
        store: DeliveryStore | None = None,
    ) -> None:
        self.secret = secret
        self.router = router
        self.tolerance = tolerance
        self.max_body_size = max_body_size
        self.store = store
        self._own_store = InMemoryDeliveryStore()

    def receiver(self) -> WebhookReceiver:
        """A receiver with the current settings; raises ``ConfigurationError`` without a secret."""
        return WebhookReceiver(
            secret=resolve_secret(self.secret, secret_setting(), where="Django settings"),
            router=self._router(),
            tolerance=self._tolerance(),
            max_body_size=self._max_body_size(),
            store=self._store(),
            # Under ASGI, sync handlers run in the request's own thread, where the ORM is safe.
            thread_sensitive=True,
        )

    def _tolerance(self) -> float | None:
        value = (
            getattr(settings, TOLERANCE, DEFAULT_TOLERANCE)
            if self.tolerance is UNSET
            else self.tolerance
        )
        try:
            return coerce_tolerance(value)
        except ConfigurationError:
            # A malformed setting falls back to the default; the system check warns about it.
            return DEFAULT_TOLERANCE

    def _max_body_size(self) -> int:
        if self.max_body_size is not None:
            return self.max_body_size
        try:
            return coerce_max_body_size(getattr(settings, MAX_BODY_SIZE, DEFAULT_MAX_BODY_SIZE))
        except ConfigurationError:
            return DEFAULT_MAX_BODY_SIZE

    def _router(self) -> WebhookRouter:
        if self.router is not None:
            return self.router
        router: WebhookRouter | None = configured(ROUTER, WebhookRouter)
        return default_router if router is None else router

    def _store(self) -> DeliveryStore:
        if self.store is not None:
            return self.store
        store: DeliveryStore | None = configured(STORE, DeliveryStore)
        return self._own_store if store is None else store
