"""Create, list and delete Messages.dev webhooks through the REST API (needs the ``cli`` extra).

::

    from messages_integrations.client import MessagesClient

    with MessagesClient() as client:  # the API key comes from MESSAGES_API_KEY
        webhook = client.create_webhook("+15551234567", "https://example.com/webhooks",
                                        ["message.received"])
        print(webhook.secret)  # returned once, on creation: store it now

Errors::

    WebhookError
    ├── MessagesAPIError          the API answered with an error (after the retries)
    ├── MessagesConnectionError   the API could not be reached
    └── ConfigurationError        no API key
"""

from __future__ import annotations

import email.utils
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import __version__
from ._errors import ConfigurationError, WebhookError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "API_KEY_SETTING",
    "DEFAULT_BASE_URL",
    "AsyncMessagesClient",
    "DeletedWebhook",
    "MessagesAPIError",
    "MessagesClient",
    "MessagesConnectionError",
    "Webhook",
]

DEFAULT_BASE_URL = "https://api.messages.dev"
API_KEY_SETTING = "MESSAGES_API_KEY"
_WEBHOOKS = "/v1/webhooks"
# The official SDK's schedule: 500 ms, doubling, at most 5 s, two retries, for 429 and 5xx, and
# for a failed connection when the call is safe to repeat (list, delete; never create).
_FIRST_DELAY = 0.5
_MAX_DELAY = 5.0
# A Retry-After longer than this is not slept through: the error is raised instead.
_MAX_RETRY_AFTER = 60.0


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise ImportError(
            "managing webhooks needs httpx: pip install 'messages-integrations[cli]'"
        ) from None
    return httpx


class MessagesAPIError(WebhookError):
    """The REST API answered with an error object (or a non-JSON error page)."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.code = code
        self.message = message
        self.param = param
        self.request_id = request_id
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.status} {self.type}"
        if self.code:
            text += f" ({self.code})"
        text += f": {self.message}"
        if self.param:
            text += f" (param {self.param!r})"
        if self.request_id:
            text += f" [request_id {self.request_id}]"
        return text


class MessagesConnectionError(WebhookError):
    """The REST API could not be reached (DNS, refused connection, timeout, TLS)."""


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook as the API describes it; ``secret`` is set only on the answer to a creation."""

    id: str
    url: str
    events: tuple[str, ...]
    line_ids: tuple[str, ...]
    is_active: bool
    secret: str | None = field(default=None, repr=False)
    #: The whole object as received, new fields included.
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> Webhook:
        """Build from one object of the API's answer, tolerating fields it does not know."""
        secret = obj.get("secret")
        return cls(
            id=str(obj.get("id", "")),
            url=str(obj.get("url", "")),
            events=tuple(str(e) for e in obj.get("events") or ()),
            line_ids=tuple(str(i) for i in obj.get("line_ids") or ()),
            is_active=bool(obj.get("is_active", True)),
            secret=secret if isinstance(secret, str) else None,
            raw=dict(obj),
        )


@dataclass(frozen=True, slots=True)
class DeletedWebhook:
    """The answer to a deletion."""

    id: str
    deleted: bool
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    params: dict[str, str] | None = None
    json: dict[str, Any] | None = None
    #: Safe to send again when the connection failed: the first attempt may have reached the API.
    repeatable: bool = True


def _create_call(from_: str, url: str, events: Iterable[str]) -> _Call:
    # Never repeated after a failed connection: the API may have created the webhook already,
    # and a second one would deliver every event twice.
    body = {"from": from_, "url": url, "events": list(events)}
    return _Call("POST", json=body, repeatable=False)


def _list_call(from_: str | None, cursor: str | None) -> _Call:
    params = {"from": from_} if from_ else {}
    if cursor:
        params["cursor"] = cursor
    return _Call("GET", params=params)


def _delete_call(webhook_id: str) -> _Call:
    # The API takes the id in the JSON body of DELETE, not in the path.
    return _Call("DELETE", json={"id": webhook_id})


def _page(answer: Mapping[str, Any], cursor: str | None) -> tuple[list[Webhook], str | None]:
    """The webhooks of one page and the cursor of the next page, or None at the end."""
    items = [Webhook.from_api(o) for o in answer.get("data") or () if isinstance(o, Mapping)]
    following = answer.get("next_cursor")
    if not answer.get("has_more") or not isinstance(following, str) or following == cursor:
        return items, None
    return items, following


def _deleted(answer: Mapping[str, Any], webhook_id: str) -> DeletedWebhook:
    return DeletedWebhook(
        id=str(answer.get("id", webhook_id)),
        deleted=bool(answer.get("deleted", True)),
        request_id=_text(answer.get("request_id")),
    )


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), if it says."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _backoff(attempt: int) -> float:
    """Seconds before retry number ``attempt + 1``: 0.5, 1, 2, ... at most 5."""
    return min(_FIRST_DELAY * 2.0**attempt, _MAX_DELAY)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _api_error(response: httpx.Response) -> MessagesAPIError:
    try:
        document = response.json()
    except ValueError:
        document = None
    header_id = response.headers.get("x-request-id")
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        error = document["error"]
        return MessagesAPIError(
            response.status_code,
            str(error.get("type") or "api_error"),
            str(error.get("message") or response.reason_phrase),
            code=_text(error.get("code")),
            param=_text(error.get("param")),
            request_id=_text(document.get("request_id")) or header_id,
        )
    return MessagesAPIError(
        response.status_code,
        "api_error",
        f"HTTP {response.status_code} {response.reason_phrase} without an error object",
        request_id=header_id,
    )


