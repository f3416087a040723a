"""The ``messages-integrations`` command: test deliveries, signatures and webhook management.

Every subcommand is two functions: ``add_<name>_parser(commands)`` declares its arguments and sets
``handler=run_<name>``, which does the work and returns the exit code. :func:`build_parser` calls
every function of :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import difflib
import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import IO, Any, TypeAlias

from . import __version__
from ._config import SECRET_SETTING, secret_from_environment
from ._errors import ConfigurationError, InvalidPayloadError, SignatureVerificationError
from ._events import EVENT_NAMES
from ._signing import sign_webhook
from ._verify import Verified, verify
from .client import (
    API_KEY_SETTING,
    DEFAULT_BASE_URL,
    MessagesAPIError,
    MessagesClient,
    MessagesConnectionError,
    Webhook,
)
from .testing import build_delivery

__all__ = [
    "BASE_URL_SETTING",
    "SUBCOMMANDS",
    "CommandError",
    "Subcommands",
    "build_parser",
    "main",
    "settings_defaults",
]

#: What every ``add_<name>_parser`` function receives: ``commands.add_parser(name, ...)``.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

EXIT_OK = 0
#: The check or the request failed: an invalid signature, a non-2xx answer, an API error.
EXIT_FAILED = 1
#: The command cannot run: bad arguments, no secret or API key, an unreadable file.
EXIT_USAGE = 2
#: The reader of the output went away (``... | head -1``): stop quietly with the status a Unix
#: tool ended by SIGPIPE has.
EXIT_BROKEN_PIPE = 128 + 13

_SHOWN_BODY = 500  # characters of a response body printed by `send`
_READ_LIMIT = 64 * 1024


class CommandError(Exception):
    """A failure reported as one ``error: ...`` line on stderr, with the exit code to return."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


# --- shared helpers ---------------------------------------------------------------------------


