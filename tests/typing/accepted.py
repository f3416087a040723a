"""Usage that must type-check under mypy --strict (checked by ``nox -s typing``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, assert_type

from messages_integrations import (
    Event,
    MessageReceived,
    MessageSent,
    ReactionAdded,
    ReactionRemoved,
    SignatureVerificationError,
    TypingStarted,
    WebhookRouter,
    on,
    parse_event,
    sign_webhook,
    verify_webhook,
)
from messages_integrations.testing import build_delivery

router = WebhookRouter()


@on("reaction.added")
def thank(event: ReactionAdded) -> None:
    assert_type(event.data.type, str)
    assert_type(event.data.added, bool)


@router.on("message.received")
async def reply(event: MessageReceived) -> None:
    assert_type(event.data.text, str | None)
    assert_type(event.data.attachments[0].mime_type, str | None)
    assert_type(event.timestamp, int)
    assert_type(event.delivery_id, str | None)


@router.on("reaction.added")
def any_event(event: Event[Any]) -> None:
    """A handler of the base class accepts every event."""


@router.on("message.received", "message.sent")
def either_message(event: MessageReceived | MessageSent) -> str:
    return event.data.chat_id


@router.on("reaction.added", "reaction.removed")
def either_reaction(event: ReactionAdded | ReactionRemoved) -> bool:
    return event.data.added


@router.on("*")
def everything(event: Event[Any]) -> None:
    print(event.event, event.raw)


# Background handlers are typed exactly like inline ones.
@on("message.received", background=True)
def reply_later(event: MessageReceived) -> None:
    assert_type(event.data.text, str | None)


@router.on("reaction.added", "reaction.removed", background=True)
async def either_reaction_later(event: ReactionAdded | ReactionRemoved) -> bool:
    return event.data.added


@router.on("*", background=True)
def everything_later(event: Event[Any]) -> None: ...


assert_type(reply_later, Callable[[MessageReceived], None])
assert_type(router.needs_queue(), bool)
assert_type(router.has_background("message.received"), bool)
with router.isolated() as same_router:
    assert_type(same_router, WebhookRouter)
router.restore(router.snapshot())


# Decorating keeps the handler callable with its own types.
assert_type(thank, Callable[[ReactionAdded], None])


def plain_call(event: TypingStarted) -> int:
    return 1


registered = router.on("typing.started")(plain_call)
assert_type(registered, Callable[[TypingStarted], int])
untyped = parse_event(b"{}")
assert_type(untyped, Event[Any])


def verify(body: bytes, signature: str) -> str:
    try:
        event = verify_webhook(body, signature, ["whsec_a", b"whsec_b"], tolerance=None)
    except SignatureVerificationError:
        return "forged"
    return event.event


delivery = build_delivery("reaction.added", secret="whsec_a")
assert_type(delivery.body, bytes)
assert_type(delivery.headers, dict[str, str])
assert_type(sign_webhook("whsec_a", 1, delivery.body), str)
