"""One settings resolver for every adapter: the argument, then the framework's setting, then the
environment, then the default. A bad value is a :class:`ConfigurationError` naming the option.

Adapters describe where their framework keeps settings (a ``lookup`` function) and call
:func:`resolve_options`; the immutable :class:`Options` they get back builds one receiver.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, TypedDict

from ._errors import ConfigurationError
from ._router import WebhookRouter, default_router
from ._signing import SecretsInput
from ._store import DeliveryStore

if TYPE_CHECKING:
    from ._background import TaskQueue

__all__ = [
    "DEDUP_TTL_SETTING",
    "DEFAULT_DEDUP_TTL",
    "DEFAULT_LEASE",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_TOLERANCE",
    "LEASE_SETTING",
    "MAX_BODY_SIZE_SETTING",
    "ON_STORE_ERROR_SETTING",
    "QUEUE_SETTING",
    "ROUTER_SETTING",
    "SECRET_SETTING",
    "STORE_SETTING",
    "TOLERANCE_SETTING",
    "UNSET",
    "EndpointOptions",
    "Options",
    "Unset",
    "coerce_max_body_size",
    "coerce_tolerance",
    "resolve_options",
    "resolve_secret",
    "secret_from_environment",
]

logger = logging.getLogger("messages_integrations")

DEFAULT_TOLERANCE: Final = 300.0
DEFAULT_MAX_BODY_SIZE: Final = 1024 * 1024
#: Done markers outlive the retry windows of the common senders (hours to a day or two).
DEFAULT_DEDUP_TTL: Final = 72 * 60 * 60.0
#: A lease is renewed while its handlers run, so it can be short: a crashed worker's delivery is
#: free for the sender's next retry within this many seconds.
DEFAULT_LEASE: Final = 30.0


class Unset(enum.Enum):
    """The type of :data:`UNSET`."""

    UNSET = "UNSET"


#: "Not given, look further": ``None`` already means something for ``tolerance`` (no replay check).
UNSET: Final = Unset.UNSET

#: The name of the secret's setting, environment variable, Django setting and Flask config key.
SECRET_SETTING = "MESSAGES_WEBHOOK_SECRET"  # noqa: S105 - a name, not a secret


def secret_from_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """Read ``MESSAGES_WEBHOOK_SECRET``; a comma-separated value means several secrets."""
    value = (os.environ if environ is None else environ).get(SECRET_SETTING, "")
    return [part.strip() for part in value.split(",") if part.strip()]


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str | bytes):
        return bool(value)
    if isinstance(value, Sequence):
        return any(_present(item) for item in value)
    return True


def resolve_secret(
    explicit: SecretsInput | None,
    setting: Any = None,
    *,
    where: str = "the environment",
    environ: Mapping[str, str] | None = None,
) -> SecretsInput:
    """Return the secret(s): ``explicit``, else the framework ``setting``, else the environment.

    Raises :class:`ConfigurationError` naming ``MESSAGES_WEBHOOK_SECRET`` and ``where`` to set it
    when none is found: a receiver never accepts unsigned deliveries.
    """
    for candidate in (explicit, setting):
        if _present(candidate):
            if isinstance(candidate, str | bytes):
                return candidate
            if isinstance(candidate, Sequence):
                items: list[str | bytes] = []
                for item in candidate:
                    if not isinstance(item, str | bytes):
                        raise ConfigurationError(
                            f"{SECRET_SETTING} must hold strings, not {type(item).__name__}"
                        )
                    if item:
                        items.append(item)
                return items
            raise ConfigurationError(
                f"{SECRET_SETTING} must be a string or a list of strings, "
                f"not {type(candidate).__name__}"
            )
    from_env = secret_from_environment(environ)
    if from_env:
        return from_env
    raise ConfigurationError(
        f"No Messages.dev webhook signing secret is configured: set {SECRET_SETTING} in {where}, "
        f"or pass secret=... (several secrets: a list, or comma-separated in the environment)."
    )


#: The setting (Django) and config key (Flask) names of the other options; each is also read from
#: the environment variable of the same name.
TOLERANCE_SETTING = "MESSAGES_WEBHOOK_TOLERANCE"
MAX_BODY_SIZE_SETTING = "MESSAGES_WEBHOOK_MAX_BODY_SIZE"
ROUTER_SETTING = "MESSAGES_WEBHOOK_ROUTER"
STORE_SETTING = "MESSAGES_WEBHOOK_STORE"
DEDUP_TTL_SETTING = "MESSAGES_WEBHOOK_DEDUP_TTL"
LEASE_SETTING = "MESSAGES_WEBHOOK_LEASE"
QUEUE_SETTING = "MESSAGES_WEBHOOK_QUEUE"
ON_STORE_ERROR_SETTING = "MESSAGES_WEBHOOK_ON_STORE_ERROR"


def coerce_tolerance(value: Any, name: str = TOLERANCE_SETTING) -> float | None:
    """A replay window in seconds (``None``: no replay check), else ConfigurationError."""
    if value is None or (isinstance(value, str) and value.strip().lower() in {"none", "off"}):
        return None
    return _seconds(value, name, allow_zero=True)


def _seconds(value: Any, name: str, *, allow_zero: bool = False) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} is not a number of seconds: {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds < 0:
        raise ConfigurationError(f"{name} must be 0 or more seconds: {value!r}")
    if seconds == 0 and not allow_zero:
        raise ConfigurationError(f"{name} must be more than 0 seconds: {value!r}")
    return seconds


def coerce_max_body_size(value: Any, name: str = MAX_BODY_SIZE_SETTING) -> int:
    """A largest body in bytes, else ConfigurationError."""
    text = value.strip() if isinstance(value, str) else None
    if isinstance(value, bool) or not (
        isinstance(value, int) or (text and text.isascii() and text.isdigit())
    ):
        raise ConfigurationError(f"{name} is not a whole number of bytes: {value!r}")
    size = int(value)
    if size < 1:
        raise ConfigurationError(f"{name} must be at least 1 byte: {value!r}")
    return size


def _import_object(path: str, name: str) -> Any:
    """The object a ``"module:attribute"`` (or ``"module.attribute"``) path names."""
    module_name, sep, attribute = path.partition(":")
    if not sep:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise ConfigurationError(f"{name} must be 'module:attribute', not {path!r}")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"{name}: cannot import {path!r} ({exc})") from None
    return target


def _instance(value: Any, kind: type[Any], name: str, what: str) -> Any:
    if isinstance(value, str):
        value = _import_object(value, name)
    if not isinstance(value, kind):
        raise ConfigurationError(f"{name} must be {what}, not {type(value).__name__}")
    return value


def coerce_router(value: Any, name: str = ROUTER_SETTING) -> WebhookRouter:
    """A router, given as itself or as a ``"module:attribute"`` path."""
    router: WebhookRouter = _instance(value, WebhookRouter, name, "a WebhookRouter")
    return router


def coerce_store(value: Any, name: str = STORE_SETTING) -> DeliveryStore:
    """A store, given as itself, a URL (``redis://...``, ``memory://``) or a path to one."""
    if isinstance(value, str) and "://" in value:
        from .stores import store_from_url  # redis-py is imported only for a redis URL

        return store_from_url(value)
    store: DeliveryStore = _instance(value, DeliveryStore, name, "a DeliveryStore or a URL")
    return store


def coerce_queue(value: Any, name: str = QUEUE_SETTING) -> TaskQueue:
    """A task queue for background handlers, given as itself or as a path to one."""
    from ._background import TaskQueue

    queue: TaskQueue = _instance(value, TaskQueue, name, "a task queue (CeleryQueue, ...)")
    return queue


def coerce_on_store_error(value: Any, name: str = ON_STORE_ERROR_SETTING) -> str:
    """What to do when the store is unreachable: ``"refuse"`` (503) or ``"handle"`` anyway."""
    if value not in ("refuse", "handle"):
        raise ConfigurationError(f"{name} must be 'refuse' or 'handle', not {value!r}")
    return str(value)


class EndpointOptions(TypedDict, total=False):
    """The keyword options every adapter takes; one left out is looked up in the settings.

    ``None`` means "not given" too, except for ``tolerance``, where it turns the replay check off.
    """

    secret: SecretsInput | None
    router: WebhookRouter | str | None
    tolerance: float | None
    max_body_size: int | None
    store: DeliveryStore | str | None
    dedup_ttl: float | None
    lease: float | None
    queue: TaskQueue | str | None
    on_store_error: Literal["refuse", "handle"] | None


@dataclass(frozen=True, slots=True)
class Options:
    """One immutable snapshot of an endpoint's settings, from which one receiver is built."""

    secret: SecretsInput
    router: WebhookRouter = default_router
    tolerance: float | None = DEFAULT_TOLERANCE
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    store: DeliveryStore | None = None  # None: the adapter's own in-memory store
    dedup_ttl: float = DEFAULT_DEDUP_TTL
    lease: float = DEFAULT_LEASE
    queue: TaskQueue | None = None
    on_store_error: Literal["refuse", "handle"] = "refuse"

    def replace(self, **changes: Any) -> Options:
        """A copy with some options changed."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class _Option:
    setting: str
    coerce: Callable[[Any, str], Any]
    default: Any


_OPTIONS: Final[dict[str, _Option]] = {
    "router": _Option(ROUTER_SETTING, coerce_router, default_router),
    "tolerance": _Option(TOLERANCE_SETTING, coerce_tolerance, DEFAULT_TOLERANCE),
    "max_body_size": _Option(MAX_BODY_SIZE_SETTING, coerce_max_body_size, DEFAULT_MAX_BODY_SIZE),
    "store": _Option(STORE_SETTING, coerce_store, None),
    "dedup_ttl": _Option(DEDUP_TTL_SETTING, _seconds, DEFAULT_DEDUP_TTL),
    "lease": _Option(LEASE_SETTING, _seconds, DEFAULT_LEASE),
    "queue": _Option(QUEUE_SETTING, coerce_queue, None),
    "on_store_error": _Option(ON_STORE_ERROR_SETTING, coerce_on_store_error, "refuse"),
}

#: The option names every adapter accepts as keyword arguments.
OPTION_NAMES: Final = ("secret", *_OPTIONS)


def resolve_options(
    explicit: Mapping[str, Any],
    lookup: Callable[[str], Any] | None = None,
    *,
    where: str = "the environment",
    environ: Mapping[str, str] | None = None,
    defaults: Mapping[str, Callable[[], Any]] | None = None,
) -> Options:
    """Resolve every option: ``explicit`` (UNSET: not given), else ``lookup(SETTING)``, else the
    environment variable of that name, else ``defaults[name]()``, else the library's default.

    ``lookup`` returns :data:`UNSET` for a setting that is not there. Raises
    :class:`ConfigurationError` naming the argument or setting of any bad value, or when no secret
    is configured anywhere (``where`` says where to set it).
    """
    environ = os.environ if environ is None else environ
    find = lookup or (lambda _name: UNSET)
    given = explicit.get("secret", UNSET)
    setting = find(SECRET_SETTING)
    values: dict[str, Any] = {
        "secret": resolve_secret(
            None if given is UNSET else given,
            None if setting is UNSET else setting,
            where=where,
            environ=environ,
        )
    }
    for name, option in _OPTIONS.items():
        value = explicit.get(name, UNSET)
        if value is not UNSET:
            values[name] = option.coerce(value, f"{name}=")
            continue
        value = find(option.setting)
        if value is UNSET:
            value = environ.get(option.setting, UNSET)
        if value is not UNSET:
            values[name] = option.coerce(value, option.setting)
        elif defaults is not None and name in defaults:
            values[name] = defaults[name]()
        else:
            values[name] = option.default
    return Options(**values)


def setting_name(option: str) -> str:
    """``"max_body_size"`` -> ``"MESSAGES_WEBHOOK_MAX_BODY_SIZE"``."""
    return SECRET_SETTING if option == "secret" else _OPTIONS[option].setting


def given(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """An adapter's keyword options, checked by name, keeping only those given: ``None`` and
    :data:`UNSET` mean "look further", except ``tolerance=None``, which turns the check off."""
    unknown = set(arguments) - set(OPTION_NAMES)
    if unknown:
        raise TypeError(
            f"unexpected option(s) {', '.join(sorted(unknown))}; the options are "
            f"{', '.join(OPTION_NAMES)}"
        )
    return {
        name: value
        for name, value in arguments.items()
        if value is not UNSET and (value is not None or name == "tolerance")
    }


def describe_store(store: DeliveryStore) -> str:
    """How a start-up log line names a store (never with a password)."""
    describe = getattr(store, "describe", None)
    return str(describe()) if callable(describe) else type(store).__name__
