"""Django settings for the webhook views, through the library's one settings resolver.

Each option is the view's argument, else the Django setting ``MESSAGES_WEBHOOK_<NAME>``, else the
environment variable of that name, else the default. With no store configured anywhere, a Redis or
Memcached ``caches["default"]`` is shared through :class:`DjangoCacheDeliveryStore`. A receiver
is built once per settings snapshot (again after ``override_settings`` or any setting change).
"""

from __future__ import annotations

import weakref
from typing import Any, Final

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver as signal_receiver

from messages_integrations import DeliveryStore, InMemoryDeliveryStore, WebhookReceiver
from messages_integrations._config import UNSET, Options, given, resolve_options
from messages_integrations._startup import announce

__all__ = ["WHERE", "Endpoint", "default_store", "lookup", "resolve"]

WHERE: Final = "Django settings (or the environment)"

#: Cache backends whose ``add`` is atomic across processes: safe to share delivery ids in.
SHARED_CACHE_BACKENDS: Final = (
    "django.core.cache.backends.redis.RedisCache",
    "django.core.cache.backends.memcached.PyMemcacheCache",
    "django.core.cache.backends.memcached.PyLibMCCache",
    "django_redis.cache.RedisCache",
)


def lookup(name: str) -> Any:
    """A Django setting, or UNSET."""
    return getattr(settings, name, UNSET)


def default_store() -> DeliveryStore | None:
    """``caches["default"]`` when it is a Redis or Memcached cache; else None (in-memory)."""
    backend = getattr(settings, "CACHES", {}).get("default", {}).get("BACKEND", "")
    if backend not in SHARED_CACHE_BACKENDS:
        return None
    from messages_integrations.stores import DjangoCacheDeliveryStore

    return DjangoCacheDeliveryStore("default")


def resolve(options: dict[str, Any] | None = None) -> Options:
    """Resolve the options of one endpoint; raises ConfigurationError naming a bad setting."""
    return resolve_options(
        given(options or {}), lookup, where=WHERE, defaults={"store": default_store}
    )


_ENDPOINTS: weakref.WeakSet[Endpoint] = weakref.WeakSet()


class Endpoint:
    """The options of one webhook view or decorator, and its receiver, built at first use.

    An argument given here wins over the settings. The receiver is rebuilt after a setting
    changes; its own in-memory store is kept, so duplicates are still caught across rebuilds.
    """

    def __init__(self, **options: Any) -> None:
        self.options = given(options)
        self.own_store = InMemoryDeliveryStore()
        self._receiver: WebhookReceiver | None = None
        _ENDPOINTS.add(self)

    def receiver(self) -> WebhookReceiver:
        """The receiver; raises ``ConfigurationError`` without a secret or with a bad setting."""
        receiver = self._receiver
        if receiver is None:
            receiver = WebhookReceiver.from_options(
                resolve(self.options),
                store=self.own_store,
                # Under ASGI, sync handlers run in the request's own thread, where the ORM is safe.
                thread_sensitive=True,
            )
            announce(receiver, "Django webhook view")
            self._receiver = receiver
        return receiver

    def forget(self) -> None:
        """Build the receiver again at the next request (the settings changed)."""
        self._receiver = None


@signal_receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("MESSAGES_WEBHOOK_") or setting == "CACHES":
        for endpoint in list(_ENDPOINTS):
            endpoint.forget()
