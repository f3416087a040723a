"""What observing deliveries costs: one delivery through ``WebhookReceiver.handle`` (verify, parse,
dispatch to one handler, the outcome) with every hook off, with Prometheus on, with a callback,
and with OpenTelemetry's API but no SDK; beside the same with the library as it was before
(``--before REV``, default ``ddd41de``: its package is taken from git into a temporary folder and
imported under another name, so both run in this process, round after round).

    python benchmarks/hooks.py [--rounds 31] [--batch-ms 25] [--before ddd41de]
                               [--no-instructions]

The store never remembers a delivery (so the same signed body is new every time); what is
measured is the request path and the hooks, not a store. With valgrind installed, each
configuration's CPU instructions per delivery are also counted (callgrind), a figure that a busy
machine does not blur.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from _common import ROOT, Section, Target, interleave, spread, table, targets_table

import messages_integrations
from messages_integrations.testing import build_delivery

SECRET = "whsec_benchmark_secret_5f2b1c"
BEFORE = "ddd41de"

Call = Callable[[], object]


def load_before(revision: str, folder: Path) -> ModuleType:
    """The package as it was at ``revision``, importable as ``messages_integrations_before``."""
    archive = subprocess.run(
        ["git", "archive", revision, "messages_integrations"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "messages_integrations").rename(folder / "messages_integrations_before")
    sys.path.insert(0, str(folder))
    # Its modules import each other relatively, so the copy is a package of its own.
    return importlib.import_module("messages_integrations_before")


def _null_store(package: ModuleType) -> Any:
    class NeverRemembers(package.DeliveryStore):  # type: ignore[name-defined, misc]
        """Every delivery is new: the same body can be sent again and again."""

        def claim(self, key: str, token: str, *, lease: float) -> Any:
            return package.Claim.NEW

        def extend(self, key: str, token: str, *, lease: float) -> bool:
            return True

        def complete(self, key: str, token: str, *, ttl: float) -> bool:
            return True

        def release(self, key: str, token: str) -> bool:
            return True

    return NeverRemembers()


def delivery_call(package: ModuleType) -> Call:
    """One reaction.added delivery (382 B) through ``receiver.handle`` to one handler."""
    router = package.WebhookRouter()
    seen: list[str] = []
    router.on("reaction.added")(lambda event: seen.append(event.data.message_id))
    receiver = package.WebhookReceiver(secret=SECRET, router=router, store=_null_store(package))
    delivery = build_delivery("reaction.added", secret=SECRET)
    headers, body = delivery.headers, delivery.body
    handle = receiver.handle

    def call() -> object:
        seen.clear()
        return handle("POST", headers, body)

    answer = call()
    assert answer.status == 200, answer.body
    return call


class Hooks:
    """Turns one package's hooks on and off between batches (untimed)."""

    def __init__(self, package: ModuleType) -> None:
        from prometheus_client import CollectorRegistry

        self.package = package
        self.observers = package._outcomes.GLOBAL_OBSERVERS
        prometheus = importlib.import_module(f"{package.__name__}.prometheus")
        # A registry of its own per package: both define the same metric names.
        prometheus.enable(CollectorRegistry())
        self.metrics = prometheus._metrics
        # Before this work the metrics were one more observer; now they are a hook of their own.
        self.metering = getattr(package._outcomes, "set_metering", None)
        self.otel = importlib.import_module(f"{package.__name__}.otel")
        self.off()

    def off(self) -> None:
        """No observer, no tracer, no metrics."""
        for callback in self.observers.current():
            self.observers.remove(callback)
        if self.metering is not None:
            self.metering(None)
        self.otel.disable()

    def prometheus(self) -> None:
        """Prometheus only."""
        self.off()
        if self.metering is not None:
            self.metering(self.metrics)
        else:
            self.observers.add(self.metrics)

    def callback(self) -> None:
        """One callback of the user's that does nothing."""
        self.off()
        self.observers.add(_ignore)

    def opentelemetry(self) -> None:
        """OpenTelemetry's API with no SDK configured (what an app gets before it sets one up)."""
        self.off()
        self.otel.enable()


def _ignore(record: object) -> None:
    return None


CONFIGURATIONS = {
    # name: (which package, which switch)
    "before, every hook off": ("before", "off"),
    "now, every hook off": ("now", "off"),
    "before, Prometheus on": ("before", "prometheus"),
    "now, Prometheus on": ("now", "prometheus"),
    "now, one callback": ("now", "callback"),
    "now, OpenTelemetry API without an SDK": ("now", "opentelemetry"),
}


def _packages(before: str, folder: Path) -> dict[str, ModuleType]:
    return {"before": load_before(before, folder), "now": messages_integrations}


def run_deliveries(configuration: str, count: int, before: str) -> None:
    """Set up one configuration and run ``count`` deliveries (what callgrind measures)."""
    which, switch = CONFIGURATIONS[configuration]
    with tempfile.TemporaryDirectory(prefix="bench-before-") as folder:
        package = _packages(before, Path(folder))[which]
        hooks = Hooks(package)
        call = delivery_call(package)
        getattr(hooks, switch)()
        for _ in range(count):
            call()


