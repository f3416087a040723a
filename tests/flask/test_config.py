"""Where the blueprint finds its options: arguments, then app.config, then the environment."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from flask import Blueprint, Flask

from messages_integrations import (
    ConfigurationError,
    InMemoryDeliveryStore,
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


def test_missing_secret_fails_registration_naming_the_setting(
    make_app: Callable[..., Flask],
) -> None:
    # A secret put into app.config only after registration is too late: the app never starts
    # without one.
    with pytest.raises(ConfigurationError, match=r"set MESSAGES_WEBHOOK_SECRET in app\.config"):
        make_app(router=WebhookRouter())


def test_secret_removed_from_the_config_later_answers_500_and_runs_nothing(
    make_app: Callable[..., Flask],
    recorder: Recorder,
    router: WebhookRouter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app({"MESSAGES_WEBHOOK_SECRET": SECRET}, router=router)
    del app.config["MESSAGES_WEBHOOK_SECRET"]
    with caplog.at_level(logging.ERROR, logger="messages_integrations"):
        response = post(app.test_client(), build_delivery("message.received", secret=SECRET))
    assert response.status_code == 500
    assert response.json == {
        "error": "not_configured",
        "message": "the webhook endpoint is not configured; see the server log",
    }
    assert "MESSAGES_WEBHOOK_SECRET" in caplog.text
    assert recorder.count() == 0


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
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    def builds() -> int:
        # Each build of the endpoint announces its settings in one INFO line.
        return sum(
            record.getMessage().startswith("Messages.dev webhooks at blueprint")
            for record in caplog.records
        )

    with caplog.at_level(logging.INFO, logger="messages_integrations"):
        app = make_app({"MESSAGES_WEBHOOK_SECRET": SECRET}, router=WebhookRouter())
        for _ in range(3):
            assert status(app, SECRET) == 200
        assert builds() == 1
        app.config["MESSAGES_WEBHOOK_TOLERANCE"] = 60
        for _ in range(3):
            assert status(app, SECRET) == 200
        assert builds() == 2


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
def test_invalid_config_set_after_registration_answers_500_naming_the_setting(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture, key: str, value: object
) -> None:
    app = make_app({"MESSAGES_WEBHOOK_SECRET": SECRET})
    app.config[key] = value
    with caplog.at_level(logging.ERROR, logger="messages_integrations"):
        response = post(app.test_client(), build_delivery("message.received", secret=SECRET))
    assert response.status_code == 500
    assert response.json["error"] == "not_configured"  # type: ignore[index]
    assert key not in response.get_data(as_text=True)
    assert key in caplog.text


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
