"""The check commands say which hooks watch each endpoint: Prometheus, OpenTelemetry, callbacks.

``messages-integrations check`` (an endpoint built from the environment), ``flask messages check``
and ``manage.py messages check``, each run as a user runs it: a command in its own process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
APPS = "tests.observability.apps"
HANDLERS = f"{APPS}.telemetry"


def _run(argv: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python argv...`` from the repository root with only ``env`` configured."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        # The test apps record into these files when they are imported.
        "OBS_CALLBACKS": str(tmp_path / "callbacks.jsonl"),
        "OBS_SPANS": str(tmp_path / "spans.jsonl"),
        "OBS_JOBS": str(tmp_path / "jobs.jsonl"),
        **env,
    }
    return subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _described(output: str) -> dict[str, str]:
    """``"  name: value"`` lines of one endpoint, by name."""
    lines = [line.strip() for line in output.splitlines() if line.startswith("  ")]
    return dict(line.split(": ", 1) for line in lines if ": " in line)


ENDPOINT = {
    "MESSAGES_WEBHOOK_SECRET": "whsec_one,whsec_two",
    "MESSAGES_WEBHOOK_ROUTER": f"{HANDLERS}:router",
    "MESSAGES_WEBHOOK_QUEUE": f"{HANDLERS}:queue",
    # Never connected to by a check: redis-py connects at first use.
    "MESSAGES_WEBHOOK_STORE": "redis://:hunter2@127.0.0.1:1/0",
}


def test_the_cli_describes_the_endpoint_the_environment_configures(tmp_path: Path) -> None:
    env = {**ENDPOINT, "MESSAGES_WEBHOOK_PROMETHEUS": "1", "MESSAGES_WEBHOOK_OTEL": "1"}
    argv = ["-m", "messages_integrations", "check", "--import", f"{APPS}.check_hooks"]
    result = _run(argv, env, tmp_path)
    assert result.returncode == 0, result.stderr
    described = _described(result.stdout)
    assert "2 secret(s); replay window 300 s" in result.stdout
    assert described["store"] == "redis://:***@127.0.0.1:1/0"
    assert "hunter2" not in result.stdout
    assert "whsec_one" not in result.stdout
    assert described["queue"] == "RecordingQueue"
    assert described["prometheus"] == "on (default registry)"
    assert described["opentelemetry"].startswith("on (to the global tracer provider")
    assert described["callbacks"] == f"{APPS}.check_hooks.audit"
    assert f"reaction.added    {HANDLERS}.thank, {HANDLERS}.count" in result.stdout
    assert f"receipt.read      {HANDLERS}.archive (background)" in result.stdout


def test_the_cli_says_what_is_off(tmp_path: Path) -> None:
    result = _run(["-m", "messages_integrations", "check"], ENDPOINT, tmp_path)
    assert result.returncode == 0, result.stderr
    described = _described(result.stdout)
    assert described["prometheus"] == "off"
    assert described["opentelemetry"] == "off"
    assert described["callbacks"] == "none"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "MESSAGES_WEBHOOK_SECRET"),
        ({**ENDPOINT, "MESSAGES_WEBHOOK_PROMETHEUS": "perhaps"}, "MESSAGES_WEBHOOK_PROMETHEUS"),
    ],
    ids=["no-secret", "bad-switch"],
)
def test_the_cli_fails_naming_what_to_set(env: dict[str, str], named: str, tmp_path: Path) -> None:
    result = _run(["-m", "messages_integrations", "check"], env, tmp_path)
    assert result.returncode == 1
    assert named in result.stderr


def test_flask_check_shows_the_hooks_its_config_turned_on(tmp_path: Path) -> None:
    argv = ["-m", "flask", "--app", f"{APPS}.flask_app", "messages", "check"]
    result = _run(argv, ENDPOINT, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("messages_webhooks: POST /webhooks")
    described = _described(result.stdout)
    assert described["prometheus"] == "on (default registry)"
    assert described["opentelemetry"] == "on (to the global TracerProvider)"
    assert described["callbacks"] == f"{HANDLERS}.record_callback"


def test_django_check_describes_each_routed_webhook_view(tmp_path: Path) -> None:
    env = {**ENDPOINT, "DJANGO_SETTINGS_MODULE": f"{APPS}.django_app.settings"}
    result = _run(["-m", "django", "messages", "check"], env, tmp_path)
    # /webhooks/broken cannot work (max_body_size=0): the check fails, naming the option.
    assert result.returncode == 1
    assert "max_body_size= must be at least 1 byte" in result.stderr
    endpoints = result.stdout.split("\n/")
    assert [part.split(":")[0].lstrip("/") for part in endpoints] == [
        "webhooks/messages",
        "webhooks/async",
        "webhooks/broken",
        "inbox",
    ]
    assert endpoints[3].startswith(f"inbox: {APPS}.django_app.urls.inbox")
    for endpoint in (endpoints[0], endpoints[1], endpoints[3]):
        described = _described(endpoint)
        assert described["prometheus"] == "on (default registry)"
        assert described["opentelemetry"] == "on (to the global TracerProvider)"
        assert described["callbacks"] == f"{HANDLERS}.record_callback"
        assert described["queue"] == "RecordingQueue"
