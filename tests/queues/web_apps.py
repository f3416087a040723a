"""The web side of the end-to-end tests: receivers whose background handlers go to Celery.

``flask_app`` (WSGI, for gunicorn) and ``starlette_app`` (ASGI, for uvicorn) answer at
``/webhooks`` with the router and the CeleryQueue of tests/queues/celery_app.py, and share one
de-duplication store (a RedisDeliveryStore on ``MI_TEST_RECORDS``, a Redis apart from the broker,
so that the broker can be stopped alone).
"""

from __future__ import annotations

import os

import redis
from flask import Flask
from starlette.applications import Starlette

from messages_integrations import EndpointOptions
from messages_integrations.flask import create_blueprint
from messages_integrations.starlette import MessagesWebhookMiddleware
from messages_integrations.stores import RedisDeliveryStore
from tests.queues import celery_app

SECRET = "whsec_queues_end_to_end"

store = RedisDeliveryStore(redis.Redis.from_url(os.environ["MI_TEST_RECORDS"]))
options: EndpointOptions = {
    "secret": SECRET,
    "router": celery_app.router,
    "store": store,
    "queue": celery_app.queue,
}

flask_app = Flask(__name__)
flask_app.register_blueprint(create_blueprint(**options))

starlette_app = MessagesWebhookMiddleware(Starlette(), **options)
