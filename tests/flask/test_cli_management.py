"""``flask messages send | webhooks ...``: the command line tool with the app's config."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from tests.cli.servers import FakeMessagesAPI, webhook_receiver

pytestmark = pytest.mark.http


@pytest.fixture(autouse=True)
def _no_keys_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESSAGES_API_KEY", raising=False)
    monkeypatch.delenv("MESSAGES_WEBHOOK_SECRET", raising=False)


def test_webhooks_commands_read_the_api_key_from_app_config(
    make_app: Callable[..., Flask], api: FakeMessagesAPI
) -> None:
    app = make_app(
        {
            "MESSAGES_WEBHOOK_SECRET": "whsec_flask_config",
            "MESSAGES_API_KEY": api.api_key,
            "MESSAGES_API_BASE_URL": api.url,
        }
    )
    runner = app.test_cli_runner()
    created = runner.invoke(
        args=[
            "messages",
            "webhooks",
            "create",
            "--from",
            "+15551234567",
            "--url",
            "https://example.com/webhooks",
            "--events",
            "message.received,message.sent",
        ]
    )
    assert created.exit_code == 0, created.output
    assert "whsec_fake_secret_0001" in created.output
    listed = runner.invoke(args=["messages", "webhooks", "list"])
    assert listed.exit_code == 0, listed.output
    assert "https://example.com/webhooks" in listed.output
    deleted = runner.invoke(args=["messages", "webhooks", "delete", "wh_0001"])
    assert deleted.exit_code == 0, deleted.output
    assert api.seen[-1].json() == {"id": "wh_0001"}


def test_an_api_error_gives_a_non_zero_exit(
    make_app: Callable[..., Flask], api: FakeMessagesAPI
) -> None:
    config = {"MESSAGES_API_KEY": "wrong", "MESSAGES_API_BASE_URL": api.url}
    app = make_app({"MESSAGES_WEBHOOK_SECRET": "whsec_flask_config", **config})
    result = app.test_cli_runner().invoke(args=["messages", "webhooks", "list"])
    assert result.exit_code == 1


def test_send_signs_with_the_apps_secret(make_app: Callable[..., Flask]) -> None:
    with webhook_receiver("whsec_flask_config") as endpoint:
        app = make_app({"MESSAGES_WEBHOOK_SECRET": "whsec_flask_config"})
        result = app.test_cli_runner().invoke(
            args=["messages", "send", "typing.started", "--url", endpoint.url]
        )
        assert result.exit_code == 0, result.output
        assert endpoint.recorder.count("typing.started") == 1


def test_help_of_a_passed_through_command_names_the_flask_command(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app({"MESSAGES_WEBHOOK_SECRET": "whsec_x"})
    result = app.test_cli_runner().invoke(args=["messages", "send", "--help"])
    assert result.exit_code == 0
    assert "flask messages send" in result.output
