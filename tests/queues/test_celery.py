"""CeleryQueue with a real ``celery worker`` (prefork, two processes) on the private test Redis."""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import pytest
import redis

from messages_integrations.queues import CELERY_TASK_NAME, EnqueueError, Job
from messages_integrations.testing import build_delivery
from tests.queues.conftest import Worker, wait_for
from tests.support.services import Service

pytestmark = pytest.mark.http


def job(text: str = "hello", delivery_id: str | None = None) -> Job:
    """A job for a message.received delivery whose text tells the test handler what to do."""
    delivery = build_delivery(
        "message.received",
        {**_MESSAGE, "text": text},
        secret="whsec_celery",
        delivery_id=delivery_id,
    )
    assert delivery.delivery_id is not None
    return Job.from_delivery(delivery.body, key=delivery.delivery_id, event="message.received")


_MESSAGE = {
    "id": "msg_1",
    "chat_id": "cht_1",
    "sender": "+15551234567",
    "is_from_me": False,
    "sent_at": 1710000000000,
}


def count(records: Any, table: str, key: str) -> int:
    value = records.hget(table, key)
    return int(value) if value is not None else 0


def test_enqueue_returns_at_once_and_the_slow_handler_runs_once_in_the_worker(
    celery_app: ModuleType, celery_worker: Worker, records: Any
) -> None:
    slow = job("sleep 2")
    started = time.perf_counter()
    celery_app.queue.enqueue(slow)
    assert time.perf_counter() - started < 1.0
    wait_for(lambda: count(records, "handled", slow.key) == 1)
    worker_pid = int(records.hget("handled_pid", slow.key))
    assert worker_pid != os.getpid()
    assert celery_worker.process is not None
    assert worker_pid != celery_worker.process.pid  # a pool process, not the parent
    time.sleep(1)
    assert count(records, "handled", slow.key) == 1
    assert count(records, "attempts", slow.key) == 1


def test_fifty_jobs_enqueued_four_times_each_at_once_are_each_handled_once(
    celery_app: ModuleType, celery_worker: Worker, records: Any
) -> None:
    jobs = [job("sleep 0.05") for _ in range(50)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(celery_app.queue.enqueue, [j for j in jobs for _ in range(4)]))
    keys = [j.key for j in jobs]
    wait_for(lambda: all(count(records, "handled", k) >= 1 for k in keys), timeout=90)
    time.sleep(4)  # let retried copies of in-progress jobs come back and find them done
    handled = {k: count(records, "handled", k) for k in keys}
    assert handled == dict.fromkeys(keys, 1)


def test_a_pool_process_killed_mid_handler_is_replaced_and_the_job_handled_once(
    celery_app: ModuleType, celery_worker: Worker, records: Any
) -> None:
    victim = job("sleep 4")
    celery_app.queue.enqueue(victim)
    child = int(wait_for(lambda: records.hget("started_pid", victim.key)))
    os.kill(child, signal.SIGKILL)
    # reject_on_worker_lost puts the job back; the lease of the dead process must expire first.
    wait_for(lambda: count(records, "handled", victim.key) == 1, timeout=60)
    assert int(records.hget("handled_pid", victim.key)) != child
    assert count(records, "attempts", victim.key) >= 2
    time.sleep(2)
    assert count(records, "handled", victim.key) == 1


def test_a_whole_worker_killed_mid_handler_hands_the_job_to_the_restarted_worker(
    celery_app: ModuleType, celery_worker: Worker, records: Any
) -> None:
    victim = job("sleep 4")
    celery_app.queue.enqueue(victim)
    wait_for(lambda: records.hget("started_pid", victim.key))
    celery_worker.kill()
    assert count(records, "handled", victim.key) == 0
    celery_worker.start()
    # The job was never acknowledged: Redis gives it back after the visibility timeout.
    wait_for(lambda: count(records, "handled", victim.key) == 1, timeout=60)
    time.sleep(2)
    assert count(records, "handled", victim.key) == 1


def test_enqueue_fails_promptly_while_the_broker_is_down_and_works_once_it_is_back(
    celery_app: ModuleType, celery_worker: Worker, records: Any, redis_server: Service
) -> None:
    first = job()
    celery_app.queue.enqueue(first)  # the web process now holds a broker connection
    wait_for(lambda: count(records, "handled", first.key) == 1)
    redis_server.stop()
    started = time.perf_counter()
    with pytest.raises(EnqueueError, match="did not accept"):
        celery_app.queue.enqueue(job())
    assert time.perf_counter() - started < 5.0
    redis_server.start()
    later = job()
    celery_app.queue.enqueue(later)
    wait_for(lambda: count(records, "handled", later.key) == 1, timeout=60)


