"""The Python API of webhook management, against a fake REST API on 127.0.0.1."""

from __future__ import annotations

import email.utils
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from messages_integrations import ConfigurationError, WebhookError
from messages_integrations.client import (
    AsyncMessagesClient,
    DeletedWebhook,
    MessagesAPIError,
    MessagesClient,
    MessagesConnectionError,
    Webhook,
)
from tests.support.servers import free_port

from .servers import FakeMessagesAPI, error_object

pytestmark = pytest.mark.http

_BUSY = error_object("rate_limit_error", "rate_limited", "Too many requests")
_DOWN = error_object("api_error", "internal_error", "Something went wrong")


@pytest.fixture
def sleeps() -> list[float]:
    """The delays the client waited, in order (nothing is really slept)."""
    return []


@pytest.fixture
def client(api: FakeMessagesAPI, sleeps: list[float]) -> Iterator[MessagesClient]:
    """A client of the fake API that records its sleeps instead of sleeping."""
    with MessagesClient(api.api_key, base_url=api.url, sleep=sleeps.append) as messages:
        yield messages


def test_create_returns_the_webhook_with_its_secret(
    client: MessagesClient, api: FakeMessagesAPI
) -> None:
    webhook = client.create_webhook(
        "+15551234567", "https://example.com/webhooks", ("message.received", "message.sent")
    )

    assert webhook == Webhook(
        id="wh_0001",
        url="https://example.com/webhooks",
        events=("message.received", "message.sent"),
        line_ids=("ln_15551234567",),
        is_active=True,
        secret="whsec_fake_secret_0001",
    )
    assert webhook.raw["created_at"] == 1_767_225_600_001
    assert "whsec_fake_secret_0001" not in repr(webhook)
    assert api.seen[0].authorization == f"Bearer {api.api_key}"


def test_list_follows_every_page(client: MessagesClient, api: FakeMessagesAPI) -> None:
    for number in range(5):
        api.add("+15551234567", f"https://example.com/{number}", ["message.received"])

    webhooks = client.list_webhooks()

    assert [w.id for w in webhooks] == [f"wh_{n:04d}" for n in range(1, 6)]
    assert all(w.secret is None for w in webhooks)
    assert [r.query.get("cursor") for r in api.seen] == [None, "2", "4"]


def test_list_of_one_line_keeps_the_filter_on_every_page(
    client: MessagesClient, api: FakeMessagesAPI
) -> None:
    for number in range(3):
        api.add("+15551234567", f"https://example.com/{number}", ["message.received"])
        api.add("+15557654321", f"https://other.example/{number}", ["message.received"])

    webhooks = client.list_webhooks(from_="+15557654321")

    assert [w.url for w in webhooks] == [f"https://other.example/{n}" for n in range(3)]
    assert {r.query["from"] for r in api.seen} == {"+15557654321"}
    assert len(api.seen) == 2


def test_delete_puts_the_id_in_the_json_body(client: MessagesClient, api: FakeMessagesAPI) -> None:
    api.add("+15551234567", "https://example.com/webhooks", ["message.received"])

    result = client.delete_webhook("wh_0001")

    assert result == DeletedWebhook(id="wh_0001", deleted=True, request_id="req_d")
    assert api.seen[0].json() == {"id": "wh_0001"}
    assert api.webhooks == {}


def test_the_fake_refuses_a_delete_with_the_id_in_the_path(api: FakeMessagesAPI) -> None:
    """The check the client is tested against can fail: an id in the path is a 400."""
    api.add("+15551234567", "https://example.com/webhooks", ["message.received"])
    headers = {"Authorization": f"Bearer {api.api_key}"}

    answer = httpx.request("DELETE", f"{api.url}/v1/webhooks?id=wh_0001", headers=headers)

    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "id"
    assert "wh_0001" in api.webhooks


