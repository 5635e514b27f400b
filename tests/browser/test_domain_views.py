"""The views built on the domain JSON API (city layers, district panel, dashboards),
against answers shaped as the domain packages' contract describes them.

This branch's server does not have that API, so the browser is given it: its requests
for /api/v1/* are answered here, and the page's configuration says the API is there.
"""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import City, Console, screenshot

ALTSTADT = [[8.0, 51.36], [8.05, 51.36], [8.05, 51.39], [8.0, 51.39], [8.0, 51.36]]
INSIDE = (8.02, 51.3775)  # in the Altstadt, between the sensors

LAYERS = {"value": [{"name": "districts", "title": "Districts", "url": "/api/v1/layers/districts"}]}
DISTRICTS = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [ALTSTADT]},
            "properties": {"name": "Altstadt", "kind": "district"},
        }
    ],
}
DOMAINS = {
    "value": [
        {
            "name": "energy",
            "title": "Energy",
            "version": "1.0.0",
            "kpis": [
                {"key": "balance", "title": "Energy balance", "unit": "1"},
                {"key": "transformer_loading", "title": "Transformer loading", "unit": "1"},
            ],
            "thingKinds": [],
        },
        {"name": "water", "title": "Water", "version": "1.0.0", "kpis": [], "thingKinds": []},
    ]
}
AREAS = {
    "value": [
        {"id": "city", "name": "Arnsberg", "level": "city"},
        {"id": "district:Altstadt", "name": "Altstadt", "level": "district"},
    ]
}
BALANCE = {
    "domain": "energy",
    "kpi": "balance",
    "title": "Energy balance",
    "unit": "1",
    "area": "district:Altstadt",
    "interval": "2026-11-21T00:00:00Z/2026-11-22T00:00:00Z",
    "value": 0.42,
    "values": {"consumption": 1234.5, "generation": 518.5},
    "units": {"consumption": "kW.h", "generation": "kW.h"},
    "series": [
        {"time": f"2026-11-21T{h:02d}:00:00Z", "consumption": 50 + h, "generation": 2 * h}
        for h in range(24)
    ],
    "items": [],
}
LOADING = {
    "domain": "energy",
    "kpi": "transformer_loading",
    "title": "Transformer loading",
    "unit": "1",
    "value": None,
    "values": {},
    "units": {"peak_kw": "kW"},
    "series": [],
    "items": [
        {"id": 3, "name": "Station Markt", "peak_kw": 512.3, "peak_loading": 0.81},
        {"id": 4, "name": "Station Ring", "peak_kw": 240.0, "peak_loading": 0.38},
    ],
}
AIR = {
    "domain": "environment",
    "kpi": "air_quality",
    "value": None,
    "values": {},
    "series": [],
    "items": [],
}


def _answer(route: Any) -> None:
    path = route.request.url.split("://", 1)[1].split("/", 1)[1].split("?")[0]
    bodies: dict[str, Any] = {
        "api/v1/layers": LAYERS,
        "api/v1/layers/districts": DISTRICTS,
        "api/v1/domains": DOMAINS,
        "api/v1/areas": AREAS,
        "api/v1/kpis/energy/balance": BALANCE,
        "api/v1/kpis/energy/transformer_loading": LOADING,
        "api/v1/kpis/environment/air_quality": AIR,  # no data: all empty
    }
    if path == "api/v1/sensors":  # the map's own feed, from the server
        route.continue_()
    elif path in bodies:
        route.fulfill(json=bodies[path])
    else:  # water/night_flow and anything else: not there
        route.fulfill(status=404, json={"error": {"code": 404, "message": "unknown KPI"}})


def unexpected(console: Console) -> list[str]:
    """Console errors other than two this set-up causes: the 404s of KPIs that are not
    there, and Chromium refusing the WebSocket to 127.0.0.1 from a page that the test
    (not the local server) delivered."""
    return [
        e
        for e in console.errors
        if "404" not in e and "ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS" not in e
    ]


def open_with_domain_api(browser: Any, city: City, hash_: str = "") -> tuple[Any, Console]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, timezone_id="Europe/Berlin", locale="de-DE"
    )
    page = context.new_page()
    console = Console(page)

    def page_saying_the_api_is_there(route: Any) -> None:
        off = '"domains":false,"areas":false,"layers":false'
        on = '"domains":true,"areas":true,"layers":true'
        html = route.fetch().text().replace(off, on)  # the server may offer them already
        assert on in html
        route.fulfill(body=html, content_type="text/html")

    page.route(city.url, page_saying_the_api_is_there)
    page.route("**/api/v1/**", _answer)
    page.goto(city.url + hash_)
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    return page, console


def test_a_district_on_the_map_shows_its_kpis_or_no_data(chromium: Any, city: City) -> None:
    page, console = open_with_domain_api(chromium, city)
    assert "Districts" in page.locator("#layers").inner_text()
    x, y = page.evaluate(
        """([lon, lat]) => {
            const map = window.citytwin.map;
            const p = map.project([lon, lat]);
            const r = map.getCanvas().getBoundingClientRect();
            return [r.left + p.x, r.top + p.y];
        }""",
        list(INSIDE),
    )
    page.mouse.click(x, y)
    page.wait_for_selector("#detail .kpi[data-kpi='energy/balance'] .headline")
    detail = page.locator("#detail")
    assert "Altstadt" in detail.locator("h2").first.inner_text()
    balance = detail.locator(".kpi[data-kpi='energy/balance']").inner_text()
    assert "0,42" in balance  # the viewer's locale (de-DE)
    assert "kWh" in balance
    assert "No data" in detail.locator(".kpi[data-kpi='water/night_flow']").inner_text()
    assert "No data" in detail.locator(".kpi[data-kpi='environment/air_quality']").inner_text()
    screenshot(page, "district-detail")
    # a 404 for a KPI is shown as "No data"; the browser itself logs the failed request
    assert unexpected(console) == []
    page.context.close()


def test_dashboards_are_built_from_the_domains_the_server_declares(
    chromium: Any, city: City
) -> None:
    page, console = open_with_domain_api(chromium, city, "#dashboards")
    page.wait_for_selector(".kpi[data-kpi='energy/balance'] .chart canvas")
    page.wait_for_selector(".kpi[data-kpi='energy/transformer_loading'] table")
    view = page.locator("#view-dashboards")
    assert view.get_by_role("button", name="Energy").get_attribute("aria-pressed") == "true"
    loading = view.locator(".kpi[data-kpi='energy/transformer_loading']").inner_text()
    assert "Station Markt" in loading
    assert "peak kw (kW)" in loading
    page.get_by_label("Area").select_option("district:Altstadt")
    page.wait_for_selector(".kpi[data-kpi='energy/balance'] .headline")
    screenshot(page, "dashboards")
    view.get_by_role("button", name="Water").click()
    page.wait_for_selector("#view-dashboards button[aria-pressed=true]:has-text('Water')")
    assert unexpected(console) == []
    page.context.close()