def _read_input(path: str) -> bytes:
    """The exact bytes of a file, or of stdin for ``-``."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None


def _secrets(given: Sequence[str] | None) -> list[str]:
    """The ``--secret`` values (repeated or comma-separated), else ``MESSAGES_WEBHOOK_SECRET``."""
    found = [p.strip() for value in given or () for p in value.split(",") if p.strip()]
    found = found or secret_from_environment()
    if not found:
        raise CommandError(
            f"no signing secret: pass --secret or set {SECRET_SETTING} "
            "(the same secret your app uses)"
        )
    return found


def _closest_event(name: str) -> str:
    close = difflib.get_close_matches(name, EVENT_NAMES, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _event_list(value: str) -> list[str]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one event name")
    for name in names:
        if name not in EVENT_NAMES:
            raise argparse.ArgumentTypeError(
                f"unknown event {name!r}{_closest_event(name)}; known: {', '.join(EVENT_NAMES)}"
            )
    return names


def _integer(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None


def _positive_int(value: str) -> int:
    number = _integer(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _timestamp_ms(value: str) -> int:
    number = _integer(value)
    if number < 10**11:
        raise argparse.ArgumentTypeError(
            f"{value} looks like seconds; timestamps are unix milliseconds ({number * 1000})"
        )
    return number


def _signing_secret(args: argparse.Namespace) -> str:
    """The secret to sign with: number ``--secret-position`` (from 1) of those configured."""
    secrets = _secrets(args.secret)
    position: int = args.secret_position
    if position > len(secrets):
        source = "--secret" if args.secret else SECRET_SETTING
        raise CommandError(
            f"--secret-position {position}, but {source} holds {len(secrets)} secret(s)"
        )
    return secrets[position - 1]


def _add_secret_argument(parser: argparse.ArgumentParser, *, signing: bool) -> None:
    parser.add_argument(
        "--secret",
        action="append",
        metavar="SECRET",
        help="a signing secret; repeat it or comma-separate for several "
        f"(default: {SECRET_SETTING}, comma-separated)",
    )
    if signing:
        parser.add_argument(
            "--secret-position",
            type=_positive_int,
            default=1,
            metavar="N",
            help="sign with secret N of those given, numbered from 1 (default: 1, the first); "
            "for trying the new secret of a rotation",
        )


def _add_scheme_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scheme",
        choices=("timestamped", "body"),
        default="timestamped",
        help="timestamped: current deliveries (default); body: older ones, signed without "
        "the timestamp",
    )


# --- send -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    reason: str
    body: bytes
    location: str | None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Messages.dev does not follow redirects, so a redirect is shown as the answer it is."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> None:
        return None


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> _Answer:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=timeout) as response:
            return _Answer(response.status, response.reason, response.read(_READ_LIMIT), None)
    except urllib.error.HTTPError as exc:
        with exc:
            return _Answer(
                exc.code, str(exc.reason), exc.read(_READ_LIMIT), exc.headers.get("Location")
            )
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
        raise CommandError(f"could not reach {url}: {text}", EXIT_FAILED) from None
    except (OSError, http.client.HTTPException) as exc:
        raise CommandError(
            f"could not reach {url}: {exc.__class__.__name__} {exc}".rstrip(), EXIT_FAILED
        ) from None


def _load_data(value: str) -> dict[str, Any]:
    text = _read_input(value[1:]) if value.startswith("@") else value.encode()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CommandError(f"--data is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CommandError("--data must be a JSON object: the event's data")
    return data


def _check_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CommandError(f"--url must be an http:// or https:// URL, not {url!r}")


def _shorten(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    if len(text) > _SHOWN_BODY:
        return f"{text[:_SHOWN_BODY]}… ({len(body)} bytes)"
    return text


def _hint(answer: _Answer) -> str | None:
    if 300 <= answer.status < 400:
        return (
            f"the endpoint redirects to {answer.location}; Messages.dev does not follow "
            "redirects, so give the final URL (a missing trailing slash?)"
        )
    hints = {
        401: f"the signature was refused: does the app use the same secret ({SECRET_SETTING})?",
        403: "something in front of the endpoint refused it (CSRF protection, authentication)",
        404: "nothing answers at this path: check --url against the app's routes",
    }
    return hints.get(answer.status)


def add_send_parser(commands: Subcommands) -> None:
    """Declare ``send``."""
    parser = commands.add_parser(
        "send",
        help="POST signed test deliveries to your endpoint",
        description="Build deliveries signed exactly as Messages.dev signs them and POST them "
        "to --url; exits 1 if any answer is not 2xx.",
    )
    parser.add_argument("event", metavar="EVENT", help=f"one of: {', '.join(EVENT_NAMES)}")
    parser.add_argument(
        "--url", required=True, help="your endpoint, e.g. http://127.0.0.1:8000/webhooks"
    )
    parser.add_argument(
        "--data",
        metavar="JSON|@FILE",
        help="the event's data object instead of sample data (@- reads stdin)",
    )
    _add_secret_argument(parser, signing=True)
    _add_scheme_argument(parser)
    parser.add_argument("--count", type=_positive_int, default=1, help="how many to send")
    parser.add_argument(
        "--delivery-id", help="use this delivery id (with --count, the copies are duplicates)"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.set_defaults(handler=run_send)


def run_send(args: argparse.Namespace) -> int:
    """POST ``--count`` signed deliveries of EVENT and print every answer."""
    secret = _signing_secret(args)
    data = None if args.data is None else _load_data(args.data)
    if args.event not in EVENT_NAMES and data is None:
        raise CommandError(
            f"unknown event {args.event!r}{_closest_event(args.event)}; "
            "to send an event this library does not know, give its --data"
        )
    _check_url(args.url)
    failed = 0
    for number in range(1, args.count + 1):
        delivery = build_delivery(
            args.event, data, secret=secret, delivery_id=args.delivery_id, scheme=args.scheme
        )
        answer = _post(args.url, delivery.body, delivery.headers, args.timeout)
        prefix = f"[{number}/{args.count}] " if args.count > 1 else ""
        print(f"{prefix}{args.event} {delivery.delivery_id} -> {answer.status} {answer.reason}")
        if answer.body:
            print(f"  {_shorten(answer.body)}")
        if not 200 <= answer.status < 300:
            failed += 1
            hint = _hint(answer)
            if hint:
                print(f"  hint: {hint}")
    if args.count > 1:
        print(f"{args.count - failed} of {args.count} answered 2xx")
    return EXIT_FAILED if failed else EXIT_OK


# --- sign -------------------------------------------------------------------------------------


def add_sign_parser(commands: Subcommands) -> None:
    """Declare ``sign``."""
    parser = commands.add_parser(
        "sign",
        help="sign a body and print the headers to send with it",
        description="Sign the exact bytes of BODY_FILE as Messages.dev does and print the "
        "headers to send (curl -H @FILE reads this format).",
    )
    parser.add_argument("body", metavar="BODY_FILE", help="the body to sign, or - for stdin")
    _add_secret_argument(parser, signing=True)
    parser.add_argument(
        "--timestamp",
        type=_timestamp_ms,
        help="unix milliseconds to sign (default: the body's own timestamp, else now)",
    )
    _add_scheme_argument(parser)
    parser.add_argument(
        "--signature-only", action="store_true", help="print only the hex signature"
    )
    parser.set_defaults(handler=run_sign)


def _body_timestamp(body: bytes) -> int | None:
    """The body's own ``timestamp``: the value the official SDK signs and verifies, if any."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict) or "timestamp" not in document:
        return None
    value = document["timestamp"]
    # JSON numbers only, and whole ones (NaN and infinities are floats that are not).
    whole = isinstance(value, float) and value.is_integer()
    if not whole and (isinstance(value, bool) or not isinstance(value, int)):
        raise CommandError(
            f"the body's timestamp {value!r} is not a whole number of unix milliseconds; "
            "fix it, or pass --timestamp"
        )
    return int(value)


