"""``flask messages check``: what a developer runs to see whether the endpoint is set up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from messages_integrations import Event, WebhookRouter
from messages_integrations.flask import create_blueprint

from .conftest import SECRET


def greet(event: Event[Any]) -> None:
    """A handler the check lists."""


async def count(event: Event[Any]) -> None:
    """Another handler the check lists."""


def run_check(app: Flask) -> Any:
    return app.test_cli_runner().invoke(args=["messages", "check"])


def test_check_shows_the_endpoint_its_secrets_and_handlers(make_app: Callable[..., Flask]) -> None:
    router = WebhookRouter()
    router.on("message.received")(greet)
    router.on("*")(count)
    app = make_app({"MESSAGES_WEBHOOK_SECRET": [SECRET, "whsec_old"]}, router=router)
    result = run_check(app)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "messages_webhooks: POST /webhooks"
    assert "2 secret(s); replay window 300 s; largest body 1048576 bytes" in lines[1]
    handlers = {line[2:19].strip(): line[20:] for line in lines[2:]}
    assert handlers["message.received"] == f"{__name__}.greet, {__name__}.count"
    assert handlers["message.sent"] == f"{__name__}.count"
    assert handlers["other events"] == f"{__name__}.count"


def test_check_reflects_limits_from_config(make_app: Callable[..., Flask]) -> None:
    config = {"MESSAGES_WEBHOOK_TOLERANCE": None, "MAX_CONTENT_LENGTH": 4096}
    result = run_check(make_app(config, secret=SECRET, router=WebhookRouter()))
    assert "1 secret(s); replay window off; largest body 4096 bytes" in result.output
    assert "message.received  (no handler)" in result.output


def test_check_fails_naming_the_setting_when_the_secret_left_the_config(
    make_app: Callable[..., Flask],
) -> None:
    # Registration refuses an app without a secret; the config can still lose it afterwards.
    app = make_app({"MESSAGES_WEBHOOK_SECRET": SECRET}, router=WebhookRouter())
    del app.config["MESSAGES_WEBHOOK_SECRET"]
    result = run_check(app)
    assert result.exit_code == 1
    assert "set MESSAGES_WEBHOOK_SECRET" in result.output


def test_check_covers_every_endpoint_and_fails_if_one_lacks_a_secret() -> None:
    app = Flask(__name__)
    app.config["MESSAGES_WEBHOOK_SECRET"] = SECRET
    app.register_blueprint(create_blueprint(secret=SECRET, name="sales"), url_prefix="/sales")
    app.register_blueprint(create_blueprint(name="support"), url_prefix="/support")
    del app.config["MESSAGES_WEBHOOK_SECRET"]  # the support endpoint relied on it
    result = run_check(app)
    assert result.exit_code == 1
    assert "sales: POST /sales" in result.output
    assert "support: POST /support" in result.output
    assert result.output.count("MESSAGES_WEBHOOK_SECRET") == 1


def test_check_reports_a_bad_value_naming_the_setting(make_app: Callable[..., Flask]) -> None:
    app = make_app({"MESSAGES_WEBHOOK_SECRET": SECRET}, router=WebhookRouter())
    app.config["MESSAGES_WEBHOOK_TOLERANCE"] = "five minutes"
    result = run_check(app)
    assert result.exit_code == 1
    assert "MESSAGES_WEBHOOK_TOLERANCE is not a number of seconds" in result.output


def test_app_without_the_blueprint_has_no_messages_commands() -> None:
    result = run_check(Flask(__name__))
    assert result.exit_code != 0
    assert "No such command 'messages'" in result.output
