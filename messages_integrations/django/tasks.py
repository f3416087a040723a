"""The one task :class:`~messages_integrations.queues.DjangoTasksQueue` enqueues.

Its import path is stored with every enqueued job, so it stays put. Django's own Tasks framework
(6.0+) is used when present, the ``django-tasks`` backport otherwise.
"""

from __future__ import annotations

import importlib
from importlib.util import find_spec
from typing import Any

__all__ = ["run_background_handlers"]

# Either framework: they share their API, and only one of them is present on Django 5.2.
_tasks: Any = importlib.import_module(
    "django.tasks" if find_spec("django.tasks") is not None else "django_tasks"
)


@_tasks.task(takes_context=True)  # type: ignore[misc, untyped-decorator, unused-ignore]
def run_background_handlers(context: Any, job: dict[str, str], attempt: int = 1) -> str:
    """Run the background handlers of one delivery (enqueued by DjangoTasksQueue)."""
    from messages_integrations.queues import django_worker_queue

    queue = django_worker_queue(context.task_result.backend)
    return queue.run(job, attempt)
