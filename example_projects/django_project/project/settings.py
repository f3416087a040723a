"""A minimal project receiving Messages.dev webhooks: no database, no templates.

The signing secret comes from the environment variable MESSAGES_WEBHOOK_SECRET.
"""

import os

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
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "messages_integrations": {"handlers": ["console"], "level": "INFO"},
        "inbox": {"handlers": ["console"], "level": "INFO"},
    },
}
