"""The app ``messages_integrations.django``: autodiscovery of handler modules and the signal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps

from messages_integrations import Event, ReactionAdded, default_router
from messages_integrations.django import webhook_received
from messages_integrations.django.apps import HANDLERS_MODULE
from messages_integrations.testing import build_delivery

from . import urls
from .conftest import SECRET, Send
from .webhook_app import messages_webhooks


def test_handlers_module_of_every_installed_app_is_imported_at_startup() -> None:
    assert HANDLERS_MODULE == "messages_webhooks"
    assert apps.get_app_config("messages_integrations").name == "messages_integrations.django"
    assert "tests.django.webhook_app.messages_webhooks" in sys.modules
    assert messages_webhooks.received in default_router.handlers_for("receipt.read")
    assert messages_webhooks.remember_message in default_router.handlers_for("message.received")


@pytest.mark.parametrize("path", ["/webhooks/messages", "/webhooks/async"])
def test_the_ready_views_serve_the_settings_secret_and_the_autodiscovered_handlers(
    send: Send, path: str
) -> None:
    delivery = build_delivery("message.received", secret=SECRET)
    answers = [send(path, delivery.body, delivery.headers) for _ in "ab"]
    assert [answer.json()["status"] for answer in answers] == ["ok", "duplicate"]
    assert [e.delivery_id for e in messages_webhooks.messages.events] == [delivery.delivery_id]
    forged = build_delivery("message.received", secret="whsec_someone_else")
    assert send(path, forged.body, forged.headers).status == 401


@pytest.fixture
def signalled() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def remember(sender: type[Event[Any]], **kwargs: Any) -> None:
        seen.append({"sender": sender, **kwargs})

    webhook_received.connect(remember, weak=False)
    yield seen
    webhook_received.disconnect(remember)


def test_signal_is_sent_once_per_verified_delivery(
    send: Send, signalled: list[dict[str, Any]]
) -> None:
    delivery = build_delivery("reaction.added", secret=SECRET)
    for _ in "ab":
        send("/webhooks/messages", delivery.body, delivery.headers)
    (only,) = signalled
    assert only["sender"] is ReactionAdded
    assert only["event"].delivery_id == delivery.delivery_id
    assert only["request"].path == "/webhooks/messages"


def test_signal_is_not_sent_for_refused_deliveries(
    send: Send, signalled: list[dict[str, Any]]
) -> None:
    delivery = build_delivery("reaction.added", secret="whsec_someone_else")
    assert send("/webhooks/messages", delivery.body, delivery.headers).status == 401
    assert signalled == []


def test_signal_receivers_can_pick_one_event_kind(send: Send) -> None:
    reactions: list[Event[Any]] = []

    def on_reaction(sender: type[Event[Any]], event: Event[Any], **kwargs: Any) -> None:
        reactions.append(event)

    webhook_received.connect(on_reaction, sender=ReactionAdded, weak=False)
    try:
        for name in ("message.received", "reaction.added", "reaction.removed"):
            delivery = build_delivery(name, secret=SECRET)
            send("/webhooks/messages", delivery.body, delivery.headers)
    finally:
        webhook_received.disconnect(on_reaction, sender=ReactionAdded)
    assert [e.event for e in reactions] == ["reaction.added"]


def test_signal_is_sent_for_decorated_views_before_the_view(send: Send) -> None:
    def note(sender: type[Event[Any]], event: Event[Any], **kwargs: Any) -> None:
        urls.calls.append(("signal", event.event, {}))

    webhook_received.connect(note, weak=False)
    try:
        delivery = build_delivery("receipt.read", secret=SECRET)
        assert send("/decorated/async/s", delivery.body, delivery.headers).status == 202
    finally:
        webhook_received.disconnect(note)
    assert [kind for kind, _, _ in urls.calls] == ["handler", "signal", "async"]


def test_failing_signal_receiver_answers_500_and_the_delivery_is_retried(send: Send) -> None:
    attempts: list[str] = []

    def flaky(sender: type[Event[Any]], event: Event[Any], **kwargs: Any) -> None:
        attempts.append(event.event)
        if len(attempts) == 1:
            raise RuntimeError("receiver broke near sensitive-detail-9")

    webhook_received.connect(flaky, weak=False)
    try:
        delivery = build_delivery("message.sent", secret=SECRET)
        first = send("/webhooks/messages", delivery.body, delivery.headers)
        second = send("/webhooks/messages", delivery.body, delivery.headers)
    finally:
        webhook_received.disconnect(flaky)
    assert (first.status, second.status) == (500, 200)
    assert b"sensitive-detail" not in first.body
    assert second.json()["status"] == "ok"
    assert len(attempts) == 2
    assert messages_webhooks.received.count("message.sent") == 2