def test_a_failing_handler_is_retried_and_handled_once(
    celery_app: ModuleType, celery_worker: Worker, records: Any
) -> None:
    flaky = job("fail once")
    celery_app.queue.enqueue(flaky)
    wait_for(lambda: count(records, "handled", flaky.key) == 1)
    time.sleep(1)
    assert count(records, "attempts", flaky.key) == 2
    assert count(records, "handled", flaky.key) == 1


def test_monitoring_sees_the_job_key_never_the_message_text(
    celery_app: ModuleType, redis_url: str
) -> None:
    private = job("the door code is 4721")
    celery_app.queue.enqueue(private)  # no worker: the message stays in the broker
    broker = redis.Redis.from_url(redis_url)
    try:
        [raw] = broker.lrange("celery", 0, -1)
    finally:
        broker.close()
    headers = json.loads(raw)["headers"]
    assert headers["id"] == private.key
    assert private.key in headers["argsrepr"]
    assert "4721" not in headers["argsrepr"] + headers["kwargsrepr"]


def _queued(broker_url: str, name: str = "celery") -> list[dict[str, Any]]:
    """The messages waiting in a Redis queue of the broker, oldest first."""
    broker = redis.Redis.from_url(broker_url)
    try:
        return [json.loads(raw) for raw in reversed(broker.lrange(name, 0, -1))]
    finally:
        broker.close()


def _commands(broker: Any) -> dict[str, int]:
    """How often the broker ran each command so far, ``INFO`` itself left out."""
    stats = broker.info("commandstats")
    return {name: value["calls"] for name, value in stats.items() if name != "cmdstat_info"}


def test_each_enqueue_costs_the_broker_one_lpush_and_nothing_else(
    celery_app: ModuleType, redis_url: str
) -> None:
    celery_app.queue.enqueue(job())  # the first publish connects and declares the queue
    broker = redis.Redis.from_url(redis_url)
    try:
        before = _commands(broker)
        for _ in range(5):
            celery_app.queue.enqueue(job())
        after = _commands(broker)
    finally:
        broker.close()
    ran = {name: calls - before.get(name, 0) for name, calls in after.items()}
    assert {name: calls for name, calls in ran.items() if calls} == {"cmdstat_lpush": 5}


def test_the_message_is_the_one_celerys_apply_async_publishes(
    celery_app: ModuleType, redis_url: str
) -> None:
    queued = job("compare me")
    celery_app.queue.enqueue(queued)
    celery_app.queue.task.apply_async(
        args=(queued.to_dict(),),
        task_id=queued.key,
        serializer="json",
        argsrepr=f"(<job {queued.key} {queued.event}>,)",
        kwargsrepr="{}",
    )
    ours, celerys = _queued(redis_url)
    assert ours["content-type"] == celerys["content-type"] == "application/json"
    assert ours["content-encoding"] == celerys["content-encoding"]
    # The same arguments, as the worker decodes them (kombu spaces its JSON; this library does not).
    assert _arguments(ours) == _arguments(celerys)
    assert ours["headers"] == celerys["headers"]
    # Celery copies its argsrepr and kwargsrepr into the properties too; nothing reads them there.
    theirs = {k: v for k, v in celerys["properties"].items() if k not in ("argsrepr", "kwargsrepr")}
    assert set(ours["properties"]) == set(theirs)
    for name in ("delivery_mode", "priority", "body_encoding", "delivery_info", "correlation_id"):
        assert ours["properties"][name] == theirs[name], name
    assert ours["properties"]["delivery_tag"] != theirs["delivery_tag"]


def _arguments(message: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(message["body"]))


def test_enqueue_from_an_event_loop_costs_one_lpush_and_leaves_no_connection_behind(
    celery_app: ModuleType, redis_url: str
) -> None:
    import asyncio

    broker = redis.Redis.from_url(redis_url)
    queued: list[Job] = []

    async def enqueue(count: int) -> dict[str, int]:
        queued.append(job())
        await celery_app.queue.aenqueue(queued[-1])  # this loop's first job connects
        before = _commands(broker)
        for _ in range(count):
            queued.append(job())
            await celery_app.queue.aenqueue(queued[-1])
        after = _commands(broker)
        return {name: calls - before.get(name, 0) for name, calls in after.items()}

    try:
        queued.append(job())
        celery_app.queue.enqueue(queued[-1])  # the queue's first publish plans and declares
        connected = len(broker.client_list())
        for _ in range(3):  # a new loop each time, as asyncio.run makes one
            ran = asyncio.run(enqueue(5))
            assert {name: calls for name, calls in ran.items() if calls} == {"cmdstat_lpush": 5}
        assert len(broker.client_list()) == connected
    finally:
        broker.close()
    assert [message["headers"]["id"] for message in _queued(redis_url)] == [j.key for j in queued]


