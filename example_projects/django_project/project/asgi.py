"""The ASGI application: ``uvicorn project.asgi:application``.

The library's ``get_asgi_application`` is Django's, except that a webhook body over
``MESSAGES_WEBHOOK_MAX_BODY_SIZE`` gets its 413 as it arrives: Django's own handler would read
all of it before the view could refuse it.
"""

import os

from messages_integrations.django.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
application = get_asgi_application()
