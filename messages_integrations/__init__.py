"""Receive Messages.dev webhooks (iMessage/SMS events) safely, and hand them to typed handlers.

The core never imports a web framework; adapters live in ``messages_integrations.django``,
``messages_integrations.flask`` and ``messages_integrations.starlette``.
"""

from ._config import EndpointOptions, resolve_secret
from ._errors import (
    ConfigurationError,
    InvalidPayloadError,
    SignatureVerificationError,
    StaleDeliveryError,
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
from ._handling import BodyTooLarge, Delivery, Refused, WebhookReceiver, WebhookResponse
from ._outcomes import OUTCOMES, DeliveryRecord, HandlerRecord, HandlersStarted, observe
from ._router import WebhookRouter, default_router, on
from ._signing import sign_webhook
from ._store import Claim, DeliveryStore, InMemoryDeliveryStore
from ._verify import verify_webhook

__version__ = "0.2.0.dev0"

__all__ = [
    "EVENT_NAMES",
    "OUTCOMES",
    "Attachment",
    "BodyTooLarge",
    "Claim",
    "ConfigurationError",
    "Delivery",
    "DeliveryRecord",
    "DeliveryStore",
    "EndpointOptions",
    "Event",
    "HandlerRecord",
    "HandlersStarted",
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
    "Refused",
    "SignatureVerificationError",
    "StaleDeliveryError",
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
    "observe",
    "on",
    "parse_event",
    "resolve_secret",
    "sign_webhook",
    "verify_webhook",
]
