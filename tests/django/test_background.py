"""Background handlers in Django: no queue is a system-check Error (E003), a queue gets the job."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from messages_integrations import MessageReceived, WebhookRouter
from messages_integrations.queues import Job, TaskQueue
from messages_integrations.testing import build_delivery

from .conftest import SECRET, Send


class ListQueue(TaskQueue):
    """Keeps the jobs it is given, in this process."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    def enqueue(self, job: Job) -> None:
        """Keep ``job``."""
        self.jobs.append(job)


@pytest.fixture
def background_router() -> WebhookRouter:
    """A router whose only message.received handler is a background one."""
    router = WebhookRouter()

    @router.on("message.received", background=True)
    def reply(event: MessageReceived) -> None:
        raise AssertionError("a background handler never runs in the request")

    return router


@pytest.fixture
def without_queue(background_router: WebhookRouter) -> Iterator[None]:
    with override_settings(MESSAGES_WEBHOOK_ROUTER=background_router):
        yield


def our_ids() -> list[str]:
    return [str(m.id) for m in checks.run_checks() if str(m.id).startswith("messages_integrations")]


def test_background_handlers_without_a_queue_are_error_e003(without_queue: None) -> None:
    [error] = [m for m in checks.run_checks() if m.id == "messages_integrations.E003"]
    assert error.level == checks.ERROR
    assert "background" in error.msg
    assert "MESSAGES_WEBHOOK_QUEUE" in str(error.hint)


def test_e003_stops_manage_py_check(without_queue: None) -> None:
    with pytest.raises(SystemCheckError, match=r"messages_integrations\.E003"):
        call_command("check")


def test_a_view_without_a_queue_answers_500_not_configured(
    without_queue: None, send: Send, caplog: pytest.LogCaptureFixture
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    with caplog.at_level(logging.ERROR, "messages_integrations"):
        answer = send("/webhooks/messages", delivery.body, delivery.headers)
    assert answer.status == 500
    assert answer.json()["error"] == "not_configured"
    assert "MESSAGES_WEBHOOK_QUEUE" in caplog.text


def test_a_configured_queue_passes_the_checks_and_gets_the_verified_body(
    background_router: WebhookRouter, send: Send
) -> None:
    queue = ListQueue()
    with override_settings(MESSAGES_WEBHOOK_ROUTER=background_router, MESSAGES_WEBHOOK_QUEUE=queue):
        assert our_ids() == []
        delivery = build_delivery("message.received", secret=SECRET)
        answer = send("/webhooks/messages", delivery.body, delivery.headers)
    assert answer.status == 202
    assert answer.json()["status"] == "queued"
    [job] = queue.jobs
    assert job.body.encode() == delivery.body
    assert job.event == "message.received"


def test_a_router_without_background_handlers_needs_no_queue() -> None:
    router = WebhookRouter()
    router.on("message.received")(lambda event: None)
    with override_settings(MESSAGES_WEBHOOK_ROUTER=router):
        assert "messages_integrations.E003" not in our_ids()
