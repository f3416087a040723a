"""``messages-integrations demo``: the README's main job, run as a user runs it."""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from messages_integrations import __version__
from messages_integrations._demo import TARGETS, run_demo

pytestmark = pytest.mark.http

ROOT = Path(__file__).parents[2]


def _uv() -> str:
    """uv's executable: from its package when installed (the nox sessions do), else the PATH."""
    if importlib.util.find_spec("uv") is not None:
        import uv

        return str(uv.find_uv_bin())
    found = shutil.which("uv")
    if found is None:
        pytest.skip("building a wheel here needs uv")
    return found


def _clean_environment() -> dict[str, str]:
    """This environment without what would point a child at the checkout or at this venv."""
    dropped = ("MESSAGES_", "PYTHONPATH", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(dropped)}


def _assert_every_server_behaved(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"{len(TARGETS)} of {len(TARGETS)} servers behaved as the contract says" in out
    rows = [line for line in out.splitlines() if line.count("|") == 6][1:]  # after the header
    assert len(rows) == len(TARGETS)
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")]
        assert cells[2:] == ["yes", "7/7", "yes", "yes", "yes"], row
    _assert_each_delivery_was_handled_once_across_workers(out)


def _assert_each_delivery_was_handled_once_across_workers(out: str) -> None:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("CI must install redis-server for the demo's multi-worker rows")
        assert "Several worker processes: skipped" in out
        return
    every = len(TARGETS)
    assert f"{every} of {every} multi-worker servers handled each delivery once" in out
    rows = [line for line in out.splitlines() if line.count("|") == 3][1:]  # after the header
    assert len(rows) == len(TARGETS)
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")]
        assert cells[2] == "20/20", row
        # Which workers took them is the servers' choice (tests/scaleout proves the spread).
        assert int(cells[3]) >= 1, row


def test_the_demo_exits_0_with_every_framework_behaving_as_the_contract_says() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "messages_integrations", "demo"],
        cwd=ROOT,
        env=_clean_environment(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    _assert_every_server_behaved(result)


def test_the_demo_runs_from_an_installed_wheel_outside_the_checkout(tmp_path: Path) -> None:
    uv, env = _uv(), _clean_environment()
    dist, venv, elsewhere = tmp_path / "dist", tmp_path / "venv", tmp_path / "elsewhere"
    build = [uv, "build", "--wheel", "--quiet", "--out-dir", str(dist), str(ROOT)]
    subprocess.run(build, env=env, check=True, timeout=300)
    [wheel] = dist.glob("messages_integrations-*.whl")
    assert wheel.name.startswith(f"messages_integrations-{__version__}-")  # one version source
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    install = [uv, "pip", "install", "--quiet", "--python", str(python), f"{wheel}[all]"]
    subprocess.run([*install, "uvicorn", "gunicorn"], env=env, check=True, timeout=300)
    elsewhere.mkdir()  # nothing of the checkout here or in any parent folder

    result = subprocess.run(
        [str(python), "-m", "messages_integrations", "demo"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    _assert_every_server_behaved(result)
    assert str(venv) in result.stdout  # the projects shipped in the wheel ran, not the checkout's


def test_the_demo_reports_a_server_that_does_not_start(tmp_path: Path) -> None:
    for target in TARGETS:
        (tmp_path / target.folder).mkdir(exist_ok=True)  # empty: nothing to serve
    out = io.StringIO()
    assert run_demo(tmp_path, out=out) == 1
    assert f"0 of {len(TARGETS)} servers behaved" in out.getvalue()
    assert "server exited" in out.getvalue()
