"""The mobility KPIs through /api/v1/kpis on a small hand-made data set, on SQLite and on
PostgreSQL. Expected figures are worked out in the comments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from citytwin.domains.mobility import DOMAIN
from tests.support import Client, location

DAY = "2026-11-20"
PERIOD = f"{DAY}T07:00:00Z/{DAY}T10:00:00Z"


def ts(hhmm: str) -> str:
    return f"{DAY}T{hhmm}:00Z"


def thing(
    name: str, kind: str, district: str, hood: str, data: dict[str, list[Any]]
) -> dict[str, Any]:
    streams = []
    for prop in data:
        template = DOMAIN.property(prop)
        streams.append(
            {
                "name": f"{name} {prop}",
                "description": template.description,
                "observationType": template.observation_type,
                "unitOfMeasurement": template.unit.as_sta(),
                "properties": {"domain": "mobility", "property": prop},
                "ObservedProperty": template.observed_property(),
                "Sensor": {
                    "name": f"{name} sensor",
                    "description": "test",
                    "encodingType": "text/html",
                    "metadata": "x",
                },
            }
        )
    return {
        "name": name,
        "description": kind,
        "properties": {
            "domain": "mobility",
            "kind": kind,
            "district": district,
            "neighbourhood": hood,
        },
        "Locations": [location(f"{name} depot")],
        "Datastreams": streams,
    }


def trip(
    direct: float, ride: float, pooled: bool, n: int, district: str, hood: str
) -> dict[str, Any]:
    return {
        "origin": [8.06, 51.40], "destination": [8.07, 51.41], "direct_km": direct,
        "ride_km": ride, "pooled": pooled, "passengers": n, "pickup": ts("08:05"),
        "dropoff": ts("08:20"), "origin_district": district, "origin_neighbourhood": hood,
    }  # fmt: skip


# vehicle A (depot in Altstadt): the morning of the pure tests, readings stored out of order
VAN_A = {
    "odometer": [
        ("08:20", 106.5),
        ("08:00", 100.0),
        ("08:30", 110.5),
        ("08:10", 105.0),
        ("08:05", 102.0),
    ],
    "passengers": [("08:20", 0), ("07:58", 0), ("08:10", 3), ("08:05", 2)],
    "soc": [("08:00", 80.0), ("08:30", 75.0)],
    "trip": [
        ("08:20", trip(3.0, 4.5, True, 2, "Hafen", "Hafen-Süd")),  # started in Hafen
        ("08:25", trip(2.0, 2.0, False, 1, "Altstadt", "Altstadt-Nord")),
    ],
}
# vehicle B (depot in Hafen): an empty drive only
VAN_B = {
    "odometer": [("09:00", 50.0), ("09:10", 53.5)],
    "passengers": [("08:50", 0)],
    "soc": [("09:00", 60.0)],
    "trip": [],
}
CHARGER = {
    "status": [
        ("07:30", "CHARGING"),
        ("08:15", "AVAILABLE"),
        ("08:45", "OUTOFORDER"),
        ("09:00", "CHARGING"),
    ],
    "power": [("08:00", 50.0)],
}


@pytest.fixture(scope="module")
def client(new_client: Callable[..., Client]) -> Client:
    c = new_client("mobility")
    for name, kind, district, hood, data in (
        ("Van A", "vehicle", "Altstadt", "Altstadt-Nord", VAN_A),
        ("Van B", "vehicle", "Hafen", "Hafen-Süd", VAN_B),
        ("Depot charger", "charging_point", "Altstadt", "Altstadt-Süd", CHARGER),
    ):
        thing_id = c.create("Things", thing(name, kind, district, hood, data))
        for ds in c.values(f"Things({thing_id})/Datastreams"):
            for hhmm, value in data[ds["properties"]["property"]]:
                c.create(
                    f"Datastreams({ds['@iot.id']})/Observations",
                    {"phenomenonTime": ts(hhmm), "result": value},
                )
    return c


def kpi(client: Client, key: str, status: int = 200, **params: str) -> dict[str, Any]:
    resp = client.get(f"/api/v1/kpis/mobility/{key}", params={"interval": PERIOD, **params})
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_the_domain_is_listed(client: Client) -> None:
    domains = client.ok("GET", "/api/v1/domains")["value"]
    mobility = next(d for d in domains if d["name"] == "mobility")
    assert [k["key"] for k in mobility["kpis"]] == [
        "occupancy", "pooling_rate", "empty_km_share", "detour_factor", "fleet_soc",
        "charging_utilisation",
    ]  # fmt: skip


def test_occupancy_and_empty_km(client: Client) -> None:
    body = kpi(client, "occupancy")
    # A: 10.5 vehicle-km, 10.5 passenger-km, 6 empty km; B: 3.5 km, all empty
    assert body["value"] == pytest.approx(10.5 / (10.5 + 3.5))
    assert body["values"]["vehicle_km"] == pytest.approx(14.0)
    assert body["values"]["passenger_km"] == pytest.approx(10.5)
    assert body["units"]["vehicle_km"] == "km"
    assert {i["name"]: i["value"] for i in body["items"]} == {
        "Van A": pytest.approx(1.0),
        "Van B": 0.0,
    }
    # hourly series: 08:00 holds all of A's legs, 09:00 B's
    assert [(s["time"], s["vehicle_km"]) for s in body["series"]] == [
        (ts("08:00"), pytest.approx(10.5)), (ts("09:00"), pytest.approx(3.5))
    ]  # fmt: skip
    share = kpi(client, "empty_km_share")
    assert share["value"] == pytest.approx((6 + 3.5) / 14)
    assert kpi(client, "occupancy", area="district:Hafen")["value"] == 0.0
    assert kpi(client, "occupancy", area="neighbourhood:Altstadt-Nord")["value"] == pytest.approx(
        1.0
    )


def test_pooling_and_detour_count_toward_the_trip_origin(client: Client) -> None:
    body = kpi(client, "pooling_rate")
    assert body["value"] == pytest.approx(1 / 2)
    assert body["values"] == {"trips": 2, "pooled_trips": 1}
    # the pooled trip started in Hafen although van A belongs to Altstadt
    assert kpi(client, "pooling_rate", area="district:Hafen")["value"] == 1.0
    assert kpi(client, "pooling_rate", area="district:Altstadt")["value"] == 0.0
    detour = kpi(client, "detour_factor")
    # (2 x 4.5 + 1 x 2.0) / (2 x 3.0 + 1 x 2.0) = 11 / 8
    assert detour["value"] == pytest.approx(11 / 8)
    assert detour["values"]["mean_trip_factor"] == pytest.approx((1.5 + 1.0) / 2)


def test_fleet_soc(client: Client) -> None:
    body = kpi(client, "fleet_soc")
    assert body["value"] == pytest.approx((75.0 + 60.0) / 2)
    assert {i["name"]: i["value"] for i in body["items"]} == {"Van A": 75.0, "Van B": 60.0}
    # 15-minute buckets: 08:00 A 80, 08:30 A 75, 09:00 B 60
    assert [(s["time"], s["value"]) for s in body["series"]] == [
        (ts("08:00"), 80.0), (ts("08:30"), 75.0), (ts("09:00"), 60.0)
    ]  # fmt: skip
    assert kpi(client, "fleet_soc", area="district:Hafen")["value"] == 60.0


def test_charging_utilisation(client: Client) -> None:
    body = kpi(client, "charging_utilisation", interval=f"{DAY}T08:00:00Z/{DAY}T11:00:00Z")
    # occupied 08:00-08:15 and 09:00-10:00; free 08:15-08:45; 08:45-09:00 out of order
    assert body["value"] == pytest.approx(75 / 105)
    assert body["values"]["occupied_h"] == pytest.approx(1.25)
    assert body["values"]["in_service_h"] == pytest.approx(1.75)
    assert [s["value"] for s in body["series"]] == [pytest.approx(15 / 45), 1.0]


@pytest.mark.parametrize("key", [k.key for k in DOMAIN.kpis])
def test_no_data_gives_null_and_empty_lists(client: Client, key: str) -> None:
    body = kpi(client, key, area="district:Nirgendwo")
    assert body["value"] is None
    assert body["series"] == []
    assert body["items"] == []


@pytest.mark.parametrize(
    ("params", "word"),
    [({"area": "street:Ring"}, "area"), ({"interval": "yesterday"}, "interval"),
     ({"bucket": "PT1S"}, "bucket"), ({"speed": "fast"}, "speed")],
)  # fmt: skip
def test_bad_parameters_are_400(client: Client, params: dict[str, str], word: str) -> None:
    body = kpi(client, "occupancy", status=400, **params)
    assert word in body["message"]


def test_unknown_kpi_is_404(client: Client) -> None:
    assert client.get("/api/v1/kpis/mobility/speeding").status_code == 404
