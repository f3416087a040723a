"""The handler registry: ``@on("reaction.added")`` and the dispatch of events to handlers."""

from __future__ import annotations

import difflib
import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, Literal, Protocol, TypeVar, overload

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async

from . import _outcomes
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
from ._outcomes import HandlerRecord

__all__ = [
    "Handler",
    "HandlerDecorator",
    "RouterSnapshot",
    "WebhookRouter",
    "default_router",
    "on",
]

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


@dataclass(frozen=True, slots=True)
class RouterSnapshot:
    """The handlers of a router at one moment (:meth:`WebhookRouter.snapshot`)."""

    inline: Mapping[str, tuple[Handler, ...]]
    background: Mapping[str, tuple[Handler, ...]]


class WebhookRouter:
    """Routes verified events to the handlers registered for their name.

    Register with ``@router.on("reaction.added")`` or ``router.on("reaction.added")(handler)``.
    Handlers run in registration order; handlers for ``"*"`` receive every event, unknown ones too.
    Inline handlers run in the request; ``background=True`` ones in a task-queue worker.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._background: dict[str, list[Handler]] = {}

    def __repr__(self) -> str:
        counts = {name: len(hs) for name, hs in self._handlers.items() if hs}
        background = {name: len(hs) for name, hs in self._background.items() if hs}
        return f"<WebhookRouter {counts} background={background}>"

    @overload
    def on(
        self, name: Literal["message.received"], /, *, background: bool = False
    ) -> HandlerDecorator[MessageReceived]: ...
    @overload
    def on(
        self, name: Literal["message.sent"], /, *, background: bool = False
    ) -> HandlerDecorator[MessageSent]: ...
    @overload
    def on(
        self, name: Literal["reaction.added"], /, *, background: bool = False
    ) -> HandlerDecorator[ReactionAdded]: ...
    @overload
    def on(
        self, name: Literal["reaction.removed"], /, *, background: bool = False
    ) -> HandlerDecorator[ReactionRemoved]: ...
    @overload
    def on(
        self, name: Literal["typing.started"], /, *, background: bool = False
    ) -> HandlerDecorator[TypingStarted]: ...
    @overload
    def on(
        self, name: Literal["typing.stopped"], /, *, background: bool = False
    ) -> HandlerDecorator[TypingStopped]: ...
    @overload
    def on(
        self, name: Literal["receipt.read"], /, *, background: bool = False
    ) -> HandlerDecorator[ReceiptRead]: ...
    @overload
    def on(
        self, name: Literal["*"], /, *, background: bool = False
    ) -> HandlerDecorator[Event[Any]]: ...
    @overload
    def on(
        self,
        first: Literal["message.received", "message.sent"],
        second: Literal["message.received", "message.sent"],
        /,
        *,
        background: bool = False,
    ) -> HandlerDecorator[MessageReceived | MessageSent]: ...
    @overload
    def on(
        self,
        first: Literal["reaction.added", "reaction.removed"],
        second: Literal["reaction.added", "reaction.removed"],
        /,
        *,
        background: bool = False,
    ) -> HandlerDecorator[ReactionAdded | ReactionRemoved]: ...
    @overload
    def on(
        self,
        first: Literal["typing.started", "typing.stopped"],
        second: Literal["typing.started", "typing.stopped"],
        /,
        *,
        background: bool = False,
    ) -> HandlerDecorator[TypingStarted | TypingStopped]: ...
    @overload
    def on(self, *names: str, background: bool = False) -> HandlerDecorator[Any]: ...

    def on(self, *names: str, background: bool = False) -> HandlerDecorator[Any]:
        """Register a handler for one or more event names (or ``"*"``).

        As a decorator::

            @router.on("reaction.added")
            def thank(event: ReactionAdded) -> None: ...

        or as a plain call: ``router.on("reaction.added", "reaction.removed")(log_reaction)``.
        With ``background=True`` the handler runs in a task-queue worker instead of the request
        (``docs/background.md``). A misspelt name raises :class:`ValueError` naming the closest
        valid one.
        """
        if not names:
            raise TypeError("on() needs at least one event name, or '*' for every event")
        for name in names:
            _check_name(name)
        table = self._background if background else self._handlers

        def register(handler: Callable[[Any], R]) -> Callable[[Any], R]:
            if not callable(handler):
                raise TypeError(f"a handler must be callable, not {type(handler).__name__}")
            for name in dict.fromkeys(names):
                table.setdefault(name, []).append(handler)
            return handler

        return register

    def handlers_for(self, name: str, *, background: bool = False) -> list[Handler]:
        """Return the handlers of one kind an event of this name runs: its own, then ``"*"``'s."""
        table = self._background if background else self._handlers
        if name == WILDCARD:
            return list(table.get(WILDCARD, ()))
        return [*table.get(name, ()), *table.get(WILDCARD, ())]

    def has_background(self, name: str) -> bool:
        """Whether an event of this name (``"*"``: every event) has a background handler."""
        return bool(self.handlers_for(name, background=True))

    def needs_queue(self) -> bool:
        """Whether any background handler is registered, so that a task queue is required."""
        return any(self._background.values())

    def remove(self, handler: Handler, *names: str) -> None:
        """Unregister ``handler`` (inline or background) from ``names``, or from every name."""
        for table in (self._handlers, self._background):
            for name in names or list(table):
                handlers = table.get(name, [])
                while handler in handlers:
                    handlers.remove(handler)

    def clear(self) -> None:
        """Forget every registered handler."""
        self._handlers.clear()
        self._background.clear()

    def snapshot(self) -> RouterSnapshot:
        """Capture the registered handlers, for :meth:`restore` later."""
        return RouterSnapshot(_freeze(self._handlers), _freeze(self._background))

    def restore(self, snapshot: RouterSnapshot) -> None:
        """Register exactly the handlers captured by :meth:`snapshot`, forgetting any others."""
        self._handlers = {name: list(hs) for name, hs in snapshot.inline.items()}
        self._background = {name: list(hs) for name, hs in snapshot.background.items()}

    @contextmanager
    def isolated(self) -> Iterator[WebhookRouter]:
        """Within the block, handlers may be added or removed; on exit the previous set returns.

        For tests that register handlers on :data:`default_router`::

            with default_router.isolated():
                on("message.received")(record)
                ...
        """
        saved = self.snapshot()
        try:
            yield self
        finally:
            self.restore(saved)

    def dispatch(
        self,
        event: Event[Any],
        *,
        background: bool = False,
        observer: Callable[[HandlerRecord], object] | None = None,
    ) -> int:
        """Run the handlers of ``event`` of one kind, in order, and return how many ran.

        ``background=False`` (the request) runs the inline handlers; a task-queue worker passes
        ``background=True``. Async handlers are run to completion. Every handler runs even if one
        raises; then the error is raised again (an :class:`ExceptionGroup` when several failed).
        ``observer`` is given a :class:`HandlerRecord` after each handler run.
        """
        handlers = self.handlers_for(event.event, background=background)
        errors: list[BaseException] = []
        watch = _watcher(observer, background)
        meter = _outcomes.metering
        for handler in handlers:
            started = 0.0 if meter is None else time.perf_counter()
            failed = False
            try:
                with watch(event, handler):
                    if iscoroutinefunction(handler):
                        async_to_sync(handler)(event)
                    else:
                        result = handler(event)
                        if inspect.isawaitable(result):
                            async_to_sync(_await)(result)
            except Exception as exc:  # noqa: BLE001 - collected, then raised again
                errors.append(exc)
                failed = True
            if meter is not None:
                # Timed here rather than through a context manager: metrics stay cheap.
                meter.handler_ran(event.event, handler, failed, time.perf_counter() - started)
        _raise_collected(event, errors)
        return len(handlers)

    async def adispatch(
        self,
        event: Event[Any],
        *,
        background: bool = False,
        thread_sensitive: bool = False,
        observer: Callable[[HandlerRecord], object] | None = None,
    ) -> int:
        """Like :meth:`dispatch`, from async code: sync handlers run in a worker thread.

        ``thread_sensitive=True`` runs sync handlers in the one thread asgiref keeps for code that
        must not move between threads (Django's ORM).
        """
        handlers = self.handlers_for(event.event, background=background)
        errors: list[BaseException] = []
        watch = _watcher(observer, background)
        meter = _outcomes.metering
        for handler in handlers:
            started = 0.0 if meter is None else time.perf_counter()
            failed = False
            try:
                with watch(event, handler):
                    if iscoroutinefunction(handler):
                        await handler(event)
                    else:
                        call = sync_to_async(handler, thread_sensitive=thread_sensitive)
                        result = await call(event)
                        if inspect.isawaitable(result):
                            await result
            except Exception as exc:  # noqa: BLE001 - collected, then raised again
                errors.append(exc)
                failed = True
            if meter is not None:
                meter.handler_ran(event.event, handler, failed, time.perf_counter() - started)
        _raise_collected(event, errors)
        return len(handlers)


