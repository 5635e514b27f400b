"""The digital twin in the browser: the built UI and the little it needs to know.

The UI is a static bundle built from ``citytwin/web`` (``npm ci && npm run build``, run by
``make demo`` and ``make test``) into ``citytwin/web/dist``. Browsers asking for ``/``
(``Accept: text/html``) get its page; every other client keeps the redirect to the API.
The page learns where to find the API and the MQTT WebSocket from its configuration,
written into the page (so the map starts without a round trip) and also served at
``/api/v1/ui-config``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles

from citytwin import __version__
from citytwin.settings import Settings

DIST = Path(__file__).resolve().parent.parent / "web" / "dist"
UI_PREFIX = "/ui"
CONFIG_PATH = "/api/v1/ui-config"
# the compact feed of the map's first picture (see citytwin/domains/sensors.py); without
# it the page asks the SensorThings API, which build.mjs names in the page's preload
SENSORS_PATH = "/api/v1/sensors"
PRELOAD = re.compile(r'(<link [^>]*data-things href=")[^"]*(")')
# paths the application's own routes answer, besides its exact pages: the UI's files and
# the JSON API under /api/ (this module's configuration, the domain packages' KPIs)
PREFIXES = (UI_PREFIX + "/", "/api/")
# the domain packages' JSON API, which the UI uses where the server has it
OPTIONAL_APIS = {
    "domains": "/api/v1/domains",
    "areas": "/api/v1/areas",
    "layers": "/api/v1/layers",
    "sensors": SENSORS_PATH,
}

NOT_BUILT = (
    "The web UI is not built. Build it with `make demo` (or `npm ci && npm run build` in "
    "src/citytwin/web); the API is at /v1.1.\n"
)


class HasState(Protocol):
    state: str


def wants_html(request: Request) -> bool:
    """A browser navigating to the page, rather than an API client."""
    return "text/html" in request.headers.get("accept", "")


def mqtt_url(settings: Settings, mqtt: HasState, request: Request) -> str | None:
    """Where a browser reaches the broker over WebSocket, or None if it cannot."""
    if settings.web_mqtt_url:
        return str(settings.web_mqtt_url)
    if not mqtt.state.startswith("embedded") or not settings.mqtt_ws_port:
        return None
    scheme = "wss" if request.url.scheme == "https" else "ws"
    return f"{scheme}://{request.url.hostname}:{settings.mqtt_ws_port}/mqtt"


def served(request: Request, path: str) -> bool:
    """Whether one of the application's routes answers GET ``path``."""
    scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
    return any(r.matches(scope)[0] is Match.FULL for r in request.app.routes)


class WebUi:
    """The UI's page, static files and configuration for one application."""

    def __init__(self, settings: Settings, mqtt: HasState) -> None:
        self.settings = settings
        self.mqtt = mqtt

    def config(self, request: Request) -> dict[str, Any]:
        return {
            "version": __version__,
            "sta": "/v1.1",
            "mqtt": {
                "url": mqtt_url(self.settings, self.mqtt, request),
                "expandTopics": bool(self.settings.mqtt_expand_topics),
            },
            "basemapStyle": self.settings.web_basemap_style,
            "apis": {name: served(request, path) for name, path in OPTIONAL_APIS.items()},
        }

    def index(self, request: Request) -> Response:
        """The page, with its configuration in it: the map starts without a round trip."""
        try:
            page = (DIST / "index.html").read_text()
        except FileNotFoundError:
            return PlainTextResponse(NOT_BUILT, status_code=503)
        config_doc = self.config(request)
        if config_doc["apis"]["sensors"]:
            page = PRELOAD.sub(rf"\g<1>{SENSORS_PATH}\g<2>", page, count=1)
        config = orjson.dumps(config_doc).decode().replace("<", "\\u003c")
        page = page.replace(
            "<!-- ui-config -->",
            f'<script id="ui-config" type="application/json">{config}</script>',
        )
        return HTMLResponse(page, headers={"cache-control": "no-cache"})

    def routes(self) -> list[BaseRoute]:
        """The UI's static files and its configuration endpoint."""

        async def ui_config(request: Request) -> Response:
            return JSONResponse(self.config(request), headers={"cache-control": "no-cache"})

        return [
            Route(CONFIG_PATH, ui_config, methods=["GET", "HEAD"]),
            Mount(UI_PREFIX, app=StaticFiles(directory=DIST, check_dir=False), name="ui"),
        ]
