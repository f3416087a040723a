"""A module an application would import at start-up: it registers a callback on every delivery."""

from __future__ import annotations

from messages_integrations import observe


@observe
def audit(record: object) -> None:
    """Keeps an audit trail of every delivery (here: nothing)."""