_Watch = Callable[[Event[Any], Handler], AbstractContextManager[None]]


def _unwatched(event: Event[Any], handler: Handler) -> AbstractContextManager[None]:
    return nullcontext()


def _watcher(observer: Callable[[HandlerRecord], object] | None, background: bool) -> _Watch:
    """How each handler run is watched: not at all (no cost) unless observed or traced."""
    tracer = _outcomes.tracing
    if observer is None and tracer is None:
        return _unwatched
    return functools.partial(_Watched, observer, tracer, background)


class _Watched:
    """Times one handler run and opens its span (a class: cheaper than a generator per run)."""

    __slots__ = ("_background", "_event", "_name", "_observer", "_span", "_started")

    def __init__(
        self,
        observer: Callable[[HandlerRecord], object] | None,
        tracer: _outcomes.Tracing | None,
        background: bool,
        event: Event[Any],
        handler: Handler,
    ) -> None:
        self._observer = observer
        self._background = background
        self._event = event
        self._name = name = handler_name(handler)
        self._span = None if tracer is None else tracer.handler(event.event, name)
        self._started = 0.0

    def __enter__(self) -> None:
        if self._span is not None:
            self._span.__enter__()
        self._started = time.perf_counter()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        duration = time.perf_counter() - self._started
        if self._span is not None:
            self._span.__exit__(kind, error, traceback)  # records the handler's error on its span
        if self._observer is not None:
            event, failed = self._event, error is not None
            self._observer(
                HandlerRecord(
                    event=event.event,
                    handler=self._name,
                    delivery_id=event.delivery_id,
                    duration_s=duration,
                    outcome="failed" if failed else "ok",
                    error_type=type(error).__qualname__ if failed else None,
                    background=self._background,
                )
            )


def handler_name(handler: Handler) -> str:
    """``module.qualname`` of a handler (of its class, for a callable object)."""
    name = getattr(handler, "__qualname__", None) or type(handler).__qualname__
    return f"{getattr(handler, '__module__', None) or type(handler).__module__}.{name}"


def _freeze(table: dict[str, list[Handler]]) -> Mapping[str, tuple[Handler, ...]]:
    return MappingProxyType({name: tuple(hs) for name, hs in table.items() if hs})


async def _await(awaitable: Awaitable[object]) -> object:
    return await awaitable


#: The router ``on`` registers with, and every adapter uses unless given ``router=``.
default_router = WebhookRouter()

#: ``@on("reaction.added")`` registers a handler on :data:`default_router`.
on = default_router.on