def _timestamp_to_sign(body: bytes, given: int | None) -> int:
    """``--timestamp``, else the body's own, else now; warn when the two disagree."""
    own = _body_timestamp(body)
    if given is None:
        return own if own is not None else int(time.time() * 1000)
    if own is not None and own != given:
        print(
            f"warning: signing {given}, but the body's timestamp is {own}: receivers that "
            "verify the body's timestamp (the official SDK's verifyWebhook) will refuse it",
            file=sys.stderr,
        )
    return given


def run_sign(args: argparse.Namespace) -> int:
    """Print the signature headers for a body."""
    body = _read_input(args.body)
    secret = _signing_secret(args)
    timestamp = _timestamp_to_sign(body, args.timestamp)
    signature = sign_webhook(secret, timestamp, body, scheme=args.scheme)
    if args.signature_only:
        print(signature)
        return EXIT_OK
    print("Content-Type: application/json")
    print(f"X-Webhook-Signature: {signature}")
    if args.scheme == "timestamped":
        print(f"X-Webhook-Timestamp: {timestamp}")
    return EXIT_OK


# --- verify -----------------------------------------------------------------------------------


def add_verify_parser(commands: Subcommands) -> None:
    """Declare ``verify``."""
    parser = commands.add_parser(
        "verify",
        help="check a captured delivery and say which check fails",
        description="Verify a captured body as a receiver would: signature, replay window, "
        "envelope. Exits 0 when valid, 1 when not.",
    )
    parser.add_argument("body", metavar="BODY_FILE", help="the raw body received, or - for stdin")
    parser.add_argument("--signature", required=True, help="the X-Webhook-Signature value")
    parser.add_argument("--timestamp", help="the X-Webhook-Timestamp value, if one was sent")
    _add_secret_argument(parser, signing=False)
    window = parser.add_mutually_exclusive_group()
    window.add_argument(
        "--tolerance",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="the replay window (default: 300)",
    )
    window.add_argument(
        "--no-tolerance",
        dest="tolerance",
        action="store_const",
        const=None,
        help="skip the replay window (for old captures)",
    )
    parser.set_defaults(handler=run_verify)


