"""Background handlers end to end: signed deliveries over HTTP to real servers (gunicorn, uvicorn),
jobs through a real broker to real workers (``celery worker``, Django's ``db_worker``).

Every handler writes what it ran, and in which process, to a Redis apart from Celery's broker
(tests/queues/records.py), so that stopping the broker leaves the records and the de-duplication
store up, and the tests can tell the server's processes from the workers' by process group.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from messages_integrations.testing import Delivery, build_delivery
from tests.queues.conftest import Worker, wait_for
from tests.support.servers import RunningServer, free_port, serve
from tests.support.services import Service, redis_service

pytestmark = pytest.mark.http

ROOT = Path(__file__).parents[2]
CELERY_SECRET = "whsec_queues_end_to_end"  # tests/queues/web_apps.py
DJANGO_SECRET = "whsec_django_tasks"  # tests/queues/django_settings.py
MESSAGE = {
    "id": "msg_1",
    "chat_id": "cht_1",
    "sender": "+15551234567",
    "is_from_me": False,
    "sent_at": 1710000000000,
}
#: The background handler sleeps this long; the answer must come long before it finishes.
SLOW = 5.0


def _gunicorn(app: str, port: int) -> list[str]:
    bind = f"127.0.0.1:{port}"
    return ["-m", "gunicorn", "-w", "2", "-k", "gthread", "--threads", "4", "-b", bind, app]


def _uvicorn(app: str, port: int) -> list[str]:
    return ["-m", "uvicorn", "--workers", "2", "--host", "127.0.0.1", "--port", str(port), app]


#: server kind -> (command, Celery-backed app, Django app, Django webhook path)
SERVERS: dict[str, tuple[Callable[[str, int], list[str]], str, str, str]] = {
    "gunicorn": (
        _gunicorn,
        "tests.queues.web_apps:flask_app",
        "tests.queues.django_app.web:wsgi",
        "/webhooks",
    ),
    "uvicorn": (
        _uvicorn,
        "tests.queues.web_apps:starlette_app",
        "tests.queues.django_app.web:asgi",
        "/webhooks/async",
    ),
}


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def records_server() -> Iterator[Service]:
    """A second private Redis: the records and the stores, up while the broker is stopped."""
    with redis_service() as service:
        yield service


@pytest.fixture
def records_url(records_server: Service) -> Iterator[str]:
    """Overrides tests/queues/conftest.py: the records live apart from the broker's Redis."""
    yield f"redis://{records_server.address}/0"
    with socket.create_connection(("127.0.0.1", records_server.port), 5) as sock:
        sock.sendall(b"FLUSHALL\r\n")
        sock.recv(64)


def _serve(argv: list[str], port: int, env: dict[str, str]) -> Iterator[RunningServer]:
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}
    with serve(argv, port=port, cwd=ROOT, env=env, timeout=60) as server:
        yield server


@pytest.fixture(params=list(SERVERS))
def celery_web(request: pytest.FixtureRequest, celery_env: dict[str, str]) -> Iterator[Site]:
    """tests/queues/web_apps.py under gunicorn (Flask) or uvicorn (Starlette), two workers each."""
    command, app, _, _ = SERVERS[request.param]
    port = free_port()
    for server in _serve(command(app, port), port, celery_env):
        site = Site(server, "/webhooks", CELERY_SECRET)
        yield site
        site.client.close()


@pytest.fixture(params=list(SERVERS))
def django_web(request: pytest.FixtureRequest, django_env: dict[str, str]) -> Iterator[Site]:
    """The Django Tasks test project under gunicorn (WSGI view) or uvicorn (async view)."""
    command, _, app, path = SERVERS[request.param]
    port = free_port()
    for server in _serve(command(app, port), port, django_env):
        site = Site(server, path, DJANGO_SECRET)
        yield site
        site.client.close()


class Site:
    """A running server's webhook URL, with the secret its deliveries are signed with."""

    def __init__(self, server: RunningServer, path: str, secret: str) -> None:
        self.server = server
        self.url = server.url + path
        self.secret = secret
        self.client = httpx.Client(timeout=30)  # kept alive, as a sender's connection would be

    def message(self, text: str = "hello") -> Delivery:
        """A signed message.received whose text tells the test handler what to do."""
        return build_delivery("message.received", {**MESSAGE, "text": text}, secret=self.secret)

    def reaction(self) -> Delivery:
        """A signed reaction.added: one inline handler, one background handler."""
        return build_delivery("reaction.added", secret=self.secret)

    def post(self, delivery: Delivery) -> httpx.Response:
        """Send ``delivery`` as Messages.dev does."""
        return self.client.post(self.url, content=delivery.body, headers=delivery.headers)

    def runs_in_server(self, pid: int) -> bool:
        """Whether ``pid`` is one of the server's processes (its own process group)."""
        return os.getpgid(pid) == self.server.process.pid


# --- helpers -------------------------------------------------------------------------------------


