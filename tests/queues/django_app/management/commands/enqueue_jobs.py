"""``enqueue_jobs TEXT [--jobs N] [--copies C] [--atomic commit|rollback] [--delivery-id ID]``:
the web side of the Django Tasks tests. Prints one JSON line: the delivery keys and the slowest
enqueue in seconds."""

from __future__ import annotations

import json
import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from messages_integrations.queues import Job
from messages_integrations.testing import build_delivery
from tests.queues.django_app.messages_webhooks import queue

MESSAGE = {
    "id": "msg_1",
    "chat_id": "cht_1",
    "sender": "+15551234567",
    "is_from_me": False,
    "sent_at": 1710000000000,
}


class Command(BaseCommand):
    """Enqueue message.received jobs through DjangoTasksQueue."""

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("text")
        parser.add_argument("--jobs", type=int, default=1)
        parser.add_argument("--copies", type=int, default=1)
        parser.add_argument("--atomic", choices=["commit", "rollback"])
        parser.add_argument("--delivery-id", help="enqueue this delivery again (one job)")

    def handle(self, *args: Any, **options: Any) -> None:
        jobs = []
        for _ in range(options["jobs"]):
            data = {**MESSAGE, "text": options["text"]}
            delivery = build_delivery(
                "message.received",
                data,
                secret="whsec_django_tasks",
                delivery_id=options["delivery_id"],
            )
            assert delivery.delivery_id is not None
            jobs.append(
                Job.from_delivery(delivery.body, key=delivery.delivery_id, event="message.received")
            )
        slowest = 0.0
        for job in jobs:
            for _ in range(options["copies"]):
                started = time.perf_counter()
                if options["atomic"]:
                    self._in_transaction(job, options["atomic"])
                else:
                    queue.enqueue(job)
                slowest = max(slowest, time.perf_counter() - started)
        self.stdout.write(json.dumps({"keys": [j.key for j in jobs], "slowest": slowest}))

    @staticmethod
    def _in_transaction(job: Job, outcome: str) -> None:
        try:
            with transaction.atomic():
                queue.enqueue(job)
                if outcome == "rollback":
                    raise RuntimeError("the view failed after enqueueing")
        except RuntimeError:
            pass
