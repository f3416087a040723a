"""System checks: ``manage.py check`` reports a missing secret and unusable settings."""

from __future__ import annotations

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from messages_integrations import InMemoryDeliveryStore


def our_messages() -> dict[str, checks.CheckMessage]:
    return {
        str(m.id): m for m in checks.run_checks() if str(m.id).startswith("messages_integrations")
    }


@pytest.fixture
def no_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESSAGES_WEBHOOK_SECRET", raising=False)


def test_configured_project_passes_the_checks() -> None:
    assert our_messages() == {}


@override_settings(MESSAGES_WEBHOOK_SECRET=None)
def test_missing_secret_is_an_error_naming_the_setting(no_env_secret: None) -> None:
    found = our_messages()
    assert list(found) == ["messages_integrations.E001"]
    error = found["messages_integrations.E001"]
    assert error.level == checks.ERROR
    assert "MESSAGES_WEBHOOK_SECRET" in error.msg
    assert "MESSAGES_WEBHOOK_SECRET" in str(error.hint)


@override_settings(MESSAGES_WEBHOOK_SECRET=None)
def test_missing_secret_fails_manage_py_check(no_env_secret: None) -> None:
    with pytest.raises(SystemCheckError, match=r"messages_integrations\.E001"):
        call_command("check")


@override_settings(MESSAGES_WEBHOOK_SECRET=None)
def test_secret_from_the_environment_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", "whsec_a,whsec_b")
    assert our_messages() == {}


@override_settings(MESSAGES_WEBHOOK_SECRET=12345)
def test_secret_of_the_wrong_type_is_an_error() -> None:
    assert list(our_messages()) == ["messages_integrations.E001"]


def the_setting_error(setting: str) -> checks.CheckMessage:
    """The one message of the checks, which must be E002 naming ``setting``."""
    found = our_messages()
    assert list(found) == ["messages_integrations.E002"]
    error = found["messages_integrations.E002"]
    assert error.level == checks.ERROR
    assert setting in error.msg
    return error


@pytest.mark.parametrize("value", ["five minutes", -1, True, float("nan")])
def test_unusable_tolerance_is_an_error_naming_the_setting(value: object) -> None:
    with override_settings(MESSAGES_WEBHOOK_TOLERANCE=value):
        the_setting_error("MESSAGES_WEBHOOK_TOLERANCE")


@pytest.mark.parametrize("value", [60, 0.5, "120", None, "off"])
def test_usable_tolerance_passes(value: object) -> None:
    with override_settings(MESSAGES_WEBHOOK_TOLERANCE=value):
        assert our_messages() == {}


@pytest.mark.parametrize("value", ["1 MB", 0, -5, 2.5, None])
def test_unusable_max_body_size_is_an_error_naming_the_setting(value: object) -> None:
    with override_settings(MESSAGES_WEBHOOK_MAX_BODY_SIZE=value):
        the_setting_error("MESSAGES_WEBHOOK_MAX_BODY_SIZE")


def test_unusable_setting_fails_manage_py_check() -> None:
    with (
        override_settings(MESSAGES_WEBHOOK_DEDUP_TTL="three days"),
        pytest.raises(SystemCheckError, match=r"messages_integrations\.E002"),
    ):
        call_command("check")


@override_settings(MESSAGES_WEBHOOK_ROUTER="tests.django.nowhere.router")
def test_router_that_cannot_be_imported_is_an_error() -> None:
    the_setting_error("MESSAGES_WEBHOOK_ROUTER")


@override_settings(MESSAGES_WEBHOOK_STORE="tests.django.urls.line_b_router")
def test_store_that_is_not_a_store_is_an_error() -> None:
    assert "DeliveryStore" in the_setting_error("MESSAGES_WEBHOOK_STORE").msg


@override_settings(
    MESSAGES_WEBHOOK_ROUTER="tests.django.urls.line_b_router",
    MESSAGES_WEBHOOK_STORE=InMemoryDeliveryStore(),
)
def test_router_and_store_settings_pass() -> None:
    assert our_messages() == {}
