"""A minimal project receiving Messages.dev webhooks: no database, no templates.

The signing secret comes from the environment variable MESSAGES_WEBHOOK_SECRET. With
MESSAGES_WEBHOOK_QUEUE=inbox.background:webhook_queue, the background handler of
inbox/background.py runs in `python manage.py db_worker`, on a SQLite task database.
"""

import os
from importlib.util import find_spec
from pathlib import Path

DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-for-production")
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "messages_integrations.django",  # system checks, and imports inbox/messages_webhooks.py
    "inbox",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
DATABASES: dict[str, dict[str, object]] = {}
USE_TZ = True

# Background handlers: Django's Tasks framework with its database backend, when a queue is named
# (the view and db_worker read MESSAGES_WEBHOOK_QUEUE from the environment).
if os.environ.get("MESSAGES_WEBHOOK_QUEUE"):
    # Django 6 has the Tasks framework; on 5.2 the django-tasks backport provides it.
    INSTALLED_APPS += [] if find_spec("django.tasks") else ["django_tasks"]
    INSTALLED_APPS += ["django_tasks_db"]
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": Path(__file__).resolve().parents[1] / "tasks.sqlite3",
        "OPTIONS": {"timeout": 20},  # the server and the worker write at once
    }
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "messages_integrations": {"handlers": ["console"], "level": "INFO"},
        "inbox": {"handlers": ["console"], "level": "INFO"},
    },
}
