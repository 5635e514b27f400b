"""Storing small hand-made domain data sets through the SensorThings API, as the
simulator runner does: Thing.properties name domain, kind and area; Datastream
properties name the domain property. Used by the water and environment API tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from citytwin.domains.base import Domain
from tests.support import Client, location


def add_thing(
    client: Client,
    domain: Domain,
    kind: str,
    name: str,
    district: str,
    neighbourhood: str,
    **properties: Any,
) -> dict[str, int]:
    """Creates a Thing of ``kind`` with one Datastream per property of the kind, made from
    the domain's templates; returns {property key: Datastream id}."""
    thing_kind = domain.thing_kind(kind)
    sensor = domain.sensor(thing_kind.sensor).sensor()
    thing_id = client.create(
        "Things",
        {
            "name": name,
            "description": f"{kind} {name}",
            "properties": {
                "domain": domain.name,
                "kind": kind,
                "district": district,
                "neighbourhood": neighbourhood,
                **properties,
            },
            "Locations": [location(name)],
        },
    )
    out = {}
    for key in thing_kind.properties:
        template = domain.property(key)
        out[key] = client.create(
            "Datastreams",
            {
                "name": f"{name} {template.name}",
                "description": template.description,
                "observationType": template.observation_type,
                "unitOfMeasurement": template.unit.as_sta(),
                "properties": {"domain": domain.name, "property": key},
                "Thing": {"@iot.id": thing_id},
                "Sensor": sensor,
                "ObservedProperty": template.observed_property(),
            },
        )
    return out


def add_observations(
    client: Client, datastream: int, rows: Sequence[tuple[datetime, float]]
) -> None:
    for i in range(0, len(rows), 500):
        body = [
            {
                "Datastream": {"@iot.id": datastream},
                "components": ["phenomenonTime", "result"],
                "dataArray": [
                    [t.astimezone(UTC).isoformat().replace("+00:00", "Z"), v]
                    for t, v in rows[i : i + 500]
                ],
            }
        ]
        resp = client.post("CreateObservations", body)
        assert resp.status_code == 201, resp.text
        assert not any("error" in link for link in resp.json()), resp.text


def kpi(client: Client, path: str, **params: str) -> Mapping[str, Any]:
    resp = client.get(f"/api/v1/kpis/{path}", params=params)
    assert resp.status_code == 200, resp.text
    body: Mapping[str, Any] = resp.json()
    return body


def kpi_error(client: Client, path: str, **params: str) -> str:
    resp = client.get(f"/api/v1/kpis/{path}", params=params)
    assert resp.status_code == 400, resp.text
    message: str = resp.json()["message"]
    return message
