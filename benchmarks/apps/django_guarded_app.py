"""Django under ASGI behind the library's get_asgi_application(), for the memory benchmark.

The same settings, URLconf and views as ``django_app`` (``BENCH_DJANGO_ASGI=1``: the async
view); only the application differs: ``messages_integrations.django.asgi``'s drop-in for Django's,
which refuses an oversized webhook body as it streams instead of after Django has read it all.
"""

from __future__ import annotations

import django_app  # noqa: F401 - configures Django and is its URLconf

from messages_integrations.django.asgi import get_asgi_application

application = get_asgi_application()
