"""The example projects' background handlers, run as their READMEs say: the FastAPI example with
``celery -A celery_app worker``, the Django example with ``runserver`` and ``db_worker``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from messages_integrations.testing import build_delivery
from tests.queues.conftest import Worker, require_module, wait_for, worker_env
from tests.support.servers import RunningServer, free_port, serve

pytestmark = pytest.mark.http

EXAMPLES = Path(__file__).parents[2] / "example_projects"
SECRET = "whsec_example"


def send_message(server: RunningServer, path: str) -> str:
    """POST a signed message.received; return its delivery id once answered 200 "ok"."""
    delivery = build_delivery("message.received", secret=SECRET)
    response = httpx.post(
        server.url + path, content=delivery.body, headers=delivery.headers, timeout=30
    )
    # The example's inline handlers ran too: the usual 200, not 202.
    assert (response.status_code, response.json()["status"]) == (200, "ok"), server.log()
    assert delivery.delivery_id is not None
    return delivery.delivery_id


def ran_in_worker(worker: Worker, delivery_id: str) -> None:
    """Wait for the example's background handler to say, in the worker's output, that it ran."""
    said = f"(delivery {delivery_id}"
    wait_for(lambda: said in worker.log(), timeout=60, every=0.2)
    assert worker.log().count(said) == 1


@pytest.fixture
def fastapi_env(redis_url: str) -> dict[str, str]:
    require_module("celery")
    return worker_env(
        MESSAGES_WEBHOOK_SECRET=SECRET,
        MESSAGES_WEBHOOK_QUEUE="celery_app:webhook_queue",
        MESSAGES_WEBHOOK_STORE=redis_url.rsplit("/", 1)[0] + "/1",
        CELERY_BROKER_URL=redis_url,
        PYTHONPATH=str(EXAMPLES / "fastapi_app"),
    )


def test_fastapi_example_runs_its_background_handler_in_a_celery_worker(
    fastapi_env: dict[str, str], tmp_path: Path
) -> None:
    argv = [sys.executable, "-m", "celery", "-A", "celery_app", "worker"]
    # The README's command as it is: its banner, printed at any log level, says it started.
    worker = Worker(argv, fastapi_env, tmp_path / "celery.log", "[queues]")
    worker.start()
    try:
        port = free_port()
        server_argv = ["-m", "uvicorn", "app:app", "--port", str(port), "--lifespan", "on"]
        with serve(server_argv, port=port, cwd=EXAMPLES / "fastapi_app", env=fastapi_env) as app:
            delivery_id = send_message(app, "/webhooks")
            ran_in_worker(worker, delivery_id)
            inbox_id = send_message(app, "/inbox")  # the dependency queues the job too
            ran_in_worker(worker, inbox_id)
            assert "background: replied" not in app.log()
    finally:
        worker.stop()


@pytest.fixture
def django_project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the Django example (its task database is written beside it), migrated."""
    require_module("django_tasks_db")
    project = tmp_path / "django_project"
    shutil.copytree(EXAMPLES / "django_project", project)
    env = worker_env(
        MESSAGES_WEBHOOK_SECRET=SECRET,
        MESSAGES_WEBHOOK_QUEUE="inbox.background:webhook_queue",
        PYTHONPATH=str(project),
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=project, env=env, check=True, timeout=120)
    return project, env


def test_django_example_runs_its_background_handler_in_db_worker(
    django_project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    project, env = django_project
    manage = [sys.executable, str(project / "manage.py")]
    worker = Worker([*manage, "db_worker"], env, tmp_path / "db_worker.log", "Starting worker")
    worker.start()
    try:
        port = free_port()
        runserver = [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"]
        with serve(runserver, port=port, cwd=project, env=env) as server:
            delivery_id = send_message(server, "/webhooks/messages")
            ran_in_worker(worker, delivery_id)
            assert "background: replied" not in server.log()
    finally:
        worker.stop()
