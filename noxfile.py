"""The developer's entry point: ``nox`` runs lint, typing and every test session.

``nox -s tests`` runs the whole suite on each supported Python with the latest frameworks;
``nox -s django flask starlette`` run each adapter's tests against the oldest and the newest
release it supports. Sessions use uv when it is installed, virtualenv otherwise.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typing", "tests", "django", "flask", "starlette"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = ["3.11", "3.12", "3.13"]
FRAMEWORK_PYTHON = "3.12"
TEST_DEPS = nox.project.dependency_groups(PYPROJECT, "test")

# The oldest release each adapter supports, and "latest" for the newest on the index.
DJANGO_VERSIONS = ["5.2", "latest"]
FLASK_VERSIONS = ["3.0", "latest"]
STARLETTE_VERSIONS = ["0.29", "latest"]
# Each FastAPI release pins a narrow Starlette range: the one built on each Starlette above.
FASTAPI_FOR_STARLETTE = {"0.29": "0.108", "latest": "latest"}


def _pin(name: str, version: str) -> str:
    return name if version == "latest" else f"{name}=={version}.*"


@nox.session(python=PYTHONS[-1])
def demo(session: nox.Session) -> None:
    """The main job: every example project on a real server, every event delivered to it."""
    session.install("-e", ".[all]", "uvicorn", "gunicorn")
    session.run("messages-integrations", "demo", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff's linter and formatter check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHONS[0])
def typing(session: nox.Session) -> None:
    """mypy --strict over the package and the tests, then the examples it must reject."""
    session.install("-e", ".[all]", *nox.project.dependency_groups(PYPROJECT, "typing"))
    session.run("mypy", *session.posargs)
    # The examples that must NOT type-check: each marked line has to be reported.
    session.run("python", "tests/typing/check_rejections.py")


@nox.session(python=PYTHONS)
@nox.parametrize("json", ["stdlib", "orjson"])
def tests(session: nox.Session, json: str) -> None:
    """The whole suite, every adapter included, with the newest frameworks.

    Once with the standard library's JSON parser and once with the ``speedups`` extra (orjson).
    """
    extras = "all,speedups" if json == "orjson" else "all"
    session.install("-e", f".[{extras}]", *TEST_DEPS)
    session.run("pytest", *session.posargs)


@nox.session(python=FRAMEWORK_PYTHON)
def bench(session: nox.Session) -> None:
    """Core, HTTP and memory benchmarks (a few minutes); the tables of benchmarks/README.md."""
    session.install("-e", ".[all,speedups]", *nox.project.dependency_groups(PYPROJECT, "bench"))
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(python=FRAMEWORK_PYTHON)
@nox.parametrize("django", DJANGO_VERSIONS)
def django(session: nox.Session, django: str) -> None:
    """The Django adapter against the oldest and newest Django supported."""
    session.install("-e", ".", _pin("django", django), *TEST_DEPS)
    session.run("pytest", "tests/django", *session.posargs)


@nox.session(python=FRAMEWORK_PYTHON)
@nox.parametrize("flask", FLASK_VERSIONS)
def flask(session: nox.Session, flask: str) -> None:
    """The Flask adapter against the oldest and newest Flask supported."""
    session.install("-e", ".", _pin("flask", flask), *TEST_DEPS)
    session.run("pytest", "tests/flask", *session.posargs)


@nox.session(python=FRAMEWORK_PYTHON)
@nox.parametrize("starlette", STARLETTE_VERSIONS)
def starlette(session: nox.Session, starlette: str) -> None:
    """The Starlette/FastAPI adapter against the oldest and newest Starlette and FastAPI."""
    fastapi = FASTAPI_FOR_STARLETTE[starlette]
    # Django too: the middleware is also shown to wrap Django's ASGI application.
    pins = [_pin("starlette", starlette), _pin("fastapi", fastapi), "django"]
    session.install("-e", ".", *pins, *TEST_DEPS)
    session.run("pytest", "tests/starlette", *session.posargs)
