"""`messages-integrations send` against a real endpoint on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from messages_integrations import ReactionAdded, UnknownEvent
from messages_integrations.cli import main
from tests.support.servers import free_port

from .conftest import SECRET
from .servers import Receiver, official_sdk_accepts, webhook_receiver

pytestmark = pytest.mark.http


def test_send_delivers_a_verified_event(
    endpoint: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["send", "reaction.added", "--url", endpoint.url, "--secret", SECRET])

    out = capsys.readouterr().out
    assert code == 0, out
    [event] = endpoint.recorder.events
    assert isinstance(event, ReactionAdded)
    assert event.data.type == "love"
    assert f"reaction.added {event.delivery_id} -> 200 OK" in out
    assert '"status":"ok"' in out


@pytest.mark.parametrize("scheme", ["timestamped", "body"])
def test_what_send_posts_is_accepted_by_the_official_sdk(endpoint: Receiver, scheme: str) -> None:
    argv = ["send", "message.received", "--url", endpoint.url, "--secret", SECRET]

    assert main([*argv, "--scheme", scheme]) == 0

    [(body, headers)] = endpoint.requests
    if scheme == "timestamped":
        assert official_sdk_accepts(body, headers, SECRET)
        assert headers["X-Webhook-Timestamp"] == str(json.loads(body)["timestamp"])
    else:
        assert "X-Webhook-Timestamp" not in headers


def test_send_with_a_wrong_secret_exits_non_zero_and_shows_the_refusal(
    endpoint: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["send", "message.received", "--url", endpoint.url, "--secret", "whsec_wrong"])

    out = capsys.readouterr().out
    assert code == 1
    assert "-> 401" in out
    assert "invalid_signature" in out
    assert "hint: the signature was refused" in out
    assert endpoint.recorder.count() == 0


def test_send_takes_the_first_secret_of_the_environment(
    endpoint: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", f"{SECRET},whsec_older")

    assert main(["send", "typing.started", "--url", endpoint.url]) == 0
    assert endpoint.recorder.count("typing.started") == 1


def test_send_signs_with_the_secret_at_the_position_given(
    endpoint: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", f"whsec_older,{SECRET}")
    argv = ["send", "typing.started", "--url", endpoint.url]

    assert main(argv) == 1  # the first secret, which the endpoint does not know
    assert main([*argv, "--secret-position", "2"]) == 0
    assert endpoint.recorder.count("typing.started") == 1


def test_a_secret_position_beyond_the_secrets_given_is_a_usage_error(
    endpoint: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["send", "typing.started", "--url", endpoint.url, "--secret", f"{SECRET},whsec_b"]

    assert main([*argv, "--secret-position", "3"]) == 2
    assert "--secret-position 3, but --secret holds 2 secret(s)" in capsys.readouterr().err
    assert main([*argv, "--secret-position", "0"]) == 2
    assert endpoint.requests == []


def test_send_every_event_in_both_schemes(endpoint: Receiver) -> None:
    names = ["message.received", "message.sent", "reaction.removed", "receipt.read"]
    for name in names:
        for scheme in ("timestamped", "body"):
            argv = ["send", name, "--url", endpoint.url, "--secret", SECRET, "--scheme", scheme]
            assert main(argv) == 0, (name, scheme)

    assert endpoint.recorder.summary()["by_event"] == dict.fromkeys(names, 2)


def test_count_with_one_delivery_id_sends_duplicates_that_are_handled_once(
    endpoint: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["send", "message.received", "--url", endpoint.url, "--secret", SECRET]
    code = main([*argv, "--count", "3", "--delivery-id", "dlv_cli_duplicate"])

    out = capsys.readouterr().out
    assert code == 0
    assert endpoint.recorder.summary()["by_delivery_id"] == {"dlv_cli_duplicate": 1}
    assert out.count('"status":"duplicate"') == 2
    assert "[3/3] message.received dlv_cli_duplicate -> 200 OK" in out
    assert "3 of 3 answered 2xx" in out


def test_count_without_delivery_id_sends_distinct_deliveries(endpoint: Receiver) -> None:
    argv = ["send", "message.sent", "--url", endpoint.url, "--secret", SECRET, "--count", "4"]

    assert main(argv) == 0
    assert len(endpoint.recorder.summary()["by_delivery_id"]) == 4


def test_data_from_a_file_replaces_the_sample(endpoint: Receiver, tmp_path: Path) -> None:
    data = {
        "id": "msg_custom",
        "chat_id": "cht_custom",
        "sender": "+15550001111",
        "is_from_me": False,
        "sent_at": 1_767_225_600_000,
        "text": "from a file: ünïcode ✓",
    }
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    argv = ["send", "message.received", "--url", endpoint.url, "--secret", SECRET]
    assert main([*argv, "--data", f"@{path}"]) == 0
    [event] = endpoint.recorder.events
    assert event.raw["data"] == data


def test_inline_data_sends_an_event_this_library_does_not_know(endpoint: Receiver) -> None:
    argv = ["send", "message.edited", "--url", endpoint.url, "--secret", SECRET]

    assert main([*argv, "--data", '{"id": "msg_1", "text": "edited"}']) == 0
    [event] = endpoint.recorder.events
    assert isinstance(event, UnknownEvent)
    assert event.event == "message.edited"
    assert event.data == {"id": "msg_1", "text": "edited"}


def test_data_from_stdin(endpoint: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b'{"id": "rcp_1", "chat_id": "cht_1", "handle": "+1"}'))
    monkeypatch.setattr("sys.stdin", stdin)
    argv = ["send", "receipt.read", "--url", endpoint.url, "--secret", SECRET, "--data", "@-"]

    # The data lacks the receipt's required fields: the endpoint refuses it as invalid (400).
    assert main(argv) == 1
    assert endpoint.recorder.count() == 0


def test_a_misspelt_event_suggests_the_closest_name(
    endpoint: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["send", "message.recieved", "--url", endpoint.url, "--secret", SECRET])

    err = capsys.readouterr().err
    assert code == 2
    assert "did you mean 'message.received'?" in err
    assert endpoint.recorder.count() == 0


def test_a_redirect_is_reported_as_a_failure_with_a_hint(
    endpoint: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["send", "message.received", "--url", endpoint.url + "/", "--secret", SECRET])

    out = capsys.readouterr().out
    assert code == 1
    assert "-> 308" in out
    assert "redirects to /webhooks" in out
    assert endpoint.recorder.count() == 0


def test_an_unreachable_url_is_one_readable_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/webhooks"

    code = main(["send", "message.received", "--url", url, "--secret", SECRET])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"error: could not reach {url}: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_no_secret_anywhere_names_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["send", "message.received", "--url", "http://127.0.0.1:9/webhooks"])

    assert code == 2
    assert "MESSAGES_WEBHOOK_SECRET" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("data", "message"),
    [("{not json", "--data is not valid JSON"), ("[1, 2]", "--data must be a JSON object")],
)
def test_bad_data_is_refused_before_sending(
    data: str, message: str, endpoint: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["send", "message.received", "--url", endpoint.url, "--secret", SECRET, "--data", data]

    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert endpoint.recorder.count() == 0


def test_a_url_without_scheme_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["send", "message.received", "--url", "localhost:8000/webhooks", "--secret", "s"])

    assert code == 2
    assert "--url must be an http:// or https:// URL" in capsys.readouterr().err


def test_send_needs_no_optional_dependency(
    endpoint: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)

    assert main(["send", "message.received", "--url", endpoint.url, "--secret", SECRET]) == 0
    assert endpoint.recorder.count() == 1


# --- a reader that stops reading (``send ... | head -1``) -----------------------------------


def _send_into_a_pipe(url: str, *extra: str, line_by_line: bool) -> subprocess.Popen[bytes]:
    """``send`` with its output into a pipe; ``line_by_line``: written as printed (``-u``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESSAGES_", "PYTHON"))}
    python = [sys.executable, "-u"] if line_by_line else [sys.executable]
    command = [*python, "-m", "messages_integrations", "send", "message.received", "--url", url]
    return subprocess.Popen(
        [*command, "--secret", SECRET, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def test_a_reader_that_stops_after_the_first_answer_ends_send_quietly() -> None:
    reader_gone = threading.Event()

    def hold_the_second(number: int) -> None:
        if number == 2:  # answered only once the reader has gone, as after `| head -1`
            reader_gone.wait(30)

    with (
        webhook_receiver(SECRET, before_answer=hold_the_second) as receiver,
        _send_into_a_pipe(receiver.url, "--count", "3", line_by_line=True) as process,
    ):
        assert process.stdout is not None
        assert process.stderr is not None
        first = process.stdout.readline()
        process.stdout.readline()  # the answer's body: the last line written before the hold
        process.stdout.close()
        reader_gone.set()
        code = process.wait(timeout=60)
        errors = process.stderr.read().decode()

    assert first.startswith(b"[1/3] message.received ")
    assert errors == ""
    assert code == 141  # 128 + SIGPIPE, as `yes | head -1` leaves for `yes`
    assert receiver.recorder.count() == 2  # it stopped at the first line it could not write


def test_a_reader_gone_before_buffered_output_is_written_ends_send_quietly(
    endpoint: Receiver,
) -> None:
    with _send_into_a_pipe(endpoint.url, "--count", "2", line_by_line=False) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()
        code = process.wait(timeout=60)
        errors = process.stderr.read().decode()

    assert errors == ""
    assert code == 141
    assert endpoint.recorder.count() == 2
