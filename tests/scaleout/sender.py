"""Send a delivery as Messages.dev does: retry it until it is answered 2xx or the test gives up.

A 409 (the first copy is still being handled), a 503 (the store is down) and a dropped
connection (the worker died) are retried after a short pause. The pause is short so the tests are
quick; the real sender waits longer (the answers carry ``Retry-After``). Every request opens its own
connection, as a sender's retries do, so that the copies are spread over the server's workers.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from messages_integrations.testing import Delivery

__all__ = ["DISCONNECTED", "Attempts", "new_client", "send_until_answered"]

#: What an attempt records when the connection dropped before an answer.
DISCONNECTED = 0
RETRIED = frozenset({409, 503, DISCONNECTED})


@dataclass
class Attempts:
    """Every answer one copy of a delivery got, in order, and the body of the last one."""

    statuses: list[int] = field(default_factory=list)
    last_body: dict[str, object] = field(default_factory=dict)
    retry_after: list[str | None] = field(default_factory=list)

    @property
    def final(self) -> int:
        """The status of the last answer (DISCONNECTED when none came)."""
        return self.statuses[-1] if self.statuses else DISCONNECTED


def new_client(timeout: float = 60.0) -> httpx.AsyncClient:
    """A client that opens a new connection for every request."""
    return httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_keepalive_connections=0))


async def send_until_answered(
    client: httpx.AsyncClient,
    url: str,
    delivery: Delivery,
    *,
    pause: float = 0.05,
    give_up_after: float = 60.0,
) -> Attempts:
    """POST ``delivery`` until it gets an answer other than 409, 503 or a dropped connection."""
    attempts = Attempts()
    deadline = time.monotonic() + give_up_after
    while True:
        try:
            response = await client.post(url, content=delivery.body, headers=delivery.headers)
        except httpx.TransportError:
            attempts.statuses.append(DISCONNECTED)
            attempts.retry_after.append(None)
        else:
            attempts.statuses.append(response.status_code)
            attempts.retry_after.append(response.headers.get("retry-after"))
            attempts.last_body = response.json()
        if attempts.final not in RETRIED or time.monotonic() > deadline:
            return attempts
        await asyncio.sleep(pause)
