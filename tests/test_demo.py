"""``citytwin demo`` as a newcomer runs it: the server and the simulated city come up,
every domain's KPIs have plausible figures, values keep arriving live, a dimming Task
reaches a simulated wallbox, and Ctrl-C (or SIGTERM) stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.servers import CITYTWIN, Demo, _free_port, _live_group_members, running_demo


def _observations(demo: Demo) -> int:
    count: int = demo.get("/v1.1/Observations?$top=0&$count=true")["@iot.count"]
    return count


def _metrics(demo: Demo) -> dict[str, float]:
    text = httpx.get(f"{demo.base}/metrics", timeout=10).text
    pairs = (line.split() for line in text.splitlines() if line and not line.startswith("#"))
    return {name: float(value) for name, value in pairs}


def test_the_demo_city_is_live_with_every_domain(tmp_path: Path) -> None:
    with running_demo(tmp_path, "--history", "P1D", "--speed", "60", "--households", "60") as demo:
        output = demo.log.read_text()
        assert f"{demo.base}/v1.1" in output  # the tour names the URLs to open
        assert "curl" in output
        # access control is on: the tour says where the key is, and visitors see open data
        assert f"KEY=$(cat {demo.log.parent / 'data' / 'admin-key.txt'})" in output
        every = demo.get("/v1.1/Things?$select=properties&$top=10000")["value"]
        visible = httpx.get(
            f"{demo.base}/v1.1/Things?$select=properties&$top=10000", timeout=30
        ).json()["value"]
        assert 0 < len(visible) < len(every)
        assert all(t["properties"]["openData"] is True for t in visible)
        assert {t["properties"]["kind"] for t in visible} == {
            "traffic_counter",
            "parking",
            "charging_point",
            "cso",
            "rain_gauge",
            "air_quality_station",
            "weather_station",
        }
        assert '-u demo -P "$KEY"' in output  # the MQTT example sends the admin key too
        domains = {d["name"] for d in demo.get("/api/v1/domains")["value"]}
        assert domains == {"energy", "mobility", "water", "environment"}
        areas = [a["id"] for a in demo.get("/api/v1/areas")["value"]]
        assert "district:Altstadt" in areas

        balance = demo.get("/api/v1/kpis/energy/balance?area=district:Altstadt")
        assert balance["values"]["consumption"] > 0
        assert 0 <= balance["values"]["autarky"] <= 1
        assert 0 <= balance["values"]["self_consumption"] <= 1
        loading = demo.get("/api/v1/kpis/energy/transformer_loading")
        assert loading["items"]
        assert all(0 < i["peak_loading"] < 2 for i in loading["items"])

        occupancy = demo.get("/api/v1/kpis/mobility/occupancy")
        assert occupancy["value"] is not None
        assert occupancy["value"] >= 0
        soc = demo.get("/api/v1/kpis/mobility/fleet_soc")
        assert soc["value"] is not None
        assert 0 <= soc["value"] <= 100

        night = demo.get("/api/v1/kpis/water/night_flow")
        assert night["items"]
        assert all(i["mnf"] >= 0 for i in night["items"])

        air = demo.get("/api/v1/kpis/environment/air_quality")
        assert air["items"]
        assert all(i["class"] in (1, 2, 3, 4, 5) for i in air["items"])

        # live: at 60 x, fifteen simulated minutes pass in 15 s
        before = _observations(demo)
        deadline = time.monotonic() + 60
        while _observations(demo) <= before and time.monotonic() < deadline:
            time.sleep(1)
        assert _observations(demo) > before
        # the live readings came over MQTT, as the simulator's key's principal
        counts = _metrics(demo)
        assert counts["citytwin_mqtt_created_total"] > 0
        assert counts["citytwin_mqtt_rejected_total"] == 0

        # a dimming Task reaches a simulated wallbox, which answers
        caps = demo.get(
            "/v1.1/TaskingCapabilities?$filter=Thing/properties/kind eq 'wallbox'&$top=1"
        )["value"]
        assert caps, "no wallbox to dim"
        fields = caps[0]["taskingParameters"]["field"]
        params = {f["name"]: 4.2 if f.get("uom", {}).get("code") == "kW" else 30 for f in fields}
        resp = httpx.post(
            f"{demo.base}/v1.1/TaskingCapabilities({caps[0]['@iot.id']})/Tasks",
            json={"taskingParameters": params},
            timeout=30,
            headers=demo.headers,
        )
        assert resp.status_code == 201, resp.text
        task = resp.headers["location"]
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            status = httpx.get(task, timeout=10, headers=demo.headers).json().get("status")
            if status in ("done", "accepted", "rejected", "failed"):
                break
            time.sleep(0.5)
        assert status in ("done", "accepted"), status


def test_sigterm_while_setting_up_stops_the_demo_and_its_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYTWIN_")}
    env.update(
        PYTHONUNBUFFERED="1", CITYTWIN_MQTT_PORT=str(_free_port()), CITYTWIN_MQTT_WS_PORT="0"
    )
    log = tmp_path / "demo.log"
    args = ["--port", str(_free_port()), "--data-dir", str(tmp_path / "data"), "--history", "P3D"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(CITYTWIN), "demo", *args],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while "is serving" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        assert "live after" not in log.read_text()  # three days of history take a while
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
        deadline = time.monotonic() + 15
        while _live_group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _live_group_members(proc.pid) == []
    finally:
        if proc.poll() is None or _live_group_members(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
