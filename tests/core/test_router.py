"""WebhookRouter: registration, validation, dispatch of sync and async handlers."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from messages_integrations import (
    Event,
    ReactionAdded,
    WebhookRouter,
    default_router,
    on,
    parse_event,
)
from messages_integrations.testing import sample_data


def make_event(name: str = "reaction.added") -> Event[Any]:
    data = sample_data(name) if name != "chat.renamed" else {"chat_id": "cht_1"}
    return parse_event({"event": name, "data": data, "timestamp": 1, "delivery_id": "dlv_1"})


def test_decorator_registers_and_returns_the_handler() -> None:
    router = WebhookRouter()
    seen: list[str] = []

    @router.on("reaction.added")
    def thank(event: ReactionAdded) -> None:
        seen.append(event.data.type)

    assert thank.__name__ == "thank"
    assert router.dispatch(make_event()) == 1
    assert seen == ["love"]


def test_plain_call_registers_for_several_names() -> None:
    router = WebhookRouter()
    seen: list[str] = []
    router.on("reaction.added", "reaction.removed")(lambda event: seen.append(event.event))
    router.dispatch(make_event("reaction.added"))
    router.dispatch(make_event("reaction.removed"))
    router.dispatch(make_event("message.sent"))
    assert seen == ["reaction.added", "reaction.removed"]


def test_wildcard_receives_every_event_including_unknown_ones() -> None:
    router = WebhookRouter()
    seen: list[str] = []
    router.on("*")(lambda event: seen.append(event.event))
    router.dispatch(make_event("typing.started"))
    router.dispatch(make_event("chat.renamed"))
    assert seen == ["typing.started", "chat.renamed"]


def test_unknown_event_runs_only_wildcard_handlers() -> None:
    router = WebhookRouter()
    seen: list[str] = []
    router.on("message.received")(lambda event: seen.append("specific"))
    router.on("*")(lambda event: seen.append("wildcard"))
    assert router.dispatch(make_event("chat.renamed")) == 1
    assert seen == ["wildcard"]


def test_handlers_run_in_registration_order_specific_before_wildcard() -> None:
    router = WebhookRouter()
    seen: list[str] = []
    router.on("*")(lambda event: seen.append("wildcard"))
    router.on("reaction.added")(lambda event: seen.append("first"))
    router.on("reaction.added")(lambda event: seen.append("second"))
    router.dispatch(make_event())
    assert seen == ["first", "second", "wildcard"]


def test_a_handler_registered_twice_for_the_same_name_in_one_call_runs_once() -> None:
    router = WebhookRouter()
    seen: list[str] = []
    router.on("reaction.added", "reaction.added")(lambda event: seen.append("x"))
    router.dispatch(make_event())
    assert seen == ["x"]


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("reaction.add", "reaction.added"),
        ("message.recieved", "message.received"),
        ("reciept.read", "receipt.read"),
        ("typing_started", "typing.started"),
    ],
)
def test_misspelt_name_raises_value_error_naming_the_closest(typo: str, suggestion: str) -> None:
    router = WebhookRouter()
    with pytest.raises(ValueError, match=f"did you mean '{suggestion}'"):
        router.on(typo)


def test_unrelated_name_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match=r"Valid names: message\.received"):
        WebhookRouter().on("zzz")


def test_on_without_names_is_an_error() -> None:
    with pytest.raises(TypeError, match="at least one event name"):
        WebhookRouter().on()


def test_every_handler_runs_before_the_error_is_raised() -> None:
    router = WebhookRouter()
    seen: list[str] = []

    @router.on("reaction.added")
    def broken(event: Event[Any]) -> None:
        raise RuntimeError("boom")

    router.on("reaction.added")(lambda event: seen.append("after"))
    with pytest.raises(RuntimeError, match="boom"):
        router.dispatch(make_event())
    assert seen == ["after"]


def test_several_failures_raise_an_exception_group() -> None:
    router = WebhookRouter()

    def fail(event: Event[Any]) -> None:
        raise KeyError(event.event)

    router.on("reaction.added")(fail)
    router.on("*")(fail)
    with pytest.raises(ExceptionGroup) as caught:
        router.dispatch(make_event())
    assert len(caught.value.exceptions) == 2


def test_sync_dispatch_runs_async_handlers() -> None:
    router = WebhookRouter()
    seen: list[str] = []

    @router.on("reaction.added")
    async def remember(event: ReactionAdded) -> None:
        await asyncio.sleep(0)
        seen.append(event.data.type)

    router.dispatch(make_event())
    assert seen == ["love"]


@pytest.mark.anyio
async def test_adispatch_awaits_async_handlers_on_the_loop() -> None:
    router = WebhookRouter()
    loop_thread = threading.current_thread()
    threads: list[threading.Thread] = []

    @router.on("reaction.added")
    async def remember(event: ReactionAdded) -> None:
        threads.append(threading.current_thread())

    assert await router.adispatch(make_event()) == 1
    assert threads == [loop_thread]


@pytest.mark.anyio
async def test_adispatch_runs_sync_handlers_off_the_event_loop() -> None:
    router = WebhookRouter()
    loop_thread = threading.current_thread()
    threads: list[threading.Thread] = []
    release = threading.Event()

    @router.on("reaction.added")
    def slow(event: Event[Any]) -> None:
        threads.append(threading.current_thread())
        release.wait(5)

    async def meanwhile() -> str:
        # Runs while the sync handler blocks: proof that the loop is free.
        await asyncio.sleep(0.01)
        release.set()
        return "loop was free"

    dispatched, note = await asyncio.gather(router.adispatch(make_event()), meanwhile())
    assert (dispatched, note) == (1, "loop was free")
    assert threads
    assert threads[0] is not loop_thread


@pytest.mark.anyio
async def test_adispatch_collects_errors_like_dispatch() -> None:
    router = WebhookRouter()
    seen: list[str] = []

    @router.on("reaction.added")
    async def broken(event: Event[Any]) -> None:
        raise ValueError("nope")

    router.on("reaction.added")(lambda event: seen.append("ran"))
    with pytest.raises(ValueError, match="nope"):
        await router.adispatch(make_event())
    assert seen == ["ran"]


def test_module_level_on_registers_on_the_default_router() -> None:
    seen: list[str] = []
    with default_router.isolated():

        @on("receipt.read")
        def read(event: Event[Any]) -> None:
            seen.append(event.event)

        default_router.dispatch(make_event("receipt.read"))
        assert seen[-1:] == ["receipt.read"]
        assert read in default_router.handlers_for("receipt.read")
    assert read not in default_router.handlers_for("receipt.read")


def test_handlers_for_the_wildcard_lists_each_wildcard_handler_once() -> None:
    router = WebhookRouter()

    def everything(event: Event[Any]) -> None: ...

    router.on("*")(everything)
    assert router.handlers_for("*") == [everything]
    assert router.handlers_for("chat.renamed") == [everything]


def test_remove_unregisters_a_handler_from_some_or_all_names() -> None:
    router = WebhookRouter()
    seen: list[str] = []

    def remember(event: Event[Any]) -> None:
        seen.append(event.event)

    router.on("reaction.added", "reaction.removed", "*")(remember)
    router.remove(remember, "reaction.added")
    router.dispatch(make_event("reaction.added"))  # still reached through "*"
    assert seen == ["reaction.added"]
    router.remove(remember)
    router.dispatch(make_event("reaction.removed"))
    assert seen == ["reaction.added"]


def test_background_handlers_run_only_when_dispatching_background() -> None:
    router = WebhookRouter()
    seen: list[str] = []
    router.on("reaction.added")(lambda event: seen.append("inline"))
    router.on("reaction.added", background=True)(lambda event: seen.append("background"))
    router.on("*", background=True)(lambda event: seen.append("background *"))

    assert router.dispatch(make_event()) == 1
    assert seen == ["inline"]
    assert router.dispatch(make_event(), background=True) == 2
    assert seen == ["inline", "background", "background *"]


@pytest.mark.anyio
async def test_adispatch_runs_only_the_handlers_of_the_kind_asked_for() -> None:
    router = WebhookRouter()
    seen: list[str] = []

    @router.on("message.received", background=True)
    async def later(event: Event[Any]) -> None:
        seen.append("background")

    router.on("message.received")(lambda event: seen.append("inline"))
    assert await router.adispatch(make_event("message.received")) == 1
    assert await router.adispatch(make_event("message.received"), background=True) == 1
    assert seen == ["inline", "background"]


def test_handlers_for_and_has_background_tell_the_kinds_apart() -> None:
    router = WebhookRouter()

    def inline(event: Event[Any]) -> None: ...
    def later(event: Event[Any]) -> None: ...

    router.on("message.received")(inline)
    router.on("message.received", background=True)(later)
    assert router.handlers_for("message.received") == [inline]
    assert router.handlers_for("message.received", background=True) == [later]
    assert router.has_background("message.received")
    assert not router.has_background("message.sent")
    assert not router.has_background("*")


def test_a_background_wildcard_handler_gives_every_event_a_background_handler() -> None:
    router = WebhookRouter()
    assert not router.needs_queue()
    router.on("*", background=True)(lambda event: None)
    assert router.has_background("*")
    assert router.has_background("typing.started")
    assert router.has_background("chat.renamed")
    assert router.handlers_for("typing.started") == []


def test_needs_queue_only_once_a_background_handler_is_registered() -> None:
    router = WebhookRouter()

    def later(event: Event[Any]) -> None: ...

    router.on("message.received")(lambda event: None)
    assert not router.needs_queue()
    router.on("message.received", background=True)(later)
    assert router.needs_queue()
    router.remove(later)
    assert not router.needs_queue()


def test_background_registration_validates_names_like_inline() -> None:
    with pytest.raises(ValueError, match=r"did you mean 'message\.received'"):
        WebhookRouter().on("message.recieved", background=True)


def test_isolated_restores_the_previous_handlers_of_both_kinds() -> None:
    router = WebhookRouter()
    seen: list[str] = []

    def kept(event: Event[Any]) -> None:
        seen.append("kept")

    router.on("reaction.added")(kept)
    with router.isolated() as inside:
        assert inside is router
        router.remove(kept)
        router.on("reaction.added")(lambda event: seen.append("temporary"))
        router.on("*", background=True)(lambda event: seen.append("temporary background"))
        router.dispatch(make_event())
        router.dispatch(make_event(), background=True)
    router.dispatch(make_event())
    router.dispatch(make_event(), background=True)
    assert seen == ["temporary", "temporary background", "kept"]
    assert not router.needs_queue()


def test_isolated_restores_even_when_the_block_raises() -> None:
    router = WebhookRouter()

    def failing_test() -> None:
        with router.isolated():
            router.on("reaction.added")(lambda event: None)
            raise RuntimeError("test failed")

    with pytest.raises(RuntimeError):
        failing_test()
    assert router.handlers_for("reaction.added") == []


def test_snapshot_and_restore_bring_back_the_registered_handlers() -> None:
    router = WebhookRouter()

    def first(event: Event[Any]) -> None: ...
    def second(event: Event[Any]) -> None: ...

    router.on("reaction.added")(first)
    saved = router.snapshot()
    router.clear()
    router.on("reaction.added", background=True)(second)
    router.restore(saved)
    assert router.handlers_for("reaction.added") == [first]
    assert router.handlers_for("reaction.added", background=True) == []
    # Registering after a restore never changes the snapshot itself.
    router.on("reaction.added")(second)
    router.restore(saved)
    assert router.handlers_for("reaction.added") == [first]
