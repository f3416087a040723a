"""``messages-integrations demo``: the README's main job, run as a user runs it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from messages_integrations._demo import TARGETS, run_demo

pytestmark = pytest.mark.http

ROOT = Path(__file__).parents[2]


def test_the_demo_exits_0_with_every_framework_behaving_as_the_contract_says() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESSAGES_")}
    result = subprocess.run(
        [sys.executable, "-m", "messages_integrations", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"{len(TARGETS)} of {len(TARGETS)} servers behaved as the contract says" in out
    rows = [line for line in out.splitlines() if line.count("|") == 6][1:]  # after the header
    assert len(rows) == len(TARGETS)
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")]
        assert cells[2:] == ["yes", "7/7", "yes", "yes", "yes"], row


def test_the_demo_reports_a_server_that_does_not_start(tmp_path: Path) -> None:
    for target in TARGETS:
        (tmp_path / target.folder).mkdir(exist_ok=True)  # empty: nothing to serve
    out = io.StringIO()
    assert run_demo(tmp_path, out=out) == 1
    assert f"0 of {len(TARGETS)} servers behaved" in out.getvalue()
    assert "server exited" in out.getvalue()
