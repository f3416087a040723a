"""How adapters find their settings: explicit argument, framework setting, environment."""

from __future__ import annotations

from typing import Any

import pytest

from messages_integrations import ConfigurationError, resolve_secret
from messages_integrations._config import coerce_max_body_size, coerce_tolerance


def test_explicit_secret_wins_over_the_setting_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", "whsec_env")
    assert resolve_secret("whsec_arg", "whsec_setting") == "whsec_arg"
    assert resolve_secret(None, "whsec_setting") == "whsec_setting"
    assert resolve_secret(None, None) == ["whsec_env"]


def test_the_environment_may_hold_several_comma_separated_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", " whsec_a, whsec_b ,, ")
    assert resolve_secret(None) == ["whsec_a", "whsec_b"]


def test_a_setting_may_be_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESSAGES_WEBHOOK_SECRET", raising=False)
    assert resolve_secret(None, ["whsec_a", "", "whsec_b"]) == ["whsec_a", "whsec_b"]


@pytest.mark.parametrize("nothing", [None, "", [], [""]])
def test_no_secret_anywhere_names_the_setting_to_set(
    monkeypatch: pytest.MonkeyPatch, nothing: Any
) -> None:
    monkeypatch.delenv("MESSAGES_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match="set MESSAGES_WEBHOOK_SECRET in Django settings"):
        resolve_secret(nothing, nothing, where="Django settings")


@pytest.mark.parametrize("wrong", [12345, [b"ok", 7]])
def test_a_secret_of_the_wrong_type_is_a_configuration_error(wrong: Any) -> None:
    with pytest.raises(ConfigurationError, match="MESSAGES_WEBHOOK_SECRET must"):
        resolve_secret(None, wrong)


@pytest.mark.parametrize(("value", "seconds"), [(None, None), (60, 60.0), ("300", 300.0), (0, 0.0)])
def test_tolerance_settings_are_read_as_seconds(value: Any, seconds: float | None) -> None:
    assert coerce_tolerance(value) == seconds


@pytest.mark.parametrize("value", ["soon", -1, float("inf"), True, [300]])
def test_unusable_tolerance_names_its_setting(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="MESSAGES_WEBHOOK_TOLERANCE"):
        coerce_tolerance(value)


@pytest.mark.parametrize(("value", "size"), [(1, 1), ("2048", 2048), (1048576, 1048576)])
def test_body_size_settings_are_read_as_bytes(value: Any, size: int) -> None:
    assert coerce_max_body_size(value) == size


@pytest.mark.parametrize("value", ["1 MB", 0, -5, 1.5, True, None])
def test_unusable_body_size_names_its_setting(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="MESSAGES_WEBHOOK_MAX_BODY_SIZE"):
        coerce_max_body_size(value)
