"""Receive Messages.dev webhooks in Flask: a blueprint factory and the ``flask messages`` commands.

``app.register_blueprint(create_blueprint(), url_prefix="/webhooks")`` answers deliveries at
``/webhooks``. Each option comes from its argument, else from ``app.config`` at request time
(``MESSAGES_WEBHOOK_SECRET``, ``_TOLERANCE``, ``_MAX_BODY_SIZE``, ``_ROUTER``, ``_STORE``), else,
for the secret, from the environment variable ``MESSAGES_WEBHOOK_SECRET``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Unpack

import click
from flask import Blueprint, Flask, Request, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from flask.cli import AppGroup
from werkzeug.exceptions import RequestEntityTooLarge

from ._config import (
    OPTION_NAMES,
    UNSET,
    EndpointOptions,
    given,
    resolve_options,
    setting_name,
)
from ._errors import ConfigurationError
from ._handling import (
    BodyTooLarge,
    WebhookReceiver,
    WebhookResponse,
    environ_headers,
    not_configured,
)
from ._startup import announce, describe, enable_exporters
from ._store import InMemoryDeliveryStore

__all__ = ["cli", "create_blueprint"]

logger = logging.getLogger("messages_integrations")

_EXTENSION = "messages_integrations"
_WHERE = "app.config or the environment"
#: The headers of most answers: the content type alone, which Response takes without a list.
_CONTENT_TYPE_ONLY = WebhookResponse(200, b"").headers
_KEYS = tuple(setting_name(name) for name in OPTION_NAMES)
_UNSETS = (UNSET,) * len(_KEYS)
# Every method reaches the core, so that all but POST get its JSON 405 with ``Allow: POST``.
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]

#: The ``flask messages`` command group, added to the app by every webhook blueprint.
#: More commands join it with ``@cli.command()``.
cli = AppGroup("messages", help="Messages.dev webhooks: inspect the receiving endpoints.")


class _Endpoint:
    """One registration of a webhook blueprint on one app: its options, store and receiver."""

    def __init__(self, options: Mapping[str, Any], name: str) -> None:
        self.options = given(options)
        self.name = name
        # Kept across receiver rebuilds (config changes) so that duplicates are still caught.
        self.store = InMemoryDeliveryStore()
        self._cached: tuple[tuple[Any, ...], WebhookReceiver] | None = None

    def receiver(self, config: Mapping[str, Any], limit: int | None) -> WebhookReceiver:
        """The receiver for the current config, rebuilt only when the config has changed."""
        # Read per request, as a Flask extension should; compared as one tuple, built in C.
        snapshot = (*map(config.get, _KEYS, _UNSETS), limit)
        cached = self._cached
        if cached is not None and cached[0] == snapshot:
            return cached[1]
        options = resolve_options(self.options, lambda key: config.get(key, UNSET), where=_WHERE)
        if limit is not None and limit < options.max_body_size:
            # Flask's MAX_CONTENT_LENGTH, when smaller, is the limit.
            options = options.replace(max_body_size=limit)
        receiver = WebhookReceiver.from_options(options, store=self.store)
        announce(receiver, f"blueprint {self.name!r}")
        # Two threads may build at once: harmless, both share the store.
        self._cached = (snapshot, receiver)
        return receiver


class _RequestBody:
    """``request.stream``, opened only when read, so that a declared oversize is refused first."""

    __slots__ = ("_request",)

    def __init__(self, request: Request) -> None:
        self._request = request

    def read(self, size: int = -1, /) -> bytes:
        """Read at most ``size`` bytes of the request body."""
        try:
            return self._request.stream.read(size)
        except RequestEntityTooLarge:
            # MAX_CONTENT_LENGTH stopped the stream: the core answers its own JSON 413.
            raise BodyTooLarge from None


def _answer() -> Response:
    # The objects behind the context proxies, looked up once rather than at every use.
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    endpoint: _Endpoint = app.extensions[_EXTENSION][req.blueprint]
    try:
        receiver = endpoint.receiver(app.config, req.max_content_length)
    except ConfigurationError as exc:
        result = not_configured(exc, req.headers)
    else:
        environ = req.environ
        # A declared length (the core refuses one over the limit before reading) is read from
        # the server's stream directly, up to that length; a chunked body through Werkzeug's
        # stream, which knows whether the server marks its end.
        body = environ["wsgi.input"] if environ.get("CONTENT_LENGTH") else _RequestBody(req)
        result = receiver.handle(req.method, environ_headers(environ), body)
    # result.close_connection is not sent as a Connection header: PEP 3333 leaves hop-by-hop
    # headers to the WSGI server, which drains or closes a connection with an unread body itself.
    if result.headers == _CONTENT_TYPE_ONLY:
        return Response(result.body, result.status, content_type=result.content_type)
    return Response(result.body, result.status, list(result.headers))


def create_blueprint(
    *,
    name: str = "messages_webhooks",
    url_prefix: str = "/webhooks",
    **options: Unpack[EndpointOptions],
) -> Blueprint:
    """Return a blueprint answering Messages.dev deliveries at its ``url_prefix`` itself.

    Options left out are read from ``app.config`` (``MESSAGES_WEBHOOK_SECRET``, ...), then from
    the environment. ``tolerance=None`` turns replay protection off. Registering it checks the
    configuration (a missing secret or a bad value raises
    :class:`~messages_integrations.ConfigurationError` there) and adds the ``flask messages``
    commands. Register several (each with its own ``name`` and prefix) for several endpoints.
    """
    checked = given(options)  # a misspelt option fails here, not at the first delivery
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
    blueprint.record(lambda state: _register(state, checked))
    return blueprint


def _register(state: BlueprintSetupState, options: Mapping[str, Any]) -> None:
    app = state.app
    full_name = f"{state.name_prefix}.{state.name}".lstrip(".")
    endpoint = _Endpoint(options, full_name)
    app.extensions.setdefault(_EXTENSION, {})[full_name] = endpoint
    app.cli.add_command(cli)
    enable_exporters(lambda key: app.config.get(key, UNSET))
    # Fail at start-up, never at the first delivery: no secret, or a bad value, raises here.
    endpoint.receiver(app.config, app.config.get("MAX_CONTENT_LENGTH"))


def _describe(app: Flask, name: str, endpoint: _Endpoint) -> bool:
    rules = [rule.rule for rule in app.url_map.iter_rules() if rule.endpoint == f"{name}.webhook"]
    click.echo(f"{name}: POST {', '.join(rules)}")
    try:
        receiver = endpoint.receiver(app.config, app.config.get("MAX_CONTENT_LENGTH"))
    except ConfigurationError as exc:
        click.echo(f"  error: {exc}", err=True)
        return False
    for line in describe(receiver):
        click.echo(f"  {line}")
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
