"""A handler that records every run in a file of its own process, to count runs across workers.

The scale-out tests load it into an example app, unchanged, through the environment:
``MESSAGES_WEBHOOK_ROUTER=tests.scaleout.counting:router``. Importing this module registers
:func:`count_run` on the default router, where the example's own ``@on`` handlers are, and
:data:`router` *is* that default router: the app runs its own handlers and this one, as one
dispatch. Each run appends ``start <delivery id>`` and ``end <delivery id>`` to
``$SCALEOUT_RUNS_DIR/<pid>.runs``; one file per process, so the test reads which process ran what.

While the file ``$SCALEOUT_HOLD_FILE`` exists, a run waits between its two lines: the test can
kill the process in the middle of a handler. ``$SCALEOUT_HANDLER_SECONDS`` makes every run take
that long, as real work would, so that copies sent at once overlap.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from messages_integrations import Event, default_router, on

__all__ = ["count_run", "router"]

RUNS_DIR = Path(os.environ["SCALEOUT_RUNS_DIR"])
HOLD_FILE = Path(os.environ["SCALEOUT_HOLD_FILE"]) if os.environ.get("SCALEOUT_HOLD_FILE") else None
HANDLER_SECONDS = float(os.environ.get("SCALEOUT_HANDLER_SECONDS") or 0)

_lock = threading.Lock()


def _append(line: str) -> None:
    # One small append per line, flushed at once: a process killed later loses nothing written.
    with _lock, (RUNS_DIR / f"{os.getpid()}.runs").open("a", encoding="ascii") as out:
        out.write(line + "\n")


@on("*")
def count_run(event: Event[Any]) -> None:
    """Record the start of this run, take a while (or wait while held), record its end."""
    _append(f"start {event.delivery_id}")
    if HANDLER_SECONDS:
        time.sleep(HANDLER_SECONDS)
    while HOLD_FILE is not None and HOLD_FILE.exists():
        time.sleep(0.02)
    _append(f"end {event.delivery_id}")


#: The router to name in MESSAGES_WEBHOOK_ROUTER: the default router, now with count_run.
router = default_router
