"""Verify + parse (and dispatch) one delivery, beside two floors and the peers.

The floors are the least a hand-written receiver does: HMAC-SHA256 of the signed bytes with the
``hmac`` module and ``hmac.compare_digest``, then ``json.loads`` (the standard library's floor)
or ``orjson.loads`` (the orjson floor). Peers verify the same body in their own signature
schemes. Every contender runs once per round, in rotating order; each figure is the median over
rounds of the contender's time divided by a floor's time in that same round.

    python benchmarks/core.py [--rounds 21] [--batch-ms 25]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import importlib
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from _common import Section, Target, interleave, ratios, spread, table, targets_table

from messages_integrations import WebhookRouter, verify_webhook
from messages_integrations.testing import build_delivery, sample_data

SECRET = "whsec_benchmark_secret_5f2b1c"
FLOOR = "floor: hmac + compare_digest + json.loads"
ORJSON_FLOOR = "orjson floor: hmac + compare_digest + orjson.loads"
OURS = "messages-integrations `verify_webhook`"
DISPATCH = "… + dispatch to one handler"
UNDECLARED = "… the body with one field this version does not declare"

Call = Callable[[], object]


@dataclass(frozen=True)
class Payload:
    """One signed delivery to verify, as it arrives."""

    label: str
    event: str
    body: bytes
    timestamp: str  # the X-Webhook-Timestamp header, unix milliseconds
    signature: str
    delivery_id: str


def _signed(label: str, event: str, data: dict[str, Any] | None) -> Payload:
    delivery = build_delivery(event, data, secret=SECRET)
    assert delivery.delivery_id is not None
    return Payload(
        label,
        event,
        delivery.body,
        str(delivery.timestamp),
        delivery.signature,
        delivery.delivery_id,
    )


def _message_of_size(size: int, *, attachment: bool) -> dict[str, Any]:
    data = sample_data("message.received")
    if not attachment:
        data["attachments"] = []
    sentence = "Running a few minutes late, order me the carbonara please! "
    base = len(_signed("", "message.received", data).body)
    repeat = max(0, size - base) // len(sentence) + 1
    data["text"] = (data["text"] + " " + sentence * repeat)[: len(data["text"]) + size - base]
    return data


def payloads() -> list[Payload]:
    """The three deliveries of the issue: a reaction, a 1 KB message, a 64 KB message."""
    return [
        _signed("reaction", "reaction.added", None),
        _signed(
            "message + attachment", "message.received", _message_of_size(1024, attachment=True)
        ),
        _signed(
            "message, long text", "message.received", _message_of_size(65536, attachment=False)
        ),
    ]


# --- contenders -------------------------------------------------------------------------------


def floor(payload: Payload, loads: Callable[[bytes], object] = json.loads) -> Call:
    """What a hand-written receiver does: the ``hmac`` module, then ``loads``."""
    key = SECRET.encode()
    body, timestamp, signature = payload.body, payload.timestamp, payload.signature

    def call() -> object:
        expected = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise ValueError("bad signature")
        return loads(body)

    return call


def orjson_floor(payload: Payload) -> Call | None:
    """The floor with orjson reading the JSON, when orjson is installed."""
    try:
        orjson = importlib.import_module("orjson")
    except ImportError:
        return None
    return floor(payload, orjson.loads)


def ours(payload: Payload, *, dispatch: bool) -> Call:
    """``verify_webhook``, and optionally ``WebhookRouter.dispatch`` to one handler."""
    body, timestamp, signature = payload.body, payload.timestamp, payload.signature
    router = WebhookRouter()
    seen: list[str] = []
    router.on(payload.event)(lambda event: seen.append(event.data.chat_id))

    def verify() -> object:
        return verify_webhook(body, signature, SECRET, timestamp=timestamp)

    def verify_and_dispatch() -> object:
        seen.clear()
        return router.dispatch(verify_webhook(body, signature, SECRET, timestamp=timestamp))

    return verify_and_dispatch if dispatch else verify


def undeclared(payload: Payload) -> Call:
    """``verify_webhook`` of the same delivery with one more field in ``data``: the second path."""
    data = json.loads(payload.body)["data"] | {"not_declared_yet": True}
    delivery = build_delivery(payload.event, data, secret=SECRET)
    body, timestamp, signature = delivery.body, str(delivery.timestamp), delivery.signature
    return lambda: verify_webhook(body, signature, SECRET, timestamp=timestamp)


def stripe_peer(payload: Payload) -> Call | None:
    """stripe's ``Webhook.construct_event``: ``t=<s>,v1=<hex>`` over ``f"{t}.{body}"``."""
    try:
        stripe = importlib.import_module("stripe")
    except ImportError:
        return None
    seconds = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{seconds}.".encode() + payload.body, hashlib.sha256)
    header = f"t={seconds},v1={mac.hexdigest()}"
    body = payload.body
    return lambda: stripe.Webhook.construct_event(body, header, SECRET)


