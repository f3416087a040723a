"""Where a worker finds its store and queue: the settings the webhook endpoints read, resolved by
the same resolver, so that the request and its workers share one store.

Celery tasks run in process with ``task.apply()`` (Celery's own eager call, no broker); the
stores are the private test Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from messages_integrations import (
    Claim,
    ConfigurationError,
    InMemoryDeliveryStore,
    MessageReceived,
    WebhookRouter,
)
from messages_integrations.queues import CeleryQueue, DjangoTasksQueue, Job
from messages_integrations.testing import build_delivery
from tests.queues.conftest import require_module

#: Named as "tests.queues.test_worker_settings:SHARED_STORE" in the settings below.
SHARED_STORE = InMemoryDeliveryStore()
#: Named as "tests.queues.test_worker_settings:ROUTER".
ROUTER = WebhookRouter()
ran: list[str] = []


@ROUTER.on("message.received", background=True)
def note(event: MessageReceived) -> None:
    """Remember which delivery ran."""
    ran.append(event.delivery_id or "?")


#: Named as "tests.queues.test_worker_settings:DJANGO_QUEUE" (built once Django is configured).
DJANGO_QUEUE: DjangoTasksQueue | None = None


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MESSAGES_WEBHOOK_STORE", "MESSAGES_WEBHOOK_SECRET", "MESSAGES_WEBHOOK_QUEUE"):
        monkeypatch.delenv(name, raising=False)
    ran.clear()


def job() -> Job:
    delivery = build_delivery("message.received", secret="whsec_workers")
    return Job.from_delivery(
        delivery.body, key=f"delivery:{delivery.delivery_id}", event="message.received"
    )


# --- Celery: MESSAGES_WEBHOOK_STORE from the worker's environment ------------------------------


def celery_worker_queue() -> CeleryQueue:
    """A CeleryQueue on an app of its own: what one more worker process would build."""
    celery = require_module("celery")
    return CeleryQueue(celery.Celery("worker-settings"), router=ROUTER)


def run_in(queue: CeleryQueue, work: Job) -> str:
    result: str = queue.task.apply(args=(work.to_dict(),)).get()
    return result


def test_celery_workers_share_the_store_named_by_a_url(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_STORE", redis_url)
    first, second = celery_worker_queue(), celery_worker_queue()
    work = job()
    assert run_in(first, work) == "ok"
    assert run_in(second, work) == "duplicate"
    assert len(ran) == 1


def test_celery_workers_take_a_store_named_by_module_and_attribute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_STORE", "tests.queues.test_worker_settings:SHARED_STORE")
    work = job()
    assert run_in(celery_worker_queue(), work) == "ok"
    assert SHARED_STORE.claim("job:" + work.key, "probe", lease=1) is Claim.DONE


def test_celery_workers_without_a_store_use_their_own_memory_and_say_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = celery_worker_queue(), celery_worker_queue()
    work = job()
    with caplog.at_level(logging.WARNING, "messages_integrations"):
        assert run_in(first, work) == "ok"
        assert run_in(second, work) == "ok"  # nothing shared: the job runs once per process
    assert "MESSAGES_WEBHOOK_STORE" in caplog.text


def test_a_bad_store_in_a_celery_worker_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_STORE", "tests.queues.test_worker_settings:ROUTER")
    queue = celery_worker_queue()
    with pytest.raises(ConfigurationError, match="MESSAGES_WEBHOOK_STORE"):
        run_in(queue, job())


# --- Django Tasks: the settings, through django.conf.resolve() ----------------------------------


@pytest.fixture
def django_settings() -> Iterator[Any]:
    """Django configured in this process, with no webhook secret anywhere."""
    require_module("django")
    from django.test import override_settings

    from tests.support.django_settings import configure_django

    configure_django()
    global DJANGO_QUEUE
    if DJANGO_QUEUE is None:
        DJANGO_QUEUE = DjangoTasksQueue(router=ROUTER)
    with override_settings(MESSAGES_WEBHOOK_SECRET=None):
        yield override_settings


def test_a_django_worker_needs_no_secret_and_uses_the_store_url(
    django_settings: Any, redis_url: str
) -> None:
    redis = require_module("redis")
    from messages_integrations.queues import django_worker_queue
    from messages_integrations.stores import RedisDeliveryStore

    settings = {
        "MESSAGES_WEBHOOK_STORE": redis_url,
        "MESSAGES_WEBHOOK_QUEUE": "tests.queues.test_worker_settings:DJANGO_QUEUE",
    }
    work = job()
    with django_settings(**settings):
        queue = django_worker_queue()
        assert queue is DJANGO_QUEUE
        assert queue.run(work.to_dict(), 1) == "ok"
    client = redis.Redis.from_url(redis_url)
    try:
        another_process = RedisDeliveryStore(client)
        assert another_process.claim("job:" + work.key, "probe", lease=1) is Claim.DONE
    finally:
        client.close()
    assert len(ran) == 1


def test_a_django_worker_shares_a_redis_default_cache(django_settings: Any, redis_url: str) -> None:
    from messages_integrations.queues import django_worker_queue
    from messages_integrations.stores import DjangoCacheDeliveryStore

    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache"}}
    caches["default"]["LOCATION"] = redis_url
    work = job()
    with django_settings(CACHES=caches, MESSAGES_WEBHOOK_ROUTER=ROUTER):
        queue = django_worker_queue()
        assert queue.router is ROUTER  # no queue setting: the settings' router
        assert queue.run(work.to_dict(), 1) == "ok"
        view_store = DjangoCacheDeliveryStore("default")
        assert view_store.claim("job:" + work.key, "probe", lease=1) is Claim.DONE


def test_a_django_worker_follows_setting_changes(django_settings: Any) -> None:
    from messages_integrations.queues import django_worker_queue, django_worker_store

    first, second = InMemoryDeliveryStore(), InMemoryDeliveryStore()
    with django_settings(MESSAGES_WEBHOOK_STORE=first, MESSAGES_WEBHOOK_ROUTER=ROUTER):
        assert django_worker_store() is first
        assert django_worker_queue().router is ROUTER
    with django_settings(MESSAGES_WEBHOOK_STORE=second):
        assert django_worker_store() is second


def test_a_bad_queue_setting_fails_the_django_worker_naming_it(django_settings: Any) -> None:
    from messages_integrations.queues import django_worker_queue

    with (
        django_settings(MESSAGES_WEBHOOK_QUEUE="tests.queues.nowhere:queue"),
        pytest.raises(ConfigurationError, match="MESSAGES_WEBHOOK_QUEUE"),
    ):
        django_worker_queue()
