"""The handler registry: ``@on("reaction.added")`` and the dispatch of events to handlers."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol, TypeVar, overload

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async

from ._events import (
    EVENT_NAMES,
    Event,
    MessageReceived,
    MessageSent,
    ReactionAdded,
    ReactionRemoved,
    ReceiptRead,
    TypingStarted,
    TypingStopped,
)

__all__ = ["Handler", "HandlerDecorator", "WebhookRouter", "default_router", "on"]

WILDCARD = "*"

E = TypeVar("E")
R = TypeVar("R")

#: A handler: a plain or ``async`` function taking one event.
Handler = Callable[[Any], object]


class HandlerDecorator(Protocol[E]):
    """What ``router.on(...)`` returns: registers a handler of ``E`` and gives it back."""

    def __call__(self, handler: Callable[[E], R], /) -> Callable[[E], R]: ...


def _check_name(name: str) -> None:
    if name == WILDCARD or name in EVENT_NAMES:
        return
    if not isinstance(name, str):
        raise TypeError(f"event names are strings, not {type(name).__name__}")
    close = difflib.get_close_matches(name, EVENT_NAMES, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"unknown Messages.dev event {name!r}{hint} Valid names: {', '.join(EVENT_NAMES)}, or '*'."
    )


def _raise_collected(event: Event[Any], errors: list[BaseException]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ExceptionGroup(f"{len(errors)} handlers of {event.event!r} failed", errors)  # type: ignore[type-var]


class WebhookRouter:
    """Routes verified events to the handlers registered for their name.

    Register with ``@router.on("reaction.added")`` or ``router.on("reaction.added")(handler)``.
    Handlers run in registration order; handlers for ``"*"`` receive every event, unknown ones too.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}

    def __repr__(self) -> str:
        counts = {name: len(handlers) for name, handlers in self._handlers.items()}
        return f"<WebhookRouter {counts}>"

    @overload
    def on(self, name: Literal["message.received"], /) -> HandlerDecorator[MessageReceived]: ...
    @overload
    def on(self, name: Literal["message.sent"], /) -> HandlerDecorator[MessageSent]: ...
    @overload
    def on(self, name: Literal["reaction.added"], /) -> HandlerDecorator[ReactionAdded]: ...
    @overload
    def on(self, name: Literal["reaction.removed"], /) -> HandlerDecorator[ReactionRemoved]: ...
    @overload
    def on(self, name: Literal["typing.started"], /) -> HandlerDecorator[TypingStarted]: ...
    @overload
    def on(self, name: Literal["typing.stopped"], /) -> HandlerDecorator[TypingStopped]: ...
    @overload
    def on(self, name: Literal["receipt.read"], /) -> HandlerDecorator[ReceiptRead]: ...
    @overload
    def on(self, name: Literal["*"], /) -> HandlerDecorator[Event[Any]]: ...
    @overload
    def on(
        self,
        first: Literal["message.received", "message.sent"],
        second: Literal["message.received", "message.sent"],
        /,
    ) -> HandlerDecorator[MessageReceived | MessageSent]: ...
    @overload
    def on(
        self,
        first: Literal["reaction.added", "reaction.removed"],
        second: Literal["reaction.added", "reaction.removed"],
        /,
    ) -> HandlerDecorator[ReactionAdded | ReactionRemoved]: ...
    @overload
    def on(
        self,
        first: Literal["typing.started", "typing.stopped"],
        second: Literal["typing.started", "typing.stopped"],
        /,
    ) -> HandlerDecorator[TypingStarted | TypingStopped]: ...
    @overload
    def on(self, *names: str) -> HandlerDecorator[Any]: ...

    def on(self, *names: str) -> HandlerDecorator[Any]:
        """Register a handler for one or more event names (or ``"*"``).

        As a decorator::

            @router.on("reaction.added")
            def thank(event: ReactionAdded) -> None: ...

        or as a plain call: ``router.on("reaction.added", "reaction.removed")(log_reaction)``.
        A misspelt name raises :class:`ValueError` naming the closest valid one.
        """
        if not names:
            raise TypeError("on() needs at least one event name, or '*' for every event")
        for name in names:
            _check_name(name)

        def register(handler: Callable[[Any], R]) -> Callable[[Any], R]:
            if not callable(handler):
                raise TypeError(f"a handler must be callable, not {type(handler).__name__}")
            for name in dict.fromkeys(names):
                self._handlers.setdefault(name, []).append(handler)
            return handler

        return register

    def handlers_for(self, name: str) -> list[Handler]:
        """Return the handlers an event of this name runs, in order: its own, then ``"*"``."""
        if name == WILDCARD:
            return list(self._handlers.get(WILDCARD, ()))
        return [*self._handlers.get(name, ()), *self._handlers.get(WILDCARD, ())]

    def remove(self, handler: Handler, *names: str) -> None:
        """Unregister ``handler`` from ``names`` (from every name when none is given)."""
        for name in names or list(self._handlers):
            handlers = self._handlers.get(name, [])
            while handler in handlers:
                handlers.remove(handler)

    def clear(self) -> None:
        """Forget every registered handler."""
        self._handlers.clear()

    def dispatch(self, event: Event[Any]) -> int:
        """Run every handler of ``event`` in order and return how many ran.

        Async handlers are run to completion. Every handler runs even if one raises; then the
        error is raised again (an :class:`ExceptionGroup` when several failed).
        """
        handlers = self.handlers_for(event.event)
        errors: list[BaseException] = []
        for handler in handlers:
            try:
                if iscoroutinefunction(handler):
                    async_to_sync(handler)(event)
                else:
                    result = handler(event)
                    if inspect.isawaitable(result):
                        async_to_sync(_await)(result)
            except Exception as exc:  # noqa: BLE001 - collected, then raised again
                errors.append(exc)
        _raise_collected(event, errors)
        return len(handlers)

    async def adispatch(self, event: Event[Any], *, thread_sensitive: bool = False) -> int:
        """Like :meth:`dispatch`, from async code: sync handlers run in a worker thread.

        ``thread_sensitive=True`` runs sync handlers in the one thread asgiref keeps for code that
        must not move between threads (Django's ORM).
        """
        handlers = self.handlers_for(event.event)
        errors: list[BaseException] = []
        for handler in handlers:
            try:
                if iscoroutinefunction(handler):
                    await handler(event)
                else:
                    result = await sync_to_async(handler, thread_sensitive=thread_sensitive)(event)
                    if inspect.isawaitable(result):
                        await result
            except Exception as exc:  # noqa: BLE001 - collected, then raised again
                errors.append(exc)
        _raise_collected(event, errors)
        return len(handlers)


async def _await(awaitable: Awaitable[object]) -> object:
    return await awaitable


#: The router ``on`` registers with, and every adapter uses unless given ``router=``.
default_router = WebhookRouter()

#: ``@on("reaction.added")`` registers a handler on :data:`default_router`.
on = default_router.on
