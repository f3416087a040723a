"""Receive Messages.dev webhooks in Flask: a blueprint factory and the ``flask messages`` commands.

``app.register_blueprint(create_blueprint(), url_prefix="/webhooks")`` answers deliveries at
``/webhooks``. Each option comes from its argument, else from ``app.config`` at request time
(``MESSAGES_WEBHOOK_SECRET``, ``_TOLERANCE``, ``_MAX_BODY_SIZE``, ``_ROUTER``, ``_STORE``), else,
for the secret, from the environment variable ``MESSAGES_WEBHOOK_SECRET``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

import click
from flask import Blueprint, Flask, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from flask.cli import AppGroup
from werkzeug.exceptions import RequestEntityTooLarge

from ._config import (
    MAX_BODY_SIZE_SETTING,
    ROUTER_SETTING,
    SECRET_SETTING,
    STORE_SETTING,
    TOLERANCE_SETTING,
    coerce_max_body_size,
    coerce_tolerance,
    resolve_secret,
)
from ._errors import ConfigurationError
from ._events import EVENT_NAMES
from ._handling import DEFAULT_MAX_BODY_SIZE, DEFAULT_TOLERANCE, BodyTooLarge, WebhookReceiver
from ._router import WebhookRouter, default_router
from ._signing import SecretsInput
from ._store import DeliveryStore, InMemoryDeliveryStore

__all__ = ["cli", "create_blueprint"]

logger = logging.getLogger("messages_integrations")

SIZE_SETTING = MAX_BODY_SIZE_SETTING
_EXTENSION = "messages_integrations"
_WHERE = "app.config or the environment"
# Every method reaches the core, so that all but POST get its JSON 405 with ``Allow: POST``.
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


class _Config(enum.Enum):
    UNSET = "from app.config"


#: The ``flask messages`` command group, added to the app by every webhook blueprint.
#: More commands join it with ``@cli.command()``.
cli = AppGroup("messages", help="Messages.dev webhooks: inspect the receiving endpoints.")


# How each config key is read and checked.
_READERS: dict[str, Callable[[Any], Any]] = {
    TOLERANCE_SETTING: coerce_tolerance,
    SIZE_SETTING: coerce_max_body_size,
    ROUTER_SETTING: lambda v: _instance(v, WebhookRouter, ROUTER_SETTING),
    STORE_SETTING: lambda v: _instance(v, DeliveryStore, STORE_SETTING),
}


def _instance(value: Any, kind: type[Any], key: str) -> Any:
    if not isinstance(value, kind):
        raise ConfigurationError(f"{key} must be a {kind.__name__}, not {value!r}")
    return value


def _setting(explicit: Any, config: Mapping[str, Any], key: str, default: Any) -> Any:
    if explicit is not _Config.UNSET:
        return explicit  # checked by WebhookReceiver, which names the argument
    return _READERS[key](config.get(key, default))


class _Endpoint:
    """One registration of a webhook blueprint on one app: its options, store and receiver."""

    def __init__(self, explicit: dict[str, Any]) -> None:
        self.explicit = explicit
        # Kept across receiver rebuilds (config changes) so that duplicates are still caught.
        self.store: DeliveryStore = InMemoryDeliveryStore()
        self._cached: tuple[tuple[Any, ...], WebhookReceiver] | None = None

    def receiver(self, config: Mapping[str, Any], limit: int | None) -> WebhookReceiver:
        """The receiver for the current config, rebuilt only when the config has changed."""
        given = self.explicit
        secret = resolve_secret(given["secret"], config.get(SECRET_SETTING), where=_WHERE)
        size = _setting(given["max_body_size"], config, SIZE_SETTING, DEFAULT_MAX_BODY_SIZE)
        options = {
            "secret": secret if isinstance(secret, str | bytes) else tuple(secret),
            "router": _setting(given["router"], config, ROUTER_SETTING, default_router),
            "tolerance": _setting(given["tolerance"], config, TOLERANCE_SETTING, DEFAULT_TOLERANCE),
            # Flask's MAX_CONTENT_LENGTH, when smaller, is the limit.
            "max_body_size": size if limit is None else min(size, limit),
            "store": _setting(given["store"], config, STORE_SETTING, self.store),
        }
        key = tuple(options.values())
        cached = self._cached
        if cached is None or cached[0] != key:
            # Two threads may build at once: harmless, both share the store.
            cached = self._cached = (key, WebhookReceiver(**options))
        return cached[1]


class _RequestBody:
    """``request.stream``, opened only when read, so that a declared oversize is refused first."""

    def read(self, size: int = -1, /) -> bytes:
        """Read at most ``size`` bytes of the request body."""
        try:
            return request.stream.read(size)
        except RequestEntityTooLarge:
            # MAX_CONTENT_LENGTH stopped the stream: the core answers its own JSON 413.
            raise BodyTooLarge from None


def _answer() -> Response:
    endpoint: _Endpoint = current_app.extensions[_EXTENSION][request.blueprint]
    receiver = endpoint.receiver(current_app.config, request.max_content_length)
    result = receiver.handle(request.method, request.headers, _RequestBody())
    # result.close_connection is not sent as a Connection header: PEP 3333 leaves hop-by-hop
    # headers to the WSGI server, which drains or closes a connection with an unread body itself.
    return Response(result.body, result.status, list(result.headers))


def create_blueprint(
    *,
    secret: SecretsInput | None = None,
    router: WebhookRouter | None = None,
    tolerance: float | Literal[_Config.UNSET] | None = _Config.UNSET,
    max_body_size: int | None = None,
    store: DeliveryStore | None = None,
    name: str = "messages_webhooks",
    url_prefix: str = "/webhooks",
) -> Blueprint:
    """Return a blueprint answering Messages.dev deliveries at its ``url_prefix`` itself.

    Options left out are read from ``app.config`` at request time, the secret finally from the
    environment. ``tolerance=None`` turns replay protection off. Registering it also adds the
    ``flask messages`` commands. Register several (each with its own ``name`` and prefix) for
    several endpoints with different secrets or routers.
    """
    # None means "from app.config", except for tolerance, where None turns the check off.
    given = {"router": router, "max_body_size": max_body_size, "store": store}
    explicit: dict[str, Any] = {
        key: _Config.UNSET if value is None else value for key, value in given.items()
    }
    explicit.update(secret=secret, tolerance=tolerance)
    blueprint = Blueprint(name, __name__, url_prefix=url_prefix)
    # An empty rule is the prefix itself; strict_slashes=False also serves a trailing slash
    # without a redirect, which a sender would count as a failure.
    blueprint.add_url_rule(
        "",
        "webhook",
        _answer,
        methods=_METHODS,
        strict_slashes=False,
        provide_automatic_options=False,
    )
    blueprint.record(lambda state: _register(state, _Endpoint(explicit)))
    return blueprint


def _register(state: BlueprintSetupState, endpoint: _Endpoint) -> None:
    app = state.app
    full_name = f"{state.name_prefix}.{state.name}".lstrip(".")
    app.extensions.setdefault(_EXTENSION, {})[full_name] = endpoint
    app.cli.add_command(cli)
    try:
        resolve_secret(endpoint.explicit["secret"], app.config.get(SECRET_SETTING), where=_WHERE)
    except ConfigurationError as exc:
        # The config may still be filled in after registration; the first request raises if not.
        logger.warning("%s", exc)
        return
    endpoint.receiver(app.config, app.config.get("MAX_CONTENT_LENGTH"))  # fail early, warm up


def _label(handler: Callable[..., object]) -> str:
    name = getattr(handler, "__qualname__", type(handler).__qualname__)  # a callable object
    return f"{handler.__module__}.{name}"


def _describe(app: Flask, name: str, endpoint: _Endpoint) -> bool:
    rules = [rule.rule for rule in app.url_map.iter_rules() if rule.endpoint == f"{name}.webhook"]
    click.echo(f"{name}: POST {', '.join(rules)}")
    try:
        receiver = endpoint.receiver(app.config, app.config.get("MAX_CONTENT_LENGTH"))
    except ConfigurationError as exc:
        click.echo(f"  error: {exc}", err=True)
        return False
    window = "off" if receiver.tolerance is None else f"{receiver.tolerance:g} s"
    click.echo(
        f"  {len(receiver.secrets)} secret(s); replay window {window}; "
        f"largest body {receiver.max_body_size} bytes"
    )
    for event in (*EVENT_NAMES, "other events"):
        handlers = [_label(handler) for handler in receiver.router.handlers_for(event)]
        click.echo(f"  {event:<17} {', '.join(handlers) or '(no handler)'}")
    return True


_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def _pass_through(name: str, summary: str) -> None:
    """Add ``flask messages NAME``: the ``messages-integrations NAME`` command, app config first."""

    @cli.command(name, context_settings=_PASS_THROUGH, help=summary, add_help_option=False)
    @click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
    def command(arguments: tuple[str, ...]) -> None:
        from . import cli as tool  # the command line tool, imported only when used

        defaults = tool.settings_defaults(current_app.config.get)
        code = tool.main([name, *arguments], prog="flask messages", defaults=defaults)
        if code:
            raise click.exceptions.Exit(code)


_pass_through("send", "Send signed test deliveries to a URL ('flask messages send --help').")
_pass_through("sign", "Sign a body as Messages.dev does ('flask messages sign --help').")
_pass_through("verify", "Check a captured delivery ('flask messages verify --help').")
_pass_through("webhooks", "Create, list, delete webhooks: MESSAGES_API_KEY from app.config.")


@cli.command("check")
def check() -> None:
    """Show the webhook endpoints, their secrets and handlers; fail if a secret is missing."""
    endpoints: dict[str, _Endpoint] = current_app.extensions.get(_EXTENSION, {})
    results = [_describe(current_app, name, endpoint) for name, endpoint in endpoints.items()]
    if not all(results):
        raise click.exceptions.Exit(1)
