"""The UI on the real demo city (``citytwin demo``): a district shows its energy balance
computed from the simulated meters, and a dimming Task made in the control panel reaches
a simulated wallbox, which answers."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import open_page, screenshot, sign_in
from tests.servers import Demo, running_demo


@pytest.fixture(scope="module")
def demo(chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp: Path = tmp_path_factory.mktemp("demo")
    with running_demo(tmp, "--history", "P1D", "--households", "60") as running:
        yield running


def test_a_district_shows_the_energy_balance_of_its_meters(chromium: Any, demo: Demo) -> None:
    expected = demo.get("/api/v1/kpis/energy/balance?area=district:Altstadt")
    assert expected["values"]["consumption"] > 0
    (altstadt,) = [
        f
        for f in demo.get("/api/v1/layers/districts")["features"]
        if f["properties"]["name"] == "Altstadt"
    ]
    west, south = altstadt["geometry"]["coordinates"][0][0]
    # the middle of a block: buildings stand at its corners, sensors at them or the streets
    inside = (
        west + 250 / (111_320 * math.cos(math.radians(south))),
        south + 350 / 111_320,
    )
    page, console = open_page(chromium, demo.base + "/")
    sign_in(page, demo.key)  # the grid operator's view: household meters are personal data
    page.wait_for_function(
        "() => window.citytwin.map.getLayer('city-districts-fill') !== undefined"
    )
    x, y = page.evaluate(
        """([lon, lat]) => {
            const map = window.citytwin.map;
            map.jumpTo({center: [lon, lat], zoom: 16});
            const p = map.project([lon, lat]);
            const r = map.getCanvas().getBoundingClientRect();
            return [r.left + p.x, r.top + p.y];
        }""",
        list(inside),
    )
    # the click goes to what the map has drawn at that point: after the jump, wait until
    # the district is drawn there at the new zoom (the map's worker may still be busy)
    page.wait_for_function(
        """([x, y]) => {
            const map = window.citytwin.map;
            const r = map.getCanvas().getBoundingClientRect();
            const drawn = map.queryRenderedFeatures([x - r.left, y - r.top], {
                layers: ['city-districts-fill'],
            });
            return drawn.some((f) => f.properties.name === 'Altstadt');
        }""",
        arg=[x, y],
        timeout=20_000,
    )
    page.mouse.click(x, y)
    page.wait_for_selector("#detail .kpi[data-kpi='energy/balance'] .headline", timeout=20_000)
    detail = page.locator("#detail")
    assert "Altstadt" in detail.locator("h2").first.inner_text()
    balance = detail.locator(".kpi[data-kpi='energy/balance']").inner_text()
    assert "kWh" in balance
    assert "No data" not in balance
    screenshot(page, "demo-district")
    assert console.errors == []
    page.context.close()


def test_a_dim_task_from_the_control_panel_reaches_a_simulated_wallbox(
    chromium: Any, demo: Demo
) -> None:
    (wallbox,) = demo.get(
        "/v1.1/Things?$filter=properties/kind eq 'wallbox'&$top=1&$select=id,name"
    )["value"]
    page, console = open_page(chromium, demo.base + "/")
    sign_in(page, demo.key)  # the wallbox is the utility's: only signed in is it there
    page.evaluate(f"location.hash = '#control/{wallbox['@iot.id']}'")
    page.wait_for_selector(".capability form")
    page.fill("#param-max_kw", "4.2")
    page.fill("#param-duration_min", "30")
    page.get_by_role("button", name="Create Task").click()
    final = ", ".join(
        f".task-status .status[data-status={s}]" for s in ("accepted", "done", "rejected", "failed")
    )
    page.wait_for_selector(final, timeout=30_000)
    status = page.locator(".task-status").inner_text()
    # the simulated wallbox accepts: it limits its power for the Task's duration
    assert page.locator(".task-status .status[data-status=accepted]").count() == 1, status
    assert "4.2 kW" in status
    screenshot(page, "demo-control")
    assert console.errors == []
    page.context.close()
    (task,) = demo.get(f"/v1.1/Things({wallbox['@iot.id']})/TaskingCapabilities?$expand=Tasks")[
        "value"
    ][0]["Tasks"]
    assert task["status"] == "accepted"
    assert task["taskingParameters"] == {"max_kw": 4.2, "duration_min": 30}
