"""The Flask blueprint under gunicorn, instrumented by opentelemetry-instrumentation-wsgi.

The exporters are turned on by ``app.config`` (``MESSAGES_WEBHOOK_PROMETHEUS``,
``MESSAGES_WEBHOOK_OTEL``); the rest of the options come from the environment.
"""

from __future__ import annotations

from flask import Flask, Response
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

from messages_integrations import prometheus
from messages_integrations.flask import create_blueprint

from . import telemetry

telemetry.setup()

app = Flask(__name__)
app.config.update(MESSAGES_WEBHOOK_PROMETHEUS=True, MESSAGES_WEBHOOK_OTEL=True)
app.register_blueprint(create_blueprint(), url_prefix="/webhooks")


@app.get("/metrics")
def metrics() -> Response:
    """The Prometheus figures of this process, or of every worker in multiprocess mode."""
    body, content_type = prometheus.exposition()
    return Response(body, content_type=content_type)


app.wsgi_app = OpenTelemetryMiddleware(app.wsgi_app)  # type: ignore[method-assign]
