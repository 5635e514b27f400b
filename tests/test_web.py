"""Serving the browser UI: the page for browsers, the redirect for API clients, and
the configuration the page reads."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import Request

from citytwin.http import web
from citytwin.settings import load_settings
from tests.support import Client, make_client


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for the built UI, so these tests need no npm."""
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<html><head><!-- ui-config --></head></html>")
    (dist / "app.js").write_text("console.log('citytwin')")
    monkeypatch.setattr(web, "DIST", dist)
    return dist


@pytest.fixture
def app(tmp_path: Path, built: Path) -> Iterator[Client]:
    c = make_client(tmp_path, web_basemap_style="https://tiles.example/style.json")
    yield c
    c.close()


def test_browsers_get_the_page_with_its_configuration(app: Client) -> None:
    resp = app.get("/", headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    found = re.search(r'<script id="ui-config" type="application/json">(.*?)</script>', resp.text)
    assert found is not None
    config = json.loads(found.group(1))
    assert config["sta"] == "/v1.1"
    assert config["basemapStyle"] == "https://tiles.example/style.json"
    assert config["mqtt"] == {"url": None, "expandTopics": False}  # mqtt off in this app


def test_api_clients_keep_the_redirect_to_the_service_root(app: Client) -> None:
    for accept in (None, "application/json", "*/*"):
        headers = {"accept": accept} if accept else {}
        resp = app.get("/", headers=headers)
        assert resp.status_code == 307
        assert resp.headers["location"] == "http://testserver/v1.1"


def test_the_ui_files_are_served_under_ui(app: Client) -> None:
    resp = app.get("/ui/app.js")
    assert resp.status_code == 200
    assert "citytwin" in resp.text
    assert app.get("/ui/missing.js").status_code == 404


def test_ui_config_names_the_apis_the_server_has(app: Client) -> None:
    config = app.ok("GET", "/api/v1/ui-config")
    assert config["apis"] == {"domains": True, "areas": True, "layers": True, "sensors": True}
    # an application without the domain routes says so
    app.app.router.routes[:] = [
        r for r in app.app.router.routes if getattr(r, "path", "") != "/api/v1/layers"
    ]
    assert app.ok("GET", "/api/v1/ui-config")["apis"]["layers"] is False


def test_the_page_preloads_the_sensor_feed_where_the_server_has_it(
    app: Client, built: Path
) -> None:
    sta = "/v1.1/Locations?$resultFormat=GeoJSON"
    (built / "index.html").write_text(
        f'<html><head><link rel="preload" as="fetch" data-things href="{sta}">'
        "<!-- ui-config --></head></html>"
    )
    html = {"accept": "text/html"}
    assert 'data-things href="/api/v1/sensors"' in app.get("/", headers=html).text
    app.app.router.routes[:] = [
        r for r in app.app.router.routes if getattr(r, "path", "") != "/api/v1/sensors"
    ]
    assert f'data-things href="{sta}"' in app.get("/", headers=html).text


def test_unknown_json_api_paths_are_the_applications_404(app: Client) -> None:
    resp = app.get("/api/v1/nothing")
    assert resp.status_code == 404
    assert resp.json()["code"] == 404


class Embedded:
    state = "embedded on 127.0.0.1:1883"


def test_the_mqtt_websocket_is_the_embedded_brokers_on_the_pages_host() -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "scheme": "https",
        "server": ("twin.example.org", 443),
        "headers": [(b"host", b"twin.example.org")],
        "query_string": b"",
    }
    embedded = load_settings({"mqtt_ws_port": 9555}, environ={})
    url = web.mqtt_url(embedded, Embedded(), Request(scope))
    assert url == "wss://twin.example.org:9555/mqtt"
    external = load_settings({"web_mqtt_url": "wss://broker.example.org/mqtt"}, environ={})
    url = web.mqtt_url(external, Embedded(), Request(scope))
    assert url == "wss://broker.example.org/mqtt"


def test_a_page_that_is_not_built_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web, "DIST", tmp_path / "nothing")
    c = make_client(tmp_path)
    try:
        resp = c.get("/", headers={"accept": "text/html"})
        assert resp.status_code == 503
        assert "make demo" in resp.text
    finally:
        c.close()
