"""With access control on, a visitor sees the open data; signing in with an API key
shows what the key's role may see, and a wrong key is told so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Console, open_page, screenshot, sign_in, ui_server
from tests.browser.seeding import fill, sensor_thing
from tests.servers import StaServer

OPEN = 3  # of the 6 sensors, the first 3 are open data


@pytest.fixture(scope="module")
def server(chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaServer]:
    workdir = tmp_path_factory.mktemp("signin")
    db = f"sqlite:///{workdir}/city.db"
    things = [sensor_thing(i, 6) for i in range(6)]
    for t in things[:OPEN]:
        t["properties"]["openData"] = True
    fill(db, things, hours=2)
    srv, _ = ui_server(workdir, db, insecure=False)
    with srv as running:
        yield running


def things_on_map(page: Any) -> list[str]:
    names: list[str] = page.evaluate(
        "() => [...window.citytwin.twin.things.values()].map((t) => t.name).sort()"
    )
    return names


def admin_key(server: StaServer) -> str:
    return (Path(server.data_dir) / "admin-key.txt").read_text().strip()


def test_a_visitor_sees_open_data_and_a_signed_in_admin_sees_everything(
    chromium: Any, server: StaServer
) -> None:
    page, console = open_page(chromium, server.base_url + "/")
    try:
        assert things_on_map(page) == [f"Sensor {i}" for i in range(OPEN)]
        assert page.locator("#session .who").inner_text() == "open data"
        sign_in(page, admin_key(server))
        assert things_on_map(page) == [f"Sensor {i}" for i in range(6)]
        assert page.locator("#session .who").inner_text().startswith("admin")
        # the key itself is nowhere the page's scripts can read it
        cookies = page.context.cookies()
        (session,) = [c for c in cookies if c["name"] == "citytwin_session"]
        assert session["httpOnly"] is True
        assert session["sameSite"] == "Strict"
        assert admin_key(server) not in session["value"]
        assert page.evaluate("() => document.cookie") == ""
        screenshot(page, "signed-in")
        # signing out goes back to the open data
        page.click("#session button:has-text('Sign out')")
        page.wait_for_selector("#sign-in", timeout=30_000)
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        assert things_on_map(page) == [f"Sensor {i}" for i in range(OPEN)]
        assert console.errors == []
    finally:
        page.context.close()


def test_a_wrong_key_is_refused_in_the_dialog(chromium: Any, server: StaServer) -> None:
    page, _ = open_page(chromium, server.base_url + "/")
    console = Console(page)
    try:
        page.click("#sign-in")
        page.fill("#api-key", "ct_not-a-key")
        page.click("#sign-in-dialog button[type=submit]")
        alert = page.locator("#sign-in-dialog [role=alert]")
        alert.wait_for(state="visible", timeout=10_000)
        page.wait_for_function(
            "() => document.querySelector('#sign-in-dialog [role=alert]').textContent !== ''"
        )
        assert "not valid" in alert.inner_text()
        assert page.locator("#sign-in-dialog").is_visible()
        assert things_on_map(page) == [f"Sensor {i}" for i in range(OPEN)]
        # the browser reports the refused request itself; the page adds nothing more
        assert [e for e in console.errors if "401" not in e] == []
    finally:
        page.context.close()
