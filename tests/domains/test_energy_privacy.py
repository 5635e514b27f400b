"""Household privacy in the energy KPIs, on each backend, with access control on and k = 5.

The utility owns nine households in district Nord: four in neighbourhood Nord-A, five in
Nord-B (B5 misses its last power value), B1 a prosumer with an export register, and an
open rooftop PV in Nord-B. Anonymous requests, the utility's reader and a partner's
operator may not read household meters: they get sums over at least five households that
comparing areas cannot take apart, never one household's value; the utility's operators
see every meter.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from citytwin.access.keys import create_key, create_organisation
from citytwin.domains.privacy import releasable
from tests.domains.test_energy_api import PERIOD, QUARTERS, t, thing
from tests.support import Client

K = 5
HOUSEHOLDS = {"Nord-A": ("A1", "A2", "A3", "A4"), "Nord-B": ("B1", "B2", "B3", "B4", "B5")}
AREAS = ("city", "district:Nord", "neighbourhood:Nord-A", "neighbourhood:Nord-B")
KPIS = ("balance", "autarky", "self_consumption", "consumption", "load_profile")


def power(n: int, q: int) -> float:
    """Household n's mean power (kW) in quarter q (1-4): distinct per household and time."""
    return round(0.52 * n + 0.36 * q + 0.0004 * n * q, 4)


@dataclass
class Town:
    client: Client
    keys: dict[str, str | None] = field(default_factory=dict)
    # every figure of one household alone, as a number that must never reach the others
    single: set[float] = field(default_factory=set)

    def kpi(self, who: str, key: str, area: str, **params: str) -> dict[str, Any]:
        key_ = self.keys[who]
        headers = {} if key_ is None else {"Authorization": f"Bearer {key_}"}
        resp = self.client.get(
            f"/api/v1/kpis/energy/{key}",
            params={"area": area, "interval": PERIOD, **params},
            headers=headers,
        )
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body


@pytest.fixture(scope="module")
def town(new_client: Callable[..., Client]) -> Town:
    client = new_client("privacy", auth="on", privacy_k=K)
    storage = client.app.state.service.storage
    town = Town(client)
    for org in ("utility", "partner"):
        client.call(create_organisation(storage, org))
    for who, role, org in (
        ("admin", "admin", None),
        ("operator", "operator", "utility"),
        ("reader", "reader", "utility"),
        ("partner", "operator", "partner"),
    ):
        town.keys[who] = client.call(create_key(storage, role, org, who)).key
    town.keys["anonymous"] = None
    headers = {"Authorization": f"Bearer {town.keys['operator']}"}

    def store(body: dict[str, Any], series: dict[str, list[tuple[str, float]]]) -> None:
        resp = client.post("Things", body, headers=headers)
        assert resp.status_code == 201, resp.text
        url = resp.headers["location"] + "/Datastreams"
        for ds in client.get(url, headers=headers).json()["value"]:
            for hhmm, value in series[ds["properties"]["property"]]:
                made = client.post(
                    f"Datastreams({ds['@iot.id']})/Observations",
                    {"phenomenonTime": t(hhmm), "result": value},
                    headers=headers,
                )
                assert made.status_code == 201, made.text

    n = 0
    for hood, names in HOUSEHOLDS.items():
        for name in names:
            n += 1
            quarters = range(1, 4 if name == "B5" else 5)
            watts = [(QUARTERS[q], power(n, q)) for q in quarters]
            register, readings = 1000.0 * n, [(QUARTERS[0], 1000.0 * n)]
            for q in range(1, 5):
                register += power(n, q) * 0.25
                readings.append((QUARTERS[q], round(register, 6)))
            props = ["energy_import", "power"]
            series: dict[str, list[tuple[str, float]]] = {"energy_import": readings, "power": watts}
            if name == "B1":
                props.append("energy_export")
                series["energy_export"] = [(QUARTERS[0], 50.0), (QUARTERS[4], 50.75)]
                town.single.add(0.75)
            store(thing(f"Haushalt {name}", "household", hood, *props), series)
            town.single |= {v for _, v in watts} | {round(v * 0.25, 4) for _, v in watts}
            town.single |= {v for _, v in readings}
            town.single.add(round(register - 1000.0 * n, 4))  # its energy in the period
    store(
        thing("PV B", "pv", "Nord-B", "pv_power", peak_kw=8, openData=True),
        {"pv_power": [(q, 1.5) for q in QUARTERS[1:]]},
    )
    return town


def text_numbers(body: Any) -> set[float]:
    """Every number in a JSON document."""
    out: set[float] = set()

    def walk(value: Any) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, (int, float)):
            out.add(round(float(value), 4))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(body)
    return out


