"""ASGI entry point, instrumented by opentelemetry-instrumentation-asgi."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.observability.apps.django_app.settings")

application = OpenTelemetryMiddleware(get_asgi_application())
