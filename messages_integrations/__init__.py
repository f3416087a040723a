"""Receive Messages.dev webhooks (iMessage/SMS events) safely, and hand them to typed handlers.

The core never imports a web framework; adapters live in ``messages_integrations.django``,
``messages_integrations.flask`` and ``messages_integrations.starlette``.
"""

from ._config import resolve_secret
from ._errors import (
    ConfigurationError,
    InvalidPayloadError,
    SignatureVerificationError,
    WebhookError,
)
from ._events import (
    EVENT_NAMES,
    Attachment,
    Event,
    Message,
    MessageReceived,
    MessageSent,
    Reaction,
    ReactionAdded,
    ReactionRemoved,
    ReadReceipt,
    ReceiptRead,
    TypingIndicator,
    TypingStarted,
    TypingStopped,
    UnknownEvent,
    parse_event,
)
from ._handling import Accepted, BodyTooLarge, WebhookReceiver, WebhookResponse
from ._router import WebhookRouter, default_router, on
from ._signing import sign_webhook, verify_webhook
from ._store import Claim, DeliveryStore, InMemoryDeliveryStore

__version__ = "0.2.0.dev0"

__all__ = [
    "EVENT_NAMES",
    "Accepted",
    "Attachment",
    "BodyTooLarge",
    "Claim",
    "ConfigurationError",
    "DeliveryStore",
    "Event",
    "InMemoryDeliveryStore",
    "InvalidPayloadError",
    "Message",
    "MessageReceived",
    "MessageSent",
    "Reaction",
    "ReactionAdded",
    "ReactionRemoved",
    "ReadReceipt",
    "ReceiptRead",
    "SignatureVerificationError",
    "TypingIndicator",
    "TypingStarted",
    "TypingStopped",
    "UnknownEvent",
    "WebhookError",
    "WebhookReceiver",
    "WebhookResponse",
    "WebhookRouter",
    "__version__",
    "default_router",
    "on",
    "parse_event",
    "resolve_secret",
    "sign_webhook",
    "verify_webhook",
]
