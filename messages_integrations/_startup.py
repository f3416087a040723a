"""The one INFO line each endpoint logs at start-up, and the warning for a per-process store."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._config import UNSET, EndpointOptions, describe_store, given, resolve_options
from ._errors import ConfigurationError
from ._events import EVENT_NAMES
from ._handling import WebhookReceiver
from ._outcomes import describe_hooks
from ._router import handler_name
from ._store import DeliveryStore, InMemoryDeliveryStore

__all__ = ["announce", "build_receiver", "describe", "enable_exporters", "worker_count"]

#: Settings (Django) and config keys (Flask) that turn the exporters on for the whole process.
PROMETHEUS_SETTING = "MESSAGES_WEBHOOK_PROMETHEUS"
OTEL_SETTING = "MESSAGES_WEBHOOK_OTEL"


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _switch(setting: Callable[[str], Any], name: str) -> bool:
    """A yes/no setting: the framework's (UNSET when absent), else the environment variable."""
    value = setting(name)
    if value is UNSET:
        value = os.environ.get(name, "")
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ConfigurationError(f"{name} must be 1 or 0 (true or false), not {value!r}")
    return bool(value)


def enable_exporters(setting: Callable[[str], Any] = lambda _name: UNSET) -> None:
    """Turn on the Prometheus and OpenTelemetry exporters that the settings ask for.

    ``setting(name)`` is the framework's setting, :data:`UNSET` when it has none; then the
    environment variable of that name (``MESSAGES_WEBHOOK_PROMETHEUS=1``) decides.
    """
    if _switch(setting, PROMETHEUS_SETTING):
        from . import prometheus

        prometheus.enable()
    if _switch(setting, OTEL_SETTING):
        from . import otel

        otel.enable()


logger = logging.getLogger("messages_integrations")

_WORKERS = re.compile(r"(?:^|\x00)(?:-w|--workers)(?:=|\x00)(\d+)(?:\x00|$)")


def worker_count() -> int:
    """How many worker processes serve this application, as far as this process can tell.

    ``WEB_CONCURRENCY`` (Heroku, uvicorn, gunicorn), ``GUNICORN_CMD_ARGS``, and the command line of
    the parent process (gunicorn's arbiter, uvicorn's supervisor: ``-w N`` / ``--workers N``).
    """
    counts = [1]
    for value in (os.environ.get("WEB_CONCURRENCY", ""),):
        if value.strip().isdigit():
            counts.append(int(value))
    for text in (os.environ.get("GUNICORN_CMD_ARGS", "").replace(" ", "\x00"), _parent_command()):
        counts += [int(match) for match in _WORKERS.findall(text)]
    return max(counts)


def _parent_command() -> str:
    try:
        return Path(f"/proc/{os.getppid()}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def build_receiver(
    options: EndpointOptions | Mapping[str, Any],
    endpoint: str,
    *,
    lookup: Callable[[str], Any] | None = None,
    where: str = "the environment",
    defaults: Mapping[str, Callable[[], Any]] | None = None,
    store: DeliveryStore | None = None,
    thread_sensitive: bool = False,
) -> WebhookReceiver:
    """Resolve an endpoint's options (argument > setting > environment), build its receiver once,
    and announce it in the log. Raises :class:`ConfigurationError` for a missing or bad option."""
    resolved = resolve_options(given(options), lookup, where=where, defaults=defaults)
    enable_exporters(lookup or (lambda _name: UNSET))
    receiver = WebhookReceiver.from_options(
        resolved, store=store, thread_sensitive=thread_sensitive
    )
    announce(receiver, endpoint)
    return receiver


def _describe_queue(queue: Any) -> str:
    return "none" if queue is None else getattr(queue, "describe", lambda: type(queue).__name__)()


def describe(receiver: WebhookReceiver) -> list[str]:
    """What the check commands print about one endpoint, a line each (never a secret).

    Its secrets, limits, store and queue; whether Prometheus, OpenTelemetry and callbacks watch
    it; then the handlers each event runs.
    """
    window = "off" if receiver.tolerance is None else f"{receiver.tolerance:g} s"
    lines = [
        f"{len(receiver.secrets)} secret(s); replay window {window}; "
        f"largest body {receiver.max_body_size} bytes",
        f"store: {describe_store(receiver.store)}",
    ]
    if isinstance(receiver.store, InMemoryDeliveryStore):
        lines.append(
            "warning: the in-memory store de-duplicates within one process only; with several "
            "worker processes set MESSAGES_WEBHOOK_STORE=redis://... (every process shares it)"
        )
    lines.append(f"queue: {_describe_queue(receiver.queue)}")
    lines += [f"{hook}: {state}" for hook, state in describe_hooks(receiver.observers).items()]
    router = receiver.router
    for event in (*EVENT_NAMES, "other events"):
        inline = [handler_name(h) for h in router.handlers_for(event)]
        background = [
            f"{handler_name(h)} (background)" for h in router.handlers_for(event, background=True)
        ]
        lines.append(f"{event:<17} {', '.join(inline + background) or '(no handler)'}")
    return lines


def announce(receiver: WebhookReceiver, endpoint: str) -> None:
    """Log the endpoint's settings once (never a secret or a password); warn about a lone store."""
    window = "off" if receiver.tolerance is None else f"{receiver.tolerance:g} s"
    queue = receiver.queue
    logger.info(
        "Messages.dev webhooks at %s: %d secret(s), replay window %s, largest body %d bytes, "
        "store %s, queue %s",
        endpoint,
        len(receiver.secrets),
        window,
        receiver.max_body_size,
        describe_store(receiver.store),
        _describe_queue(queue),
        extra={"store": describe_store(receiver.store)},
    )
    workers = worker_count()
    if isinstance(receiver.store, InMemoryDeliveryStore) and workers > 1:
        logger.warning(
            "Messages.dev webhooks at %s keep delivery ids in this process's memory, but %d worker "
            "processes serve this application: a retried delivery can be handled once per process. "
            "Share one store: set MESSAGES_WEBHOOK_STORE=redis://... (or pass store=).",
            endpoint,
            workers,
        )
