"""``citytwin demo`` as a newcomer runs it: the server and the simulated city come up,
every domain's KPIs have plausible figures, values keep arriving live, a dimming Task
reaches a simulated wallbox, and Ctrl-C (or SIGTERM) stops everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import CITYTWIN, _free_port, _live_group_members

READY_TIMEOUT = 240.0  # generous for a loaded CI machine; the figure is in the README


@dataclass(frozen=True)
class Demo:
    base: str
    log: Path
    live_after: float

    @property
    def headers(self) -> dict[str, str]:
        """The admin key the demo made (access control is on in the demo)."""
        key = (self.log.parent / "data" / "admin-key.txt").read_text().strip()
        return {"Authorization": f"Bearer {key}"}

    def get(self, path: str) -> Any:
        resp = httpx.get(f"{self.base}{path}", timeout=30, headers=self.headers)
        assert resp.status_code == 200, (path, resp.text)
        return resp.json()


@contextmanager
def running_demo(tmp: Path, *args: str) -> Iterator[Demo]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYTWIN_")}
    env.update(
        PYTHONUNBUFFERED="1",
        CITYTWIN_MQTT_PORT=str(_free_port()),
        CITYTWIN_MQTT_WS_PORT=str(_free_port()),
    )
    log = tmp / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(CITYTWIN), "demo", "--port", str(port), "--data-dir", str(tmp / "data"), *args],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        live = None
        while live is None and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"demo exited with {proc.returncode}:\n{log.read_text()}")
            live = re.search(r"live after (\d+) s", log.read_text(errors="replace"))
            time.sleep(0.5)
        if live is None:
            pytest.fail(f"demo not live within {READY_TIMEOUT} s:\n{log.read_text()}")
        yield Demo(f"http://127.0.0.1:{port}", log, float(live.group(1)))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                status = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                pytest.fail(f"demo did not stop on SIGTERM:\n{log.read_text()}")
            deadline = time.monotonic() + 15
            while (left := _live_group_members(proc.pid)) and time.monotonic() < deadline:
                time.sleep(0.1)
            if left:
                os.killpg(proc.pid, signal.SIGKILL)
                pytest.fail(f"processes of the demo still running: {left}")
            assert status == 0, log.read_text()


def _observations(demo: Demo) -> int:
    count: int = demo.get("/v1.1/Observations?$top=0&$count=true")["@iot.count"]
    return count


def test_the_demo_city_is_live_with_every_domain(tmp_path: Path) -> None:
    with running_demo(tmp_path, "--history", "P1D", "--speed", "60", "--households", "60") as demo:
        output = demo.log.read_text()
        assert f"{demo.base}/v1.1" in output  # the tour names the URLs to open
        assert "curl" in output
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
