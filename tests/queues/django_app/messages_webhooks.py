"""Background handlers of the Django Tasks tests, found by autodiscovery in the worker too."""

from __future__ import annotations

import os
import time

import redis

from messages_integrations import MessageReceived, on
from messages_integrations.queues import DjangoTasksQueue

records = redis.Redis.from_url(os.environ["MI_TEST_RECORDS"])
queue = DjangoTasksQueue(lease=3, retry_backoff=0.5)


@on("message.received", background=True)
def remember(event: MessageReceived) -> None:
    """Record the attempt, act as the text says (``sleep N``, ``fail once``), record success."""
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