def _describe_valid(verified: Verified, secret_count: int) -> None:
    event = verified.event
    try:
        when = f"{datetime.fromtimestamp(event.timestamp / 1000, UTC):%Y-%m-%d %H:%M:%S} UTC"
    except (OverflowError, OSError, ValueError):  # a year past 9999, seen with --no-tolerance
        when = "not a representable date"
    print(f"valid: {event.event}")
    print(f"  delivery id: {event.delivery_id or '(none in the body)'}")
    # Numbered from 1, in the order given, as everywhere in this library's messages.
    print(f"  secret:      {verified.secret_index + 1} of {secret_count}")
    print(f"  scheme:      {verified.scheme}")
    print(f"  timestamp:   {event.timestamp} ({when})")


def _signature_hints(body: bytes, args: argparse.Namespace, secrets: list[str]) -> list[str]:
    hints = []
    stripped = body.rstrip(b"\r\n")
    if stripped != body:
        try:
            verify(stripped, args.signature, secrets, timestamp=args.timestamp, tolerance=None)
        except (SignatureVerificationError, InvalidPayloadError):
            pass
        else:
            hints.append("the file ends with a newline the sender did not sign; remove it")
    hints.append(
        "check the secret (each webhook has its own), that the body is the exact bytes received "
        "(not re-serialised JSON), and --timestamp (the X-Webhook-Timestamp header)"
    )
    return hints


def run_verify(args: argparse.Namespace) -> int:
    """Verify a captured delivery; print what matched, or which check failed."""
    if args.tolerance is not None and args.tolerance < 0:
        raise CommandError("--tolerance must be a number of seconds, 0 or more")
    body = _read_input(args.body)
    secrets = _secrets(args.secret)
    try:
        verified = verify(
            body, args.signature, secrets, timestamp=args.timestamp, tolerance=args.tolerance
        )
    except InvalidPayloadError as exc:
        print(f"invalid: the signature matches, but this is not a valid envelope: {exc}")
        print("  a receiver answers 400")
        return EXIT_FAILED
    except SignatureVerificationError as exc:
        try:
            verify(body, args.signature, secrets, timestamp=args.timestamp, tolerance=None)
        except SignatureVerificationError:
            print(f"invalid: {exc} (checked {len(secrets)} secret(s), both schemes)")
            print("  a receiver answers 401")
            for hint in _signature_hints(body, args, secrets):
                print(f"  hint: {hint}")
            return EXIT_FAILED
        except InvalidPayloadError:
            pass
        print(f"invalid: {exc}")
        print("  the signature itself matches; a receiver answers 401")
        print("  hint: an old capture? check with --no-tolerance; live: is the clock right?")
        return EXIT_FAILED
    _describe_valid(verified, len(secrets))
    return EXIT_OK


# --- webhooks ---------------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> MessagesClient:
    try:
        return MessagesClient(args.api_key, base_url=args.base_url or DEFAULT_BASE_URL)
    except ImportError as exc:
        raise CommandError(str(exc)) from None
    except ConfigurationError:
        raise CommandError(
            f"no Messages.dev API key: set {API_KEY_SETTING} (or pass --api-key)"
        ) from None


def _print_secret_guidance(webhook: Webhook) -> None:
    if not webhook.secret:
        print("\nThe answer carried no signing secret: copy it from the dashboard.")
        return
    print("\nSigning secret (shown only this once, store it now):\n")
    print(f"    {webhook.secret}\n")
    print(
        f"Give it to your app as {SECRET_SETTING}: the environment variable, the Django setting "
        "or the Flask config key of that name. Several lines or a rotation: comma-separate the "
        "secrets in the environment variable, or use a list in the setting."
    )


