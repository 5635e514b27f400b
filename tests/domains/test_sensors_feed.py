"""GET /api/v1/sensors: every Thing's place and each Datastream's latest value, column by
column, agreeing with what the SensorThings API says of the same entities."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Client, make_client

OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
LATEST = "Observations($top=1;$orderby=phenomenonTime desc;$select=result,phenomenonTime)"


def stream(prop: str, unit: str, observations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": f"{prop} stream",
        "description": "-",
        "observationType": OM,
        "unitOfMeasurement": {"name": unit, "symbol": unit, "definition": unit},
        "Sensor": {"name": "s", "description": "s", "encodingType": "text/html", "metadata": "-"},
        "ObservedProperty": {
            "name": prop,
            "definition": f"https://example.org/{prop}",
            "description": "-",
        },
        "Observations": observations,
    }


def located(geometry: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": "l",
            "description": "-",
            "encodingType": "application/geo+json",
            "location": geometry,
        }
    ]


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[Client]:
    c = make_client(tmp_path, db=db_url)
    yield c
    c.close()


def test_the_feed_says_what_the_sta_says_compactly(client: Client) -> None:
    point = {"type": "Point", "coordinates": [8.05, 51.4]}
    area = {"type": "Polygon", "coordinates": [[[8, 51], [8.1, 51], [8.1, 51.1], [8, 51]]]}
    things = [
        {
            "name": "Air 1",
            "description": "-",
            "properties": {"domain": "environment", "kind": "air_quality", "district": "Mitte"},
            "Locations": located(point),
            "Datastreams": [
                stream(
                    "PM10",
                    "ug/m3",
                    [
                        {"phenomenonTime": "2026-03-01T10:00:00Z", "result": 12.5},
                        {"phenomenonTime": "2026-03-01T11:00:00Z", "result": 14},
                        {"phenomenonTime": "2026-03-01T09:00:00Z", "result": 99.0},  # late
                    ],
                ),
                stream("NO2", "ug/m3", []),
            ],
        },
        {
            "name": "Tank",
            "description": "-",
            "properties": {"domain": "water"},
            "Locations": located({"type": "Feature", "properties": {}, "geometry": area}),
            "Datastreams": [
                stream(
                    "state",
                    "1",
                    [
                        {
                            "phenomenonTime": "2026-03-01T10:00:00Z/2026-03-01T10:15:00Z",
                            "result": "full",
                        },
                    ],
                ),
            ],
        },
        {"name": "Nowhere", "description": "-", "properties": {"kind": "vehicle"}},
    ]
    for t in things:
        client.ok("POST", "/v1.1/Things", t, status=201)

    feed = client.ok("GET", "/api/v1/sensors")
    sta = client.ok(
        "GET",
        "/v1.1/Things?$orderby=id&$expand=Datastreams($orderby=id;"
        f"$expand=ObservedProperty,{LATEST})",
    )["value"]
    ids = [t["@iot.id"] for t in sta]
    assert feed["things"] == {
        "id": ids,
        "name": ["Air 1", "Tank", "Nowhere"],
        "kind": ["air_quality", None, "vehicle"],
        "domain": ["environment", "water", None],
        "lon": [8.05, None, None],
        "lat": [51.4, None, None],
    }
    assert feed["geometries"] == {str(ids[1]): area}
    streams = [(t["@iot.id"], d) for t in sta for d in t["Datastreams"]]
    ds = feed["datastreams"]
    assert ds["id"] == [d["@iot.id"] for _, d in streams]
    assert ds["thing"] == [tid for tid, _ in streams]
    for i, (_, d) in enumerate(streams):
        latest = d["Observations"][0] if d["Observations"] else {}
        assert ds["result"][i] == latest.get("result")
        assert ds["time"][i] == latest.get("phenomenonTime")
        op = feed["observedProperties"][ds["property"][i]]
        assert op == {
            "name": d["ObservedProperty"]["name"],
            "definition": d["ObservedProperty"]["definition"],
        }
        assert feed["units"][ds["unit"][i]] == d["unitOfMeasurement"]["symbol"]
    # the values themselves, not only agreement: the latest by phenomenonTime, not by arrival
    assert ds["result"] == [14, None, "full"]
    assert ds["time"][2] == "2026-03-01T10:00:00Z/2026-03-01T10:15:00Z"
    assert feed["units"] == ["ug/m3", "1"]  # each text once


def test_an_empty_store_gives_empty_columns(client: Client) -> None:
    feed = client.ok("GET", "/api/v1/sensors")
    assert feed["things"]["id"] == []
    assert feed["datastreams"]["id"] == []
    assert client.ok("GET", "/api/v1/ui-config")["apis"]["sensors"] is True
