"""DjangoTasksQueue with real ``db_worker`` processes (django-tasks' database backend, SQLite)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from tests.queues.conftest import Worker, django_command, wait_for

pytestmark = pytest.mark.http


def count(records: Any, table: str, key: str) -> int:
    value = records.hget(table, key)
    return int(value) if value is not None else 0


def enqueue(env: dict[str, str], text: str, *options: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(django_command(env, "enqueue_jobs", text, *options))
    return result


def test_enqueue_returns_at_once_and_the_slow_handler_runs_once_in_a_worker(
    django_env: dict[str, str], db_workers: list[Worker], records: Any
) -> None:
    sent = enqueue(django_env, "sleep 2")
    assert sent["slowest"] < 1.0
    [key] = sent["keys"]
    wait_for(lambda: count(records, "handled", key) == 1)
    worker_pids = {w.process.pid for w in db_workers if w.process is not None}
    assert int(records.hget("handled_pid", key)) in worker_pids
    assert int(records.hget("handled_pid", key)) != os.getpid()
    time.sleep(1)
    assert count(records, "attempts", key) == 1


def test_copies_of_each_job_are_handled_once_by_two_workers(
    django_env: dict[str, str], db_workers: list[Worker], records: Any
) -> None:
    keys = enqueue(django_env, "sleep 0.05", "--jobs=20", "--copies=4")["keys"]
    wait_for(lambda: all(count(records, "handled", k) >= 1 for k in keys), timeout=90)
    time.sleep(4)  # copies deferred while another worker held the job come back as duplicates
    assert {k: count(records, "handled", k) for k in keys} == dict.fromkeys(keys, 1)


def test_a_failing_handler_is_enqueued_again_and_handled_once(
    django_env: dict[str, str], db_workers: list[Worker], records: Any
) -> None:
    [key] = enqueue(django_env, "fail once")["keys"]
    wait_for(lambda: count(records, "handled", key) == 1)
    time.sleep(1)
    assert count(records, "attempts", key) == 2
    assert count(records, "handled", key) == 1


def test_inside_a_transaction_the_job_is_enqueued_only_when_it_commits(
    django_env: dict[str, str], db_workers: list[Worker], records: Any
) -> None:
    [rolled_back] = enqueue(django_env, "hello", "--atomic=rollback")["keys"]
    [committed] = enqueue(django_env, "hello", "--atomic=commit")["keys"]
    wait_for(lambda: count(records, "handled", committed) == 1)
    time.sleep(1)  # the worker polls every 0.1 s: a rolled-back job would have run by now
    assert count(records, "attempts", rolled_back) == 0


def task_statuses(env: dict[str, str]) -> list[str]:
    """The status of every task in the database backend's table."""
    code = (
        "from django_tasks_db.models import DBTaskResult; "
        "print('statuses:', *DBTaskResult.objects.values_list('status', flat=True))"
    )
    output = django_command(env, "shell", "-c", code)
    [line] = [line for line in output.splitlines() if line.startswith("statuses:")]
    return line.split()[1:]


def test_a_job_whose_worker_died_is_not_run_again_until_it_is_enqueued_again(
    django_env: dict[str, str], db_workers: list[Worker], records: Any
) -> None:
    [key] = enqueue(django_env, "sleep 4")["keys"]
    wait_for(lambda: records.hget("started_pid", key))
    for worker in db_workers:
        worker.kill()
    for worker in db_workers:
        worker.start()
    time.sleep(8)  # the dead attempt's lease (3 s) has long expired, the workers poll every 0.1 s
    assert count(records, "handled", key) == 0
    assert task_statuses(django_env) == ["RUNNING"]  # abandoned, never picked up again
    # What docs/background.md advises: enqueue the job again; it runs once.
    enqueue(django_env, "sleep 4", f"--delivery-id={key}")
    wait_for(lambda: count(records, "handled", key) == 1, timeout=60)
    enqueue(django_env, "sleep 4", f"--delivery-id={key}")  # once more, after it ran: a duplicate
    wait_for(lambda: task_statuses(django_env).count("SUCCESSFUL") == 2, timeout=60)
    assert count(records, "handled", key) == 1
    assert count(records, "attempts", key) == 2
