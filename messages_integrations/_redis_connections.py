"""Connections of a redis-py pool kept for one kind of command, without the pool's checks.

``Redis.execute_command()`` takes a connection from the client's pool for every command and
gives it back afterwards; taking it, the pool first makes sure that nothing is waiting to be read
on it, with one more system call (a non-blocking ``recv``). Measured on redis-py 8 on loopback, a
``PING`` through ``execute_command`` costs the client about twice the CPU of the same command sent
and read on a connection already in hand, and most of the difference is that check and the
bookkeeping around it.

:class:`Connections` (sync) and :class:`AsyncConnections` (one event loop's) keep the
connections they took from the pool in a list of their own and never give one back with anything
left to read on it: a command that fails other than by an error reply disconnects its connection
(redis-py connects it again at its next command), and the client's retry policy applies as in
``execute_command``. A connection left unused for :data:`IDLE_CHECK` seconds is checked as the
pool would check it, so that one the server closed meanwhile (a restart, an idle timeout) does
not cost a command. The connections stay taken from the pool; a forked child takes its own.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["IDLE_CHECK", "AsyncConnections", "Connections"]

#: A connection unused for longer than this (seconds) is checked before its next command.
IDLE_CHECK = 1.0


def _told_to_reconnect(connection: Any) -> bool:
    # A server about to move asks its clients to reconnect (redis-py's maintenance notices).
    should_reconnect = getattr(connection, "should_reconnect", None)
    return should_reconnect is not None and bool(should_reconnect())


def _wants_command_name(pool: Any) -> bool:
    # redis-py before 5.3 requires a command name (unused) in get_connection(); later versions
    # deprecate passing one.
    try:
        parameter = inspect.signature(pool.get_connection).parameters.get("command_name")
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.default is inspect.Parameter.empty


class Connections:
    """Commands on connections of a sync redis-py connection pool; safe from several threads."""

    def __init__(self, pool: Any) -> None:
        from redis.exceptions import ResponseError

        self._pool = pool
        self._reply_error = ResponseError
        self._command_name = _wants_command_name(self._pool)
        self._idle: list[tuple[Any, float]] = []
        self._pid = os.getpid()

    def execute(self, *command: Any) -> Any:
        """Send ``command`` and read its reply; an error reply raises, as in redis-py."""
        return self._round_trip(lambda connection: connection.send_command(*command))

    def execute_packed(self, packed: list[bytes]) -> Any:
        """:meth:`execute` for a command already in Redis's protocol."""
        return self._round_trip(lambda connection: connection.send_packed_command(packed))

    def _round_trip(self, send: Callable[[Any], None]) -> Any:
        connection = self._take()

        def round_trip() -> Any:
            send(connection)
            reply = connection.read_response()
            if _told_to_reconnect(connection):
                connection.disconnect()
            return reply

        try:
            return connection.retry.call_with_retry(
                round_trip, lambda _error: connection.disconnect()
            )
        except self._reply_error:
            raise  # the reply was read whole: the connection is ready for its next command
        except BaseException:
            connection.disconnect()  # a command cut short may leave its reply on the way
            raise
        finally:
            self._idle.append((connection, time.monotonic()))

    def _take(self) -> Any:
        if self._pid != os.getpid():
            # The parent's connections are the parent's: a child neither uses nor closes them.
            self._idle, self._pid = [], os.getpid()
        try:
            connection, used = self._idle.pop()
        except IndexError:
            if self._command_name:
                return self._pool.get_connection("_")
            return self._pool.get_connection()
        if time.monotonic() - used > IDLE_CHECK:
            try:
                if connection.can_read():  # closed by the server, or something left to read
                    connection.disconnect()
            except Exception:  # noqa: BLE001 - a broken connection connects again at its command
                connection.disconnect()
        return connection


class AsyncConnections:
    """Commands on connections of a ``redis.asyncio`` connection pool, from one event loop.

    The caller keeps one per event loop and disconnects the pool when the loop ends.
    """

    def __init__(self, pool: Any) -> None:
        from redis.exceptions import ResponseError

        self._pool = pool
        self._reply_error = ResponseError
        self._command_name = _wants_command_name(self._pool)
        self._idle: list[tuple[Any, float]] = []

    async def execute(self, *command: Any) -> Any:
        """Send ``command`` and read its reply; an error reply raises, as in redis-py."""
        return await self._round_trip(lambda connection: connection.send_command(*command))

    async def execute_packed(self, packed: list[bytes]) -> Any:
        """:meth:`execute` for a command already in Redis's protocol."""
        return await self._round_trip(lambda connection: connection.send_packed_command(packed))

    async def _round_trip(self, send: Callable[[Any], Awaitable[None]]) -> Any:
        connection = await self._take()

        async def round_trip() -> Any:
            await send(connection)
            reply = await connection.read_response()
            if _told_to_reconnect(connection):
                await connection.disconnect()
            return reply

        async def fail(_error: Exception) -> None:
            await connection.disconnect()

        try:
            return await connection.retry.call_with_retry(round_trip, fail)
        except self._reply_error:
            raise
        except BaseException:
            # Cut short, cancelled included: its reply may still be on the way.
            await connection.disconnect(nowait=True)
            raise
        finally:
            self._idle.append((connection, time.monotonic()))

    async def _take(self) -> Any:
        try:
            connection, used = self._idle.pop()
        except IndexError:
            if self._command_name:
                return await self._pool.get_connection("_")
            return await self._pool.get_connection()
        if time.monotonic() - used > IDLE_CHECK:
            try:
                if await connection.can_read_destructive():
                    await connection.disconnect()
            except Exception:  # noqa: BLE001 - a broken connection connects again at its command
                await connection.disconnect()
        return connection
