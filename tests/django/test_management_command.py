"""``manage.py messages``: the command line tool with the project's settings."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from tests.cli.servers import FakeMessagesAPI, webhook_receiver

pytestmark = pytest.mark.http


@pytest.fixture(autouse=True)
def _no_api_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESSAGES_API_KEY", raising=False)


def test_webhooks_create_reads_the_api_key_and_base_url_from_settings(
    api: FakeMessagesAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    with override_settings(MESSAGES_API_KEY=api.api_key, MESSAGES_API_BASE_URL=api.url):
        call_command(
            "messages",
            "webhooks",
            "create",
            "--from",
            "+15551234567",
            "--url",
            "https://example.com/webhooks/messages",
            "--events",
            "message.received",
        )
    [request] = api.seen
    assert request.authorization == f"Bearer {api.api_key}"
    out = capsys.readouterr().out
    assert "whsec_fake_secret_0001" in out
    assert "Django setting" in out


def test_webhooks_list_and_delete_with_settings(
    api: FakeMessagesAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    with override_settings(MESSAGES_API_KEY=api.api_key, MESSAGES_API_BASE_URL=api.url):
        call_command(
            "messages",
            "webhooks",
            "create",
            "--from",
            "+15551234567",
            "--url",
            "https://example.com/a",
            "--events",
            "message.sent",
        )
        call_command("messages", "webhooks", "list")
        call_command("messages", "webhooks", "delete", "wh_0001")
    assert [r.method for r in api.seen] == ["POST", "GET", "DELETE"]
    assert api.seen[2].json() == {"id": "wh_0001"}
    assert "https://example.com/a" in capsys.readouterr().out


def test_an_api_error_fails_the_command_with_its_exit_code(api: FakeMessagesAPI) -> None:
    with (
        override_settings(MESSAGES_API_KEY="wrong_key", MESSAGES_API_BASE_URL=api.url),
        pytest.raises(CommandError, match="failed") as failure,
    ):
        call_command("messages", "webhooks", "list")
    assert failure.value.returncode == 1


def test_send_signs_with_the_projects_secret() -> None:
    with webhook_receiver("whsec_project_secret") as endpoint:
        with override_settings(MESSAGES_WEBHOOK_SECRET=["whsec_project_secret", "whsec_old"]):
            call_command("messages", "send", "reaction.added", "--url", endpoint.url)
        assert endpoint.recorder.count("reaction.added") == 1
