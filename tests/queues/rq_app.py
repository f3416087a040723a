"""The RQ recipe of docs/background.md, run by a real ``rq worker`` in the tests.

The part between the markers is the documentation's code block, character for character
(``tests/queues/test_rq.py`` checks that); above it, what the recipe leaves to the application.
"""

from __future__ import annotations

import os

import redis

from messages_integrations import MessageReceived, WebhookRouter
from tests.queues.redis_store import RedisLeaseStore

router = WebhookRouter()
store = RedisLeaseStore(redis.Redis.from_url(os.environ["MI_TEST_RECORDS"]))
records = redis.Redis.from_url(os.environ["MI_TEST_RECORDS"])


@router.on("message.received", background=True)
def remember(event: MessageReceived) -> None:
    """Record the attempt; fail the first one when the text says ``fail once``."""
    key = event.delivery_id or "?"
    attempt = records.hincrby("attempts", key, 1)
    if event.data.text == "fail once" and attempt == 1:
        raise ConnectionError("the downstream API was down")
    records.hset("handled_pid", key, os.getpid())
    records.hincrby("handled", key, 1)


# --- recipe ---
from redis import Redis  # noqa: E402
from rq import Queue, Retry  # noqa: E402
from rq.serializers import JSONSerializer  # noqa: E402

from messages_integrations.queues import Job, TaskQueue, run_job  # noqa: E402


def run_background_handlers(data: dict[str, str]) -> str:
    """The RQ job: run the delivery's background handlers once."""
    return run_job(Job.from_dict(data), router=router, store=store)


class RQQueue(TaskQueue):
    """Background handlers on RQ; start ``rq worker --with-scheduler --serializer
    rq.serializers.JSONSerializer``."""

    def __init__(self, connection: Redis, name: str = "webhooks") -> None:
        self.queue = Queue(name, connection=connection, serializer=JSONSerializer)

    def enqueue(self, job: Job) -> None:
        self.queue.enqueue(
            run_background_handlers,
            job.to_dict(),
            retry=Retry(max=8, interval=[1, 5, 30, 120, 600]),
        )


# --- end of recipe ---
