"""The digital twin in the browser: the built UI and the little it needs to know.

The UI is a static bundle built from ``citytwin/web`` (``npm ci && npm run build``, run by
``make demo`` and ``make test``) into ``citytwin/web/dist``. Browsers asking for ``/``
(``Accept: text/html``) get its page; every other client keeps the redirect to the API.
The page learns where to find the API and the MQTT WebSocket from
``/api/v1/ui-config``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles

from citytwin import __version__
from citytwin.settings import Settings

DIST = Path(__file__).resolve().parent.parent / "web" / "dist"
UI_PREFIX = "/ui"
CONFIG_PATH = "/api/v1/ui-config"
# paths the application's own routes answer, besides its exact pages
PREFIXES = (UI_PREFIX + "/", CONFIG_PATH)
# the domain JSON API the UI uses where the server has it (see briefs: domains contract)
OPTIONAL_APIS = {"domains": "/api/v1/domains", "areas": "/api/v1/areas", "layers": "/api/v1/layers"}

NOT_BUILT = (
    "The web UI is not built. Build it with `make demo` (or `npm ci && npm run build` in "
    "src/citytwin/web); the API is at /v1.1.\n"
)


class HasState(Protocol):
    state: str


def wants_html(request: Request) -> bool:
    """A browser navigating to the page, rather than an API client."""
    return "text/html" in request.headers.get("accept", "")


def index_page() -> Response:
    index = DIST / "index.html"
    if not index.is_file():
        return PlainTextResponse(NOT_BUILT, status_code=503)
    return FileResponse(index, headers={"cache-control": "no-cache"})


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


def web_routes(settings: Settings, mqtt: HasState) -> list[BaseRoute]:
    """The UI's static files and its configuration endpoint."""

    async def ui_config(request: Request) -> Response:
        return JSONResponse(
            {
                "version": __version__,
                "sta": "/v1.1",
                "mqtt": {
                    "url": mqtt_url(settings, mqtt, request),
                    "expandTopics": bool(settings.mqtt_expand_topics),
                },
                "basemapStyle": settings.web_basemap_style,
                "apis": {name: served(request, path) for name, path in OPTIONAL_APIS.items()},
            },
            headers={"cache-control": "no-cache"},
        )

    return [
        Route(CONFIG_PATH, ui_config, methods=["GET", "HEAD"]),
        Mount(UI_PREFIX, app=StaticFiles(directory=DIST, check_dir=False), name="ui"),
    ]
