"""The README's code works as written: every Python block compiles, the quickstarts answer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from messages_integrations import default_router
from messages_integrations.testing import build_delivery

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
SECRET = "whsec_readme"


def section(title: str) -> str:
    """The first Python block under the heading ``## title``."""
    part = README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    blocks: list[str] = re.findall(r"```python\n(.*?)```", part, flags=re.DOTALL)
    return blocks[0]


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