def test_an_error_object_becomes_a_readable_exception(api: FakeMessagesAPI) -> None:
    with (
        MessagesClient("sk_wrong", base_url=api.url) as client,
        pytest.raises(MessagesAPIError) as raised,
    ):
        client.list_webhooks()

    error = raised.value
    assert isinstance(error, WebhookError)
    assert (error.status, error.type, error.code, error.message, error.param) == (
        401,
        "authentication_error",
        "invalid_api_key",
        "Invalid API key",
        None,
    )
    assert error.request_id == "req_fake0001"
    assert str(error) == (
        "401 authentication_error (invalid_api_key): Invalid API key [request_id req_fake0001]"
    )
    assert len(api.seen) == 1


def test_a_429_waits_as_retry_after_says_then_succeeds(
    client: MessagesClient, api: FakeMessagesAPI, sleeps: list[float]
) -> None:
    api.scripted.append((429, {"Retry-After": "2"}, _BUSY))

    assert client.list_webhooks() == []
    assert sleeps == [2.0]
    assert len(api.seen) == 2


def test_without_retry_after_the_backoff_starts_at_half_a_second_and_doubles(
    client: MessagesClient, api: FakeMessagesAPI, sleeps: list[float]
) -> None:
    api.scripted.extend([(500, {}, _DOWN), (503, {}, _DOWN), (502, {}, _DOWN)])

    with pytest.raises(MessagesAPIError) as raised:
        client.list_webhooks()

    assert raised.value.status == 502
    assert sleeps == [0.5, 1.0]
    assert len(api.seen) == 3


def test_the_backoff_never_exceeds_five_seconds(api: FakeMessagesAPI) -> None:
    sleeps: list[float] = []
    api.scripted.extend([(500, {}, _DOWN)] * 6)
    client = MessagesClient(api.api_key, base_url=api.url, max_retries=5, sleep=sleeps.append)

    with client, pytest.raises(MessagesAPIError):
        client.list_webhooks()

    assert sleeps == [0.5, 1.0, 2.0, 4.0, 5.0]


def test_a_retry_after_date_is_honoured(api: FakeMessagesAPI, sleeps: list[float]) -> None:
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    api.scripted.append((503, {"Retry-After": soon}, _DOWN))

    with MessagesClient(api.api_key, base_url=api.url, sleep=sleeps.append) as client:
        client.list_webhooks()

    [delay] = sleeps
    assert 20 < delay <= 30


def test_a_retry_after_beyond_a_minute_is_not_waited_for(
    client: MessagesClient, api: FakeMessagesAPI, sleeps: list[float]
) -> None:
    api.scripted.append((429, {"Retry-After": "3600"}, _BUSY))

    with pytest.raises(MessagesAPIError) as raised:
        client.list_webhooks()

    assert raised.value.code == "rate_limited"
    assert sleeps == []


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_other_client_errors_are_not_retried(
    status: int, client: MessagesClient, api: FakeMessagesAPI, sleeps: list[float]
) -> None:
    refusal = error_object("invalid_request_error", "bad", "No", param="url")
    api.scripted.append((status, {}, refusal))

    with pytest.raises(MessagesAPIError) as raised:
        client.create_webhook("+15551234567", "ftp://x", ["message.received"])

    assert (raised.value.status, raised.value.param) == (status, "url")
    assert "(param 'url')" in str(raised.value)
    assert sleeps == []
    assert len(api.seen) == 1


def test_an_error_page_without_error_object_is_still_readable(
    client: MessagesClient, api: FakeMessagesAPI
) -> None:
    api.scripted.append((404, {"Content-Type": "text/html"}, b"<h1>Not Found</h1>"))

    with pytest.raises(MessagesAPIError) as raised:
        client.list_webhooks()

    assert str(raised.value) == "404 api_error: HTTP 404 Not Found without an error object"


def test_an_injected_transport_replaces_the_network() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer sk_injected"
        return httpx.Response(200, json={"data": [], "has_more": False, "next_cursor": None})

    transport = httpx.MockTransport(answer)
    with MessagesClient("sk_injected", transport=transport) as client:
        assert client.list_webhooks() == []


