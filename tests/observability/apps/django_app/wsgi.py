"""WSGI entry point, instrumented by opentelemetry-instrumentation-wsgi."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.observability.apps.django_app.settings")

application = OpenTelemetryMiddleware(get_wsgi_application())