def count(records: Any, table: str, key: str | None) -> int:
    value = records.hget(table, key)
    return int(value) if value is not None else 0


def pid_of(records: Any, table: str, key: str | None) -> int:
    return int(records.hget(f"{table}_pid", key))


def in_worker(pid: int, *workers: Worker) -> bool:
    """Whether ``pid`` is a process of one of ``workers`` (each runs in its own process group)."""
    groups = {w.process.pid for w in workers if w.process is not None}
    return os.getpgid(pid) in groups


def queued(response: httpx.Response) -> bool:
    return response.status_code == 202 and response.json()["status"] == "queued"


def slow_delivery_is_queued_at_once(site: Site, records: Any, *workers: Worker) -> None:
    """The check of the first test, for either queue."""
    # The first publish of each web process connects to the broker: not what is measured here.
    for _ in range(4):
        assert queued(site.post(site.message()))
    delivery = site.message(f"sleep {SLOW:g}")
    started = time.perf_counter()
    response = site.post(delivery)
    answered = time.perf_counter() - started
    handled_by_then = count(records, "handled", delivery.delivery_id)
    print(f"\n{site.url}: answered {response.status_code} in {answered * 1000:.0f} ms")
    assert queued(response), response.text
    assert response.json()["delivery_id"] == delivery.delivery_id
    assert handled_by_then == 0
    assert answered < SLOW / 2  # well before the handler could have finished
    wait_for(lambda: count(records, "handled", delivery.delivery_id) == 1, timeout=60)
    pid = pid_of(records, "handled", delivery.delivery_id)
    assert in_worker(pid, *workers)
    assert not site.runs_in_server(pid)
    retry = site.post(delivery)  # the sender's retry of a queued delivery
    assert (retry.status_code, retry.json()["status"]) == (200, "duplicate")
    time.sleep(1)
    assert count(records, "attempts", delivery.delivery_id) == 1
    assert count(records, "handled", delivery.delivery_id) == 1


def inline_in_request_background_in_worker(site: Site, records: Any, *workers: Worker) -> None:
    """The check of the inline + background test, for either queue."""
    delivery = site.reaction()
    response = site.post(delivery)
    assert (response.status_code, response.json()["status"]) == (200, "ok"), response.text
    # The inline handler ran before the answer, in one of the server's processes.
    assert count(records, "inline", delivery.delivery_id) == 1
    assert site.runs_in_server(pid_of(records, "inline", delivery.delivery_id))
    wait_for(lambda: count(records, "background", delivery.delivery_id) == 1, timeout=60)
    pid = pid_of(records, "background", delivery.delivery_id)
    assert in_worker(pid, *workers)
    assert not site.runs_in_server(pid)
    again = site.post(delivery)
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    time.sleep(1)
    assert count(records, "inline", delivery.delivery_id) == 1
    assert count(records, "background", delivery.delivery_id) == 1


# --- Celery --------------------------------------------------------------------------------------


def test_celery_a_slow_background_handler_is_answered_202_at_once_and_runs_once_in_the_worker(
    celery_web: Site, celery_worker: Worker, records: Any
) -> None:
    slow_delivery_is_queued_at_once(celery_web, records, celery_worker)


def test_celery_inline_handlers_run_in_the_request_and_background_ones_in_the_worker(
    celery_web: Site, celery_worker: Worker, records: Any
) -> None:
    inline_in_request_background_in_worker(celery_web, records, celery_worker)


async def _send_copies(url: str, deliveries: list[Delivery], copies: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60) as client:
        posts = [
            client.post(url, content=delivery.body, headers=delivery.headers)
            for delivery in deliveries
            for _ in range(copies)
        ]
        return list(await asyncio.gather(*posts))


def _answer(response: httpx.Response) -> str:
    body = response.json()
    return f"{response.status_code} {body.get('status') or body.get('error')}"


def test_celery_fifty_deliveries_sent_four_times_at_once_are_each_handled_once(
    celery_web: Site, celery_worker: Worker, records: Any
) -> None:
    deliveries = [celery_web.message("sleep 0.05") for _ in range(50)]
    responses = asyncio.run(_send_copies(celery_web.url, deliveries, copies=4))
    answers = {
        delivery.delivery_id: Counter(_answer(r) for r in responses[4 * n : 4 * n + 4])
        for n, delivery in enumerate(deliveries)
    }
    print(f"\n{celery_web.url}: {sum(answers.values(), Counter())}")
    for delivery in deliveries:
        seen = answers[delivery.delivery_id]
        assert seen["202 queued"] == 1, seen
        assert set(seen) <= {"202 queued", "200 duplicate", "409 in_progress"}, seen
    keys = [d.delivery_id for d in deliveries]
    wait_for(lambda: all(count(records, "handled", k) >= 1 for k in keys), timeout=120)
    # The sender retries the copies that got 409: each is a duplicate now.
    retried = [d for d in deliveries if answers[d.delivery_id]["409 in_progress"]]
    for response in asyncio.run(_send_copies(celery_web.url, retried, copies=1)):
        assert (response.status_code, response.json()["status"]) == (200, "duplicate")
    time.sleep(4)  # let retried copies of in-progress jobs come back and find them done
    assert {k: count(records, "handled", k) for k in keys} == dict.fromkeys(keys, 1)