def test_a_dropped_connection_is_retried_for_a_list(
    client: MessagesClient, api: FakeMessagesAPI, sleeps: list[float]
) -> None:
    api.add("+15551234567", "https://example.com/webhooks", ["message.received"])
    api.drop_connections = 2

    assert [w.id for w in client.list_webhooks()] == ["wh_0001"]
    assert sleeps == [0.5, 1.0]
    assert len(api.seen) == 3


def test_a_dropped_connection_is_retried_for_a_delete(
    client: MessagesClient, api: FakeMessagesAPI, sleeps: list[float]
) -> None:
    api.add("+15551234567", "https://example.com/webhooks", ["message.received"])
    api.drop_connections = 1

    assert client.delete_webhook("wh_0001").deleted
    assert sleeps == [0.5]
    assert [r.method for r in api.seen] == ["DELETE", "DELETE"]


def test_a_dropped_connection_is_never_retried_for_a_create(
    client: MessagesClient, api: FakeMessagesAPI, sleeps: list[float]
) -> None:
    """The first request may have created the webhook: a second would deliver events twice."""
    api.drop_connections = 1

    with pytest.raises(MessagesConnectionError, match=f"could not reach {api.url}"):
        client.create_webhook("+15551234567", "https://example.com/webhooks", ["message.sent"])

    assert sleeps == []
    assert len(api.seen) == 1


def test_connections_that_keep_failing_are_retried_twice_then_reported(
    client: MessagesClient, api: FakeMessagesAPI, sleeps: list[float]
) -> None:
    api.drop_connections = 3

    with pytest.raises(MessagesConnectionError):
        client.list_webhooks()

    assert sleeps == [0.5, 1.0]
    assert len(api.seen) == 3


def test_an_unreachable_api_raises_a_connection_error_after_the_retries(
    sleeps: list[float],
) -> None:
    base = f"http://127.0.0.1:{free_port()}"

    client = MessagesClient("k", base_url=base, sleep=sleeps.append)
    with client, pytest.raises(MessagesConnectionError, match=f"could not reach {base}: "):
        client.list_webhooks()

    assert sleeps == [0.5, 1.0]


def test_the_api_key_comes_from_the_environment(
    api: FakeMessagesAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGES_API_KEY", api.api_key)

    with MessagesClient(base_url=api.url) as client:
        client.list_webhooks()

    assert api.seen[0].authorization == f"Bearer {api.api_key}"
    assert api.api_key not in repr(client)


def test_no_api_key_is_a_configuration_error_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="MESSAGES_API_KEY"):
        MessagesClient()


def test_without_httpx_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)

    with pytest.raises(ImportError, match=r"pip install 'messages-integrations\[cli\]'"):
        MessagesClient("k")


@pytest.mark.anyio
async def test_the_async_client_creates_lists_retries_and_deletes(api: FakeMessagesAPI) -> None:
    sleeps: list[float] = []

    async def record(delay: float) -> None:
        sleeps.append(delay)

    api.scripted.append((429, {}, _BUSY))
    async with AsyncMessagesClient(api.api_key, base_url=api.url, sleep=record) as client:
        created = await client.create_webhook("+15551234567", "https://e.com/w", ["receipt.read"])
        for number in range(2):
            api.add("+15551234567", f"https://example.com/{number}", ["message.received"])
        api.drop_connections = 1
        listed = await client.list_webhooks()
        api.drop_connections = 1
        deleted = await client.delete_webhook(created.id)
        api.drop_connections = 1
        with pytest.raises(MessagesConnectionError):
            await client.create_webhook("+15551234567", "https://e.com/x", ["receipt.read"])

    assert created.secret == "whsec_fake_secret_0001"
    assert [w.id for w in listed] == ["wh_0001", "wh_0002", "wh_0003"]
    assert deleted.deleted
    assert sleeps == [0.5, 0.5, 0.5]
    assert sorted(api.webhooks) == ["wh_0002", "wh_0003"]
