"""The exceptions raised by messages_integrations.

WebhookError
├── SignatureVerificationError   the delivery is not authentic (401)
│   └── StaleDeliveryError       authentic, but signed outside the replay window (401)
├── InvalidPayloadError          authentic, but not a valid envelope (400)
└── ConfigurationError           the application is set up wrongly (no secret, ...)
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "InvalidPayloadError",
    "SignatureVerificationError",
    "StaleDeliveryError",
    "WebhookError",
]


class WebhookError(Exception):
    """Base class of every error this library raises on purpose."""


class SignatureVerificationError(WebhookError):
    """The signature is missing, malformed or wrong, or its timestamp is outside the window."""


class StaleDeliveryError(SignatureVerificationError):
    """The signature holds, but its timestamp is outside the replay window (replay or clock)."""


class InvalidPayloadError(WebhookError):
    """The body is not a JSON object of the shape Messages.dev sends."""


class ConfigurationError(WebhookError, ValueError):
    """The receiving application is misconfigured, for example no signing secret is set."""
