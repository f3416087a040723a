"""The Django settings of the test suite: no database, CSRF enforced, login required by default.

Configured once per test process, by whichever test folder needs Django first.
"""

from __future__ import annotations

import django
from django.conf import settings

__all__ = ["SECRET", "configure_django"]

SECRET = "whsec_django_tests"


def configure_django() -> None:
    """Configure Django for the tests (once) and set it up."""
    if not settings.configured:
        settings.configure(
            SECRET_KEY="django-tests-only",
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF="tests.django.urls",
            DATABASES={},
            INSTALLED_APPS=[
                "django.contrib.contenttypes",
                "django.contrib.auth",
                "messages_integrations.django",
                "tests.django.webhook_app",
            ],
            MIDDLEWARE=[
                "django.middleware.security.SecurityMiddleware",
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.middleware.common.CommonMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "django.contrib.auth.middleware.LoginRequiredMiddleware",
            ],
            # Sessions in signed cookies: LoginRequiredMiddleware works without a database.
            SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
            USE_TZ=True,
            MESSAGES_WEBHOOK_SECRET=SECRET,
        )
        django.setup()
