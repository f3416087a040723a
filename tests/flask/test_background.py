"""Background handlers in Flask: no queue stops blueprint registration; a queue gets the job."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from messages_integrations import ConfigurationError, MessageReceived, WebhookRouter
from messages_integrations.queues import Job, TaskQueue
from messages_integrations.testing import build_delivery

from .conftest import SECRET, post


class ListQueue(TaskQueue):
    """Keeps the jobs it is given, in this process."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    def enqueue(self, job: Job) -> None:
        """Keep ``job``."""
        self.jobs.append(job)


#: Named in app.config as "tests.flask.test_background:CONFIGURED_QUEUE".
CONFIGURED_QUEUE = ListQueue()


@pytest.fixture
def background_router() -> WebhookRouter:
    """A router whose only message.received handler is a background one."""
    router = WebhookRouter()

    @router.on("message.received", background=True)
    def reply(event: MessageReceived) -> None:
        raise AssertionError("a background handler never runs in the request")

    return router


def test_background_handlers_without_a_queue_fail_at_registration(
    make_app: Callable[..., Flask], background_router: WebhookRouter
) -> None:
    with pytest.raises(ConfigurationError, match="MESSAGES_WEBHOOK_QUEUE"):
        make_app(secret=SECRET, router=background_router)


def test_the_queue_argument_gets_the_job_and_the_answer_is_202(
    make_app: Callable[..., Flask], background_router: WebhookRouter
) -> None:
    queue = ListQueue()
    app = make_app(secret=SECRET, router=background_router, queue=queue)
    delivery = build_delivery("message.received", secret=SECRET)
    response = post(app.test_client(), delivery)
    assert response.status_code == 202
    assert response.get_json()["status"] == "queued"
    [job] = queue.jobs
    assert job.body.encode() == delivery.body


def test_the_queue_may_be_named_in_app_config(
    make_app: Callable[..., Flask], background_router: WebhookRouter
) -> None:
    CONFIGURED_QUEUE.jobs.clear()
    app = make_app(
        {"MESSAGES_WEBHOOK_QUEUE": "tests.flask.test_background:CONFIGURED_QUEUE"},
        secret=SECRET,
        router=background_router,
    )
    delivery = build_delivery("message.received", secret=SECRET)
    assert post(app.test_client(), delivery).status_code == 202
    assert [job.key for job in CONFIGURED_QUEUE.jobs] == [f"delivery:{delivery.delivery_id}"]
