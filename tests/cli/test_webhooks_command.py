"""`messages-integrations webhooks create | list | delete` against a fake REST API on 127.0.0.1."""

from __future__ import annotations

import json
import sys

import pytest

from messages_integrations import EVENT_NAMES
from messages_integrations.cli import main
from tests.support.servers import free_port

from .servers import FakeMessagesAPI, error_object

pytestmark = pytest.mark.http


def _webhooks(api: FakeMessagesAPI, *argv: str) -> list[str]:
    return ["webhooks", *argv, "--base-url", api.url, "--api-key", api.api_key]


def test_create_prints_the_secret_once_and_where_to_put_it(
    api: FakeMessagesAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _webhooks(
        api, "create", "--from", "+15551234567", "--url", "https://example.com/webhooks"
    )

    code = main([*argv, "--events", "message.received, reaction.added"])

    out = capsys.readouterr().out
    assert code == 0, out
    [request] = api.seen
    assert (request.method, request.path) == ("POST", "/v1/webhooks")
    assert request.json() == {
        "from": "+15551234567",
        "url": "https://example.com/webhooks",
        "events": ["message.received", "reaction.added"],
    }
    assert out.startswith("Created webhook wh_0001 for +15551234567\n")
    assert out.count("whsec_fake_secret_0001") == 1
    assert "shown only this once" in out
    for place in ("MESSAGES_WEBHOOK_SECRET", "Django setting", "Flask config key"):
        assert place in out


def test_create_json_prints_the_api_object(
    api: FakeMessagesAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _webhooks(api, "create", "--from", "+15551234567", "--url", "https://e.com/w")

    assert main([*argv, "--events", "message.sent", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["secret"] == "whsec_fake_secret_0001"
    assert created["events"] == ["message.sent"]


def test_create_refuses_a_misspelt_event_before_calling_the_api(
    api: FakeMessagesAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _webhooks(api, "create", "--from", "+15551234567", "--url", "https://e.com/w")

    assert main([*argv, "--events", "message.received,reaction.add"]) == 2
    assert "did you mean 'reaction.added'?" in capsys.readouterr().err
    assert api.seen == []


def test_list_prints_every_page_as_a_table(
    api: FakeMessagesAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.add("+15551234567", "https://a.example/webhooks", ["message.received"])
    api.add("+15551234567", "https://b.example/webhooks", ["message.received", "message.sent"])
    api.add("+15557654321", "https://c.example/hooks", list(EVENT_NAMES))

    assert main(_webhooks(api, "list")) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "LINES", "ACTIVE", "EVENTS", "URL"]
    assert [line.split()[0] for line in lines[1:]] == ["wh_0001", "wh_0002", "wh_0003"]
    assert lines[2].split() == [
        "wh_0002",
        "ln_15551234567",
        "yes",
        "message.received,message.sent",
        "https://b.example/webhooks",
    ]
    assert "all 7" in lines[3]
    assert [r.query.get("cursor") for r in api.seen] == [None, "2"]


def test_list_from_one_line(api: FakeMessagesAPI, capsys: pytest.CaptureFixture[str]) -> None:
    api.add("+15551234567", "https://a.example/webhooks", ["message.received"])
    api.add("+15557654321", "https://c.example/hooks", ["message.sent"])

    assert main(_webhooks(api, "list", "--from", "+15557654321")) == 0

    out = capsys.readouterr().out
    assert "https://c.example/hooks" in out
    assert "https://a.example/webhooks" not in out
    assert api.seen[0].query == {"from": "+15557654321"}


def test_list_json_and_empty_list(api: FakeMessagesAPI, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_webhooks(api, "list")) == 0
    assert capsys.readouterr().out == "No webhooks.\n"
    api.add("+15551234567", "https://a.example/webhooks", ["message.received"])

    assert main([*_webhooks(api, "list"), "--json"]) == 0
    [webhook] = json.loads(capsys.readouterr().out)
    assert webhook["id"] == "wh_0001"
    assert "secret" not in webhook


def test_delete_sends_the_id_in_the_json_body(
    api: FakeMessagesAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.add("+15551234567", "https://a.example/webhooks", ["message.received"])

    assert main(_webhooks(api, "delete", "wh_0001")) == 0

    assert capsys.readouterr().out == "Deleted webhook wh_0001.\n"
    [request] = api.seen
    assert (request.method, request.path, request.json()) == (
        "DELETE",
        "/v1/webhooks",
        {"id": "wh_0001"},
    )
    assert api.webhooks == {}


def test_deleting_an_unknown_id_shows_the_api_error(
    api: FakeMessagesAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_webhooks(api, "delete", "wh_9999")) == 1
    assert capsys.readouterr().err == (
        "error: 404 invalid_request_error (resource_missing): No such webhook: wh_9999 "
        "[request_id req_fake0001]\n"
    )


def test_a_wrong_api_key_is_one_readable_line(
    api: FakeMessagesAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["webhooks", "list", "--base-url", api.url, "--api-key", "sk_wrong"])

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert captured.err == (
        "error: 401 authentication_error (invalid_api_key): Invalid API key "
        "[request_id req_fake0001]\n"
    )
    assert api.seen[0].authorization == "Bearer sk_wrong"


def test_the_api_key_comes_from_the_environment(
    api: FakeMessagesAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGES_API_KEY", api.api_key)

    assert main(["webhooks", "list", "--base-url", api.url]) == 0
    assert api.seen[0].authorization == f"Bearer {api.api_key}"


def test_no_api_key_names_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["webhooks", "list"]) == 2
    assert "MESSAGES_API_KEY" in capsys.readouterr().err


def test_a_429_is_retried_and_then_succeeds(
    api: FakeMessagesAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.add("+15551234567", "https://a.example/webhooks", ["message.received"])
    busy = error_object("rate_limit_error", "rate_limited", "Too many requests")
    api.scripted.append((429, {"Retry-After": "0"}, busy))

    assert main(_webhooks(api, "list")) == 0

    assert "wh_0001" in capsys.readouterr().out
    assert len(api.seen) == 2


def test_a_persistent_500_is_retried_twice_then_reported(
    api: FakeMessagesAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    down = error_object("api_error", "internal_error", "Something went wrong")
    api.scripted.extend([(500, {"Retry-After": "0"}, down)] * 3)

    code = main(_webhooks(api, "delete", "wh_0001"))

    assert code == 1
    assert capsys.readouterr().err.startswith(
        "error: 500 api_error (internal_error): Something went wrong"
    )
    assert len(api.seen) == 3


def test_list_and_delete_survive_a_dropped_connection(
    api: FakeMessagesAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.add("+15551234567", "https://a.example/webhooks", ["message.received"])
    api.drop_connections = 1
    assert main(_webhooks(api, "list")) == 0
    assert "wh_0001" in capsys.readouterr().out

    api.drop_connections = 1
    assert main(_webhooks(api, "delete", "wh_0001")) == 0
    assert capsys.readouterr().out == "Deleted webhook wh_0001.\n"
    assert [r.method for r in api.seen] == ["GET", "GET", "DELETE", "DELETE"]


def test_create_is_not_repeated_after_a_dropped_connection(
    api: FakeMessagesAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.drop_connections = 1
    argv = _webhooks(api, "create", "--from", "+15551234567", "--url", "https://e.com/w")

    assert main([*argv, "--events", "message.sent"]) == 1
    assert capsys.readouterr().err.startswith(f"error: could not reach {api.url}: ")
    assert len(api.seen) == 1


def test_an_unreachable_api_is_one_readable_line(capsys: pytest.CaptureFixture[str]) -> None:
    base = f"http://127.0.0.1:{free_port()}"

    assert main(["webhooks", "list", "--base-url", base, "--api-key", "k"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: could not reach {base}: ")
    assert "Traceback" not in err


def test_without_httpx_the_webhooks_commands_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)

    assert main(["webhooks", "list", "--api-key", "k"]) == 2
    assert "pip install 'messages-integrations[cli]'" in capsys.readouterr().err
