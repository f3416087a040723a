"""The Celery application the worker tests start: ``celery -A tests.queues.celery_app worker``.

Its handlers record, in Redis, what ran where: the tests read the records to check that each
delivery was handled once, in the worker's process. A message's text tells the handler what to
do: ``sleep <seconds>``, ``fail once``, or anything else to return at once. ``reaction.added``
has an inline handler (run by the web process, tests/queues/web_apps.py) and a background one.
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

from messages_integrations import MessageReceived, ReactionAdded, WebhookRouter
from messages_integrations.queues import CeleryQueue
from tests.queues.records import note_run
from tests.queues.redis_store import RedisLeaseStore

BROKER_URL = os.environ["MI_TEST_BROKER"]  # Redis db 0: Celery's queues
RECORDS_URL = os.environ["MI_TEST_RECORDS"]  # Redis db 1: the leases and what the handlers saw
LEASE = float(os.environ.get("MI_TEST_LEASE", "3"))

app = Celery("messages_integrations_tests", broker=BROKER_URL)
app.conf.update(
    # Unacknowledged jobs of a worker that died come back after this many seconds (the default
    # is an hour). It must exceed the longest handler plus the longest retry countdown.
    broker_transport_options={
        "visibility_timeout": 8,
        # Look for them every second (kombu scans every 100 s by default).
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    },
    # A worker that loses the broker stops its running jobs, which are redelivered (as in Celery 6).
    worker_cancel_long_running_tasks_on_connection_loss=True,
    worker_prefetch_multiplier=1,
    accept_content=["json"],
    task_serializer="json",
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

records = redis.Redis.from_url(RECORDS_URL)
router = WebhookRouter()
queue = CeleryQueue(
    app,
    router=router,
    store=RedisLeaseStore(records),
    lease=LEASE,
    retry_backoff=0.5,
)


@router.on("message.received", background=True)
def remember(event: MessageReceived) -> None:
    """Record the attempt, act as the text says, then record the completed handling."""
    key = event.delivery_id or "?"
    attempt = records.hincrby("attempts", key, 1)
    records.hset("started_pid", key, os.getpid())
    command = event.data.text or ""
    if command.startswith("sleep "):
        time.sleep(float(command.split()[1]))
    if command == "fail once" and attempt == 1:
        raise ConnectionError("the downstream API was down")
    records.hset("handled_pid", key, os.getpid())
    records.hincrby("handled", key, 1)


@router.on("reaction.added")
def note_inline(event: ReactionAdded) -> None:
    """Inline: runs in the web process, during the request."""
    note_run(records, "inline", event)


@router.on("reaction.added", background=True)
def note_background(event: ReactionAdded) -> None:
    """Background: runs in a worker."""
    note_run(records, "background", event)
