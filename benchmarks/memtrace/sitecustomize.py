"""Trace a server's Python allocations for benchmarks/memory.py --trace (Linux, diagnostics only).

Put this folder on the server's ``PYTHONPATH`` with ``BENCH_MEMTRACE`` naming a folder: the
interpreter then starts a thread (in every forked worker too) that obeys command files written
there by the benchmark:

- ``<pid>.start``: start ``tracemalloc`` if it is not running (only then: tracing the server's
  start-up would slow it tenfold), forget the previous peak, take a baseline snapshot;
- ``<pid>.stop``: write ``<pid>.json``: the traced memory at the baseline, its peak since, and
  the ten allocation sites that grew most between the baseline and the largest snapshot taken
  while the memory climbed (a snapshot is taken each time it passes its highest point so far by
  ``STEP`` bytes).
"""

from __future__ import annotations

import json
import os
import threading
import time
import tracemalloc
from pathlib import Path

FOLDER = os.environ.get("BENCH_MEMTRACE")
STEP = 128 * 1024
FRAMES = 12


def _sites(high: tracemalloc.Snapshot, base: tracemalloc.Snapshot) -> list[dict[str, object]]:
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
    high, base = high.filter_traces(ignore), base.filter_traces(ignore)
    sites = []
    for stat in high.compare_to(base, "traceback")[:10]:
        if stat.size_diff <= 0:
            break
        frames = [f"{frame.filename}:{frame.lineno}" for frame in stat.traceback]
        sites.append({"bytes": stat.size_diff, "count": stat.count_diff, "frames": frames})
    return sites


def _watch(folder: Path) -> None:
    pid = os.getpid()
    start, stop = folder / f"{pid}.start", folder / f"{pid}.stop"
    base: tracemalloc.Snapshot | None = None
    high: tracemalloc.Snapshot | None = None
    baseline = highest = 0
    while True:
        time.sleep(0.001 if base is not None else 0.01)
        if start.exists():
            if not tracemalloc.is_tracing():
                tracemalloc.start(FRAMES)
            start.unlink()
            tracemalloc.reset_peak()
            base = high = tracemalloc.take_snapshot()
            baseline = highest = tracemalloc.get_traced_memory()[0]
        elif base is not None:
            current = tracemalloc.get_traced_memory()[0]
            if current > highest + STEP:
                high = tracemalloc.take_snapshot()
                highest = tracemalloc.get_traced_memory()[0]
        if stop.exists() and base is not None and high is not None:
            stop.unlink()
            peak = tracemalloc.get_traced_memory()[1]
            report = {"baseline": baseline, "peak": peak, "sites": _sites(high, base)}
            (folder / f"{pid}.json").write_text(json.dumps(report))
            base = high = None


def _start_watching() -> None:
    if FOLDER:
        threading.Thread(target=_watch, args=(Path(FOLDER),), daemon=True).start()


if FOLDER:
    os.register_at_fork(after_in_child=_start_watching)
    _start_watching()