def test_publish_signal_listeners_see_every_job_and_the_worker_still_runs_it(
    celery_app: ModuleType, celery_worker: Worker, records: Any
) -> None:
    from celery import signals

    seen: list[str] = []

    def trace(headers: dict[str, Any], **kwargs: Any) -> None:
        headers["traced"] = "yes"  # as tracing integrations add their context
        seen.append(headers["id"])

    signals.before_task_publish.connect(trace)
    try:
        traced = job()
        celery_app.queue.enqueue(traced)
    finally:
        signals.before_task_publish.disconnect(trace)
    assert seen == [traced.key]
    wait_for(lambda: count(records, "handled", traced.key) == 1)
    untraced = job()
    celery_app.queue.enqueue(untraced)  # the listener is gone: the one-LPUSH publish again
    wait_for(lambda: count(records, "handled", untraced.key) == 1)
    assert seen == [traced.key]


def test_an_eager_app_runs_the_job_in_the_calling_process(
    celery_app: ModuleType, records: Any, redis_url: str
) -> None:
    eager = job()
    celery_app.app.conf.task_always_eager = True
    try:
        celery_app.queue.enqueue(eager)
    finally:
        celery_app.app.conf.task_always_eager = False
    assert count(records, "handled", eager.key) == 1
    assert int(records.hget("handled_pid", eager.key)) == os.getpid()
    assert _queued(redis_url) == []


def test_a_routed_queue_receives_the_job_under_its_own_name(redis_url: str) -> None:
    from celery import Celery

    from messages_integrations import WebhookRouter
    from messages_integrations.queues import CeleryQueue

    routes = Celery("routing_tests", broker=redis_url)
    routes.conf.task_routes = {CELERY_TASK_NAME: {"queue": "webhooks"}}
    named = Celery("routing_tests", broker=redis_url)
    routed = job()
    try:
        CeleryQueue(routes, router=WebhookRouter()).enqueue(routed)
        CeleryQueue(named, router=WebhookRouter(), queue="bulk").enqueue(job())
    finally:
        routes.close()
        named.close()
    [message] = _queued(redis_url, "webhooks")
    assert message["headers"]["id"] == routed.key
    assert message["properties"]["delivery_info"]["routing_key"] == "webhooks"
    [explicit] = _queued(redis_url, "bulk")
    assert explicit["properties"]["delivery_info"]["routing_key"] == "bulk"
    assert _queued(redis_url) == []


def test_a_message_with_more_of_the_job_in_it_is_built_by_celery_for_every_job(
    redis_url: str,
) -> None:
    from celery import Celery
    from celery.app.amqp import AMQP

    from messages_integrations import WebhookRouter
    from messages_integrations.queues import CeleryQueue

    class JobStampingAMQP(AMQP):  # type: ignore[misc]
        """Celery's message builder with a header naming the job, as a plugin might add."""

        def as_task_v2(self, task_id: str, name: str, *args: Any, **kwargs: Any) -> Any:
            message = super().as_task_v2(task_id, name, *args, **kwargs)
            message.headers["x-job"] = f"stamped {task_id}"
            return message

    stamping = Celery("stamping_tests", broker=redis_url, amqp=JobStampingAMQP)
    jobs = [job(), job()]
    try:
        queue = CeleryQueue(stamping, router=WebhookRouter())
        for each in jobs:
            queue.enqueue(each)
    finally:
        stamping.close()
    messages = _queued(redis_url)
    assert [message["headers"]["id"] for message in messages] == [j.key for j in jobs]
    assert [message["headers"]["x-job"] for message in messages] == [
        f"stamped {j.key}" for j in jobs
    ]


def test_jobs_enqueued_at_once_from_an_event_loop_are_each_handled_once(
    celery_app: ModuleType, celery_worker: Worker, records: Any
) -> None:
    import asyncio

    jobs = [job() for _ in range(20)]

    async def enqueue_all() -> None:
        await asyncio.gather(*(celery_app.queue.aenqueue(j) for j in jobs))

    asyncio.run(enqueue_all())
    keys = [j.key for j in jobs]
    wait_for(lambda: all(count(records, "handled", k) == 1 for k in keys), timeout=60)
