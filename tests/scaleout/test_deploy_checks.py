"""What the deployment checks say about the store: ``flask messages check`` on the Flask example
and ``manage.py check --deploy`` on the Django example, with a shared store and without one."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from .examples import PROJECTS, SECRET

PASSWORD = "s3cret-in-the-url"
REDIS_URL = f"redis://:{PASSWORD}@127.0.0.1:6390/0"  # never connected to: the checks only read it


def _run(folder: str, argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MESSAGES_", "WEB_CONC"))}
    clean.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, *argv],
        cwd=PROJECTS / folder,
        env={**clean, "MESSAGES_WEBHOOK_SECRET": SECRET, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _flask_check(**env: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("flask") is None:
        pytest.skip("flask is not installed")
    return _run("flask_app", ["-m", "flask", "--app", "app", "messages", "check"], **env)


def _django_check(**env: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("django") is None:
        pytest.skip("django is not installed")
    return _run("django_project", ["manage.py", "check", "--deploy"], **env)


def test_flask_check_names_the_shared_store_without_its_password() -> None:
    result = _flask_check(MESSAGES_WEBHOOK_STORE=REDIS_URL, WEB_CONCURRENCY="4")
    assert result.returncode == 0, result.stderr
    assert "store: redis://:***@127.0.0.1:6390/0" in result.stdout
    assert "warning" not in (result.stdout + result.stderr).lower()
    assert PASSWORD not in result.stdout + result.stderr


def test_flask_check_warns_about_the_in_memory_store() -> None:
    result = _flask_check(WEB_CONCURRENCY="4")
    assert result.returncode == 0, result.stderr
    assert "store: in-memory" in result.stdout
    assert "warning: the in-memory store de-duplicates within one process only" in result.stdout
    # The app's own start-up warning, as under gunicorn: four workers, one store each.
    assert "4 worker processes serve this application" in result.stderr


def test_django_check_deploy_warns_w004_about_the_in_memory_store() -> None:
    result = _django_check()
    assert result.returncode == 0, result.stderr
    assert "(messages_integrations.W004)" in result.stderr


def test_django_check_deploy_is_quiet_with_a_shared_store() -> None:
    result = _django_check(MESSAGES_WEBHOOK_STORE=REDIS_URL)
    assert result.returncode == 0, result.stderr
    assert "messages_integrations." not in result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr
