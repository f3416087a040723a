"""The URLconf of the contract suite's Django endpoints: /webhooks routes to the view under test."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, clear_url_caches, path

urlpatterns: list[URLPattern] = []


def route(view: Any) -> None:
    """Serve ``view`` at /webhooks from now on."""
    urlpatterns[:] = [path("webhooks", view)]
    clear_url_caches()
