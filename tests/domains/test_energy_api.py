"""Energy KPIs through /api/v1/kpis/energy on a small hand-made data set, on each backend.

The period 10:00-11:00 UTC holds four 15-minute intervals; power values are stamped at
the end of their interval (10:15 ... 11:00), registers at each quarter hour.

District Altstadt (neighbourhood Altstadt-Nord): household H1 (net power 2, 1, -1, 2 kW),
rooftop PV P1 (0, 2, 4, 0 kW), transformer T1 (rated 100 kVA). District Hafen: commercial
C1 (4 kW throughout) whose register drops once (a reset or an unmarked meter swap).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from citytwin.domains.energy import DOMAIN
from tests.support import Client, location

DAY = "2026-11-21T"
PERIOD = f"{DAY}10:00:00Z/{DAY}11:00:00Z"
QUARTERS = ("10:00", "10:15", "10:30", "10:45", "11:00")


def t(hhmm: str) -> str:
    return f"{DAY}{hhmm}:00Z"


def thing(name: str, kind: str, area: str, *streams_: str, **props: Any) -> dict[str, Any]:
    district = area.partition("-")[0]
    kind_ = DOMAIN.thing_kind(kind)
    sensor = DOMAIN.sensor(kind_.sensor)
    streams = []
    for key in streams_:
        prop = DOMAIN.property(key)
        streams.append(
            {
                "name": f"{name} {prop.name}",
                "description": prop.description,
                "observationType": prop.observation_type,
                "unitOfMeasurement": prop.unit.as_sta(),
                "ObservedProperty": prop.observed_property(),
                "Sensor": sensor.sensor(),
                "properties": {"domain": "energy", "property": key, "personal": kind_.personal},
            }
        )
    return {
        "name": name,
        "description": name,
        "properties": {
            "domain": "energy",
            "kind": kind,
            "district": district,
            "neighbourhood": area,
            **props,
        },
        "Locations": [location(name)],
        "Datastreams": streams,
    }


def seed(client: Client) -> None:
    data: list[tuple[dict[str, Any], dict[str, list[tuple[str, float]]]]] = [
        (
            thing("H1", "household", "Altstadt-Nord", "energy_import", "energy_export", "power"),
            {
                # out of order, with a duplicate: 100.0, 100.5, 100.75, 100.75, 101.25
                "energy_import": [
                    ("10:30", 100.75), ("10:00", 100.0), ("11:00", 101.25),
                    ("10:15", 100.5), ("10:45", 100.75), ("10:15", 100.5),
                ],
                "energy_export": [("10:00", 5.0), ("10:45", 5.25), ("11:00", 5.25)],
                "power": [("10:15", 2.0), ("10:30", 1.0), ("10:45", -1.0), ("11:00", 2.0)],
            },
        ),
        (
            thing("P1", "pv", "Altstadt-Nord", "pv_power", peak_kw=5),
            {"pv_power": [("10:15", 0.0), ("10:30", 2.0), ("10:45", 4.0), ("11:00", 0.0)]},
        ),
        (
            thing("T1", "transformer", "Altstadt-Süd", "power", "apparent_power", rated_kva=100),
            {
                "power": [("10:15", 50.0), ("10:30", 80.0), ("10:45", 20.0), ("11:00", 50.0)],
                "apparent_power": [
                    ("10:15", 60.0), ("10:30", 90.0), ("10:45", 30.0), ("11:00", 60.0),
                ],
            },
        ),
        (
            thing("C1", "commercial", "Hafen-Nord", "energy_import", "power"),
            {
                "energy_import": [
                    ("10:00", 1000.0), ("10:15", 1001.0), ("10:30", 1002.0),
                    ("10:45", 0.5), ("11:00", 1.5),
                ],
                "power": [(q, 4.0) for q in QUARTERS[1:]],
            },
        ),
    ]  # fmt: skip
    for body, observations in data:
        thing_id = client.create("Things", body)
        for ds in client.values(f"Things({thing_id})/Datastreams"):
            for hhmm, value in observations[ds["properties"]["property"]]:
                client.create(
                    f"Datastreams({ds['@iot.id']})/Observations",
                    {"phenomenonTime": t(hhmm), "result": value},
                )


@pytest.fixture(scope="module")
def store(new_client: Callable[..., Client]) -> Client:
    client = new_client("energy")
    seed(client)
    return client


def kpi(client: Client, key: str, **params: str) -> dict[str, Any]:
    params.setdefault("interval", PERIOD)
    resp = client.get(f"/api/v1/kpis/energy/{key}", params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_domain_is_listed(store: Client) -> None:
    body = store.ok("GET", "/api/v1/domains")
    energy = next(d for d in body["value"] if d["name"] == "energy")
    keys = {k["key"] for k in energy["kpis"]}
    assert {"balance", "consumption", "transformer_loading", "load_profile"} <= keys
    defs = {p["key"]: p["definition"] for p in energy["observedProperties"]}
    assert defs["energy_import"] == "https://w3id.org/obis#1-0:1.8.0"


def test_balance_of_a_district_local_and_balanced(store: Client) -> None:
    body = kpi(store, "balance", area="district:Altstadt")
    # consumption per interval = net + PV (kWh): 0.5, 0.25+0.5, -0.25+1.0, 0.5 = 2.5
    # generation 0 + 0.5 + 1.0 + 0 = 1.5; local min per interval 0 + 0.5 + 0.75 + 0 = 1.25
    v = body["values"]
    assert v["consumption"] == pytest.approx(2.5)
    assert v["generation"] == pytest.approx(1.5)
    assert v["local"] == pytest.approx(1.25)
    assert body["value"] == pytest.approx(0.5)  # 1.25 / 2.5
    assert v["self_consumption"] == pytest.approx(round(1.25 / 1.5, 4))
    assert v["autarky_balanced"] == pytest.approx(0.6)  # 1.5 / 2.5
    assert v["self_consumption_balanced"] == pytest.approx(1.0)
    assert [s["time"] for s in body["series"]] == [t(q) for q in QUARTERS[:-1]]
    assert [s["consumption"] for s in body["series"]] == pytest.approx([0.5, 0.75, 0.75, 0.5])
    assert body["units"]["consumption"] == "kW.h"


def test_balance_in_hourly_buckets_and_of_the_city(store: Client) -> None:
    body = kpi(store, "balance", bucket="PT1H")
    # C1 adds 1 kWh per interval: consumption 2.5 + 4 = 6.5; in the city the PV surplus
    # of 10:30-10:45 (1.0 - 0.75 = 0.25 kWh) meets C1's load: local 1.25 + 0.25 = 1.5
    assert len(body["series"]) == 1
    assert body["series"][0]["consumption"] == pytest.approx(6.5)
    assert body["values"]["local"] == pytest.approx(1.5)
    assert body["value"] == pytest.approx(round(1.5 / 6.5, 4))
    assert 0 <= body["value"] <= body["values"]["autarky_balanced"] <= 1


def test_autarky_and_self_consumption_kpis(store: Client) -> None:
    a = kpi(store, "autarky", area="district:Altstadt")
    assert a["value"] == pytest.approx(0.5)
    assert a["values"] == {"local": 0.5, "balanced": 0.6}
    s = kpi(store, "self_consumption", area="district:Altstadt")
    assert s["value"] == pytest.approx(0.8333)


def test_consumption_per_meter_robust_to_order_duplicates_and_resets(store: Client) -> None:
    body = kpi(store, "consumption")
    items = {i["name"]: i for i in body["items"]}
    # H1: 0.5 + 0.25 + 0 + 0.5 = 1.25 despite arrival order and the duplicate
    assert items["H1"]["consumption"] == pytest.approx(1.25)
    assert items["H1"]["export"] == pytest.approx(0.25)
    # C1: 1 + 1 + 0.5 (counted from the new value after the drop) + 1 = 3.5
    assert items["C1"]["consumption"] == pytest.approx(3.5)
    assert items["C1"]["resets"] == 1
    assert body["value"] == pytest.approx(4.75)
    assert "T1" not in items


def test_consumption_takes_shares_of_straddling_readings(store: Client) -> None:
    body = kpi(store, "consumption", area="neighbourhood:Altstadt-Nord",
               interval=f"{DAY}10:07:30Z/{DAY}11:00:00Z")  # fmt: skip
    # half of 10:00-10:15 (0.25) + 0.25 + 0 + 0.5
    assert body["value"] == pytest.approx(1.0)


def test_transformer_loading(store: Client) -> None:
    body = kpi(store, "transformer_loading")
    (item,) = body["items"]
    assert item["name"] == "T1"
    assert item["peak_kw"] == 80.0
    assert item["mean_kw"] == 50.0  # (50 + 80 + 20 + 50) / 4
    assert item["load_factor"] == pytest.approx(0.625)
    assert item["peak_kva"] == 90.0
    assert item["peak_loading"] == pytest.approx(0.9)  # 90 / 100
    assert item["peak_time"] == t("10:15")  # the interval 10:15-10:30
    assert body["value"] == pytest.approx(0.9)
    assert [s["value"] for s in body["series"]] == pytest.approx([0.6, 0.9, 0.3, 0.6])
    assert kpi(store, "transformer_loading", area="district:Hafen")["items"] == []


def test_load_profile(store: Client) -> None:
    body = kpi(store, "load_profile", area="district:Altstadt", tz="Europe/Berlin")
    # consumption kW = kWh x 4: 2, 3, 3, 2; in Berlin (UTC+1) the slots are 11:00 ...
    assert [(s["slot"], s["value"]) for s in body["series"]] == [
        ("11:00", 2.0), ("11:15", 3.0), ("11:30", 3.0), ("11:45", 2.0)
    ]  # fmt: skip
    assert [s["generation"] for s in body["series"]] == [0.0, 2.0, 4.0, 0.0]
    assert body["value"] == 3.0
    assert body["values"]["load_factor"] == pytest.approx(round(2.5 / 3, 4))


def test_no_data_gives_null_and_empty_lists(store: Client) -> None:
    for key in ("balance", "consumption", "transformer_loading", "load_profile", "autarky"):
        body = kpi(store, key, area="district:Nirgendwo")
        assert body["value"] is None, key
        assert body["series"] == []
        assert body["items"] == []
    early = kpi(store, "balance", interval=f"{DAY}00:00:00Z/{DAY}01:00:00Z")
    assert early["value"] is None


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"area": "street:Linden"}, "area"),
        ({"bucket": "PT5M"}, "15 minutes"),
        ({"interval": "yesterday"}, "interval"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_are_400(store: Client, params: dict[str, str], word: str) -> None:
    params.setdefault("interval", PERIOD)
    resp = store.get("/api/v1/kpis/energy/balance", params=params)
    assert resp.status_code == 400
    assert word in resp.json()["message"]


def test_bad_time_zone_is_400(store: Client) -> None:
    resp = store.get(
        "/api/v1/kpis/energy/load_profile", params={"interval": PERIOD, "tz": "Mars/Olympus"}
    )
    assert resp.status_code == 400
    assert "tz" in resp.json()["message"]
