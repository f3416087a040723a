"""Two small receivers for the across-workers test: Flask (WSGI) and Starlette (ASGI).

Both take their secret from ``WEBHOOK_SECRET`` and their store from ``STORE_URL``, and count
each handler run in Redis (``COUNTER_URL``), so that runs are counted across worker processes.
"""

from __future__ import annotations

import os
import time

import redis
from flask import Flask
from starlette.applications import Starlette

from messages_integrations import Event, WebhookRouter
from messages_integrations.flask import create_blueprint
from messages_integrations.starlette import MessagesWebhookMiddleware
from messages_integrations.stores import store_from_url

SECRET = os.environ["WEBHOOK_SECRET"]
#: long enough that the copies sent at once overlap on several workers
HANDLING = 0.3

router = WebhookRouter()
counter = redis.Redis.from_url(os.environ["COUNTER_URL"])


@router.on("*")
def count_run(event: Event[object]) -> None:
    """Count this run in Redis, then take a while, as real work would."""
    counter.incr(f"runs:{event.delivery_id}")
    time.sleep(HANDLING)


flask_app = Flask(__name__)
flask_app.register_blueprint(
    create_blueprint(secret=SECRET, router=router, store=store_from_url(os.environ["STORE_URL"]))
)

starlette_app = MessagesWebhookMiddleware(
    Starlette(), secret=SECRET, router=router, store=store_from_url(os.environ["STORE_URL"])
)
