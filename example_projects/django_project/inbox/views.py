"""GET /received: how many events arrived, by name and by delivery id; GET /metrics."""

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from messages_integrations import prometheus

from .messages_webhooks import recorder


@require_GET
def received(request: HttpRequest) -> JsonResponse:
    """The recorder's summary, as JSON."""
    return JsonResponse(recorder.summary())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus figures: MESSAGES_WEBHOOK_PROMETHEUS = True in settings, or =1 in the env."""
    if not prometheus.is_enabled():
        raise Http404("set MESSAGES_WEBHOOK_PROMETHEUS")
    body, content_type = prometheus.exposition()
    return HttpResponse(body, content_type=content_type)
