"""Where delivery ids are remembered, so that a retried delivery runs its handlers only once.

A store keeps one of two states per key: *in progress* (a lease, held under a random token while
the first copy is handled) and *done* (remembered for a while after success). Only the holder of a
lease can extend, complete or release it, so a copy whose lease ran out can never undo the work of
the copy that took over. Shared stores (Redis, a Django cache) live in
:mod:`messages_integrations.stores`; :class:`InMemoryDeliveryStore` is the default, for one process.
"""

from __future__ import annotations

import enum
import math
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


def check_seconds(name: str, value: float) -> float:
    """``value`` as a positive, finite number of seconds, else ValueError naming ``name``."""
    if type(value) is float and 0 < value < math.inf:  # the usual value, checked per delivery
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def check_token(token: str) -> str:
    """``token`` when it is a non-empty string, else an error: an empty token would match anyone."""
    if not isinstance(token, str) or not token:
        raise ValueError("a lease token must be a non-empty string")
    return token


class DeliveryStore(ABC):
    """The interface of a de-duplication store; implement the four sync methods.

    Each must be atomic across every process that shares the store. ``token`` is a random string
    the caller generates per delivery (``secrets.token_hex(16)``): it names the lease's holder.
    The async variants run the sync ones in a worker thread; a store with a native async client
    overrides them.
    """

    @abstractmethod
    def claim(self, key: str, token: str, *, lease: float) -> Claim:
        """Take the lease on ``key`` for ``lease`` seconds under ``token``, unless held or done.

        Answers ``DONE`` when the key is done, ``IN_PROGRESS`` while a live lease holds it, and
        otherwise takes the lease and answers ``NEW``, all in one atomic step.
        """

    @abstractmethod
    def extend(self, key: str, token: str, *, lease: float) -> bool:
        """Push the lease's expiry to now + ``lease`` while ``token`` holds it; else False."""

    @abstractmethod
    def complete(self, key: str, token: str, *, ttl: float) -> bool:
        """Mark ``key`` done for ``ttl`` seconds when ``token`` holds its lease or the key is free.

        A free key means the lease ran out while nobody took it over: the work was still done.
        Answers False, changing nothing, when another token holds the lease or the key is done.
        """

    @abstractmethod
    def release(self, key: str, token: str) -> bool:
        """Drop the lease on ``key`` while ``token`` holds it, so that a retry starts afresh.

        Never touches another holder's lease or a done marker; answers whether it dropped one.
        """

    async def aclaim(self, key: str, token: str, *, lease: float) -> Claim:
        """Async :meth:`claim`."""
        return await sync_to_async(self.claim, thread_sensitive=False)(key, token, lease=lease)

    async def aextend(self, key: str, token: str, *, lease: float) -> bool:
        """Async :meth:`extend`."""
        return await sync_to_async(self.extend, thread_sensitive=False)(key, token, lease=lease)

    async def acomplete(self, key: str, token: str, *, ttl: float) -> bool:
        """Async :meth:`complete`."""
        return await sync_to_async(self.complete, thread_sensitive=False)(key, token, ttl=ttl)

    async def arelease(self, key: str, token: str) -> bool:
        """Async :meth:`release`."""
        return await sync_to_async(self.release, thread_sensitive=False)(key, token)

    def describe(self) -> str:
        """Where this store keeps its keys, for a start-up log line; never shows a password."""
        return type(self).__name__


class InMemoryDeliveryStore(DeliveryStore):
    """A thread- and task-safe store for one process, with expiry and a bound on its size.

    Use a shared store (:mod:`messages_integrations.stores`) when several processes or machines
    receive the same webhook: this one only de-duplicates within its own process.
    """

    def __init__(self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic):
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (expires_at, token), oldest first, so that eviction pops from the front. A done
        # entry keeps no token (""): nobody holds it any more, and a lease's token is never empty.
        # Plain floats and strings: the garbage collector stops tracking these tuples, so a full
        # store costs its collections nothing.
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def describe(self) -> str:
        """``in-memory``: the keys live in this process only."""
        return "in-memory"

    def _live(self, key: str, now: float) -> tuple[float, str] | None:
        entry = self._entries.get(key)
        if entry is not None and entry[0] <= now:
            del self._entries[key]
            return None
        return entry

    def _put(self, key: str, seconds: float, token: str, now: float) -> None:
        entries = self._entries
        entries[key] = (now + seconds, token)
        entries.move_to_end(key)
        # Drop expired entries from the old end, then the oldest ones past the size bound.
        while entries and next(iter(entries.values()))[0] <= now:
            entries.popitem(last=False)
        while len(entries) > self._max_entries:
            entries.popitem(last=False)

    def claim(self, key: str, token: str, *, lease: float) -> Claim:
        """Take the lease on ``key`` under ``token`` unless it is in progress or done."""
        check_token(token)
        seconds = check_seconds("lease", lease)
        with self._lock:
            now = self._clock()
            entry = self._live(key, now)
            if entry is not None:
                return Claim.IN_PROGRESS if entry[1] else Claim.DONE
            self._put(key, seconds, token, now)
            return Claim.NEW

    def extend(self, key: str, token: str, *, lease: float) -> bool:
        """Push the lease's expiry to now + ``lease`` while ``token`` holds it."""
        check_token(token)
        seconds = check_seconds("lease", lease)
        with self._lock:
            now = self._clock()
            entry = self._live(key, now)
            if entry is None or entry[1] != token:
                return False
            self._put(key, seconds, token, now)
            return True

    def complete(self, key: str, token: str, *, ttl: float) -> bool:
        """Remember ``key`` as done for ``ttl`` seconds, if ``token`` holds it or it is free."""
        check_token(token)
        seconds = check_seconds("ttl", ttl)
        with self._lock:
            now = self._clock()
            entry = self._live(key, now)
            if entry is not None and entry[1] != token:  # done ("") or another's lease
                return False
            self._put(key, seconds, "", now)
            return True

    def release(self, key: str, token: str) -> bool:
        """Forget the lease on ``key`` if ``token`` holds it."""
        check_token(token)
        with self._lock:
            entry = self._live(key, self._clock())
            if entry is None or entry[1] != token:
                return False
            del self._entries[key]
            return True

    # The lock is only ever held for a few dictionary operations, so the event loop may take it.
    async def aclaim(self, key: str, token: str, *, lease: float) -> Claim:
        """Async :meth:`claim`, without a thread hop."""
        return self.claim(key, token, lease=lease)

    async def aextend(self, key: str, token: str, *, lease: float) -> bool:
        """Async :meth:`extend`, without a thread hop."""
        return self.extend(key, token, lease=lease)

    async def acomplete(self, key: str, token: str, *, ttl: float) -> bool:
        """Async :meth:`complete`, without a thread hop."""
        return self.complete(key, token, ttl=ttl)

    async def arelease(self, key: str, token: str) -> bool:
        """Async :meth:`release`, without a thread hop."""
        return self.release(key, token)
