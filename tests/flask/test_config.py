"""Where the blueprint finds its options: arguments, then app.config, then the environment."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Blueprint, Flask

import messages_integrations.flask as flask_adapter
from messages_integrations import (
    ConfigurationError,
    InMemoryDeliveryStore,
    WebhookReceiver,
    WebhookRouter,
)
from messages_integrations.flask import create_blueprint
from messages_integrations.testing import Recorder, build_delivery

from .conftest import SECRET, post

OTHER = "whsec_other"


def status(app: Flask, secret: str, path: str = "/webhooks") -> int:
    """The status of a fresh delivery signed with ``secret``."""
    return post(
        app.test_client(), build_delivery("message.received", secret=secret), path
    ).status_code


def test_secret_argument_beats_config_and_environment(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", "whsec_env")
    app = make_app(
        {"MESSAGES_WEBHOOK_SECRET": "whsec_config"}, secret=SECRET, router=WebhookRouter()
    )
    assert status(app, SECRET) == 200
    assert status(app, "whsec_config") == 401
    assert status(app, "whsec_env") == 401


def test_config_secret_beats_environment(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", "whsec_env")
    app = make_app({"MESSAGES_WEBHOOK_SECRET": "whsec_config"}, router=WebhookRouter())
    assert status(app, "whsec_config") == 200
    assert status(app, "whsec_env") == 401


def test_config_may_hold_several_secrets(make_app: Callable[..., Flask]) -> None:
    app = make_app({"MESSAGES_WEBHOOK_SECRET": [SECRET, OTHER]}, router=WebhookRouter())
    assert status(app, SECRET) == 200
    assert status(app, OTHER) == 200
    assert status(app, "whsec_unknown") == 401


def test_environment_is_the_last_resort_and_may_list_several_secrets(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", f"{SECRET}, {OTHER}")
    app = make_app(router=WebhookRouter())
    assert status(app, SECRET) == 200
    assert status(app, OTHER) == 200


def test_missing_secret_raises_at_the_first_request_naming_the_setting(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(router=WebhookRouter())
    with pytest.raises(ConfigurationError, match="MESSAGES_WEBHOOK_SECRET"):
        status(app, SECRET)


def test_missing_secret_is_reported_when_the_blueprint_is_registered(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="messages_integrations"):
        make_app(router=WebhookRouter())
    assert "MESSAGES_WEBHOOK_SECRET" in caplog.text


def test_missing_secret_in_production_answers_500_without_accepting_anything(
    make_app: Callable[..., Flask], recorder: Recorder, router: WebhookRouter
) -> None:
    app = make_app({"TESTING": False}, router=router)
    assert status(app, SECRET) == 500
    assert recorder.count() == 0


def test_secret_set_after_registration_is_used(make_app: Callable[..., Flask]) -> None:
    app = make_app(router=WebhookRouter())
    app.config["MESSAGES_WEBHOOK_SECRET"] = SECRET
    assert status(app, SECRET) == 200


def test_config_changed_at_runtime_is_honoured_and_duplicates_are_still_caught(
    make_app: Callable[..., Flask], router: WebhookRouter, recorder: Recorder
) -> None:
    app = make_app({"MESSAGES_WEBHOOK_SECRET": SECRET}, router=router)
    client = app.test_client()
    first = build_delivery("reaction.added", secret=SECRET)
    assert post(client, first).status_code == 200

    app.config["MESSAGES_WEBHOOK_SECRET"] = [OTHER, SECRET]  # rotation: the new one first
    assert status(app, OTHER) == 200
    assert post(client, first).json["status"] == "duplicate"  # type: ignore[index]

    app.config["MESSAGES_WEBHOOK_SECRET"] = OTHER  # the old secret retired
    assert status(app, SECRET) == 401
    assert recorder.count("reaction.added") == 1


def test_receiver_is_built_once_and_again_only_when_the_config_changes(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[object] = []

    class CountingReceiver(WebhookReceiver):
        def __init__(self, **options: Any) -> None:
            built.append(options)
            super().__init__(**options)

    monkeypatch.setattr(flask_adapter, "WebhookReceiver", CountingReceiver)
    app = make_app({"MESSAGES_WEBHOOK_SECRET": SECRET}, router=WebhookRouter())
    for _ in range(3):
        assert status(app, SECRET) == 200
    assert len(built) == 1
    app.config["MESSAGES_WEBHOOK_TOLERANCE"] = 60
    for _ in range(3):
        assert status(app, SECRET) == 200
    assert len(built) == 2


def test_tolerance_from_config_and_none_turns_replay_protection_off(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app({"MESSAGES_WEBHOOK_TOLERANCE": 10}, secret=SECRET, router=WebhookRouter())
    old = int(time.time() * 1000) - 60_000
    delivery = build_delivery("message.received", secret=SECRET, timestamp=old)
    assert post(app.test_client(), delivery).status_code == 401
    app.config["MESSAGES_WEBHOOK_TOLERANCE"] = None
    assert post(app.test_client(), delivery).status_code == 200


def test_tolerance_argument_beats_config_and_none_turns_it_off(
    make_app: Callable[..., Flask],
) -> None:
    config = {"MESSAGES_WEBHOOK_TOLERANCE": 10}
    app = make_app(config, secret=SECRET, router=WebhookRouter(), tolerance=None)
    years_ago = build_delivery("message.received", secret=SECRET, timestamp=1_600_000_000_000)
    assert post(app.test_client(), years_ago).status_code == 200


def test_max_body_size_from_config(make_app: Callable[..., Flask]) -> None:
    app = make_app({"MESSAGES_WEBHOOK_MAX_BODY_SIZE": 100}, secret=SECRET, router=WebhookRouter())
    response = post(app.test_client(), build_delivery("message.received", secret=SECRET))
    assert response.status_code == 413
    assert response.json["message"] == "the body exceeds 100 bytes"  # type: ignore[index]


def test_max_body_size_argument_beats_config(make_app: Callable[..., Flask]) -> None:
    config = {"MESSAGES_WEBHOOK_MAX_BODY_SIZE": 100}
    app = make_app(config, secret=SECRET, router=WebhookRouter(), max_body_size=100_000)
    assert status(app, SECRET) == 200


def test_router_and_store_from_config(make_app: Callable[..., Flask]) -> None:
    router, recorder, store = WebhookRouter(), Recorder(), InMemoryDeliveryStore()
    router.on("*")(recorder)
    config = {"MESSAGES_WEBHOOK_ROUTER": router, "MESSAGES_WEBHOOK_STORE": store}
    app = make_app(config, secret=SECRET)
    assert status(app, SECRET) == 200
    assert recorder.count() == 1
    assert len(store) == 1


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("MESSAGES_WEBHOOK_MAX_BODY_SIZE", "1 MB"),
        ("MESSAGES_WEBHOOK_MAX_BODY_SIZE", 0),
        ("MESSAGES_WEBHOOK_TOLERANCE", "five minutes"),
        ("MESSAGES_WEBHOOK_TOLERANCE", -1),
        ("MESSAGES_WEBHOOK_ROUTER", "myapp.handlers"),
        ("MESSAGES_WEBHOOK_SECRET", 12345),
    ],
)
def test_invalid_config_is_reported_naming_the_setting(
    make_app: Callable[..., Flask], key: str, value: object
) -> None:
    app = make_app({"MESSAGES_WEBHOOK_SECRET": SECRET})
    app.config[key] = value
    with pytest.raises(ConfigurationError, match=key):
        status(app, SECRET)


def test_invalid_config_present_at_registration_fails_registration() -> None:
    app = Flask(__name__)
    app.config.update(MESSAGES_WEBHOOK_SECRET=SECRET, MESSAGES_WEBHOOK_MAX_BODY_SIZE="big")
    with pytest.raises(ConfigurationError, match="MESSAGES_WEBHOOK_MAX_BODY_SIZE"):
        app.register_blueprint(create_blueprint(), url_prefix="/webhooks")


def test_two_blueprints_side_by_side_keep_their_own_secret_and_handlers() -> None:
    sales, support = WebhookRouter(), WebhookRouter()
    sales_seen, support_seen = Recorder(), Recorder()
    sales.on("*")(sales_seen)
    support.on("*")(support_seen)
    app = Flask(__name__)
    app.register_blueprint(
        create_blueprint(secret="whsec_sales", router=sales, name="sales"), url_prefix="/sales"
    )
    app.register_blueprint(
        create_blueprint(secret="whsec_support", router=support, name="support"),
        url_prefix="/support",
    )
    assert status(app, "whsec_sales", "/sales") == 200
    assert status(app, "whsec_support", "/support") == 200
    assert status(app, "whsec_sales", "/support") == 401
    assert status(app, "whsec_support", "/sales") == 401
    assert (sales_seen.count(), support_seen.count()) == (1, 1)


def test_one_blueprint_on_two_apps_reads_each_apps_config() -> None:
    blueprint = create_blueprint(router=WebhookRouter())
    first, second = Flask(__name__), Flask(__name__)
    first.config["MESSAGES_WEBHOOK_SECRET"] = SECRET
    second.config["MESSAGES_WEBHOOK_SECRET"] = OTHER
    first.register_blueprint(blueprint)
    second.register_blueprint(blueprint)
    assert status(first, SECRET) == 200
    assert status(first, OTHER) == 401
    assert status(second, OTHER) == 200
    assert status(second, SECRET) == 401


def test_one_blueprint_registered_twice_under_two_names() -> None:
    recorder, router = Recorder(), WebhookRouter()
    router.on("*")(recorder)
    blueprint = create_blueprint(secret=SECRET, router=router)
    app = Flask(__name__)
    app.register_blueprint(blueprint, url_prefix="/a", name="line_a")
    app.register_blueprint(blueprint, url_prefix="/b", name="line_b")
    assert status(app, SECRET, "/a") == 200
    assert status(app, SECRET, "/b") == 200
    assert recorder.count() == 2


def test_blueprint_nested_in_another_blueprint() -> None:
    api = Blueprint("api", __name__, url_prefix="/api")
    api.register_blueprint(create_blueprint(secret=SECRET, router=WebhookRouter()))
    app = Flask(__name__)
    app.register_blueprint(api)
    assert status(app, SECRET, "/api/webhooks") == 200
    assert status(app, OTHER, "/api/webhooks") == 401
