"""The in-memory store's own promises: expiry on its clock, a size bound, no thread hop in async."""

from __future__ import annotations

import threading

import pytest

from messages_integrations import Claim, InMemoryDeliveryStore


class Clock:
    """A clock the test moves by hand, noting the thread of every reading."""

    def __init__(self) -> None:
        self.now = 0.0
        self.threads: list[threading.Thread] = []

    def __call__(self) -> float:
        self.threads.append(threading.current_thread())
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> InMemoryDeliveryStore:
    return InMemoryDeliveryStore(clock=clock)


def test_done_deliveries_are_forgotten_after_their_ttl(
    store: InMemoryDeliveryStore, clock: Clock
) -> None:
    assert store.claim("a", "t1", lease=10) is Claim.NEW
    assert store.claim("a", "t2", lease=10) is Claim.IN_PROGRESS
    assert store.complete("a", "t1", ttl=100) is True
    clock.now = 99.9
    assert store.claim("a", "t2", lease=10) is Claim.DONE
    clock.now = 100.1
    assert store.claim("a", "t2", lease=10) is Claim.NEW


def test_a_lease_expires_so_a_crashed_handler_is_retried(
    store: InMemoryDeliveryStore, clock: Clock
) -> None:
    assert store.claim("a", "t1", lease=10) is Claim.NEW
    clock.now = 10.0
    assert store.claim("a", "t2", lease=10) is Claim.NEW
    assert store.release("a", "t1") is False, "the first holder's token is stale"
    assert store.claim("a", "t3", lease=10) is Claim.IN_PROGRESS


def test_extend_moves_the_expiry_from_now(store: InMemoryDeliveryStore, clock: Clock) -> None:
    store.claim("a", "t1", lease=10)
    clock.now = 9.0
    assert store.extend("a", "t1", lease=10) is True
    clock.now = 18.9
    assert store.claim("a", "t2", lease=10) is Claim.IN_PROGRESS
    clock.now = 19.0
    assert store.extend("a", "t1", lease=10) is False, "ran out before the second extension"


def test_the_store_is_bounded(clock: Clock) -> None:
    store = InMemoryDeliveryStore(max_entries=3, clock=clock)
    for key in "abcde":
        store.claim(key, "t", lease=60)
        store.complete(key, "t", ttl=60)
    assert len(store) == 3
    assert store.claim("a", "t", lease=60) is Claim.NEW  # the oldest was evicted
    assert store.claim("e", "t", lease=60) is Claim.DONE


def test_expired_entries_are_dropped_as_new_ones_arrive(
    store: InMemoryDeliveryStore, clock: Clock
) -> None:
    for key in "abc":
        store.claim(key, "t", lease=5)
    clock.now = 6.0
    store.claim("d", "t", lease=5)
    assert len(store) == 1


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        InMemoryDeliveryStore(max_entries=0)


@pytest.mark.anyio
async def test_async_methods_run_on_the_event_loop_thread(
    store: InMemoryDeliveryStore, clock: Clock
) -> None:
    assert await store.aclaim("a", "t1", lease=10) is Claim.NEW
    assert await store.aextend("a", "t1", lease=10) is True
    assert await store.arelease("a", "t1") is True
    assert await store.aclaim("a", "t2", lease=10) is Claim.NEW
    assert await store.acomplete("a", "t2", ttl=10) is True
    assert clock.threads
    assert set(clock.threads) == {threading.current_thread()}
