"""`messages-integrations sign` and `verify` on captured deliveries."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from messages_integrations import sign_webhook
from messages_integrations.cli import main
from messages_integrations.testing import Delivery, build_delivery
from tests.conftest import load_vectors

from .conftest import SECRET
from .servers import official_sdk_accepts

VECTORS = load_vectors()


def _capture(tmp_path: Path, delivery: Delivery, body: bytes | None = None) -> list[str]:
    """Save a delivery's body as a file and return the verify arguments for it."""
    path = tmp_path / "body.json"
    path.write_bytes(delivery.body if body is None else body)
    argv = ["verify", str(path), "--signature", delivery.signature]
    if "X-Webhook-Timestamp" in delivery.headers:
        argv += ["--timestamp", delivery.headers["X-Webhook-Timestamp"]]
    return argv


def _now_ms() -> int:
    return int(time.time() * 1000)


# --- verify -----------------------------------------------------------------------------------


def test_verify_accepts_a_good_capture_and_names_event_id_and_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = build_delivery("message.received", secret=SECRET, delivery_id="dlv_captured")

    code = main([*_capture(tmp_path, delivery), "--secret", SECRET])

    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("valid: message.received\n")
    assert "delivery id: dlv_captured" in out
    assert "secret:      1 of 1\n" in out
    assert "scheme:      timestamped" in out


def test_verify_says_which_of_several_secrets_matched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = build_delivery("reaction.added", secret=SECRET)
    argv = _capture(tmp_path, delivery)

    assert (
        main([*argv, "--secret", "whsec_old", "--secret", "whsec_other_line", "--secret", SECRET])
        == 0
    )
    assert "secret:      3 of 3\n" in capsys.readouterr().out


def test_verify_reads_comma_separated_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", f"whsec_new, {SECRET}")
    delivery = build_delivery("typing.stopped", secret=SECRET)

    assert main(_capture(tmp_path, delivery)) == 0
    assert "secret:      2 of 2\n" in capsys.readouterr().out


def test_verify_accepts_the_body_scheme_without_a_timestamp(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = build_delivery("message.sent", secret=SECRET, scheme="body")
    argv = _capture(tmp_path, delivery)
    assert "--timestamp" not in argv

    assert main([*argv, "--secret", SECRET]) == 0
    assert "scheme:      body" in capsys.readouterr().out


def test_verify_reads_the_body_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = build_delivery("receipt.read", secret=SECRET)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(delivery.body)))
    argv = ["verify", "-", "--signature", delivery.signature, "--secret", SECRET]

    assert main([*argv, "--timestamp", str(delivery.timestamp)]) == 0
    assert "valid: receipt.read" in capsys.readouterr().out


def test_verify_with_the_wrong_secret_says_no_secret_matched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)

    code = main([*_capture(tmp_path, delivery), "--secret", "whsec_a", "--secret", "whsec_b"])

    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("invalid: signature does not match any configured secret")
    assert "checked 2 secret(s)" in out
    assert "a receiver answers 401" in out


def test_verify_of_a_tampered_body_fails_the_signature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    tampered = delivery.body.replace(b"7pm", b"8pm")
    assert tampered != delivery.body

    code = main([*_capture(tmp_path, delivery, tampered), "--secret", SECRET])

    assert code == 1
    assert "signature does not match" in capsys.readouterr().out


def test_verify_of_a_re_serialised_body_fails_the_signature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    pretty = json.dumps(delivery.json(), indent=2).encode()

    assert main([*_capture(tmp_path, delivery, pretty), "--secret", SECRET]) == 1
    assert "not re-serialised JSON" in capsys.readouterr().out


def test_verify_spots_a_trailing_newline_added_to_the_capture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)

    code = main([*_capture(tmp_path, delivery, delivery.body + b"\n"), "--secret", SECRET])

    assert code == 1
    assert "ends with a newline the sender did not sign" in capsys.readouterr().out


