"""The developer's entry point: ``nox`` runs lint, typing and every test session.

``nox -s tests`` runs the whole suite on each supported Python with the latest frameworks;
``nox -s django flask starlette`` run each adapter's tests against the oldest and the newest
release it supports; ``nox -s demo`` is the main job. Sessions use uv when it is installed,
virtualenv otherwise.

Every session but the ``tests`` matrix prefers one Python and runs on the Python that runs nox
when that one is not installed, so nothing but the extra versions of the matrix is ever skipped.
The ``tests`` matrix runs on every supported Python that is installed (``python3.X`` on the PATH,
as pyenv, uv and system packages provide); a run that left versions out says so in its last line.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"  # nox.project.dependency_groups
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typing", "tests", "integration", "django", "flask", "starlette"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = ["3.11", "3.12", "3.13"]
TEST_DEPS = nox.project.dependency_groups(PYPROJECT, "test")

# The oldest release each adapter supports, and "latest" for the newest on the index.
DJANGO_VERSIONS = ["5.2", "latest"]
FLASK_VERSIONS = ["3.0", "latest"]
STARLETTE_VERSIONS = ["0.29", "latest"]
# Each FastAPI release pins a narrow Starlette range: the one built on each Starlette above.
FASTAPI_FOR_STARLETTE = {"0.29": "0.108", "latest": "latest"}
# Tests against real Redis, memcached, Celery/RQ/Django Tasks workers and multi-worker servers:
# run once, by the integration session, rather than on every Python of the matrix.
INTEGRATION = ["tests/stores", "tests/queues", "tests/scaleout", "tests/observability"]


def _installed(version: str) -> bool:
    """True when ``python<version>`` on the PATH runs and is that version.

    Running it matters: a pyenv shim exists for every version pyenv knows, and fails when the
    version is not selected.
    """
    command = shutil.which(f"python{version}")
    if command is None:
        return False
    try:
        answer = subprocess.run(  # noqa: S603 - an interpreter found on the PATH, no shell
            [command, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return answer.returncode == 0 and answer.stdout.strip() == version


INSTALLED = [version for version in PYTHONS if _installed(version)]
MISSING = [version for version in PYTHONS if version not in INSTALLED]
RUNNING = "{}.{}".format(*sys.version_info[:2])
#: The matrix of ``tests``: the supported Pythons installed, else the Python running nox.
TEST_PYTHONS: list[str] | None = INSTALLED or None


def _python(preferred: str) -> str | None:
    """``preferred`` when installed, else None: nox then uses the Python that runs it."""
    return preferred if preferred in INSTALLED else None


DEMO_PYTHON = _python(PYTHONS[-1])
TYPING_PYTHON = _python(PYTHONS[0])
FRAMEWORK_PYTHON = _python("3.12")

_ran_tests: list[str] = []


def _say_what_the_matrix_left_out() -> None:
    """The run's last line: which versions of the ``tests`` matrix did not run, and why."""
    if not _ran_tests or not MISSING:
        return
    missing = " and ".join(MISSING)
    commands = ", ".join(f"python{version}" for version in MISSING)
    ran = " and ".join(sorted(set(_ran_tests)))
    logging.getLogger("nox").warning(
        f"Not tested on Python {missing}: not installed (no {commands} on the PATH). "
        f"The tests ran on Python {ran} only; install the others (for example "
        f"`uv python install {' '.join(MISSING)}`) to run the whole matrix."
    )


atexit.register(_say_what_the_matrix_left_out)


def _pin(name: str, version: str) -> str:
    return name if version == "latest" else f"{name}=={version}.*"


def _say_where(session: nox.Session, preferred: str) -> None:
    if preferred not in INSTALLED:
        session.log(f"Python {preferred} is not installed: running on Python {RUNNING} instead")


@nox.session(python=DEMO_PYTHON)
def demo(session: nox.Session) -> None:
    """The main job: every example project on a real server, every event delivered to it."""
    _say_where(session, PYTHONS[-1])
    session.install("-e", ".[all]", "uvicorn", "gunicorn")
    session.run("messages-integrations", "demo", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff's linter and formatter check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=TYPING_PYTHON)
def typing(session: nox.Session) -> None:
    """mypy --strict over the package and the tests, then the examples it must reject."""
    _say_where(session, PYTHONS[0])
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, "typing"))
    session.run("mypy", *session.posargs)
    # The examples that must NOT type-check: each marked line has to be reported.
    session.run("python", "tests/typing/check_rejections.py")


@nox.session(python=TEST_PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite, every adapter included, with the newest frameworks."""
    _ran_tests.append(session.python if isinstance(session.python, str) else RUNNING)
    # nox and uv: tests/cli/test_noxfile.py runs this file with only one Python on the PATH.
    session.install("-e", ".[all]", *TEST_DEPS, "nox", "uv")
    skipped = [f"--ignore={folder}" for folder in INTEGRATION]
    session.run("pytest", *skipped, *session.posargs)


@nox.session(python=FRAMEWORK_PYTHON)
def integration(session: nox.Session) -> None:
    """Real components: shared stores, task-queue workers, gunicorn/uvicorn with several workers,
    the exporters under instrumented servers. Needs redis-server and memcached installed."""
    _say_where(session, "3.12")
    session.install("-e", ".[all]", *TEST_DEPS)
    present = [folder for folder in INTEGRATION if Path(folder).exists()]
    session.run("pytest", *present, *session.posargs)


@nox.session(python=FRAMEWORK_PYTHON)
def bench(session: nox.Session) -> None:
    """Every benchmark: core, hooks, HTTP, memory, Redis store, background (about 13 minutes)."""
    _say_where(session, "3.12")
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, "bench"))
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(python=FRAMEWORK_PYTHON)
@nox.parametrize("django", DJANGO_VERSIONS)
def django(session: nox.Session, django: str) -> None:
    """The Django adapter against the oldest and newest Django supported."""
    _say_where(session, "3.12")
    session.install("-e", ".", _pin("django", django), *TEST_DEPS)
    # tests/contract: the HTTP table against the Django endpoints (the others skip themselves).
    session.run("pytest", "tests/django", "tests/contract", *session.posargs)


@nox.session(python=FRAMEWORK_PYTHON)
@nox.parametrize("flask", FLASK_VERSIONS)
def flask(session: nox.Session, flask: str) -> None:
    """The Flask adapter against the oldest and newest Flask supported."""
    _say_where(session, "3.12")
    session.install("-e", ".", _pin("flask", flask), *TEST_DEPS)
    session.run("pytest", "tests/flask", "tests/contract", *session.posargs)


@nox.session(python=FRAMEWORK_PYTHON)
@nox.parametrize("starlette", STARLETTE_VERSIONS)
def starlette(session: nox.Session, starlette: str) -> None:
    """The Starlette/FastAPI adapter against the oldest and newest Starlette and FastAPI."""
    _say_where(session, "3.12")
    fastapi = FASTAPI_FOR_STARLETTE[starlette]
    # Django too: the middleware is also shown to wrap Django's ASGI application.
    pins = [_pin("starlette", starlette), _pin("fastapi", fastapi), "django"]
    session.install("-e", ".", *pins, *TEST_DEPS)
    session.run("pytest", "tests/starlette", "tests/contract", *session.posargs)
