"""Store operations from concurrent deliveries sent to Redis together: one round trip for many.

Every delivery costs two store operations (claim, then complete or release). Sent one at a time,
each waits a whole round trip, and on a busy server most of a delivery's Redis time is that wait
and the system calls around it. Here an operation is sent at once when no other is on its way;
otherwise it waits for the one in flight and then goes with every operation that arrived
meanwhile. Nothing waits for company: an operation alone costs one round trip, as it would
without this.

The operations sent together are one call of the store's script (``EVALSHA``), which carries each
operation's key and arguments and answers one integer per operation: the client encodes one
command and parses one reply per round trip, and Redis runs one script, however many deliveries
share it. A server that does not know the script yet (started since, or flushed) has it loaded
and the call sent again.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any

__all__ = ["AsyncPipeline", "Call", "Script", "SyncPipeline"]

#: One store operation: its number in the script, its key, then its two arguments.
Call = tuple[int, str, str, int]


class Script:
    """A Lua script that runs any number of operations, each on its own key (``KEYS[i]``).

    ``ARGV`` holds three values per operation: its number, then its two arguments. The script
    answers a list of one integer per operation.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    def command(self, calls: Sequence[Call]) -> list[str | int]:
        """The ``EVALSHA`` command, name first, that runs ``calls`` in order."""
        command: list[str | int] = ["EVALSHA", self.sha, len(calls)]
        command += [key for _op, key, _first, _second in calls]
        for op, _key, first, second in calls:
            command += (op, first, second)
        return command

    def answers(self, calls: Sequence[Call], reply: Any) -> list[int | BaseException]:
        """The script's reply, checked: one integer per call, or the error of that call alone
        (redis-py returns an error inside a reply as an exception, which its caller raises)."""
        if not isinstance(reply, list) or len(reply) != len(calls):
            raise TypeError(f"the store's script answered {reply!r} to {len(calls)} operations")
        return [answer if isinstance(answer, BaseException) else int(answer) for answer in reply]


def _unknown_script(exc: BaseException) -> bool:
    # redis-py answers NOSCRIPT with NoScriptError; its name is enough to tell it (and spares an
    # import of redis here).
    return type(exc).__name__ == "NoScriptError"


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

    def __init__(self, client: Any, script: Script) -> None:
        self.client = client
        self.script = script
        self._lock = threading.Lock()
        self._waiting: list[_Waiter] = []
        self._busy = False
        self._pid = os.getpid()

    def call(self, call: Call) -> int:
        """Run one operation; its answer, or raise what redis-py raised for it."""
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
        return int(waiter.outcome)

    def _send_waiting(self) -> None:
        with self._lock:
            batch, self._waiting = self._waiting, []
        try:
            outcomes: Sequence[int | BaseException] = self._execute(
                [waiter.call for waiter in batch]
            )
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

    def _execute(self, calls: list[Call]) -> list[int | BaseException]:
        command = self.script.command(calls)
        try:
            reply = self.client.execute_command(*command)
        except Exception as exc:
            if not _unknown_script(exc):
                raise
            self.client.script_load(self.script.source)
            reply = self.client.execute_command(*command)
        return self.script.answers(calls, reply)


class _LoopState:
    __slots__ = ("sender", "waiting")

    def __init__(self) -> None:
        self.waiting: list[tuple[Call, asyncio.Future[int]]] = []
        self.sender: asyncio.Task[None] | None = None


class AsyncPipeline:
    """Calls from the tasks of each event loop, to one ``redis.asyncio`` client.

    The first call finding nothing in flight starts a sender task; calls made before it runs, or
    while its script call is on its way, go in its next one. A caller that is cancelled stops
    waiting; its call may still be sent.
    """

    def __init__(self, client: Any, script: Script) -> None:
        self.client = client
        self.script = script
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )

    async def call(self, call: Call) -> int:
        """Run one operation; its answer, or raise what redis-py raised for it."""
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopState()
        future: asyncio.Future[int] = loop.create_future()
        state.waiting.append((call, future))
        if state.sender is None:
            state.sender = loop.create_task(self._send_waiting(state))
        return await future

    async def _send_waiting(self, state: _LoopState) -> None:
        try:
            while state.waiting:
                batch, state.waiting = state.waiting, []
                try:
                    outcomes: Sequence[int | BaseException] = await self._execute(
                        [call for call, _future in batch]
                    )
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

    async def _execute(self, calls: list[Call]) -> list[int | BaseException]:
        command = self.script.command(calls)
        try:
            reply = await self.client.execute_command(*command)
        except Exception as exc:
            if not _unknown_script(exc):
                raise
            await self.client.script_load(self.script.source)
            reply = await self.client.execute_command(*command)
        return self.script.answers(calls, reply)