def instructions(configuration: str, before: str) -> float | None:
    """CPU instructions per delivery (callgrind), or None without valgrind.

    Two runs of different lengths, so that start-up cancels out; deterministic, unlike time
    on a shared machine.
    """
    if shutil.which("valgrind") is None:
        return None
    totals = []
    for count in (500, 2500):
        argv = [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--deliveries",
            configuration,
            str(count),
            "--before",
            before,
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        result = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
        found = re.search(r"Collected : (\d+)", result.stderr)
        assert found is not None, result.stderr
        totals.append(int(found.group(1)))
    return (totals[1] - totals[0]) / 2000


def run(
    rounds: int = 31, batch_seconds: float = 0.025, before: str = BEFORE, count: bool = True
) -> Section:
    """Measure every configuration and return the table and the two targets."""
    with tempfile.TemporaryDirectory(prefix="bench-before-") as folder:
        packages = _packages(before, Path(folder))
        hooks = {which: Hooks(package) for which, package in packages.items()}
        deliver = {which: delivery_call(package) for which, package in packages.items()}
        calls = {name: deliver[which] for name, (which, _) in CONFIGURATIONS.items()}
        switches: dict[str, Call] = {
            name: getattr(hooks[which], switch) for name, (which, switch) in CONFIGURATIONS.items()
        }
        times = interleave(calls, rounds, batch_seconds, switches)
        for each in hooks.values():
            each.off()
    counted = {name: instructions(name, before) if count else None for name in CONFIGURATIONS}
    off, before_off = "now, every hook off", "before, every hook off"
    fastest_off = min(times[off]) * 1e6
    per_microsecond = None if counted[off] is None else counted[off] / fastest_off
    rows = []
    for name in CONFIGURATIONS:
        micro = [t * 1e6 for t in times[name]]
        more, more_q1, more_q3 = spread(
            [m - o * 1e6 for m, o in zip(micro, times[off], strict=True)]
        )
        ir = counted[name]
        rows.append(
            [
                name.replace("before", f"before ({before})"),
                f"{spread(micro)[0]:.1f} µs",
                f"{more:+.1f} µs ({more_q1:+.1f} to {more_q3:+.1f})",
                "n/a" if ir is None else f"{ir:,.0f}",
                _instructions_more(ir, counted[off], per_microsecond),
            ]
        )
    markdown = "\n\n".join(
        [
            "One `reaction.added` delivery (382 B) through `WebhookReceiver.handle` to one "
            "handler, with a store that never remembers. Time: the median over "
            f"{rounds} interleaved rounds of the time per delivery, and of the difference with "
            "*now, every hook off* in the same round (first to third quartile in brackets). "
            "Instructions: CPU instructions per delivery counted by callgrind (deterministic); "
            "in µs at this run's speed (instructions of *now, every hook off* over its fastest "
            "round).",
            table(
                [
                    "configuration",
                    "time per delivery",
                    "time vs now, hooks off",
                    "instructions",
                    "instructions vs now, hooks off",
                ],
                rows,
            ),
        ]
    )
    targets = _targets(times, counted, per_microsecond, off, before_off)
    return Section("Hooks: what observing a delivery costs", markdown, targets)


def _instructions_more(ir: float | None, off: float | None, rate: float | None) -> str:
    if ir is None or off is None or rate is None:
        return "n/a"
    return f"{ir - off:+,.0f} = {(ir - off) / rate:+.2f} µs"


def _targets(
    times: dict[str, list[float]],
    counted: dict[str, float | None],
    per_microsecond: float | None,
    off: str,
    before_off: str,
) -> list[Target]:
    prometheus = "now, Prometheus on"
    now, old, metered = counted[off], counted[before_off], counted[prometheus]
    if now is not None and old is not None and metered is not None and per_microsecond:
        ratio, note = now / old, "instructions"
        more, more_note = (metered - now) / per_microsecond, "instructions at this run's speed"
    else:
        ratio = spread([n / b for n, b in zip(times[off], times[before_off], strict=True)])[0]
        pairs = zip(times[prometheus], times[off], strict=True)
        more = spread([(p - o) * 1e6 for p, o in pairs])[0]
        note = more_note = "time (valgrind not installed)"
    return [
        Target("every hook off, now / before", ratio, 1.02, note=note),
        Target("Prometheus on: more per delivery", more, 1.5, unit=" µs", note=more_note),
    ]


def main() -> None:
    """Print the table and the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--batch-ms", type=float, default=25.0)
    parser.add_argument("--before", default=BEFORE, help="the git revision to compare with")
    parser.add_argument(
        "--no-instructions", action="store_true", help="skip the callgrind counts (3 minutes)"
    )
    parser.add_argument("--deliveries", nargs=2, metavar=("CONFIGURATION", "COUNT"))
    args = parser.parse_args()
    if args.deliveries:
        run_deliveries(args.deliveries[0], int(args.deliveries[1]), args.before)
        return
    section = run(args.rounds, args.batch_ms / 1000, args.before, not args.no_instructions)
    print(f"## {section.title}\n\n{section.markdown}\n\n{targets_table(section.targets)}")


if __name__ == "__main__":
    main()
