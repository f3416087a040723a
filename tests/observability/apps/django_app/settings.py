"""A Django project for the observed servers: the exporters and the JSON log lines in settings.

The secret, store, router, queue and largest body come from the environment.
"""

from __future__ import annotations

from tests.observability.apps import telemetry

telemetry.setup(logs=False)  # the log lines are configured below, the Django way

SECRET_KEY = "observability-tests-only"
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["messages_integrations.django"]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "tests.observability.apps.django_app.urls"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

MESSAGES_WEBHOOK_PROMETHEUS = True
MESSAGES_WEBHOOK_OTEL = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "tests.observability.apps.telemetry.DeliveryJSON"}},
    "filters": {
        "deliveries": {
            "()": "django.utils.log.CallbackFilter",
            "callback": telemetry.is_delivery,
        },
    },
    "handlers": {
        "deliveries": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["deliveries"],
        },
    },
    "loggers": {
        "messages_integrations": {
            "handlers": ["deliveries"],
            "level": "DEBUG",
            "propagate": False,
        },
    },
}