def run_webhooks_create(args: argparse.Namespace) -> int:
    """Create a webhook and print its secret once, with where to put it."""
    with _client(args) as client:
        webhook = client.create_webhook(args.from_, args.url, args.events)
    if args.json:
        print(json.dumps(dict(webhook.raw), indent=2))
        return EXIT_OK
    print(f"Created webhook {webhook.id} for {args.from_}")
    print(f"  url:    {webhook.url}")
    print(f"  events: {', '.join(webhook.events)}")
    _print_secret_guidance(webhook)
    return EXIT_OK


def _events_cell(events: Sequence[str]) -> str:
    return f"all {len(events)}" if set(EVENT_NAMES) <= set(events) else ",".join(events)


def run_webhooks_list(args: argparse.Namespace) -> int:
    """Print every webhook (of one line with ``--from``) as a compact table."""
    with _client(args) as client:
        webhooks = client.list_webhooks(args.from_)
    if args.json:
        print(json.dumps([dict(w.raw) for w in webhooks], indent=2))
        return EXIT_OK
    if not webhooks:
        print("No webhooks" + (f" for {args.from_}." if args.from_ else "."))
        return EXIT_OK
    rows = [("ID", "LINES", "ACTIVE", "EVENTS", "URL")] + [
        (w.id, ",".join(w.line_ids), "yes" if w.is_active else "no", _events_cell(w.events), w.url)
        for w in webhooks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for *cells, url in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)), url)
    return EXIT_OK


def run_webhooks_delete(args: argparse.Namespace) -> int:
    """Delete one webhook by id."""
    with _client(args) as client:
        result = client.delete_webhook(args.id)
    if not result.deleted:
        print(f"The API did not confirm the deletion of {result.id}.")
        return EXIT_FAILED
    print(f"Deleted webhook {result.id}.")
    return EXIT_OK


def add_webhooks_parser(commands: Subcommands) -> None:
    """Declare ``webhooks create | list | delete``."""
    api = argparse.ArgumentParser(add_help=False)
    api.add_argument("--api-key", help=f"the API key (default: {API_KEY_SETTING}; prefer that)")
    api.add_argument("--base-url", help=f"default: {DEFAULT_BASE_URL}")
    parser = commands.add_parser(
        "webhooks",
        help="create, list and delete webhooks over the REST API",
        description="Manage Messages.dev webhooks (needs the cli extra).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", parents=[api], help="create a webhook for one line")
    create.add_argument(
        "--from",
        dest="from_",
        required=True,
        metavar="LINE",
        help="the line's phone number or Apple ID, e.g. +15551234567",
    )
    create.add_argument("--url", required=True, help="your public endpoint")
    create.add_argument(
        "--events", required=True, type=_event_list, metavar="A,B", help="event names"
    )
    create.add_argument("--json", action="store_true", help="print the API's object")
    create.set_defaults(handler=run_webhooks_create)

    listing = actions.add_parser("list", parents=[api], help="list webhooks")
    listing.add_argument("--from", dest="from_", metavar="LINE", help="only this line's")
    listing.add_argument("--json", action="store_true", help="print the API's objects")
    listing.set_defaults(handler=run_webhooks_list)

    delete = actions.add_parser("delete", parents=[api], help="delete a webhook")
    delete.add_argument("id", metavar="ID", help="the webhook's id (wh_...)")
    delete.set_defaults(handler=run_webhooks_delete)


# --- check ------------------------------------------------------------------------------------


