"""``nox`` on a machine with one Python: every session runs; only the extra test versions are left.

The README's two commands must do their job wherever Python 3.11+ is installed, so nox is run
here for real (``--install-only``: every environment is created and installed, no session's
commands run) with a PATH that holds this one Python and nothing else.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# The nox sessions install both; nox finds uv through its package, PATH or not.
pytest.importorskip("nox", reason="needs nox")
pytest.importorskip("uv", reason="needs uv's package")

ROOT = Path(__file__).parents[2]
PYTHONS = ["3.11", "3.12", "3.13"]
RUNNING = "{}.{}".format(*sys.version_info[:2])
#: Every session of the main job, lint, typing, the benchmarks and each framework release.
EVERY_OTHER_SESSION = [
    "demo",
    "lint",
    "typing",
    "bench",
    "integration",
    "django(django='5.2')",
    "django(django='latest')",
    "flask(flask='3.0')",
    "flask(flask='latest')",
    "starlette(starlette='0.29')",
    "starlette(starlette='latest')",
]


def _path_with_one_python(folder: Path) -> str:
    """A PATH of one folder holding ``python3.X``: the Python running the tests."""
    folder.mkdir()
    (folder / f"python{RUNNING}").symlink_to(Path(sys.executable).resolve())
    return str(folder)


def test_with_one_python_only_the_extra_test_versions_are_left_out(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": _path_with_one_python(tmp_path / "bin")}
    env.pop("PYENV_VERSION", None)
    sessions = [
        "demo",
        "lint",
        "typing",
        "tests",
        "bench",
        "integration",
        "django",
        "flask",
        "starlette",
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nox",
            "-f",
            str(ROOT / "noxfile.py"),
            "--envdir",
            str(tmp_path / "envs"),
            "--install-only",
            "--error-on-missing-interpreters",
            "--no-color",
            "-s",
            *sessions,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "skipped" not in log
    test_session = f"tests-{RUNNING}" if RUNNING in PYTHONS else "tests"
    succeeded = re.findall(r"^nox > \* (.+?): success", log, flags=re.MULTILINE)
    assert sorted(succeeded) == sorted([*EVERY_OTHER_SESSION, test_session])
    missing = [version for version in PYTHONS if version != RUNNING]
    last_line = log.strip().splitlines()[-1]
    assert last_line.startswith(f"nox > Not tested on Python {' and '.join(missing)}: "), log
    assert f"The tests ran on Python {RUNNING} only" in last_line
