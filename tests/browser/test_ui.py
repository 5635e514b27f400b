"""The digital twin in a real browser: map, details, live values, control, entities."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest

from tests.browser.conftest import City, Console, open_page, screenshot
from tests.browser.seeding import sensor_thing

CENTRE_SENSOR = "Sensor 12"  # in the middle of the 5 x 4 grid, clear of the panels


def click_thing(page: Any, name: str) -> None:
    """Click the Thing's point on the map, where a user would."""
    x, y = page.evaluate(
        """(name) => {
            const c = window.citytwin;
            const t = [...c.twin.things.values()].find((t) => t.name === name);
            const p = c.map.project(t.geometry.coordinates);
            const r = c.map.getCanvas().getBoundingClientRect();
            return [r.left + p.x, r.top + p.y];
        }""",
        name,
    )
    page.mouse.click(x, y)


def primary_datastream(page: Any, name: str) -> tuple[int, int]:
    return tuple(
        page.evaluate(
            """(name) => {
                const c = window.citytwin;
                const t = [...c.twin.things.values()].find((t) => t.name === name);
                return [t.id, c.twin.primary(t).id];
            }""",
            name,
        )
    )


def mqtt_client(port: int) -> paho.Client:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-{time.time_ns()}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_the_map_loads_without_console_errors_with_legend_and_toggles(
    chromium: Any, city: City
) -> None:
    page, console = open_page(chromium, city.url)
    panel = page.locator("#layers").inner_text()
    for layer in ("Air quality stations", "Ride-pooling fleet", "Charging points"):
        assert layer in panel
    assert "PM10 (µg/m³, UBA index)" in panel
    assert "Europe/Berlin" in page.locator("#zone").inner_text()
    assert page.evaluate("window.citytwin.timings.things") == 23
    screenshot(page, "map-laptop")
    # toggles are checkboxes a keyboard reaches; hiding a category hides its layer
    toggle = page.get_by_role("checkbox", name="Air quality stations")
    toggle.focus()
    page.keyboard.press("Space")
    shown = """() => new Promise((resolve) => {
        const map = window.citytwin.map;
        map.once("idle", () => resolve(map.queryRenderedFeatures({layers: ["things"]})
            .map((f) => f.properties.category)));
        map.triggerRepaint();
    })"""
    assert "air" not in page.evaluate(shown)
    assert "charging" in page.evaluate(shown)
    page.set_viewport_size({"width": 820, "height": 1180})
    screenshot(page, "map-tablet")
    assert console.errors == []
    page.context.close()
    # API clients still get the redirect to the service root
    resp = httpx.get(city.url, headers={"accept": "application/json"})
    assert resp.status_code == 307
    assert resp.headers["location"].endswith("/v1.1")


def test_clicking_a_sensor_shows_its_datastreams_and_a_chart_with_data(
    chromium: Any, city: City
) -> None:
    page, console = open_page(chromium, city.url)
    click_thing(page, CENTRE_SENSOR)
    page.wait_for_selector("#detail .chart[data-points] canvas", timeout=10_000)
    detail = page.locator("#detail")
    assert CENTRE_SENSOR in detail.locator("h2").inner_text()
    assert "µg/m³" in detail.locator("table.streams").inner_text()
    assert int(detail.locator(".chart").get_attribute("data-points") or 0) >= 20  # a day, PT15M
    # the time axis speaks the viewer's locale (de-DE: 14:00, 22.11.) and names the zone
    ticks = detail.locator(".chart").get_attribute("data-time-ticks") or ""
    assert re.search(r"\b\d\d:\d\d\b", ticks), ticks
    assert re.search(r"\b\d\d\.\d\d\.", ticks), ticks
    assert "AM" not in ticks
    assert "PM" not in ticks
    assert "Europe/Berlin" in detail.locator(".u-legend").inner_text()
    page.get_by_role("button", name="Week").click()
    page.wait_for_selector("#detail button[aria-pressed=true]:has-text('Week')")
    page.wait_for_selector("#detail .chart[data-points] canvas")
    assert "bucket=PT1H" in detail.inner_text()
    page.get_by_role("button", name="Raw values").click()
    page.wait_for_selector("#detail .raw tbody tr")
    assert detail.locator(".raw tbody tr").count() == 25
    screenshot(page, "sensor-detail")
    assert console.errors == []
    page.context.close()


