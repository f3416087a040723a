"""Scripts from concurrent deliveries sent to Redis together: one round trip for many.

Every delivery costs two script calls (claim, then complete or release). Sent one at a time, each
waits a whole round trip, and on a busy server most of a delivery's Redis time is that wait and
the system calls around it. Here a call is sent at once when no other is on its way; otherwise it
waits for the one in flight and then goes, with every call that arrived meanwhile, in one
pipeline. Nothing waits for company: a call alone costs one round trip, as it would without this.

Scripts are called by their SHA-1 (``EVALSHA``); a server that does not know one yet (started
since, or flushed) has it loaded and the call sent again.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any, Final

__all__ = ["AsyncPipeline", "SyncPipeline"]

#: What a call to a script is: (its SHA-1, the script itself, its one key, then its arguments).
Call = tuple[str, str, str, Sequence[str | int]]


def script_call(source: str, key: str, args: Sequence[str | int]) -> Call:
    """A call of the script ``source`` on ``key``, ready to be sent by SHA-1."""
    return (_sha1(source), source, key, args)


def _sha1(source: str) -> str:
    # Scripts are a handful of module constants: hash each once.
    digest = _DIGESTS.get(source)
    if digest is None:
        digest = _DIGESTS[source] = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
    return digest


_DIGESTS: Final[dict[str, str]] = {}


def _queue(pipe: Any, calls: Sequence[Call]) -> None:
    for sha, _source, key, args in calls:
        pipe.execute_command("EVALSHA", sha, 1, key, *args)


def _unknown_scripts(results: list[Any]) -> list[int]:
    # redis-py answers NOSCRIPT with NoScriptError; its name is enough to tell it (and spares an
    # import of redis here).
    return [i for i, result in enumerate(results) if type(result).__name__ == "NoScriptError"]


def _copy(exc: BaseException) -> BaseException:
    # Each caller raises an exception of its own: one instance raised in several threads or
    # tasks would have their tracebacks written over each other.
    try:
        twin = copy.copy(exc)
    except Exception:  # noqa: BLE001 - an exception that cannot be copied is shared
        return exc
    twin.__cause__, twin.__context__ = exc.__cause__, exc.__context__
    return twin


class _Waiter:
    """One call waiting in a thread: its result, or its turn to send everyone's."""

    __slots__ = ("call", "leads", "outcome", "turn")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.outcome: Any = None
        self.leads = False
        self.turn: threading.Lock | None = None


class SyncPipeline:
    """Calls from the threads of one process, to one sync redis-py client.

    The thread that finds nothing in flight sends; threads that arrive meanwhile wait (each on a
    lock of its own), and the first of them sends everything that gathered once the answer is in.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._waiting: list[_Waiter] = []
        self._busy = False
        self._pid = os.getpid()

    def call(self, call: Call) -> Any:
        """Run one script call; its answer, or raise what redis-py raised for it."""
        waiter = _Waiter(call)
        with self._lock:
            if self._pid != os.getpid():
                # A forked child inherits the parent's state, not its threads.
                self._pid, self._waiting, self._busy = os.getpid(), [], False
            self._waiting.append(waiter)
            if self._busy:
                waiter.turn = threading.Lock()
                waiter.turn.acquire()
            else:
                self._busy = waiter.leads = True
        if waiter.turn is not None:
            waiter.turn.acquire()  # released by a sender: with the outcome, or to lead
        if waiter.leads:
            self._send_waiting()
        if isinstance(waiter.outcome, BaseException):
            raise waiter.outcome
        return waiter.outcome

    def _send_waiting(self) -> None:
        with self._lock:
            batch, self._waiting = self._waiting, []
        try:
            outcomes = self._execute([waiter.call for waiter in batch])
        # The connection failed (or the thread is being stopped): so did every call in the batch.
        except BaseException as exc:  # noqa: BLE001 - handed to each caller, who raises it
            outcomes = [exc] + [_copy(exc) for _ in batch[1:]]
        finally:
            with self._lock:
                following = self._waiting[0] if self._waiting else None
                if following is not None:
                    following.leads = True
                else:
                    self._busy = False
        for waiter, outcome in zip(batch, outcomes, strict=True):
            waiter.outcome = outcome
            if waiter.turn is not None:
                waiter.turn.release()
        if following is not None and following.turn is not None:
            following.turn.release()

    def _execute(self, calls: list[Call]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        _queue(pipe, calls)
        results: list[Any] = pipe.execute(raise_on_error=False)
        unknown = _unknown_scripts(results)
        if unknown:
            again = [calls[i] for i in unknown]
            for source in {call[1] for call in again}:
                self.client.script_load(source)
            pipe = self.client.pipeline(transaction=False)
            _queue(pipe, again)
            for i, result in zip(unknown, pipe.execute(raise_on_error=False), strict=True):
                results[i] = result
        return results


class _LoopState:
    __slots__ = ("sender", "waiting")

    def __init__(self) -> None:
        self.waiting: list[tuple[Call, asyncio.Future[Any]]] = []
        self.sender: asyncio.Task[None] | None = None


class AsyncPipeline:
    """Calls from the tasks of each event loop, to one ``redis.asyncio`` client.

    The first call finding nothing in flight starts a sender task; calls made before it runs, or
    while its pipeline is on its way, go in its next pipeline. A caller that is cancelled stops
    waiting; its call may still be sent.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )

    async def call(self, call: Call) -> Any:
        """Run one script call; its answer, or raise what redis-py raised for it."""
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopState()
        future: asyncio.Future[Any] = loop.create_future()
        state.waiting.append((call, future))
        if state.sender is None:
            state.sender = loop.create_task(self._send_waiting(state))
        return await future

    async def _send_waiting(self, state: _LoopState) -> None:
        try:
            while state.waiting:
                batch, state.waiting = state.waiting, []
                try:
                    outcomes = await self._execute([call for call, _future in batch])
                # The connection failed: so did every call in the batch; each caller raises it.
                except Exception as exc:  # noqa: BLE001
                    outcomes = [exc] + [_copy(exc) for _ in batch[1:]]
                except BaseException:
                    for _call, future in batch:
                        future.cancel()
                    raise
                for (_call, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # its caller was cancelled
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            state.sender = None
            for _call, future in state.waiting:  # only when the loop cancels the sender
                future.cancel()
            state.waiting = []

    async def _execute(self, calls: list[Call]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        _queue(pipe, calls)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        unknown = _unknown_scripts(results)
        if unknown:
            again = [calls[i] for i in unknown]
            for source in {call[1] for call in again}:
                await self.client.script_load(source)
            pipe = self.client.pipeline(transaction=False)
            _queue(pipe, again)
            for i, result in zip(unknown, await pipe.execute(raise_on_error=False), strict=True):
                results[i] = result
        return results
