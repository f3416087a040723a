"""Flask: the blueprint at /webhooks, a hand-written view at /bare, one process."""

from __future__ import annotations

from flask import Flask, Response, request
from shared import OK, SECRET, UNAUTHORIZED, floor, handle_bare, sync_router

from messages_integrations.flask import create_blueprint

app = Flask(__name__)
app.register_blueprint(create_blueprint(secret=SECRET, router=sync_router), url_prefix="/webhooks")


@app.post("/bare")
def bare() -> Response:
    """The floor's work by hand."""
    document = floor(request.headers, request.get_data())
    if document is None:
        return Response(UNAUTHORIZED, 401, mimetype="application/json")
    handle_bare(document)
    return Response(OK, mimetype="application/json")