class _Base:
    """What the sync and async clients share: configuration, retry policy, answer decoding."""

    def __init__(
        self,
        api_key: str | None,
        base_url: str,
        timeout: float,
        max_retries: int,
    ) -> None:
        key = api_key or os.environ.get(API_KEY_SETTING, "").strip()
        if not key:
            raise ConfigurationError(
                f"No Messages.dev API key: pass api_key=... or set {API_KEY_SETTING}."
            )
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self._options: dict[str, Any] = {
            "base_url": self.base_url,
            "timeout": timeout,
            "headers": {
                "Authorization": f"Bearer {key}",
                "User-Agent": f"messages-integrations/{__version__}",
                "Accept": "application/json",
            },
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"

    def _retry_delay(self, response: httpx.Response, attempt: int) -> float | None:
        """How long to wait before retrying, or None to stop here."""
        status = response.status_code
        if attempt >= self.max_retries or not (status == 429 or status >= 500):
            return None
        delay = _retry_after(response.headers.get("retry-after"))
        if delay is None:
            return _backoff(attempt)
        return delay if delay <= _MAX_RETRY_AFTER else None

    def _reconnect_delay(self, call: _Call, attempt: int, exc: Exception) -> float:
        """How long to wait before repeating a call whose connection failed; raise if it is not."""
        if not call.repeatable or attempt >= self.max_retries:
            raise self._unreachable(exc) from None
        return _backoff(attempt)

    @staticmethod
    def _decode(response: httpx.Response) -> dict[str, Any]:
        if not response.is_success:
            raise _api_error(response)
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise MessagesAPIError(
                response.status_code, "invalid_response", "the answer is not a JSON object"
            )
        return document

    def _unreachable(self, exc: Exception) -> MessagesConnectionError:
        # "[Errno -2] Name or service not known" reads better without its errno.
        reason = re.sub(r"^\[Errno -?\d+\] ", "", str(exc)) or type(exc).__name__
        return MessagesConnectionError(f"could not reach {self.base_url}: {reason}")


class MessagesClient(_Base):
    """Manage webhooks over the Messages.dev REST API (sync; use as a context manager).

    ``api_key`` defaults to the environment variable ``MESSAGES_API_KEY``. Answers 429 and 5xx are
    retried ``max_retries`` times, after the Retry-After header (up to 60 s; a longer one raises
    at once) or else 0.5 s, 1 s, ... (at most 5 s). A failed connection (refused, dropped, timed
    out) is retried the same way for listing and deleting, never for creating, which could make a
    second webhook. Other errors are not retried. ``transport`` and ``sleep`` exist for tests.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(api_key, base_url, timeout, max_retries)
        self._sleep = sleep
        self._http: httpx.Client = _httpx().Client(transport=transport, **self._options)

    def __enter__(self) -> MessagesClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _request(self, call: _Call) -> dict[str, Any]:
        httpx = _httpx()
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method, _WEBHOOKS, params=call.params, json=call.json
                )
            except httpx.TransportError as exc:
                self._sleep(self._reconnect_delay(call, attempt, exc))
                attempt += 1
                continue
            delay = self._retry_delay(response, attempt)
            if delay is None:
                return self._decode(response)
            self._sleep(delay)
            attempt += 1

    def create_webhook(self, from_: str, url: str, events: Iterable[str]) -> Webhook:
        """Create a webhook for the line ``from_``; the answer carries the secret, once."""
        return Webhook.from_api(self._request(_create_call(from_, url, events)))

    def list_webhooks(self, from_: str | None = None) -> list[Webhook]:
        """Every webhook (of the line ``from_``, when given), following the pages to the end."""
        found: list[Webhook] = []
        cursor: str | None = None
        while True:
            items, cursor = _page(self._request(_list_call(from_, cursor)), cursor)
            found.extend(items)
            if cursor is None:
                return found

    def delete_webhook(self, id: str) -> DeletedWebhook:
        """Delete the webhook ``id`` (``wh_...``)."""
        return _deleted(self._request(_delete_call(id)), id)


async def _anyio_sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)


class AsyncMessagesClient(_Base):
    """The same as :class:`MessagesClient`, for async code (``async with``, ``await``)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        max_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = _anyio_sleep,
    ) -> None:
        super().__init__(api_key, base_url, timeout, max_retries)
        self._sleep = sleep
        self._http: httpx.AsyncClient = _httpx().AsyncClient(transport=transport, **self._options)

    async def __aenter__(self) -> AsyncMessagesClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _request(self, call: _Call) -> dict[str, Any]:
        httpx = _httpx()
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, _WEBHOOKS, params=call.params, json=call.json
                )
            except httpx.TransportError as exc:
                await self._sleep(self._reconnect_delay(call, attempt, exc))
                attempt += 1
                continue
            delay = self._retry_delay(response, attempt)
            if delay is None:
                return self._decode(response)
            await self._sleep(delay)
            attempt += 1

    async def create_webhook(self, from_: str, url: str, events: Iterable[str]) -> Webhook:
        """Create a webhook for the line ``from_``; the answer carries the secret, once."""
        return Webhook.from_api(await self._request(_create_call(from_, url, events)))

    async def list_webhooks(self, from_: str | None = None) -> list[Webhook]:
        """Every webhook (of the line ``from_``, when given), following the pages to the end."""
        found: list[Webhook] = []
        cursor: str | None = None
        while True:
            items, cursor = _page(await self._request(_list_call(from_, cursor)), cursor)
            found.extend(items)
            if cursor is None:
                return found

    async def delete_webhook(self, id: str) -> DeletedWebhook:
        """Delete the webhook ``id`` (``wh_...``)."""
        return _deleted(await self._request(_delete_call(id)), id)
