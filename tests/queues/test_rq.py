"""The RQ recipe of docs/background.md with a real ``rq worker`` on the private test Redis."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from messages_integrations.queues import Job
from messages_integrations.testing import build_delivery
from tests.queues.conftest import ROOT, Worker, require_module, wait_for, worker_env

pytestmark = pytest.mark.http

_MESSAGE = {
    "id": "msg_1",
    "chat_id": "cht_1",
    "sender": "+15551234567",
    "is_from_me": False,
    "sent_at": 1710000000000,
}


def job(text: str) -> Job:
    delivery = build_delivery("message.received", {**_MESSAGE, "text": text}, secret="whsec_rq")
    assert delivery.delivery_id is not None
    return Job.from_delivery(delivery.body, key=delivery.delivery_id, event="message.received")


def count(records: Any, table: str, key: str) -> int:
    value = records.hget(table, key)
    return int(value) if value is not None else 0


@pytest.fixture
def rq_queue(redis_url: str, records_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The recipe's RQQueue, in this process (the web side)."""
    require_module("rq")
    monkeypatch.setenv("MI_TEST_RECORDS", records_url)
    import redis

    from tests.queues import rq_app

    return rq_app.RQQueue(redis.Redis.from_url(redis_url))


@pytest.fixture
def rq_worker(redis_url: str, records_url: str, tmp_path: Path) -> Iterator[Worker]:
    """``rq worker --with-scheduler`` with the JSON serializer, on the test Redis."""
    argv = [
        sys.executable,
        "-m",
        "rq.cli",
        "worker",
        "webhooks",
        "--url",
        redis_url,
        "--with-scheduler",
        "--serializer",
        "rq.serializers.JSONSerializer",
    ]
    env = worker_env(MI_TEST_RECORDS=records_url)
    worker = Worker(argv, env, tmp_path / "rq.log", "Listening on")
    worker.start()
    yield worker
    worker.stop()


def test_the_documented_recipe_is_the_tested_one() -> None:
    docs = (ROOT / "docs" / "background.md").read_text(encoding="utf-8")
    module = (ROOT / "tests" / "queues" / "rq_app.py").read_text(encoding="utf-8")
    recipe = module.split("# --- recipe ---\n", 1)[1].split("# --- end of recipe ---", 1)[0]
    assert recipe.replace("  # noqa: E402", "").strip() + "\n```" in docs


def test_the_rq_recipe_runs_the_handler_once_in_the_worker(
    rq_queue: Any, rq_worker: Worker, records: Any
) -> None:
    sent = job("hello")
    started = time.perf_counter()
    rq_queue.enqueue(sent)
    assert time.perf_counter() - started < 1.0
    wait_for(lambda: count(records, "handled", sent.key) == 1)
    assert int(records.hget("handled_pid", sent.key)) != os.getpid()


def test_the_rq_recipe_retries_a_failing_handler_and_handles_it_once(
    rq_queue: Any, rq_worker: Worker, records: Any
) -> None:
    flaky = job("fail once")
    rq_queue.enqueue(flaky)
    rq_queue.enqueue(flaky)  # a second copy of the same delivery
    wait_for(lambda: count(records, "handled", flaky.key) == 1, timeout=60)
    time.sleep(3)
    assert count(records, "handled", flaky.key) == 1
