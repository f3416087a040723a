"""The ``webhook_received`` signal, sent for every verified delivery not handled before."""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal
from django.http import HttpRequest

from messages_integrations import Event

__all__ = ["asend", "send", "webhook_received"]

#: Sent once for every verified delivery not handled before, after the router's handlers.
#: ``sender`` is the event's class (``sender=ReactionAdded`` picks one kind); arguments
#: ``event`` and ``request``. A receiver that raises makes the answer a 500, so it is retried.
webhook_received = Signal()


def _raise_failures(results: list[tuple[Any, Any]]) -> None:
    errors = [result for _, result in results if isinstance(result, Exception)]
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ExceptionGroup(f"{len(errors)} webhook_received receivers failed", errors)


def send(event: Event[Any], request: HttpRequest) -> None:
    """Send the signal to every receiver, then raise what they raised."""
    _raise_failures(webhook_received.send_robust(sender=type(event), event=event, request=request))


async def asend(event: Event[Any], request: HttpRequest) -> None:
    """Async :func:`send`: sync receivers run off the event loop."""
    results = await webhook_received.asend_robust(sender=type(event), event=event, request=request)
    _raise_failures(results)
