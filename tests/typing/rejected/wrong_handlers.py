"""Usage mypy must reject: each line marked ``# rejected`` has to be reported, and no other.

Not part of the normal mypy run; ``tests/typing/check_rejections.py`` checks it.
"""

from __future__ import annotations

from messages_integrations import (
    MessageReceived,
    ReactionAdded,
    ReceiptRead,
    TypingStopped,
    WebhookRouter,
    on,
    verify_webhook,
)

router = WebhookRouter()


def on_message(event: MessageReceived) -> None: ...


def on_reaction(event: ReactionAdded) -> None: ...


def on_receipt(event: ReceiptRead) -> None: ...


# A handler of MessageReceived registered for reaction.added.
on("reaction.added")(on_message)  # rejected


# The same mistake with the decorator syntax.
@on("reaction.added")  # rejected
def wrong(event: MessageReceived) -> None: ...


router.on("typing.stopped")(on_reaction)  # rejected
router.on("receipt.read")(on_receipt)
router.on("message.received")(on_message)


# A field that does not exist on the typed data.
@on("typing.stopped")
def typing(event: TypingStopped) -> None:
    print(event.data.sender)  # rejected


# Pairs: a handler of only one of the two events is not enough.
router.on("reaction.added", "reaction.removed")(on_reaction)  # rejected

verify_webhook(b"{}", "sig", 42)  # rejected

# The same mistakes with background handlers.
on("reaction.added", background=True)(on_message)  # rejected


@router.on("message.received", background=True)  # rejected
def wrong_later(event: ReactionAdded) -> None: ...


router.on("message.received", background=True)(on_message)
router.on("typing.started", "typing.stopped", background=True)(on_receipt)  # rejected
router.on("receipt.read", background="yes")(on_receipt)  # rejected
