"""What the test handlers write to Redis, so that a test can tell which process ran what, how
many times: ``<table>`` counts runs per delivery id, ``<table>_pid`` holds the last process id."""

from __future__ import annotations

import os
from typing import Any

from messages_integrations import Event


def note_run(records: Any, table: str, event: Event[Any]) -> None:
    """Count a run of ``event`` in ``table``, and which process ran it."""
    key = event.delivery_id or "?"
    records.hset(f"{table}_pid", key, os.getpid())
    records.hincrby(table, key, 1)
