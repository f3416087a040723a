"""Background handlers: ``/inline`` has one empty inline handler, ``/background`` one empty
background handler queued on Celery (broker ``BENCH_BROKER``, a loopback Redis). Both endpoints
keep delivery ids in memory, so the two differ only by the enqueue. No Celery worker runs: the
benchmark measures the answer, and the jobs wait in Redis.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from flask import Flask
from shared import SECRET
from starlette.applications import Starlette

from messages_integrations import Event, WebhookRouter
from messages_integrations.flask import create_blueprint
from messages_integrations.queues import CeleryQueue
from messages_integrations.starlette import MessagesWebhookMiddleware

celery = Celery("benchmark", broker=os.environ["BENCH_BROKER"])
celery.conf.accept_content = ["json"]

sync_inline = WebhookRouter()
async_inline = WebhookRouter()
background = WebhookRouter()


@sync_inline.on("*")
def nothing(event: Event[Any]) -> None:
    """The empty inline handler (WSGI)."""


@async_inline.on("*")
async def anothing(event: Event[Any]) -> None:
    """The empty inline handler (ASGI)."""


@background.on("*", background=True)
def later(event: Event[Any]) -> None:
    """The empty background handler: never run here, no worker is started."""


queue = CeleryQueue(celery, router=background)

asgi = MessagesWebhookMiddleware(
    MessagesWebhookMiddleware(
        Starlette(), path="/background", secret=SECRET, router=background, queue=queue
    ),
    path="/inline",
    secret=SECRET,
    router=async_inline,
)

wsgi = Flask(__name__)
wsgi.register_blueprint(
    create_blueprint(name="inline", url_prefix="/inline", secret=SECRET, router=sync_inline)
)
wsgi.register_blueprint(
    create_blueprint(
        name="background", url_prefix="/background", secret=SECRET, router=background, queue=queue
    )
)
