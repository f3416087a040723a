"""The background handler and the queue that runs it, on Django's Tasks framework.

Loaded when ``MESSAGES_WEBHOOK_QUEUE=inbox.background:webhook_queue`` is set: the webhook view and
``python manage.py db_worker`` both resolve that name, and settings.py then adds the task
database. Without it the example runs with no database and no worker.
"""

import logging
import os
import time

from messages_integrations import MessageReceived, on
from messages_integrations.queues import DjangoTasksQueue

logger = logging.getLogger(__name__)

webhook_queue = DjangoTasksQueue()


@on("message.received", background=True)
def reply(event: MessageReceived) -> None:
    """Runs in ``db_worker``: the answer to Messages.dev does not wait for it."""
    time.sleep(1)  # stands for slow work: an LLM, your CRM, a reply through the Messages.dev API
    logger.info(
        "background: replied to %s (delivery %s, process %d)",
        event.data.sender,
        event.delivery_id,
        os.getpid(),
    )
