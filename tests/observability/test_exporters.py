"""The exporters in one process: turning them on and off, from settings or the environment."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from messages_integrations import (
    ConfigurationError,
    DeliveryRecord,
    WebhookReceiver,
    WebhookRouter,
    observe,
    otel,
    prometheus,
)
from messages_integrations._config import UNSET
from messages_integrations._outcomes import GLOBAL_OBSERVERS, describe_hooks
from messages_integrations._startup import enable_exporters
from messages_integrations.testing import build_delivery
from tests.observability.observed import parse_metrics, value

SECRET = "whsec_exporters"


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[CollectorRegistry]:
    """Prometheus metrics in a registry of their own, turned off again after the test."""
    own = CollectorRegistry()
    monkeypatch.setattr(prometheus, "_metrics", None)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    prometheus.enable(own)
    yield own
    prometheus.disable()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """OpenTelemetry on, its spans kept in memory; off again after the test."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel.enable(provider)
    yield exporter
    otel.disable()


@pytest.fixture
def no_exporters(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Neither exporter on before the test, nor after it."""
    monkeypatch.setattr(prometheus, "_metrics", None)
    monkeypatch.delenv("MESSAGES_WEBHOOK_PROMETHEUS", raising=False)
    monkeypatch.delenv("MESSAGES_WEBHOOK_OTEL", raising=False)
    otel.disable()
    yield
    prometheus.disable()
    otel.disable()


def _deliver(receiver: WebhookReceiver, event: str = "reaction.added") -> int:
    delivery = build_delivery(event, secret=SECRET)
    return receiver.handle("POST", delivery.headers, delivery.body).status


def _delivered(registry: CollectorRegistry, outcome: str = "ok") -> float:
    text = prometheus.exposition(registry)[0].decode()
    samples = parse_metrics(text)
    return value(
        samples, "messages_webhook_deliveries_total", event="reaction.added", outcome=outcome
    )


def test_metrics_count_again_after_being_turned_off_and_on(
    registry: CollectorRegistry, router: WebhookRouter
) -> None:
    receiver = WebhookReceiver(secret=SECRET, router=router)
    _deliver(receiver)
    prometheus.disable()
    assert not prometheus.is_enabled()
    _deliver(receiver)
    prometheus.enable()
    assert prometheus.is_enabled()
    _deliver(receiver)
    assert _delivered(registry) == 2


def test_handler_timings_are_kept_per_event_handler_and_outcome(
    registry: CollectorRegistry, router: WebhookRouter
) -> None:
    def thank(event: Any) -> None:
        pass

    def fail(event: Any) -> None:
        raise ValueError("no")

    router.on("reaction.added")(thank)
    router.on("typing.started")(fail)
    receiver = WebhookReceiver(secret=SECRET, router=router)
    for _ in range(3):
        _deliver(receiver)
    assert _deliver(receiver, "typing.started") == 500
    samples = parse_metrics(prometheus.exposition(registry)[0].decode())
    runs = "messages_webhook_handler_duration_seconds_count"
    name = f"{__name__}.test_handler_timings_are_kept_per_event_handler_and_outcome.<locals>"
    assert value(samples, runs, event="reaction.added", handler=f"{name}.thank", outcome="ok") == 3
    assert (
        value(samples, runs, event="typing.started", handler=f"{name}.fail", outcome="failed") == 1
    )
    assert value(samples, "messages_webhook_in_progress") == 0


def test_deliveries_counted_in_several_threads_add_up_however_often_scraped(
    registry: CollectorRegistry, router: WebhookRouter
) -> None:
    receiver = WebhookReceiver(secret=SECRET, router=router)
    deliveries = [build_delivery("reaction.added", secret=SECRET) for _ in range(8 * 150)]
    done = threading.Event()
    scraped: list[float] = []

    def scrape() -> None:
        while not done.is_set():  # scrapes draw from the same counts as the deliveries
            scraped.append(_delivered(registry))

    def deliver(share: list[Any]) -> None:
        for delivery in share:
            assert receiver.handle("POST", delivery.headers, delivery.body).status == 200

    scraper = threading.Thread(target=scrape)
    scraper.start()
    workers = [threading.Thread(target=deliver, args=(deliveries[i::8],)) for i in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    done.set()
    scraper.join()
    assert scraped == sorted(scraped)  # never goes back
    assert _delivered(registry) == _delivered(registry) == 8 * 150
    samples = parse_metrics(prometheus.exposition(registry)[0].decode())
    assert value(samples, "messages_webhook_in_progress") == 0


_WORKER = """
import sys
from messages_integrations import WebhookReceiver, WebhookRouter, prometheus
from messages_integrations.testing import build_delivery

prometheus.enable()
receiver = WebhookReceiver(secret="whsec_exporters", router=WebhookRouter())
for _ in range(int(sys.argv[1])):
    delivery = build_delivery("reaction.added", secret="whsec_exporters")
    assert receiver.handle("POST", delivery.headers, delivery.body).status == 200
"""


def test_the_in_progress_gauge_counts_deliveries_whose_handlers_run(
    registry: CollectorRegistry, router: WebhookRouter
) -> None:
    seen: list[float] = []

    def look(event: Any) -> None:
        samples = parse_metrics(prometheus.exposition(registry)[0].decode())
        seen.append(value(samples, "messages_webhook_in_progress"))

    router.on("reaction.added")(look)
    receiver = WebhookReceiver(secret=SECRET, router=router)
    for _ in range(3):  # each scrape reads the gauge afresh
        _deliver(receiver)
    samples = parse_metrics(prometheus.exposition(registry)[0].decode())
    assert seen == [1, 1, 1]
    assert value(samples, "messages_webhook_in_progress") == 0


def test_exposition_adds_up_every_process_in_multiprocess_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Two worker processes count into the shared folder; this one only reads it.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count in ("2", "3"):
        subprocess.run([sys.executable, "-c", _WORKER, count], env=env, check=True)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    body, content_type = prometheus.exposition()
    assert content_type.startswith("text/plain")
    samples = parse_metrics(body.decode())
    counted = value(
        samples, "messages_webhook_deliveries_total", event="reaction.added", outcome="ok"
    )
    assert counted == 5


def test_spans_of_a_delivery_and_its_handlers(
    spans: InMemorySpanExporter, router: WebhookRouter
) -> None:
    router.on("reaction.added")(lambda event: None)
    receiver = WebhookReceiver(secret=SECRET, router=router)
    assert _deliver(receiver) == 200
    handler, delivery = spans.get_finished_spans()
    assert delivery.name == "process reaction.added"
    assert handler.parent is not None
    assert handler.parent.span_id == delivery.context.span_id
    otel.disable()
    assert not otel.is_enabled()
    _deliver(receiver)
    assert len(spans.get_finished_spans()) == 2


def test_the_environment_turns_the_exporters_on(
    no_exporters: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_PROMETHEUS", "1")
    monkeypatch.setenv("MESSAGES_WEBHOOK_OTEL", "true")
    enable_exporters()
    assert prometheus.is_enabled()
    assert otel.is_enabled()


def test_a_framework_setting_wins_over_the_environment(
    no_exporters: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_PROMETHEUS", "1")
    settings = {"MESSAGES_WEBHOOK_PROMETHEUS": False, "MESSAGES_WEBHOOK_OTEL": True}
    enable_exporters(lambda name: settings.get(name, UNSET))
    assert not prometheus.is_enabled()
    assert otel.is_enabled()


def test_a_bad_switch_value_names_the_setting(
    no_exporters: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_OTEL", "maybe")
    with pytest.raises(ConfigurationError, match="MESSAGES_WEBHOOK_OTEL"):
        enable_exporters()


def audit(record: object) -> None:
    """A callback the description names."""


def test_the_description_names_each_hook(no_exporters: None, router: WebhookRouter) -> None:
    receiver = WebhookReceiver(secret=SECRET, router=router)
    assert describe_hooks(receiver.observers) == {
        "prometheus": "off",
        "opentelemetry": "off",
        "callbacks": "none",
    }
    observe(audit)
    receiver.observers.add(print)
    prometheus.enable(CollectorRegistry())
    otel.enable(TracerProvider())
    try:
        hooks = describe_hooks(receiver.observers)
    finally:
        GLOBAL_OBSERVERS.remove(audit)
    assert hooks["prometheus"] == "on (own registry)"
    assert hooks["opentelemetry"] == "on (to the TracerProvider given to enable())"
    assert hooks["callbacks"] == f"builtins.print, {__name__}.audit"


def test_records_are_immutable() -> None:
    record = DeliveryRecord("ok", 200, "reaction.added", "dlv_1", 0.01)
    with pytest.raises(AttributeError):
        record.outcome = "duplicate"  # type: ignore[misc]
    assert record.log_extra()["outcome"] == "ok"
