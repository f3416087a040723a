"""Settings of the small Django project the Django Tasks tests run in subprocesses (the web side
that enqueues, under gunicorn or uvicorn, and ``db_worker``): django-tasks' database backend on a
SQLite file."""

from __future__ import annotations

import os
from importlib.util import find_spec

import redis

from tests.queues.redis_store import RedisLeaseStore

SECRET_KEY = "django-tasks-tests-only"
USE_TZ = True
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "tests.queues.django_app.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["MI_TEST_DB"],
        "OPTIONS": {"timeout": 30},  # a worker and the enqueuing process write at once
    }
}
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django_tasks_db",
    "messages_integrations.django",
    "tests.queues.django_app",
]
if find_spec("django.tasks") is None:  # Django 5.2: the backport provides the framework
    INSTALLED_APPS.insert(1, "django_tasks")
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
MESSAGES_WEBHOOK_SECRET = "whsec_django_tasks"
# Two db_worker processes share the job leases through Redis.
MESSAGES_WEBHOOK_STORE = RedisLeaseStore(redis.Redis.from_url(os.environ["MI_TEST_RECORDS"]))
MESSAGES_WEBHOOK_QUEUE = "tests.queues.django_app.messages_webhooks:queue"
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"messages_integrations": {"handlers": ["console"], "level": "INFO"}},
}
