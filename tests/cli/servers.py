"""In-process HTTP servers on 127.0.0.1 for the CLI tests: a webhook receiver and a fake REST API.

The fake follows the API's shapes (docs/protocol.md): Bearer key, ``POST/GET/DELETE /v1/webhooks``,
the id of a delete in the JSON body (400 otherwise), ``has_more``/``next_cursor`` pages, the error
object. It can also drop connections without answering, as a failing network or proxy does.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from messages_integrations import WebhookReceiver, WebhookRouter
from messages_integrations.testing import Recorder

HOST = "127.0.0.1"


@contextlib.contextmanager
def running(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """Serve ``handler`` on a free port of 127.0.0.1 in a thread until the block ends."""
    server = ThreadingHTTPServer((HOST, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def url_of(server: ThreadingHTTPServer) -> str:
    """``http://127.0.0.1:PORT``."""
    return f"http://{HOST}:{server.server_address[1]}"


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# --- a receiving app ----------------------------------------------------------------------------


@dataclass
class Receiver:
    """A running webhook endpoint at ``url`` whose handlers record into ``recorder``."""

    url: str
    recorder: Recorder
    #: The raw body and headers of every POST to the webhook path, in arrival order.
    requests: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)


@contextlib.contextmanager
def webhook_receiver(
    secret: str, *, before_answer: Callable[[int], None] | None = None
) -> Iterator[Receiver]:
    """An endpoint at ``/webhooks`` answering through ``WebhookReceiver.handle``.

    Any other path redirects to ``/webhooks`` (as a framework adding a slash would).
    ``before_answer(n)`` runs before the n-th delivery (from 1) is handled: a test can hold it.
    """
    recorder = Recorder()
    router = WebhookRouter()
    router.on("*")(recorder)
    receiver = WebhookReceiver(secret=secret, router=router)
    numbers = itertools.count(1)
    requests: list[tuple[bytes, dict[str, str]]] = []

    class Handler(_Quiet):
        def do_POST(self) -> None:
            if self.path != "/webhooks":
                self._body()
                self._send(308, b"", {"Location": "/webhooks"})
                return
            body = self._body()
            requests.append((body, dict(self.headers.items())))
            if before_answer is not None:
                before_answer(next(numbers))
            answer = receiver.handle("POST", self.headers.items(), body)
            self._send(answer.status, answer.body, dict(answer.headers))

    with running(Handler) as server:
        yield Receiver(f"{url_of(server)}/webhooks", recorder, requests)


# --- a fake of the REST API ---------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request the fake API received."""

    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    body: bytes

    def json(self) -> Any:
        """The body, decoded."""
        return json.loads(self.body)


def official_sdk_accepts(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """Whether the official SDK's ``verifyWebhook`` accepts a delivery, replay window aside.

    It signs ``f"{timestamp}.{raw body}"`` with the timestamp read from the parsed body.
    """
    timestamp = json.loads(body)["timestamp"]
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    given = {name.lower(): value for name, value in headers.items()}["x-webhook-signature"]
    return hmac.compare_digest(expected, given)


def error_object(type_: str, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    """The API's error answer."""
    error = {"type": type_, "code": code, "message": message}
    if param is not None:
        error["param"] = param
    return {"error": error, "request_id": "req_fake0001"}


def _line_id(line: str) -> str:
    return "ln_" + "".join(c for c in line if c.isalnum())


@dataclass
class FakeMessagesAPI:
    """The state of the fake: webhooks, requests seen, and scripted answers to give first."""

    api_key: str = "sk_test_cli_key"
    page_size: int = 2
    url: str = ""
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    #: (status, headers, json body) answered, in order, before any real handling.
    scripted: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)
    #: How many of the next requests are read, recorded, and answered by closing the connection.
    drop_connections: int = 0
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, line: str, url: str, events: list[str]) -> dict[str, Any]:
        """Create a webhook as the API would; return the answer, secret included."""
        number = next(self._ids)
        webhook_id = f"wh_{number:04d}"
        webhook: dict[str, Any] = {
            "id": webhook_id,
            "line_ids": [_line_id(line)],
            "url": url,
            "events": events,
            "is_active": True,
            "created_at": 1_767_225_600_000 + number,
        }
        self.webhooks[webhook_id] = webhook
        return {**webhook, "secret": f"whsec_fake_secret_{number:04d}", "request_id": "req_c"}

    def answer(self, seen: Seen) -> tuple[int, dict[str, str], Any] | None:
        """What the API answers to one request; None: close the connection without an answer."""
        with self._lock:
            self.seen.append(seen)
            if self.drop_connections:
                self.drop_connections -= 1
                return None
            if self.scripted:
                return self.scripted.pop(0)
            if seen.authorization != f"Bearer {self.api_key}":
                return (
                    401,
                    {},
                    error_object("authentication_error", "invalid_api_key", "Invalid API key"),
                )
            if seen.path != "/v1/webhooks":
                return 404, {}, error_object("invalid_request_error", "not_found", "No such route")
            handler = {"POST": self._create, "GET": self._list, "DELETE": self._delete}
            return handler[seen.method](seen)

    def _create(self, seen: Seen) -> tuple[int, dict[str, str], Any]:
        try:
            body = seen.json()
            line, url, events = body["from"], body["url"], body["events"]
        except (ValueError, KeyError, TypeError):
            return (
                400,
                {},
                error_object(
                    "invalid_request_error",
                    "parameter_missing",
                    "from, url and events are required",
                ),
            )
        return 200, {}, self.add(line, url, list(events))

    def _list(self, seen: Seen) -> tuple[int, dict[str, str], Any]:
        line = seen.query.get("from")
        matching = [
            w for w in self.webhooks.values() if line is None or w["line_ids"] == [_line_id(line)]
        ]
        start = int(seen.query.get("cursor", "0"))
        page = matching[start : start + self.page_size]
        more = start + self.page_size < len(matching)
        return (
            200,
            {},
            {
                "data": page,
                "has_more": more,
                "next_cursor": str(start + self.page_size) if more else None,
                "request_id": "req_l",
            },
        )

    def _delete(self, seen: Seen) -> tuple[int, dict[str, str], Any]:
        try:
            webhook_id = seen.json()["id"]
        except (ValueError, KeyError, TypeError):
            return (
                400,
                {},
                error_object(
                    "invalid_request_error",
                    "parameter_missing",
                    "The webhook id is required in the request body",
                    param="id",
                ),
            )
        if self.webhooks.pop(webhook_id, None) is None:
            return (
                404,
                {},
                error_object(
                    "invalid_request_error", "resource_missing", f"No such webhook: {webhook_id}"
                ),
            )
        return 200, {}, {"id": webhook_id, "deleted": True, "request_id": "req_d"}


@contextlib.contextmanager
def fake_messages_api() -> Iterator[FakeMessagesAPI]:
    """Run a :class:`FakeMessagesAPI` on 127.0.0.1; its ``url`` is the base URL."""
    api = FakeMessagesAPI()

    class Handler(_Quiet):
        def _any(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            seen = Seen(
                self.command,
                parts.path,
                dict(urllib.parse.parse_qsl(parts.query)),
                self.headers.get("Authorization"),
                self._body(),
            )
            answer = api.answer(seen)
            if answer is None:
                self.close_connection = True
                return
            status, headers, document = answer
            body = document if isinstance(document, bytes) else json.dumps(document).encode()
            self._send(status, body, {"Content-Type": "application/json", **headers})

        do_GET = do_POST = do_DELETE = _any

    with running(Handler) as server:
        api.url = url_of(server)
        yield api
