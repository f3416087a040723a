"""Handlers of the Django Tasks tests, found by autodiscovery in the web process and the worker.

``message.received`` has a background handler; ``reaction.added`` an inline and a background one.
"""

from __future__ import annotations

import os
import time

import redis

from messages_integrations import MessageReceived, ReactionAdded, on
from messages_integrations.queues import DjangoTasksQueue
from tests.queues.records import note_run

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


@on("reaction.added")
def note_inline(event: ReactionAdded) -> None:
    """Inline: runs in the web process, during the request."""
    note_run(records, "inline", event)


@on("reaction.added", background=True)
def note_background(event: ReactionAdded) -> None:
    """Background: runs in a db_worker."""
    note_run(records, "background", event)