def test_a_value_published_over_mqtt_appears_within_2_s(chromium: Any, city: City) -> None:
    page, console = open_page(chromium, city.url)
    page.wait_for_selector("body[data-live=subscribed]", timeout=10_000)
    click_thing(page, CENTRE_SENSOR)
    page.wait_for_selector("#detail table.streams")
    thing, ds = primary_datastream(page, CENTRE_SENSOR)
    sensor = mqtt_client(city.mqtt_port)
    try:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        start = time.monotonic()
        sensor.publish(
            f"v1.1/Datastreams({ds})/Observations",
            json.dumps({"result": 123.4, "phenomenonTime": now}),
            qos=1,
        ).wait_for_publish(5)
        page.wait_for_function(
            "() => document.querySelector('#detail td.value').textContent.startsWith('123')",
            timeout=2_000,
        )
        shown = time.monotonic() - start
        colour = f"window.citytwin.map.getFeatureState({{source: 'things', id: {thing}}}).colour"
        assert page.evaluate(colour) == "#d73027"  # PM10 above 90 µg/m³: very poor
        # the list of sensors in view follows too (within its second of gathering)
        page.wait_for_function(
            """(id) => document.querySelector(`#layers .in-view button[data-thing="${id}"]`)
                ?.textContent.includes("123")""",
            arg=thing,
            timeout=3_000,
        )
    finally:
        sensor.loop_stop()
        sensor.disconnect()
    print(f"MQTT publish to value on the page: {shown * 1000:.0f} ms")
    # a shuttle moving (its Location updated) moves on the map
    shuttle = httpx.get(
        f"{city.server.root}/Things?$filter=name eq 'Shuttle 1'&$expand=Locations"
    ).json()["value"][0]
    loc = shuttle["Locations"][0]["@iot.id"]
    target = [8.1, 51.41]
    httpx.patch(
        f"{city.server.root}/Locations({loc})",
        json={"location": {"type": "Point", "coordinates": target}},
    ).raise_for_status()
    page.wait_for_function(
        f"""() => {{
            const t = window.citytwin.twin.things.get({shuttle["@iot.id"]});
            return t.geometry.coordinates[0] === {target[0]};
        }}""",
        timeout=2_000,
    )
    screenshot(page, "live-update")
    assert console.errors == []
    page.context.close()


def test_things_and_datastreams_created_after_the_page_loaded_appear_without_reload(
    chromium: Any, city: City
) -> None:
    page, console = open_page(chromium, city.url)
    page.wait_for_selector("body[data-live=subscribed]", timeout=10_000)
    before = page.evaluate("window.citytwin.twin.things.size")
    toggle = page.locator("#layers label.toggle", has_text="Air quality stations")
    counted = int(toggle.locator(".count").inner_text().strip())
    new = sensor_thing(55, 100)  # "Sensor 55", in the middle of the map
    created = httpx.post(f"{city.server.root}/Things", json=new)
    assert created.status_code == 201, created.text
    thing = int(created.headers["location"].rsplit("(", 1)[1].rstrip(")"))
    page.wait_for_function(f"() => window.citytwin.twin.things.has({thing})", timeout=5_000)
    drawn = f"""() => new Promise((resolve) => {{
        const map = window.citytwin.map;
        map.once("idle", () => resolve(map.queryRenderedFeatures({{layers: ["things"]}})
            .some((f) => f.id === {thing})));
        map.triggerRepaint();
    }})"""
    assert page.evaluate(drawn)
    assert page.evaluate("window.citytwin.twin.things.size") == before + 1
    assert toggle.locator(".count").inner_text().strip() == str(counted + 1)
    # a Datastream added to it later is live too: its Observations reach the page
    stream = dict(new["Datastreams"][0], name="PM10 second")
    added = httpx.post(f"{city.server.root}/Things({thing})/Datastreams", json=stream)
    assert added.status_code == 201, added.text
    ds = int(added.headers["location"].rsplit("(", 1)[1].rstrip(")"))
    page.wait_for_function(
        f"() => window.citytwin.twin.datastreams.has({ds}) && "
        "document.body.dataset.live === 'subscribed'",
        timeout=5_000,
    )
    sensor = mqtt_client(city.mqtt_port)
    try:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        sensor.publish(
            f"v1.1/Datastreams({ds})/Observations",
            json.dumps({"result": 77.5, "phenomenonTime": now}),
            qos=1,
        ).wait_for_publish(5)
        page.wait_for_function(
            f"() => window.citytwin.twin.datastreams.get({ds}).result === 77.5", timeout=2_000
        )
    finally:
        sensor.loop_stop()
        sensor.disconnect()
        # the other tests count the city's Things
        httpx.delete(f"{city.server.root}/Things({thing})").raise_for_status()
    assert console.errors == []
    page.context.close()