def test_fewer_than_k_households_give_no_household_value(town: Town) -> None:
    area = "neighbourhood:Nord-A"
    for who in ("anonymous", "reader", "partner"):
        balance = town.kpi(who, "balance", area)
        assert balance["value"] is None
        assert balance["values"]["consumption"] is None
        assert all(s["consumption"] is None for s in balance["series"])
        privacy = balance["privacy"]
        assert privacy["aggregated"] is False
        assert privacy["households"] == 4
        assert privacy["k"] == K
        assert "at least 5 households" in privacy["reason"]
        consumption = town.kpi(who, "consumption", area)
        assert consumption["items"] == []
        assert consumption["value"] is None
        assert consumption["values"]["household_consumption"] is None
        profile = town.kpi(who, "load_profile", area)
        assert profile["value"] is None
        assert profile["series"] == []
    # the utility's operator sees them all
    mine = town.kpi("operator", "balance", area)
    assert mine["values"]["consumption"] is not None
    assert "privacy" not in mine


def test_k_households_give_the_sum_an_operator_computes(town: Town) -> None:
    area = "neighbourhood:Nord-B"
    full = town.kpi("operator", "balance", area)
    public = town.kpi("anonymous", "balance", area)
    # B5 has no power value in 10:45-11:00: four households there, so it is left out
    assert public["privacy"]["aggregated"] is True
    assert public["privacy"]["withheld_intervals"] == 1
    released = {s["time"]: s for s in public["series"]}
    assert sorted(released) == [t(q) for q in QUARTERS[:3]]
    for s in full["series"][:3]:
        assert released[s["time"]]["consumption"] == pytest.approx(s["consumption"])
        assert released[s["time"]]["generation"] == pytest.approx(s["generation"])
    assert public["values"]["consumption"] == pytest.approx(
        sum(s["consumption"] for s in full["series"][:3])
    )
    assert town.kpi("partner", "balance", area)["values"] == public["values"]
    # energy from the registers: all five households have it, the export only B1
    mine = town.kpi("operator", "consumption", area)
    assert sorted(i["name"] for i in mine["items"]) == [f"Haushalt B{i}" for i in range(1, 6)]
    theirs = town.kpi("anonymous", "consumption", area)
    assert theirs["items"] == []
    assert theirs["values"]["household_consumption"] == pytest.approx(
        sum(i["consumption"] for i in mine["items"]), abs=1e-4
    )
    assert theirs["value"] == theirs["values"]["consumption"] == pytest.approx(mine["value"])
    assert theirs["values"]["household_export"] is None  # one prosumer
    assert theirs["values"]["export"] is None
    assert theirs["privacy"]["withheld_figures"] == 1
    profile = town.kpi("anonymous", "load_profile", area)
    assert [s["slot"] for s in profile["series"]] == ["10:00", "10:15", "10:30"]


def test_nested_areas_cannot_be_differenced(town: Town) -> None:
    # district Nord = Nord-A (4) + Nord-B (5): its sum minus Nord-B's would be Nord-A's,
    # four households. Only 10:45, where Nord-B is withheld itself, may be told.
    for area in ("district:Nord", "city"):
        body = town.kpi("anonymous", "balance", area)
        assert [s["time"] for s in body["series"]] == [t("10:45")]
        assert body["privacy"]["withheld_intervals"] == 3
        registers = town.kpi("anonymous", "consumption", area)
        assert registers["values"]["household_consumption"] is None
        assert registers["value"] is None


@pytest.mark.parametrize("who", ["anonymous", "reader", "partner"])
def test_no_response_holds_a_single_households_value(town: Town, who: str) -> None:
    seen = 0
    for key in KPIS:
        for area in AREAS:
            for bucket in ("PT15M", "PT1H"):
                body = town.kpi(who, key, area, bucket=bucket)
                leaked = text_numbers(body) & town.single
                assert not leaked, f"{key} {area} {bucket}: {sorted(leaked)} in {body}"
                assert "Haushalt" not in json.dumps(body)
                seen += body.get("privacy", {}).get("aggregated", False)
    assert seen > 0  # some aggregates were given, so the scan looked at real sums


def test_the_owning_operator_and_admins_see_every_meter(town: Town) -> None:
    for who in ("operator", "admin"):
        body = town.kpi(who, "consumption", "neighbourhood:Nord-A")
        items = {i["name"]: i["consumption"] for i in body["items"]}
        assert items["Haushalt A1"] == pytest.approx(sum(power(1, q) * 0.25 for q in (1, 2, 3, 4)))
        assert len(items) == 4
        assert "privacy" not in body


def test_releasable() -> None:
    def homes(**counts: int) -> dict[int, dict[str, str]]:
        out, n = {}, 0
        for hood, count in counts.items():
            for _ in range(count):
                n += 1
                out[n] = {"district": hood.split("_")[0], "neighbourhood": hood}
        return out

    assert not releasable(homes(N_a=4), "neighbourhood:N_a", 5)
    assert releasable(homes(N_a=5), "neighbourhood:N_a", 5)
    assert not releasable(homes(N_a=5, N_b=1), "district:N", 5)  # 6 - 5 = one household
    assert releasable(homes(N_a=5, N_b=5), "district:N", 5)
    assert releasable(homes(N_a=4, N_b=4), "district:N", 5)  # no part released
    assert releasable(homes(N_a=5, N_b=2, N_c=3), "district:N", 5)  # the rest is five
    assert not releasable(homes(N_a=5, N_b=5, S_a=3), "city", 5)  # city minus district N
    no_hood = homes(N_a=5)
    no_hood[99] = {"district": "N"}
    assert not releasable(no_hood, "district:N", 5)
