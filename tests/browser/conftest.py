"""Browser tests: the UI in Debian's Chromium, driven by Playwright, against real
``citytwin serve`` processes.

They need /usr/bin/chromium (``apt-get install chromium``; Playwright's own browser
downloads are never used) and the built UI (``make web``). Without either they skip,
saying so, unless CITYTWIN_REQUIRE_SERVICES is set (as in CI), where they fail.
Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from citytwin.http.web import DIST
from tests.browser.seeding import fill, sensor_thing, vehicle_thing, wallbox_thing
from tests.servers import StaServer, _free_port, running_server
from tests.support import REQUIRE_ENV

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
# WebGL in software where there is no GPU (as on the CI machines). Forcing ANGLE's
# SwiftShader backend as well (--use-gl=angle --use-angle=swiftshader) made the map's
# start-up twice as slow here (1.5 s instead of 0.7 s to the map's "load").
CHROMIUM_ARGS = ["--enable-unsafe-swiftshader"]


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found: install it with `apt-get install chromium`"
    if not (DIST / "index.html").is_file():
        return f"the web UI is not built ({DIST}): run `make web`"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[test]'"
    return None


# Per module, not per session: while Playwright's synchronous API is open its event loop
# counts as running in the main thread, and the rest of the suite calls asyncio.run().
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    problem = _missing()
    if problem:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"browser tests required ({REQUIRE_ENV}) but {problem}")
        pytest.skip(f"browser tests skipped: {problem}; set {REQUIRE_ENV}=1 to make this fail")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass(frozen=True)
class City:
    server: StaServer
    mqtt_port: int
    device_topic: str  # where the wallbox receives its Tasks

    @property
    def url(self) -> str:
        return self.server.base_url + "/"


@pytest.fixture(scope="module")
def city(chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    """A small city: 20 air-quality sensors with a day of values, two shuttles and a
    dimmable wallbox, served with the embedded broker."""
    workdir = tmp_path_factory.mktemp("city")
    db = f"sqlite:///{workdir}/city.db"
    topic = "devices/wallbox-1/commands"
    things = [sensor_thing(i, 20) for i in range(20)]
    things += [vehicle_thing(1), vehicle_thing(2), wallbox_thing(topic)]
    fill(db, things, hours=24)
    server, mqtt_port = ui_server(workdir, db)
    with server as srv:
        yield City(srv, mqtt_port, topic)


def ui_server(workdir: Path, db: str, *, insecure: bool = True) -> Any:
    """``citytwin serve`` with the embedded broker on free ports (TCP and WebSocket)."""
    workdir.mkdir(parents=True, exist_ok=True)
    mqtt_port, ws_port = _free_port(), _free_port()
    (workdir / "citytwin.toml").write_text(f"mqtt_port = {mqtt_port}\nmqtt_ws_port = {ws_port}\n")
    return running_server(workdir, db, "--mqtt", "embedded", insecure=insecure), mqtt_port


class Console:
    """What the page wrote to its console as errors, and uncaught exceptions."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))


def open_page(
    browser: Any, url: str, *, width: int = 1280, height: int = 800, **context_options: Any
) -> tuple[Any, Console]:
    """A fresh page (Berlin time) on ``url``, once the map has drawn its Things."""
    context = browser.new_context(
        viewport={"width": width, "height": height},
        timezone_id="Europe/Berlin",
        locale="de-DE",
        **context_options,
    )
    page = context.new_page()
    console = Console(page)
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    return page, console


def sign_in(page: Any, key: str) -> None:
    """Sign in through the page's dialog and wait until the page has drawn again."""
    page.click("#sign-in")
    page.fill("#api-key", key)
    page.click("#sign-in-dialog button[type=submit]")
    page.wait_for_selector("#session button:has-text('Sign out')", timeout=30_000)
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
