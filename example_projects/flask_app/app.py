"""A small Flask app that receives Messages.dev webhooks at /webhooks.

The signing secret comes from the environment variable MESSAGES_WEBHOOK_SECRET (or app.config).
``GET /received`` shows what the handlers have received so far, ``GET /metrics`` the Prometheus
figures (with ``MESSAGES_WEBHOOK_PROMETHEUS=1``).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, abort, current_app

from messages_integrations import MessageReceived, ReactionAdded, on, prometheus
from messages_integrations.flask import create_blueprint
from messages_integrations.testing import Recorder

recorder = Recorder()
on("*")(recorder)


@on("message.received")
def log_message(event: MessageReceived) -> None:
    """A plain handler: runs in the request's thread, inside the app context."""
    current_app.logger.info("message from %s in %s", event.data.sender, event.data.chat_id)


@on("reaction.added")
async def log_reaction(event: ReactionAdded) -> None:
    """An async handler: run to completion through asgiref, as Flask runs async views."""
    current_app.logger.info(
        "%s reacted %s to %s", event.data.sender, event.data.type, event.data.message_id
    )


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The application factory."""
    app = Flask(__name__)
    app.config.update(config or {})
    app.register_blueprint(create_blueprint(), url_prefix="/webhooks")

    @app.get("/received")
    def received() -> dict[str, Any]:
        return recorder.summary()

    @app.get("/metrics")
    def metrics() -> Response:
        # On with MESSAGES_WEBHOOK_PROMETHEUS in app.config or in the environment.
        if not prometheus.is_enabled():
            abort(404, "set MESSAGES_WEBHOOK_PROMETHEUS=1")
        body, content_type = prometheus.exposition()
        return Response(body, content_type=content_type)

    return app


app = create_app()
