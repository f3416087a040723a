"""Where delivery ids are remembered, so that a retried delivery runs its handlers only once.

A store keeps one of two states per key: *in progress* (a lease, held while the first copy is
handled) and *done* (remembered for a while after success). A failure releases the lease, so the
sender's retry is handled in full. Shared stores (a Django cache, Redis) implement the same three
operations atomically; :class:`InMemoryDeliveryStore` is the default, for a single process.
"""

from __future__ import annotations

import enum
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable

from asgiref.sync import sync_to_async

__all__ = ["Claim", "DeliveryStore", "InMemoryDeliveryStore"]


class Claim(enum.Enum):
    """The answer of :meth:`DeliveryStore.claim`."""

    NEW = "new"  #: the caller now holds the lease and must call complete() or release()
    IN_PROGRESS = "in_progress"  #: another copy holds the lease
    DONE = "done"  #: handled successfully before


class DeliveryStore(ABC):
    """The interface of a de-duplication store; implement the three sync methods.

    Each must be atomic across every process that shares the store. The async variants run the
    sync ones in a worker thread; a store with a native async client overrides them.
    """

    @abstractmethod
    def claim(self, key: str, *, lease: float) -> Claim:
        """Take the lease on ``key`` for ``lease`` seconds unless it is in progress or done."""

    @abstractmethod
    def complete(self, key: str, *, ttl: float) -> None:
        """Mark ``key`` done for ``ttl`` seconds, replacing the lease."""

    @abstractmethod
    def release(self, key: str) -> None:
        """Drop the lease on ``key`` after a failure, so that a retry starts afresh."""

    async def aclaim(self, key: str, *, lease: float) -> Claim:
        """Async :meth:`claim`."""
        return await sync_to_async(self.claim, thread_sensitive=False)(key, lease=lease)

    async def acomplete(self, key: str, *, ttl: float) -> None:
        """Async :meth:`complete`."""
        await sync_to_async(self.complete, thread_sensitive=False)(key, ttl=ttl)

    async def arelease(self, key: str) -> None:
        """Async :meth:`release`."""
        await sync_to_async(self.release, thread_sensitive=False)(key)


class InMemoryDeliveryStore(DeliveryStore):
    """A thread- and task-safe store for one process, with expiry and a bound on its size.

    Use a shared store when several processes or machines receive the same webhook.
    """

    def __init__(self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic):
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (state, expires_at), oldest first, so that eviction pops from the front.
        self._entries: OrderedDict[str, tuple[Claim, float]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _put(self, key: str, state: Claim, seconds: float) -> None:
        now = self._clock()
        self._entries[key] = (state, now + seconds)
        self._entries.move_to_end(key)
        # Drop expired entries from the old end, then the oldest ones past the size bound.
        entries = self._entries
        while entries and next(iter(entries.values()))[1] <= now:
            entries.popitem(last=False)
        while len(entries) > self._max_entries:
            entries.popitem(last=False)

    def claim(self, key: str, *, lease: float) -> Claim:
        """Take the lease on ``key`` unless it is in progress or done."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[1] > self._clock():
                return entry[0]
            self._put(key, Claim.IN_PROGRESS, lease)
            return Claim.NEW

    def complete(self, key: str, *, ttl: float) -> None:
        """Remember ``key`` as done for ``ttl`` seconds."""
        with self._lock:
            self._put(key, Claim.DONE, ttl)

    def release(self, key: str) -> None:
        """Forget the lease on ``key``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] is Claim.IN_PROGRESS:
                del self._entries[key]

    # The lock is only ever held for a dictionary operation, so the event loop may take it.
    async def aclaim(self, key: str, *, lease: float) -> Claim:
        """Async :meth:`claim`, without a thread hop."""
        return self.claim(key, lease=lease)

    async def acomplete(self, key: str, *, ttl: float) -> None:
        """Async :meth:`complete`, without a thread hop."""
        self.complete(key, ttl=ttl)

    async def arelease(self, key: str) -> None:
        """Async :meth:`release`, without a thread hop."""
        self.release(key)
