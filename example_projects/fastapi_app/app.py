"""A FastAPI app that receives Messages.dev webhooks in two ways.

- ``/webhooks``: the middleware runs the handlers registered with ``@on(...)``.
- ``/inbox``: the ``MessagesWebhook`` dependency runs the same handlers, then gives your own
  route the verified event.

The signing secret comes from the MESSAGES_WEBHOOK_SECRET environment variable.
GET /received shows what was received so far; GET /metrics the Prometheus figures (with
MESSAGES_WEBHOOK_PROMETHEUS=1). With MESSAGES_WEBHOOK_QUEUE=celery_app:webhook_queue both
endpoints also load celery_app.py, whose background handler runs in a Celery worker.
"""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Response

from messages_integrations import Event, MessageReceived, on, prometheus
from messages_integrations.fastapi import MessagesWebhook
from messages_integrations.starlette import MessagesWebhookMiddleware
from messages_integrations.testing import Recorder

recorder = Recorder()
on("*")(recorder)

app = FastAPI()
app.add_middleware(MessagesWebhookMiddleware, path="/webhooks")


@on("message.received")
async def greet(event: MessageReceived) -> None:
    """Handlers registered with @on run for deliveries to /webhooks."""
    print(f"{event.data.sender} wrote in {event.data.chat_id}: {event.data.text!r}")


verified_event = MessagesWebhook()


@app.post("/inbox")
async def inbox(event: Annotated[Event[Any], Depends(verified_event)]) -> dict[str, str]:
    """Runs once per delivery, after the @on handlers; if it raises, the retry runs it again."""
    return {"status": "ok", "event": event.event}


@app.get("/received")
async def received() -> dict[str, Any]:
    """What was received so far."""
    return recorder.summary()


@app.get("/metrics")
async def metrics() -> Response:
    """Prometheus figures, when MESSAGES_WEBHOOK_PROMETHEUS=1 is set."""
    if not prometheus.is_enabled():
        raise HTTPException(404, "set MESSAGES_WEBHOOK_PROMETHEUS=1")
    body, content_type = prometheus.exposition()
    return Response(body, media_type=content_type)
