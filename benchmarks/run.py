"""Run every benchmark and print its Markdown tables, then the targets with their verdicts.

    python benchmarks/run.py [--only core,hooks,http,memory,redis,background]

Takes about two and a half minutes on two cores. The tables of one run are kept in
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import background
import core
import hooks
import http_load
import memory
import redis_store
from _common import Section, machine, targets_table

RUNS: dict[str, Callable[[], Section]] = {
    "core": core.run,
    "hooks": hooks.run,
    "http": http_load.run,
    "memory": memory.run,
    "redis": redis_store.run,
    "background": background.run,
}


def main() -> int:
    """Print the report; the exit status is 0 even when a target is missed (it is a report)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(RUNS), help=f"comma-separated: {','.join(RUNS)}")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(RUNS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    started = time.monotonic()
    print(f"# Benchmarks\n\n{machine()}\n", flush=True)
    sections: list[Section] = []
    for name in chosen:
        began = time.monotonic()
        section = RUNS[name]()
        sections.append(section)
        print(f"## {section.title}\n\n{section.markdown}\n", flush=True)
        print(f"({name}: {time.monotonic() - began:.0f} s)\n", file=sys.stderr, flush=True)
    targets = [target for section in sections for target in section.targets]
    print(f"## Targets\n\n{targets_table(targets)}\n")
    print(f"Total time: {time.monotonic() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
