"""Where adapters find their settings: the argument, the framework's setting, the environment."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ._errors import ConfigurationError
from ._signing import SecretsInput

__all__ = [
    "MAX_BODY_SIZE_SETTING",
    "ROUTER_SETTING",
    "SECRET_SETTING",
    "STORE_SETTING",
    "TOLERANCE_SETTING",
    "coerce_max_body_size",
    "coerce_tolerance",
    "resolve_secret",
    "secret_from_environment",
]

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


#: The setting (Django) and config key (Flask) names of the other shared options.
TOLERANCE_SETTING = "MESSAGES_WEBHOOK_TOLERANCE"
MAX_BODY_SIZE_SETTING = "MESSAGES_WEBHOOK_MAX_BODY_SIZE"
ROUTER_SETTING = "MESSAGES_WEBHOOK_ROUTER"
STORE_SETTING = "MESSAGES_WEBHOOK_STORE"


def coerce_tolerance(value: Any, name: str = TOLERANCE_SETTING) -> float | None:
    """A setting's replay window in seconds (``None``: no replay check), else ConfigurationError."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} is not a number of seconds: {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds < 0:
        raise ConfigurationError(f"{name} must be 0 or more seconds, or None: {value!r}")
    return seconds


def coerce_max_body_size(value: Any, name: str = MAX_BODY_SIZE_SETTING) -> int:
    """A setting's largest body in bytes, else ConfigurationError."""
    text = value.strip() if isinstance(value, str) else None
    if isinstance(value, bool) or not (
        isinstance(value, int) or (text and text.isascii() and text.isdigit())
    ):
        raise ConfigurationError(f"{name} is not a whole number of bytes: {value!r}")
    size = int(value)
    if size < 1:
        raise ConfigurationError(f"{name} must be at least 1 byte: {value!r}")
    return size