def test_a_task_created_in_the_control_panel_shows_its_status_as_it_changes(
    chromium: Any, city: City
) -> None:
    device = mqtt_client(city.mqtt_port)
    received: list[dict[str, Any]] = []
    done = threading.Event()

    def answer(client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        order = json.loads(message.payload)
        received.append(order)
        time.sleep(0.5)  # long enough for the page to show "sent" first
        client.publish(order["answerTopic"], json.dumps({"status": "done", "message": "dimmed"}))
        done.set()

    device.on_message = answer
    device.subscribe(city.device_topic, qos=1)
    try:
        page, console = open_page(chromium, city.url + "#control")
        page.wait_for_selector(".capability form")
        page.fill("#param-powerLimit", "6")
        page.get_by_role("button", name="Create Task").click()
        page.wait_for_selector(".task-status .status[data-status=done]", timeout=10_000)
        assert "dimmed" in page.locator(".task-status").inner_text()
        assert received[0]["taskingParameters"] == {"powerLimit": 6}
        screenshot(page, "control")
        assert console.errors == []
        page.context.close()
    finally:
        device.loop_stop()
        device.disconnect()


def test_the_entity_browser_navigates_and_shows_each_views_url(chromium: Any, city: City) -> None:
    page, console = open_page(
        chromium, city.url + "#entities", permissions=["clipboard-read", "clipboard-write"]
    )
    root = city.server.root
    page.wait_for_selector("table.entities")
    assert page.locator(".sta-url").inner_text() == f"{root}/Things"
    page.locator("table.entities tbody tr").first.get_by_role(
        "link", name="Datastreams", exact=True
    ).click()
    page.wait_for_function("() => location.hash === '#entities/Things(1)/Datastreams'")
    page.wait_for_selector("table.entities")
    assert page.locator(".sta-url").inner_text() == f"{root}/Things(1)/Datastreams"
    page.locator("table.entities tbody tr").first.get_by_role(
        "link", name="Observations", exact=True
    ).click()
    page.wait_for_selector(".sta-url:has-text('/Observations')")
    page.wait_for_selector("table.entities tbody tr")
    url = page.locator(".sta-url").inner_text()
    assert url.startswith(f"{root}/Datastreams(")
    assert url.endswith(")/Observations")
    page.get_by_role("button", name="Copy URL").click()
    assert page.evaluate("navigator.clipboard.readText()") == url
    page.evaluate("location.hash = '#entities/Observations?$top=10'")
    page.wait_for_selector(".sta-url:has-text('$top=10')")
    page.get_by_role("link", name="Next page").click()
    page.wait_for_selector(".sta-url:has-text('skip')")
    assert page.locator("table.entities tbody tr").count() == 10
    screenshot(page, "entities")
    assert console.errors == []
    page.context.close()


def test_dashboards_say_so_when_the_server_offers_no_domain_kpis(chromium: Any, city: City) -> None:
    # a platform without domain packages (the built-in ones are plugins like any other)
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.route("**/api/v1/domains", lambda route: route.fulfill(json={"value": []}))
    page = context.new_page()
    console = Console(page)
    page.goto(city.url + "#dashboards")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    page.wait_for_selector("#view-dashboards h2")
    assert "no domain KPIs" in page.locator("#view-dashboards").inner_text()
    assert console.errors == []
    page.context.close()


def test_sensors_in_view_are_reached_and_opened_with_the_keyboard(
    chromium: Any, city: City
) -> None:
    page, console = open_page(chromium, city.url)
    page.wait_for_selector("#layers .in-view button")
    page.get_by_role("searchbox").focus()
    in_list = "() => document.activeElement?.closest('.in-view') !== null"
    for _ in range(5):  # the list is one Tab stop after the search box (and its results)
        page.keyboard.press("Tab")
        if page.evaluate(in_list):
            break
    assert page.evaluate(in_list)
    first = page.evaluate("document.activeElement.dataset.thing")
    page.keyboard.press("ArrowDown")
    second = page.evaluate("document.activeElement.dataset.thing")
    assert second != first
    # one Tab stop: only the current entry is in the tab order
    assert page.locator(".in-view button[tabindex='0']").count() == 1
    name = page.evaluate(f"window.citytwin.twin.things.get({second}).name")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(name) => document.querySelector('#detail h2').textContent === name", arg=name
    )
    assert page.evaluate("document.activeElement.closest('#detail') !== null")
    page.keyboard.press("Escape")
    assert page.locator("#detail").is_hidden()
    assert page.evaluate("document.activeElement.dataset.thing") == second
    # the list follows the map: zoomed in far, fewer sensors are in view
    total = page.locator(".in-view button").count()
    page.evaluate("window.citytwin.map.jumpTo({zoom: 17})")
    page.wait_for_function(f"() => document.querySelectorAll('.in-view button').length < {total}")
    assert console.errors == []
    page.context.close()