def standardwebhooks_peer(payload: Payload) -> Call | None:
    """standardwebhooks' ``Webhook.verify``: ``v1,<base64>`` over ``id.timestamp.body``; parses."""
    try:
        module = importlib.import_module("standardwebhooks.webhooks")
    except ImportError:
        return None
    secret = "whsec_" + base64.b64encode(SECRET.encode()).decode()
    hook = module.Webhook(secret)
    now = datetime.now(tz=UTC)
    signature = hook.sign(payload.delivery_id, now, payload.body.decode())
    headers = {
        "webhook-id": payload.delivery_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    body = payload.body
    return lambda: hook.verify(body, headers)


def svix_peer(payload: Payload) -> Call | None:
    """svix's ``Webhook.verify`` (which does not parse), then ``json.loads``."""
    try:
        module = importlib.import_module("svix.webhooks")
    except ImportError:
        return None
    secret = "whsec_" + base64.b64encode(SECRET.encode()).decode()
    hook = module.Webhook(secret)
    now = datetime.now(tz=UTC)
    headers = {
        "svix-id": payload.delivery_id,
        "svix-timestamp": str(int(now.timestamp())),
        "svix-signature": hook.sign(payload.delivery_id, now, payload.body.decode()),
    }
    body = payload.body

    def call() -> object:
        hook.verify(body, headers)
        return json.loads(body)

    return call


def slack_peer(payload: Payload) -> Call | None:
    """slack_sdk's ``SignatureVerifier.is_valid`` (which does not parse), then ``json.loads``."""
    try:
        module = importlib.import_module("slack_sdk.signature")
    except ImportError:
        return None
    verifier = module.SignatureVerifier(SECRET)
    seconds = str(int(time.time()))
    signature = verifier.generate_signature(timestamp=seconds, body=payload.body)
    body = payload.body

    def call() -> object:
        if not verifier.is_valid(body, seconds, signature):
            raise ValueError("bad signature")
        return json.loads(body)

    return call


PEERS = {
    "stripe `Webhook.construct_event`": stripe_peer,
    "standardwebhooks `Webhook.verify`": standardwebhooks_peer,
    "svix `Webhook.verify` + json.loads": svix_peer,
    "slack_sdk `SignatureVerifier.is_valid` + json.loads": slack_peer,
}


def contenders(payload: Payload) -> dict[str, Call]:
    """Every contender for one payload, each checked once to really verify."""
    calls: dict[str, Call] = {FLOOR: floor(payload)}
    fast_floor = orjson_floor(payload)
    if fast_floor is not None:
        calls[ORJSON_FLOOR] = fast_floor
    calls[OURS] = ours(payload, dispatch=False)
    calls[DISPATCH] = ours(payload, dispatch=True)
    calls[UNDECLARED] = undeclared(payload)
    for name, make in PEERS.items():
        call = make(payload)
        if call is not None:
            calls[name] = call
    for call in calls.values():
        call()  # raises if a contender does not verify its payload
    return calls


# --- the run ----------------------------------------------------------------------------------


def _cell(name: str, times: dict[str, list[float]]) -> tuple[str, dict[str, float]]:
    """A contender's median time and its ratios to the floors in the same rounds."""
    micro = statistics.median(times[name]) * 1e6
    if name in (FLOOR, ORJSON_FLOOR):
        return f"{micro:.1f} µs", {}
    medians = {}
    parts = [f"{micro:.1f} µs"]
    for floor_name, label in ((FLOOR, "stdlib"), (ORJSON_FLOOR, "orjson")):
        if floor_name not in times:
            continue
        median, q1, q3 = spread(ratios(times[name], times[floor_name]))
        medians[floor_name] = median
        parts.append(f"**{median:.2f}x** {label} ({q1:.2f}-{q3:.2f})")
    return ", ".join(parts), medians


def run(rounds: int = 21, batch_seconds: float = 0.025) -> Section:
    """Measure every payload and return the tables and the core targets."""
    columns: list[str] = []
    cells: dict[str, list[str]] = {}
    medians: dict[tuple[str, str, str], float] = {}
    for payload in payloads():
        calls = contenders(payload)
        times = interleave(calls, rounds, batch_seconds)
        columns.append(f"{payload.label}, {len(payload.body):,} B")
        for name in calls:
            text, ratio_medians = _cell(name, times)
            cells.setdefault(name, []).append(text)
            for floor_name, median in ratio_medians.items():
                medians[(name, floor_name, payload.label)] = median

    rows = [[name, *values] for name, values in cells.items()]
    markdown = "\n\n".join(
        [
            f"Median time per delivery and, in bold, the median over {rounds} rounds of the "
            "ratio to each floor in the same round (first to third quartile in brackets).",
            table(["contender", *columns], rows),
        ]
    )
    labels = [payload.label for payload in payloads()]
    note = "" if ORJSON_FLOOR in cells else "orjson not installed"
    targets = [
        Target(
            "core verify + parse / stdlib floor, 1 KB",
            medians.get((OURS, FLOOR, labels[1])),
            0.6,
        ),
        Target(
            "core verify + parse / orjson floor, 1 KB",
            medians.get((OURS, ORJSON_FLOOR, labels[1])),
            1.2,
            note=note,
        ),
        Target(
            "core verify + parse / stdlib floor, 64 KB",
            medians.get((OURS, FLOOR, labels[2])),
            0.8,
        ),
    ]
    return Section("Core: verify + parse", markdown, targets)


def main() -> None:
    """Print the core tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--batch-ms", type=float, default=25.0)
    args = parser.parse_args()
    section = run(args.rounds, args.batch_ms / 1000)
    print(f"## {section.title}\n\n{section.markdown}\n\n{targets_table(section.targets)}")


if __name__ == "__main__":
    main()
