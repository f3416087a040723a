"""GET /received: how many events arrived, by name and by delivery id."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from .messages_webhooks import recorder


@require_GET
def received(request: HttpRequest) -> JsonResponse:
    """The recorder's summary, as JSON."""
    return JsonResponse(recorder.summary())
