"""The URLconf of the Django application that the middleware wraps in test_passthrough."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path


def echo(request: HttpRequest) -> HttpResponse:
    """Answer with the request's own body and method."""
    return HttpResponse(request.body, headers={"x-django-method": request.method or ""})


urlpatterns = [path("orders", echo)]