@pytest.mark.parametrize("view", ["map", "dashboards", "control", "entities"])
def test_at_tablet_width_the_controls_are_visible_and_nothing_overflows(
    chromium: Any, city: City, view: str
) -> None:
    page, console = open_page(chromium, city.url + "#" + view, width=768, height=1024)
    if view == "map":
        click_thing(page, CENTRE_SENSOR)
        page.wait_for_selector("#detail .chart[data-points]")
        panels = ["#layers", "#detail", ".maplibregl-ctrl-zoom-in"]
    else:
        page.wait_for_selector(f"#view-{view} h2")
        panels = [f"#view-{view} h2"]
    for selector in ["header nav", "#live-status", "#zone", *panels]:
        box = page.locator(selector).first.bounding_box()
        assert box is not None, f"{selector} is not shown"
        assert box["x"] >= 0, f"{selector}: {box}"
        assert box["x"] + box["width"] <= 768, f"{selector}: {box}"
        assert box["y"] >= 0, f"{selector}: {box}"
        assert box["y"] + box["height"] <= 1024, f"{selector}: {box}"
    overflowing = page.evaluate(
        """() => [document.documentElement, document.body, ...document.querySelectorAll(
                '.view:not([hidden]), .view:not([hidden]) *')]
            .filter((e) => e.scrollWidth > e.clientWidth + 1
                && !['auto', 'scroll'].includes(getComputedStyle(e).overflowX)
                && getComputedStyle(e).overflowX !== 'hidden')
            .map((e) => e.tagName + '.' + e.className)"""
    )
    assert overflowing == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
    screenshot(page, f"tablet-{view}")
    assert console.errors == []
    page.context.close()


def test_dashboards_refresh_when_new_values_of_their_domain_arrive(
    chromium: Any, city: City
) -> None:
    page, console = open_page(chromium, city.url + "#dashboards")
    page.wait_for_selector("body[data-live=subscribed]", timeout=10_000)
    page.get_by_role("button", name="Energy").click()
    page.wait_for_selector("#view-dashboards .kpi:not(.loading)")
    asked: list[str] = []
    page.on("request", lambda r: "/api/v1/kpis/energy/" in r.url and asked.append(r.url))
    page.wait_for_timeout(1500)
    assert asked == []  # nothing new, nothing asked: no polling
    ds = page.evaluate(
        """() => window.citytwin.twin.primary([...window.citytwin.twin.things.values()]
            .find((t) => t.properties.domain === "energy")).id"""
    )
    sensor = mqtt_client(city.mqtt_port)
    try:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        sensor.publish(
            f"v1.1/Datastreams({ds})/Observations",
            json.dumps({"result": 3.5, "phenomenonTime": now}),
            qos=1,
        ).wait_for_publish(5)
        page.wait_for_function(
            f"() => window.citytwin.twin.datastreams.get({ds}).result === 3.5", timeout=2_000
        )
        # gathered for a second, and at most one refresh each 5 s
        for _ in range(40):
            if asked:
                break
            page.wait_for_timeout(250)
        page.wait_for_timeout(1000)
    finally:
        sensor.loop_stop()
        sensor.disconnect()
    assert asked, "the energy KPIs were not read again"
    kpis = {u.split("?")[0] for u in asked}
    assert len(asked) == len(kpis)  # once each
    assert console.errors == []
    page.context.close()