def add_check_parser(commands: Subcommands) -> None:
    """Declare ``check``."""
    parser = commands.add_parser(
        "check",
        help="describe the endpoint the MESSAGES_WEBHOOK_* environment variables configure",
        description="Build the endpoint the environment configures, as the Starlette middleware "
        "and the FastAPI dependency do, and describe it: how many secrets, the store, the "
        "queue, whether Prometheus, OpenTelemetry and callbacks are on, and the handlers. "
        "Exits 1 when it cannot work (no secret, a bad value). Django and Flask projects: "
        "'manage.py messages check', 'flask messages check'.",
    )
    parser.add_argument(
        "--import",
        dest="modules",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (your app), so that its handlers, callbacks and exporters "
        "count; repeatable",
    )
    parser.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Describe the endpoint built from the environment; 1 when it cannot be built."""
    import importlib
    import os

    from ._startup import build_receiver, describe

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # `--import app` finds the app beside you, as flask does
    for module in args.modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise CommandError(f"cannot import {module}: {exc}") from None
    print("endpoint configured by the environment (MESSAGES_WEBHOOK_*)")
    try:
        receiver = build_receiver({}, "messages-integrations check")
    except (ConfigurationError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for line in describe(receiver):
        print(f"  {line}")
    return EXIT_OK


# --- the command ------------------------------------------------------------------------------


def add_demo_parser(commands: Subcommands) -> None:
    """``demo``: every example project on a real server, every event delivered to it."""
    parser = commands.add_parser(
        "demo",
        help="run every example project on a real server and deliver every event to it",
        description="Start the example projects on free 127.0.0.1 ports (uvicorn and gunicorn), "
        "deliver a signed delivery of every event, a duplicate, a forged and a stale one to "
        "each, and print what their handlers received. Exits 0 when every server behaved as "
        "the contract says.",
    )
    parser.add_argument(
        "--projects",
        type=Path,
        default=None,
        help="a folder of example projects (default: those installed with the package)",
    )
    parser.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo and return its exit code."""
    from ._demo import run_demo as demo

    return demo(args.projects)


#: One function per subcommand, called in this order by :func:`build_parser`.
SUBCOMMANDS: list[Callable[[Subcommands], None]] = [
    add_check_parser,
    add_demo_parser,
    add_send_parser,
    add_sign_parser,
    add_verify_parser,
    add_webhooks_parser,
]


def build_parser(prog: str = "messages-integrations") -> argparse.ArgumentParser:
    """The ``messages-integrations`` argument parser, with every subcommand."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Try Messages.dev webhooks locally and manage them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(commands)
    return parser


#: The settings (Django) and config keys (Flask) the framework commands read for the API.
BASE_URL_SETTING = "MESSAGES_API_BASE_URL"


def settings_defaults(lookup: Callable[[str], Any]) -> dict[str, Any]:
    """The ``defaults`` of :func:`main` from a framework's settings: ``lookup(name)`` or None."""
    secret = lookup(SECRET_SETTING)
    if isinstance(secret, str | bytes):
        secret = [secret]
    return {
        "secret": [s.decode() if isinstance(s, bytes) else str(s) for s in secret or ()] or None,
        "api_key": lookup(API_KEY_SETTING),
        "base_url": lookup(BASE_URL_SETTING),
    }


def main(
    argv: Sequence[str] | None = None,
    *,
    prog: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> int:
    """Run the command line; return the exit code.

    Framework commands (``manage.py messages``, ``flask messages``) call it with ``prog`` and with
    ``defaults`` read from their settings (``secret``, ``api_key``, ``base_url``): each is used
    where the command line gives no value, before the environment is consulted.
    """
    parser = build_parser() if prog is None else build_parser(prog)
    try:
        code = _run(parser, argv, defaults or {})
        # Written now, so that a reader gone away is seen here rather than at exit.
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    return code


def _run(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, defaults: Mapping[str, Any]
) -> int:
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    for name, value in defaults.items():
        if getattr(args, name, ...) is None and value:
            setattr(args, name, value)
    try:
        code: int = args.handler(args)
    except CommandError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except (MessagesAPIError, MessagesConnectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    return code


def _discard_stdout() -> None:
    """Point stdout at the null device: what is still buffered must not fail again at exit."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a capture without a descriptor
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, descriptor)
    finally:
        os.close(null)
