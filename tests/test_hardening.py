"""Hardening (docs/security.md): body size, $expand depth and $top limits, rate limiting,
CORS and security headers, each a setting."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from citytwin.http import hardening, web
from citytwin.settings import load_settings
from tests.support import Client, make_client

THING = {"name": "lamp", "description": "a street lamp"}


@pytest.fixture
def app_with(tmp_path: Path) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(**settings: Any) -> Client:
        c = make_client(tmp_path / str(len(made)), **settings)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_a_body_over_the_limit_is_refused_with_413_and_not_stored(
    app_with: Callable[..., Client],
) -> None:
    app = app_with(max_body_bytes=1000)
    big = {**THING, "description": "x" * 2000}
    resp = app.post("Things", big)
    assert resp.status_code == 413
    assert "1000 bytes" in resp.json()["message"]
    assert "max_body_bytes" in resp.json()["message"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for _ in range(30):
            yield b" " * 100

    resp = app.request(
        "POST", "Things", content=chunks(), headers={"content-type": "application/json"}
    )
    assert resp.status_code == 413
    assert app.get("Things").json()["value"] == []
    assert app.post("Things", THING).status_code == 201  # below the limit
    small = app.request(
        "POST",
        "Things",
        content=_chunked(b'{"name": "a", "description": "b"}'),
        headers={"content-type": "application/json"},
    )
    assert small.status_code == 201  # a chunked body below the limit is handed on whole
    layer = app.request("PUT", "/api/v1/layers/big", content=chunks())
    assert layer.status_code == 413  # the domain API and the UI are behind the limit too


async def _chunked(body: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(body), 5):
        yield body[i : i + 5]


def test_expand_deeper_than_the_limit_is_refused_with_400(
    app_with: Callable[..., Client],
) -> None:
    app = app_with(max_expand_depth=2)
    assert app.get("Things?$expand=Datastreams/Observations").status_code == 200
    assert app.get("Things?$expand=Datastreams($expand=Observations)").status_code == 200
    for deep in (
        "Things?$expand=Datastreams/Observations/FeatureOfInterest",
        "Things?$expand=Datastreams($expand=Observations($expand=FeatureOfInterest))",
    ):
        resp = app.get(deep)
        assert resp.status_code == 400
        message = resp.json()["message"]
        assert "3 levels" in message
        assert "at most 2" in message
        assert "max_expand_depth" in message
    unlimited = app_with(max_expand_depth=0)
    assert unlimited.get("Things?$expand=Datastreams/Observations/FeatureOfInterest").is_success


def test_top_is_capped_at_max_page_size_and_continued(app_with: Callable[..., Client]) -> None:
    app = app_with(max_page_size=3, default_page_size=2)
    for i in range(5):
        app.post("Things", {**THING, "name": f"lamp {i}"})
    page = app.get("Things?$top=100").json()
    assert len(page["value"]) == 3
    assert "@iot.nextLink" in page


def test_token_buckets_refill_at_the_rate_and_hold_a_burst() -> None:
    now = [0.0]
    buckets = hardening.TokenBuckets(rate=2.0, burst=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # empty: the next token in half a second
    assert buckets.take("b") == 0.0  # each identity has its own bucket
    now[0] = 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    now[0] = 100.0
    assert [buckets.take("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # never above burst


def test_requests_over_the_rate_get_429_with_retry_after(app_with: Callable[..., Client]) -> None:
    app = app_with(rate_limit=0.01, rate_limit_burst=2)
    assert [app.get("Things").status_code for _ in range(2)] == [200, 200]
    resp = app.get("Things")
    assert resp.status_code == 429
    assert int(resp.headers["retry-after"]) >= 1
    assert "per API key or client address" in resp.json()["message"]
    assert resp.headers["x-content-type-options"] == "nosniff"  # refusals get them too
    # another identity (an API key, valid or not) has a bucket of its own
    assert app.get("Things", headers={"X-API-Key": "some key"}).status_code != 429
    assert app.get("/health").status_code == 200  # health checks are never limited
    unlimited = app_with(rate_limit=0)
    assert {unlimited.get("Things").status_code for _ in range(5)} == {200}


def test_cors_is_off_by_default(app_with: Callable[..., Client]) -> None:
    app = app_with()
    resp = app.get("Things", headers={"origin": "https://elsewhere.example"})
    assert resp.status_code == 200
    assert "access-control-allow-origin" not in resp.headers
    preflight = app.request(
        "OPTIONS",
        "Things",
        headers={"origin": "https://elsewhere.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_answers_allowed_origins_and_their_preflights(
    app_with: Callable[..., Client],
) -> None:
    origin = "https://dashboard.example.org"
    app = app_with(cors_origins=f"{origin}, https://other.example.org")
    preflight = app.request(
        "OPTIONS",
        "Things",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    resp = app.get("Things", headers={"origin": origin})
    assert resp.headers["access-control-allow-origin"] == origin
    assert "Location" in resp.headers["access-control-expose-headers"]
    refused = app.request(
        "OPTIONS",
        "Things",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    other = app.get("Things", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_api_answers_carry_security_headers(app_with: Callable[..., Client]) -> None:
    app = app_with()
    for url in ("Things", "/health", "/api/v1/domains", "Nothing"):
        resp = app.get(url)
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert (
            resp.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        )


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for the built UI."""
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<html><head><!-- ui-config --></head></html>")
    monkeypatch.setattr(web, "DIST", dist)
    return dist


def directives(policy: str) -> dict[str, list[str]]:
    parts = (d.split() for d in policy.split(";") if d.strip())
    return {p[0]: p[1:] for p in parts}


def test_the_ui_page_has_a_policy_that_lets_it_work(
    app_with: Callable[..., Client], built: Path
) -> None:
    app = app_with(web_mqtt_url="wss://broker.example.org/mqtt")
    resp = app.get("/", headers={"accept": "text/html"})
    assert resp.status_code == 200
    csp = directives(resp.headers["content-security-policy"])
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'", "wss://broker.example.org/mqtt"]
    assert "blob:" in csp["worker-src"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert resp.headers["x-frame-options"] == "DENY"


def test_the_ui_policy_follows_the_embedded_broker_and_the_basemap() -> None:
    settings = load_settings(
        {"mqtt_ws_port": 9001, "web_basemap_style": "https://tiles.example/style.json"},
        environ={},
    )

    class Embedded:
        state = "embedded (tcp 1883, ws 9001)"

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"host", b"twin.example.org:8080")],
        "scheme": "http",
        "server": ("twin.example.org", 8080),
        "query_string": b"",
    }
    csp = directives(hardening.ui_policy(settings, Embedded(), Request(scope)))
    assert "ws://twin.example.org:9001/mqtt" in csp["connect-src"]
    assert "https:" in csp["connect-src"]  # the basemap's tiles, glyphs and sprites
    assert "https:" in csp["img-src"]