def test_verify_of_a_stale_capture_says_by_how_much(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = build_delivery("message.received", secret=SECRET, timestamp=_now_ms() - 3_600_000)
    argv = [*_capture(tmp_path, delivery), "--secret", SECRET]

    code = main(argv)

    out = capsys.readouterr().out
    assert code == 1
    # 3600 s, plus however long this test took to get here.
    assert re.match(r"invalid: timestamp outside the replay window: 36\d\d s old", out)
    assert "(tolerance 300 s)" in out
    assert "the signature itself matches; a receiver answers 401" in out
    assert main([*argv, "--no-tolerance"]) == 0
    assert main([*argv, "--tolerance", "7200"]) == 0


def test_verify_of_a_timestamp_from_the_future_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = build_delivery("message.received", secret=SECRET, timestamp=_now_ms() + 900_000)

    assert main([*_capture(tmp_path, delivery), "--secret", SECRET]) == 1
    assert "s in the future" in capsys.readouterr().out


def test_verify_of_an_authentic_body_that_is_not_json_says_not_a_valid_envelope(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = b"<html>not json</html>"
    timestamp = _now_ms()
    path = tmp_path / "body.html"
    path.write_bytes(body)
    signature = sign_webhook(SECRET, timestamp, body)
    argv = ["verify", str(path), "--signature", signature, "--timestamp", str(timestamp)]

    code = main([*argv, "--secret", SECRET])

    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("invalid: the signature matches, but this is not a valid envelope")
    assert "a receiver answers 400" in out


def test_verify_of_a_malformed_signature_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    argv = _capture(tmp_path, delivery)
    argv[argv.index("--signature") + 1] = "sha256=abc"

    assert main([*argv, "--secret", SECRET]) == 1
    assert "malformed signature" in capsys.readouterr().out


def test_verify_of_a_missing_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", "/nonexistent/body.json", "--signature", "0" * 64, "--secret", "s"])

    assert code == 2
    assert "error: cannot read /nonexistent/body.json" in capsys.readouterr().err


def test_verify_refuses_a_negative_tolerance(tmp_path: Path) -> None:
    delivery = build_delivery("message.received", secret=SECRET)

    assert main([*_capture(tmp_path, delivery), "--secret", SECRET, "--tolerance", "-1"]) == 2


def test_tolerance_and_no_tolerance_are_exclusive(tmp_path: Path) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    argv = [*_capture(tmp_path, delivery), "--secret", SECRET]

    assert main([*argv, "--tolerance", "10", "--no-tolerance"]) == 2


# --- sign -------------------------------------------------------------------------------------


def _headers(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines())


def test_sign_prints_headers_that_verify_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = build_delivery("reaction.removed", secret="unused").body
    path = tmp_path / "body.json"
    path.write_bytes(body)

    assert main(["sign", str(path), "--secret", SECRET]) == 0
    headers = _headers(capsys.readouterr().out)
    assert headers["Content-Type"] == "application/json"
    argv = ["verify", str(path), "--signature", headers["X-Webhook-Signature"]]

    assert main([*argv, "--timestamp", headers["X-Webhook-Timestamp"], "--secret", SECRET]) == 0
    assert main([*argv, "--timestamp", headers["X-Webhook-Timestamp"], "--secret", "x"]) == 1


def test_sign_with_a_fixed_timestamp_matches_the_library(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "body.json"
    path.write_bytes(b'{"event":"message.received"}')

    argv = ["sign", str(path), "--secret", SECRET, "--timestamp", "1767225600000"]
    assert main([*argv, "--signature-only"]) == 0

    expected = sign_webhook(SECRET, 1_767_225_600_000, path.read_bytes())
    assert capsys.readouterr().out == f"{expected}\n"


def test_sign_in_the_body_scheme_sends_no_timestamp_header(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    body = build_delivery("message.received", secret="unused").body
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(body)))
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", SECRET)

    assert main(["sign", "-", "--scheme", "body"]) == 0
    headers = _headers(capsys.readouterr().out)
    assert "X-Webhook-Timestamp" not in headers
    path = tmp_path / "body.json"
    path.write_bytes(body)

    assert main(["verify", str(path), "--signature", headers["X-Webhook-Signature"]]) == 0
    assert "scheme:      body" in capsys.readouterr().out


def test_sign_refuses_a_timestamp_in_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sign", "-", "--secret", SECRET, "--timestamp", "1767225600"])

    assert code == 2
    assert "looks like seconds" in capsys.readouterr().err


def test_verify_without_tolerance_reports_an_absurd_timestamp_without_crashing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivery = build_delivery("message.received", secret=SECRET, timestamp=10**18, scheme="body")

    assert main([*_capture(tmp_path, delivery), "--secret", SECRET, "--no-tolerance"]) == 0
    assert "1000000000000000000 (not a representable date)" in capsys.readouterr().out


@pytest.mark.parametrize("vector", VECTORS, ids=[v["event"] for v in VECTORS])
def test_sign_signs_the_bodys_own_timestamp_as_the_official_sdk_does(
    vector: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "body.json"
    path.write_bytes(vector["body"].encode())

    assert main(["sign", str(path), "--secret", vector["secret"]]) == 0

    captured = capsys.readouterr()
    headers = _headers(captured.out)
    assert headers["X-Webhook-Signature"] == vector["headers"]["X-Webhook-Signature"]
    assert headers["X-Webhook-Timestamp"] == vector["headers"]["X-Webhook-Timestamp"]
    assert official_sdk_accepts(path.read_bytes(), headers, vector["secret"])
    assert captured.err == ""


def test_sign_warns_when_told_to_sign_another_timestamp_than_the_bodys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vector = VECTORS[0]
    path = tmp_path / "body.json"
    path.write_bytes(vector["body"].encode())
    argv = ["sign", str(path), "--secret", vector["secret"], "--timestamp", "1767225600000"]

    assert main(argv) == 0

    captured = capsys.readouterr()
    headers = _headers(captured.out)
    assert headers["X-Webhook-Timestamp"] == "1767225600000"
    assert not official_sdk_accepts(path.read_bytes(), headers, vector["secret"])
    assert captured.err.startswith(
        "warning: signing 1767225600000, but the body's timestamp is 1710000000000"
    )


def test_sign_of_a_body_without_timestamp_signs_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "body.json"
    path.write_bytes(b'{"event":"message.received","data":{}}')
    before = _now_ms()

    assert main(["sign", str(path), "--secret", SECRET]) == 0

    signed = int(_headers(capsys.readouterr().out)["X-Webhook-Timestamp"])
    assert before <= signed <= _now_ms()


@pytest.mark.parametrize("value", ["1.5", '"1710000000000"', "true", "NaN"])
def test_sign_refuses_a_body_timestamp_that_is_not_whole_milliseconds(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "body.json"
    path.write_text(f'{{"event":"message.received","timestamp":{value}}}')

    assert main(["sign", str(path), "--secret", SECRET]) == 2
    assert "is not a whole number of unix milliseconds" in capsys.readouterr().err


def test_sign_with_the_second_secret_is_verified_as_secret_2_of_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "body.json"
    path.write_bytes(build_delivery("message.sent", secret="unused").body)
    secrets = ["--secret", "whsec_old,whsec_new"]

    assert main(["sign", str(path), *secrets, "--secret-position", "2"]) == 0
    headers = _headers(capsys.readouterr().out)
    argv = ["verify", str(path), "--signature", headers["X-Webhook-Signature"]]

    assert main([*argv, "--timestamp", headers["X-Webhook-Timestamp"], *secrets]) == 0
    assert "secret:      2 of 2\n" in capsys.readouterr().out
