"""run_job and Job: the worker side of background handlers, with the in-memory store."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import pytest

from messages_integrations import Event, InMemoryDeliveryStore, MessageReceived, WebhookRouter
from messages_integrations.queues import (
    InvalidJobError,
    Job,
    JobInProgress,
    TaskQueue,
    arun_job,
    run_job,
)
from messages_integrations.testing import build_delivery


def job_for(name: str = "message.received", delivery_id: str | None = None) -> Job:
    delivery = build_delivery(name, secret="whsec_jobs", delivery_id=delivery_id)
    return Job.from_delivery(delivery.body, key=delivery.delivery_id or "x", event=name)


def test_a_job_round_trips_through_json() -> None:
    job = job_for()
    assert Job.from_dict(json.loads(json.dumps(job.to_dict()))) == job


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ([1, 2], "JSON object"),
        ({"body": "{}", "key": "k"}, "needs the fields event"),
        ({"body": "{}", "key": "k", "event": "x", "extra": 1}, "unexpected job fields: extra"),
        ({"body": b"{}", "key": "k", "event": "x"}, "'body' must be a string"),
        ({"body": "{}", "key": "", "event": "x"}, "'key' must not be empty"),
    ],
)
def test_job_from_dict_is_strict(data: object, complaint: str) -> None:
    with pytest.raises(InvalidJobError, match=complaint):
        Job.from_dict(data)


def test_a_body_that_is_not_utf8_is_no_job() -> None:
    with pytest.raises(InvalidJobError, match="UTF-8"):
        Job.from_delivery(b"\xff{}", key="k", event="message.received")


def test_run_job_runs_only_background_handlers_with_the_typed_event(
    router: WebhookRouter,
) -> None:
    seen: list[str] = []

    @router.on("message.received", background=True)
    def later(event: MessageReceived) -> None:
        seen.append(event.data.chat_id)

    router.on("message.received")(lambda event: seen.append("inline"))
    job = job_for()
    assert run_job(job, router=router, store=InMemoryDeliveryStore()) == "ok"
    assert seen == [json.loads(job.body)["data"]["chat_id"]]


def test_a_second_copy_of_a_handled_job_is_a_duplicate(router: WebhookRouter) -> None:
    calls: list[Event[Any]] = []
    router.on("*", background=True)(calls.append)
    store = InMemoryDeliveryStore()
    job = job_for()
    assert run_job(job, router=router, store=store) == "ok"
    assert run_job(job, router=router, store=store) == "duplicate"
    assert len(calls) == 1


def test_jobs_and_requests_use_separate_keys(router: WebhookRouter) -> None:
    router.on("*", background=True)(lambda event: None)
    store = InMemoryDeliveryStore()
    job = job_for()
    # The request side holds (and completes) the delivery's own key; the job is still new.
    store.claim(f"delivery:{job.key}", "request", lease=30)
    store.claim(job.key, "request", lease=30)
    assert run_job(job, router=router, store=store) == "ok"


def test_a_failed_job_releases_its_lease_so_a_retry_runs_in_full(router: WebhookRouter) -> None:
    attempts: list[int] = []

    @router.on("message.received", background=True)
    def flaky(event: Event[Any]) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("the API was down")

    store = InMemoryDeliveryStore()
    job = job_for()
    with pytest.raises(ConnectionError):
        run_job(job, router=router, store=store)
    assert run_job(job, router=router, store=store) == "ok"
    assert run_job(job, router=router, store=store) == "duplicate"
    assert len(attempts) == 2


def test_a_job_another_worker_runs_raises_job_in_progress(router: WebhookRouter) -> None:
    started, release = threading.Event(), threading.Event()

    @router.on("message.received", background=True)
    def slow(event: Event[Any]) -> None:
        started.set()
        release.wait(10)

    store = InMemoryDeliveryStore()
    job = job_for()
    results: list[str] = []
    first = threading.Thread(
        target=lambda: results.append(run_job(job, router=router, store=store))
    )
    first.start()
    assert started.wait(10)
    with pytest.raises(JobInProgress):
        run_job(job, router=router, store=store)
    release.set()
    first.join(10)
    assert results == ["ok"]


def test_the_lease_is_renewed_while_a_slow_handler_runs(router: WebhookRouter) -> None:
    lease = 0.3

    @router.on("message.received", background=True)
    def slow(event: Event[Any]) -> None:
        time.sleep(lease * 4)  # far past one lease: only the heartbeat keeps it

    store = InMemoryDeliveryStore()
    job = job_for()
    outcome: list[str] = []
    worker = threading.Thread(
        target=lambda: outcome.append(run_job(job, router=router, store=store, lease=lease))
    )
    worker.start()
    time.sleep(lease * 2.5)
    with pytest.raises(JobInProgress):
        run_job(job, router=router, store=store, lease=lease)
    worker.join(10)
    assert outcome == ["ok"]


def test_a_dead_workers_lease_expires_and_the_job_runs_again(router: WebhookRouter) -> None:
    ran: list[int] = []
    router.on("*", background=True)(lambda event: ran.append(1))
    store = InMemoryDeliveryStore()
    job = job_for()
    # A worker took the lease and died: nobody renews it.
    store.claim("job:" + job.key, "dead worker", lease=0.2)
    with pytest.raises(JobInProgress):
        run_job(job, router=router, store=store)
    time.sleep(0.3)
    assert run_job(job, router=router, store=store) == "ok"
    assert ran == [1]


def test_a_job_whose_body_is_not_an_event_is_invalid(router: WebhookRouter) -> None:
    job = Job(body='{"event": "message.received"}', key="k", event="message.received")
    with pytest.raises(InvalidJobError, match="valid event"):
        run_job(job, router=router, store=InMemoryDeliveryStore())
    swapped = job_for("reaction.added")
    with pytest.raises(InvalidJobError, match=r"names 'message\.received'"):
        run_job(
            Job(swapped.body, swapped.key, "message.received"),
            router=router,
            store=InMemoryDeliveryStore(),
        )


def test_each_job_logs_its_outcome_with_the_delivery_id(
    router: WebhookRouter, caplog: pytest.LogCaptureFixture
) -> None:
    router.on("*", background=True)(lambda event: None)
    store = InMemoryDeliveryStore()
    job = job_for(delivery_id="dlv_" + "a" * 32)
    caplog.set_level(logging.INFO, "messages_integrations")
    run_job(job, router=router, store=store)
    run_job(job, router=router, store=store)
    # The fields ride on each record as attributes (logging's ``extra``).
    fields = [vars(record) for record in caplog.records]
    outcomes = [(f["outcome"], f["delivery_id"], f["event"]) for f in fields]
    assert outcomes == [
        ("ok", "dlv_" + "a" * 32, "message.received"),
        ("duplicate", "dlv_" + "a" * 32, "message.received"),
    ]


@pytest.mark.anyio
async def test_arun_job_runs_async_and_sync_background_handlers_once(
    router: WebhookRouter,
) -> None:
    seen: list[str] = []

    @router.on("message.received", background=True)
    async def first(event: MessageReceived) -> None:
        seen.append("async")

    router.on("message.received", background=True)(lambda event: seen.append("sync"))
    store = InMemoryDeliveryStore()
    job = job_for()
    assert await arun_job(job, router=router, store=store) == "ok"
    assert await arun_job(job, router=router, store=store) == "duplicate"
    assert seen == ["async", "sync"]


@pytest.mark.anyio
async def test_arun_job_releases_after_a_failure(router: WebhookRouter) -> None:
    @router.on("message.received", background=True)
    async def broken(event: MessageReceived) -> None:
        raise ValueError("nope")

    store = InMemoryDeliveryStore()
    job = job_for()
    with pytest.raises(ValueError, match="nope"):
        await arun_job(job, router=router, store=store)
    assert store.claim("job:" + job.key, "next", lease=1).value == "new"


@pytest.mark.anyio
async def test_a_task_queue_needs_only_enqueue() -> None:
    class ListQueue(TaskQueue):
        def __init__(self) -> None:
            self.jobs: list[Job] = []

        def enqueue(self, job: Job) -> None:
            self.jobs.append(job)

    queue = ListQueue()
    job = job_for()
    await queue.aenqueue(job)
    assert queue.jobs == [job]
    assert queue.describe() == "ListQueue"
