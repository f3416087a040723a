"""gunicorn settings for Prometheus in multiprocess mode, as ``docs/observability.md`` shows."""

from __future__ import annotations

from typing import Any

from prometheus_client import multiprocess


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited: its in-progress gauge no longer counts."""
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
