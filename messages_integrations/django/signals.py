"""The ``webhook_received`` signal, and running a delivery's handlers with it."""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal
from django.http import HttpRequest

from messages_integrations import Event, WebhookReceiver

__all__ = ["adispatch", "dispatch", "webhook_received"]

#: Sent once for every verified delivery not handled before, after the router's handlers.
#: ``sender`` is the event's class (``sender=ReactionAdded`` picks one kind); arguments
#: ``event`` and ``request``. A receiver that raises makes the answer a 500, so it is retried.
webhook_received = Signal()


def _failures(results: list[tuple[Any, Any]]) -> list[Exception]:
    return [result for _, result in results if isinstance(result, Exception)]


def dispatch(receiver: WebhookReceiver, event: Event[Any], request: HttpRequest) -> list[Exception]:
    """Run the router's handlers, then the signal's receivers; return what they raised."""
    errors: list[Exception] = []
    try:
        receiver.router.dispatch(event)
    except Exception as exc:  # noqa: BLE001 - the core logs it and answers 500
        errors.append(exc)
    results = webhook_received.send_robust(sender=type(event), event=event, request=request)
    return errors + _failures(results)


async def adispatch(
    receiver: WebhookReceiver, event: Event[Any], request: HttpRequest
) -> list[Exception]:
    """Async :func:`dispatch`: sync handlers and receivers run off the event loop."""
    errors: list[Exception] = []
    try:
        await receiver.router.adispatch(event, thread_sensitive=receiver.thread_sensitive)
    except Exception as exc:  # noqa: BLE001
        errors.append(exc)
    results = await webhook_received.asend_robust(sender=type(event), event=event, request=request)
    return errors + _failures(results)


def combined(errors: list[Exception]) -> Exception | None:
    """One error as itself, several as an ``ExceptionGroup``, none as ``None``."""
    if len(errors) > 1:
        return ExceptionGroup(f"{len(errors)} webhook handlers failed", errors)
    return errors[0] if errors else None
