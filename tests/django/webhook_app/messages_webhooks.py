"""Handlers registered with ``@on``: imported by the app's autodiscovery, never by the tests."""

from __future__ import annotations

from messages_integrations import MessageReceived, on
from messages_integrations.testing import Recorder

#: Every event the default router dispatched.
received = Recorder()
on("*")(received)

#: Only message.received events.
messages = Recorder()


@on("message.received")
def remember_message(event: MessageReceived) -> None:
    messages(event)
