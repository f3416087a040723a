"""The handlers: Django imports this module at start-up because of its name, messages_webhooks."""

import logging

from messages_integrations import MessageReceived, ReactionAdded, on
from messages_integrations.testing import Recorder

logger = logging.getLogger(__name__)

#: Every event received, for GET /received.
recorder = Recorder()
on("*")(recorder)


@on("message.received")
def new_message(event: MessageReceived) -> None:
    logger.info(
        "new message in %s, %d attachments", event.data.chat_id, len(event.data.attachments)
    )


@on("reaction.added")
async def new_reaction(event: ReactionAdded) -> None:
    logger.info("%s reaction on %s", event.data.type, event.data.message_id)
