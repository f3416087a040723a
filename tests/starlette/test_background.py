"""Background handlers under Starlette and FastAPI: no queue fails when the middleware or the
dependency is built; a queue gets the verified job and the answer says it was queued."""

# No `from __future__ import annotations`: FastAPI must see the route's Depends(...) annotation.

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette

from messages_integrations import ConfigurationError, Event, MessageReceived, WebhookRouter
from messages_integrations.fastapi import MessagesWebhook
from messages_integrations.queues import Job, TaskQueue
from messages_integrations.starlette import MessagesWebhookMiddleware
from messages_integrations.testing import build_delivery

from .helpers import SECRET, EchoApp, asgi_client, post_delivery


class ListQueue(TaskQueue):
    """Keeps the jobs it is given, in this process."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    def enqueue(self, job: Job) -> None:
        """Keep ``job``."""
        self.jobs.append(job)


#: Named in the environment as "tests.starlette.test_background:CONFIGURED_QUEUE".
CONFIGURED_QUEUE = ListQueue()


@pytest.fixture
def background_router() -> WebhookRouter:
    """A router with an inline and a background handler for message.received."""
    router = WebhookRouter()
    router.on("message.received")(lambda event: None)

    @router.on("message.received", "reaction.added", background=True)
    def reply(event: Event[Any]) -> None:
        raise AssertionError("a background handler never runs in the request")

    return router


def test_the_middleware_without_a_queue_fails_when_built(background_router: WebhookRouter) -> None:
    with pytest.raises(ConfigurationError, match="MESSAGES_WEBHOOK_QUEUE"):
        MessagesWebhookMiddleware(EchoApp(), secret=SECRET, router=background_router)


def test_the_dependency_without_a_queue_fails_when_created(
    background_router: WebhookRouter,
) -> None:
    with pytest.raises(ConfigurationError, match="MESSAGES_WEBHOOK_QUEUE"):
        MessagesWebhook(secret=SECRET, router=background_router)


@pytest.mark.anyio
async def test_the_middleware_queues_background_handlers(
    background_router: WebhookRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_QUEUE", "tests.starlette.test_background:CONFIGURED_QUEUE")
    CONFIGURED_QUEUE.jobs.clear()
    app = Starlette()
    app.add_middleware(MessagesWebhookMiddleware, secret=SECRET, router=background_router)
    only_background = build_delivery("reaction.added", secret=SECRET)
    both = build_delivery("message.received", secret=SECRET)
    async with asgi_client(app) as client:
        queued = await post_delivery(client, only_background)
        mixed = await post_delivery(client, both)
    assert (queued.status_code, queued.json()["status"]) == (202, "queued")
    # An inline handler ran in the request: the answer is the usual 200.
    assert (mixed.status_code, mixed.json()["status"]) == (200, "ok")
    assert [job.event for job in CONFIGURED_QUEUE.jobs] == ["reaction.added", "message.received"]


@pytest.mark.anyio
async def test_the_dependency_queues_then_runs_the_route(background_router: WebhookRouter) -> None:
    queue = ListQueue()
    verified_event = MessagesWebhook(secret=SECRET, router=background_router, queue=queue)
    app = FastAPI()
    routed: list[str] = []

    @app.post("/inbox")
    async def inbox(event: Annotated[Event[Any], Depends(verified_event)]) -> dict[str, str]:
        assert isinstance(event, MessageReceived)
        routed.append(event.event)
        return {"route": "ran"}

    delivery = build_delivery("message.received", secret=SECRET)
    async with asgi_client(app) as client:
        answer = await post_delivery(client, delivery, "/inbox")
    assert answer.json() == {"route": "ran"}
    assert routed == ["message.received"]
    [job] = queue.jobs
    assert job.body.encode() == delivery.body
