"""The Celery side of the example: the app, the queue the webhook endpoints hand jobs to, and the
background handler its workers run.

The server loads this module when ``MESSAGES_WEBHOOK_QUEUE=celery_app:webhook_queue`` is set (the
endpoints resolve that name); the worker is ``celery -A celery_app worker``. Both take the
broker from ``CELERY_BROKER_URL`` (a local Redis by default).
"""

import os
import time

from celery import Celery

from messages_integrations import MessageReceived, on
from messages_integrations.queues import CeleryQueue

app = Celery(
    "fastapi_example", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
)
app.conf.accept_content = ["json"]
app.conf.broker_transport_options = {
    "visibility_timeout": 600,  # > the slowest handler plus the longest retry delay, in seconds
    "unacked_restore_interval": 10,  # jobs of a worker that died come back within seconds
    "unacked_restore_throttle": 1,
}
app.conf.worker_cancel_long_running_tasks_on_connection_loss = True

webhook_queue = CeleryQueue(app)


@on("message.received", background=True)
def reply(event: MessageReceived) -> None:
    """Runs in a Celery worker: the answer to Messages.dev does not wait for it."""
    time.sleep(1)  # stands for slow work: an LLM, your CRM, a reply through the Messages.dev API
    print(f"background: replied to {event.data.sender} (delivery {event.delivery_id})")
