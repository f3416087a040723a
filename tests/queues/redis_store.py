"""A token-held lease store on a real Redis, for the worker tests (the library's own shared stores
live in ``messages_integrations.stores``). Lua-free: WATCH/MULTI transactions check the token."""

from __future__ import annotations

import redis
from asgiref.sync import sync_to_async

from messages_integrations import Claim, DeliveryStore

_PENDING, _DONE = "p:", "d:"


class RedisLeaseStore(DeliveryStore):
    """``claim``/``extend``/``complete``/``release`` with tokens, atomic across processes."""

    def __init__(self, client: redis.Redis, prefix: str = "test-jobs:") -> None:
        self.client = client
        self.prefix = prefix

    def claim(self, key: str, token: str, *, lease: float) -> Claim:
        """Take the lease unless the key is in progress or done."""
        name = self.prefix + key
        while True:
            if self.client.set(name, _PENDING + token, nx=True, px=_ms(lease)):
                return Claim.NEW
            value = self.client.get(name)
            if value is not None:  # else it expired just now: try again
                text = value.decode() if isinstance(value, bytes) else value
                return Claim.DONE if text.startswith(_DONE) else Claim.IN_PROGRESS

    def extend(self, key: str, token: str, *, lease: float) -> bool:
        """Renew the lease this token holds."""
        name = self.prefix + key
        with self.client.pipeline() as pipe:
            try:
                pipe.watch(name)
                if pipe.get(name) != (_PENDING + token).encode():
                    return False
                pipe.multi()
                pipe.set(name, _PENDING + token, px=_ms(lease))
                pipe.execute()
            except redis.WatchError:
                return False
        return True

    def complete(self, key: str, token: str, *, ttl: float) -> bool:
        """Mark the key done (whoever holds it: the handlers ran); True if this token held it."""
        name = self.prefix + key
        held = self.client.get(name) == (_PENDING + token).encode()
        self.client.set(name, _DONE + token, px=_ms(ttl))
        return held

    def release(self, key: str, token: str) -> bool:
        """Drop the lease this token holds."""
        name = self.prefix + key
        with self.client.pipeline() as pipe:
            try:
                pipe.watch(name)
                if pipe.get(name) != (_PENDING + token).encode():
                    return False
                pipe.multi()
                pipe.delete(name)
                pipe.execute()
            except redis.WatchError:
                return False
        return True

    async def aclaim(self, key: str, token: str, *, lease: float) -> Claim:
        """Async :meth:`claim`."""
        return await sync_to_async(self.claim)(key, token, lease=lease)

    async def aextend(self, key: str, token: str, *, lease: float) -> bool:
        """Async :meth:`extend`."""
        return await sync_to_async(self.extend)(key, token, lease=lease)

    async def acomplete(self, key: str, token: str, *, ttl: float) -> bool:
        """Async :meth:`complete`."""
        return await sync_to_async(self.complete)(key, token, ttl=ttl)

    async def arelease(self, key: str, token: str) -> bool:
        """Async :meth:`release`."""
        return await sync_to_async(self.release)(key, token)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