@pytest.mark.parametrize("celery_web", ["gunicorn"], indirect=True)
def test_celery_a_worker_killed_mid_handler_runs_the_delivery_once_after_it_restarts(
    celery_web: Site, celery_worker: Worker, records: Any
) -> None:
    delivery = celery_web.message("sleep 4")
    assert queued(celery_web.post(delivery))
    wait_for(lambda: records.hget("started_pid", delivery.delivery_id))
    celery_worker.kill()  # kill -9 of the whole worker, its pool processes included
    assert count(records, "handled", delivery.delivery_id) == 0
    # The job waits in the broker: the sender's retry is not run by the web process either.
    retry = celery_web.post(delivery)
    assert (retry.status_code, retry.json()["status"]) == (200, "duplicate")
    celery_worker.start()
    # Unacknowledged, the job comes back after the broker's visibility timeout (8 s here) and
    # runs once the dead attempt's lease (3 s) has expired.
    wait_for(lambda: count(records, "handled", delivery.delivery_id) == 1, timeout=90)
    time.sleep(2)
    assert count(records, "handled", delivery.delivery_id) == 1
    assert count(records, "attempts", delivery.delivery_id) == 2
    assert in_worker(pid_of(records, "handled", delivery.delivery_id), celery_worker)


def test_celery_broker_down_answers_503_and_the_retry_is_handled_in_full_once_it_is_back(
    celery_web: Site, celery_worker: Worker, records: Any, redis_server: Service
) -> None:
    first = celery_web.message()
    assert queued(celery_web.post(first))  # the web workers are connected
    # Stopped once the worker has finished that job: a worker losing Redis while it still holds
    # an unacknowledged job can die inside kombu ("'NoneType' object has no attribute
    # 'hostname'"), which is not what this test is about.
    wait_for(lambda: count(records, "handled", first.delivery_id) == 1, timeout=60)
    redis_server.stop()
    delivery = celery_web.message()
    started = time.perf_counter()
    refused = celery_web.post(delivery)
    answered = time.perf_counter() - started
    print(f"\n{celery_web.url}: broker down, answered {refused.status_code} in {answered:.2f} s")
    assert refused.status_code == 503
    assert refused.json()["error"] == "queue_unavailable"
    assert int(refused.headers["retry-after"]) > 0
    assert answered < 10  # the request does not wait for the broker to come back
    # The claim was released: a retry is refused the same way, not answered 409 "in progress".
    assert celery_web.post(delivery).status_code == 503
    assert count(records, "attempts", delivery.delivery_id) == 0
    # With inline handlers too, those run before the enqueue fails: the 503 makes the sender
    # retry the delivery in full, as after any failure.
    mixed = celery_web.reaction()
    assert celery_web.post(mixed).status_code == 503
    assert count(records, "inline", mixed.delivery_id) == 1
    redis_server.start()
    response, _ = retry_until_accepted(celery_web, delivery)
    assert queued(response), response.text
    mixed_again, attempts = retry_until_accepted(celery_web, mixed)
    assert (mixed_again.status_code, mixed_again.json()["status"]) == (200, "ok")
    wait_for(lambda: count(records, "handled", delivery.delivery_id) == 1, timeout=120)
    wait_for(lambda: count(records, "background", mixed.delivery_id) == 1, timeout=60)
    time.sleep(2)
    assert count(records, "attempts", delivery.delivery_id) == 1
    assert count(records, "handled", delivery.delivery_id) == 1
    # Once per attempt: the first, and each retry (a web process may reconnect a moment later).
    assert count(records, "inline", mixed.delivery_id) == 1 + attempts
    assert count(records, "background", mixed.delivery_id) == 1


def retry_until_accepted(site: Site, delivery: Delivery) -> tuple[httpx.Response, int]:
    """Send ``delivery`` again every half second while it is answered 503, as the sender does;
    the last answer, and how many were sent."""
    for attempt in range(1, 41):
        response = site.post(delivery)
        if response.status_code != 503:
            return response, attempt
        time.sleep(0.5)
    raise AssertionError(f"still 503 after 20 s: {response.text}")


# --- Django Tasks --------------------------------------------------------------------------------


def test_django_tasks_a_slow_background_handler_is_answered_202_at_once_and_runs_in_a_db_worker(
    django_web: Site, db_workers: list[Worker], records: Any
) -> None:
    slow_delivery_is_queued_at_once(django_web, records, *db_workers)


def test_django_tasks_inline_handlers_run_in_the_request_and_background_ones_in_a_db_worker(
    django_web: Site, db_workers: list[Worker], records: Any
) -> None:
    inline_in_request_background_in_worker(django_web, records, *db_workers)
