"""The README's code works as written: every Python block compiles, the quickstarts answer."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import messages_integrations
from messages_integrations import default_router
from messages_integrations.testing import build_delivery, sample_data

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
SECRET = "whsec_readme"


def section_blocks(title: str) -> list[str]:
    """The Python blocks under the heading ``## title``, in order."""
    part = README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    blocks: list[str] = re.findall(r"```python\n(.*?)```", part, flags=re.DOTALL)
    return blocks


def section(title: str) -> str:
    """The first Python block under the heading ``## title``."""
    return section_blocks(title)[0]


@pytest.fixture
def quickstart(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A namespace to run a quickstart in; the handlers it registers are removed afterwards."""
    monkeypatch.setenv("MESSAGES_WEBHOOK_SECRET", SECRET)
    with default_router.isolated():
        yield {"__name__": "readme_quickstart"}


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_every_python_block_compiles(number: int) -> None:
    compile(BLOCKS[number], f"README block {number}", "exec")


def test_the_first_screen_gives_the_two_commands() -> None:
    first_screen = README.split("\n## ", 1)[0]
    commands = re.findall(r"^python3 -m pip install nox uv && (nox.*?)\s+#", first_screen, re.M)
    assert commands == ["nox -s demo", "nox"]


def test_quickstarts_are_at_most_ten_lines() -> None:
    for title in ("Django", "Flask", "Starlette", "FastAPI"):
        assert len(section(title).strip().splitlines()) <= 10, title


def delivery_for(path: str) -> tuple[str, bytes, dict[str, str]]:
    delivery = build_delivery("message.received", secret=SECRET)
    return path, delivery.body, delivery.headers


def test_the_flask_quickstart_answers(quickstart: dict[str, Any]) -> None:
    exec(section("Flask"), quickstart)  # noqa: S102 - the README's own code
    path, body, headers = delivery_for("/webhooks")
    response = quickstart["app"].test_client().post(path, data=body, headers=headers)
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


@pytest.mark.anyio
@pytest.mark.parametrize(("title", "path"), [("Starlette", "/webhooks"), ("FastAPI", "/inbox")])
async def test_the_asgi_quickstarts_answer(
    quickstart: dict[str, Any], title: str, path: str
) -> None:
    exec(section(title), quickstart)  # noqa: S102 - the README's own code
    url, body, headers = delivery_for(path)
    transport = httpx.ASGITransport(app=quickstart["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://readme") as client:
        response = await client.post(url, content=body, headers=headers)
    assert response.status_code == 200, response.text


# --- Django: the three files of the quickstart and the own-view example, in a real project ------

_DJANGO_PROJECT = """
import json, sys
import django
from django.conf import settings

namespace = {}
exec(open("settings_block.py").read(), namespace)  # the README's settings.py, as written
apps = [app for app in namespace["INSTALLED_APPS"] if app is not Ellipsis]  # "...": your apps
settings.configure(
    INSTALLED_APPS=[*apps, "yourapp"],
    MESSAGES_WEBHOOK_SECRET=namespace["MESSAGES_WEBHOOK_SECRET"],
    ROOT_URLCONF="urls",
    ALLOWED_HOSTS=["testserver"],
    SECRET_KEY="readme-only",
    DATABASES={},
)
django.setup()

from django.test import Client
from messages_integrations.testing import build_delivery

secret = namespace["MESSAGES_WEBHOOK_SECRET"]
answers = {}
for path, event in (("/webhooks/messages", "message.received"), ("/inbox", "reaction.added")):
    delivery = build_delivery(event, secret=secret)
    headers = {k: v for k, v in delivery.headers.items() if k != "Content-Type"}
    response = Client().post(path, delivery.body, content_type="application/json", headers=headers)
    answers[path] = [response.status_code, json.loads(response.content)]
print("ANSWERS " + json.dumps(answers))
"""


def test_the_django_quickstart_and_own_view_answer_in_a_project(tmp_path: Path) -> None:
    settings_block, urls_block, handlers_block, view_block = section_blocks("Django")
    assert "import messages_integrations.django" in urls_block
    (tmp_path / "settings_block.py").write_text(settings_block)
    # The one line a user adds for the own view: its route.
    routed = "from yourapp.views import inbox\nurlpatterns.append(path('inbox', inbox))\n"
    (tmp_path / "urls.py").write_text(urls_block + routed)
    app = tmp_path / "yourapp"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "messages_webhooks.py").write_text(handlers_block)
    (app / "views.py").write_text(view_block)
    (tmp_path / "run.py").write_text(textwrap.dedent(_DJANGO_PROJECT))

    result = subprocess.run(
        [sys.executable, "run.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.split("ANSWERS ", 1)[1])
    assert answers["/webhooks/messages"][0] == 200
    assert answers["/webhooks/messages"][1]["status"] == "ok"
    assert answers["/inbox"] == [200, {"status": "ok", "event": "reaction.added"}]
    # Both handlers of messages_webhooks.py ran: Django imported it at start-up.
    message, reaction = sample_data("message.received"), sample_data("reaction.added")
    assert f"{message['sender']} {message['text']}\n" in result.stdout
    assert f"{reaction['sender']} reacted {reaction['type']}\n" in result.stdout


# --- the table of events and their data ------------------------------------------------------


def _data_fields(cls: type) -> tuple[set[str], set[str]]:
    """A data class's (required, optional) attribute names."""
    if dataclasses.is_dataclass(cls):
        fields = dataclasses.fields(cls)
        missing = dataclasses.MISSING
        required = {f.name for f in fields if f.default is missing and f.default_factory is missing}
        return required, {f.name for f in fields} - required
    import msgspec

    infos = msgspec.structs.fields(cls)
    return {f.name for f in infos if f.required}, {f.name for f in infos if not f.required}


def _names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_events_table_lists_every_event_and_every_data_field() -> None:
    part = README.split("\n## Events and their data\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in part.splitlines() if line.startswith("| `")]
    listed: list[str] = []
    for events, handler_types, data, required, optional in rows:
        names = _names(events)
        listed += names
        classes = [getattr(messages_integrations, name) for name in _names(handler_types)]
        assert [cls.name for cls in classes] == names
        data_class = getattr(messages_integrations, _names(data)[0])
        assert _data_fields(data_class) == (set(_names(required)), set(_names(optional))), data
    assert listed == list(messages_integrations.EVENT_NAMES)


# --- the documentation stays inside this repository -------------------------------------------

_OUTSIDE = re.compile(
    "|".join(["PROTOCOL" + r"\.md", "CONTRACT" + r"\.md", r"\.\./shared", "/work/"])
)


def test_the_docs_point_at_nothing_outside_the_repository() -> None:
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    documents += sorted((ROOT / "example_projects").rglob("*.*"))
    for document in documents:
        found = _OUTSIDE.findall(document.read_text(encoding="utf-8"))
        assert not found, f"{document.relative_to(ROOT)} points outside the repository: {found}"


def test_every_relative_link_of_the_docs_leads_to_a_file() -> None:
    for document in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", document.read_text("utf-8")):
            assert (document.parent / target).exists(), f"{document.name}: {target}"
