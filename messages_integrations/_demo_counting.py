"""The demo's shared counter: every handler run of a multi-worker example, counted in Redis.

``messages-integrations demo`` loads it into an example app through the environment
(``MESSAGES_WEBHOOK_ROUTER=messages_integrations._demo_counting:router``), beside the app's own
``@on`` handlers, so that runs in four worker processes are counted in one place: a hash of runs
per delivery id and the set of worker pids, in the Redis named by ``MESSAGES_DEMO_COUNTER``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ._demo import COUNTS_KEY, PIDS_KEY
from ._router import default_router, on

__all__ = ["count_run", "router"]


def _client() -> Any:
    import redis  # the demo's multi-worker rows run only when redis-py is installed

    return redis.Redis.from_url(os.environ["MESSAGES_DEMO_COUNTER"])


_redis = _client()


@on("*")
def count_run(event: Any) -> None:
    """Count one run of this delivery's handlers, and the worker process that ran it."""
    # As long as a little real work, so that copies sent at once overlap and reach other workers.
    time.sleep(0.05)
    pipe = _redis.pipeline()
    pipe.hincrby(COUNTS_KEY, event.delivery_id or "(no id)", 1)
    pipe.sadd(PIDS_KEY, os.getpid())
    pipe.execute()


#: What ``MESSAGES_WEBHOOK_ROUTER`` names: the default router, now with :func:`count_run`.
router = default_router
