"""Stores for the browser tests, filled through the service as a client would."""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import orjson

from citytwin.bus import Bus
from citytwin.plugins.manager import build_registry, build_storage, plugin_manager
from citytwin.service import Request, Service
from citytwin.settings import load_settings

OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
CENTRE = (8.06, 51.40)


def _stream(name: str, label: str, symbol: str, definition: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{label} at {name}",
        "observationType": OM,
        "unitOfMeasurement": {"name": symbol, "symbol": symbol, "definition": symbol},
        "Sensor": {"name": "s", "description": "s", "encodingType": "text/html", "metadata": "-"},
        "ObservedProperty": {"name": label, "definition": definition, "description": label},
    }


def sensor_thing(i: int, n: int, *, kind: str = "pm10") -> dict[str, Any]:
    """Thing ``i`` of ``n`` on a grid around the centre, with one Datastream."""
    side = max(1, math.ceil(math.sqrt(n)))
    lon = CENTRE[0] - 0.05 + 0.1 * (i % side) / side
    lat = CENTRE[1] - 0.03 + 0.06 * (i // side) / side
    labels = {
        "pm10": (
            "PM10",
            "ug/m3",
            "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved/pm10",
        ),
    }
    label, symbol, definition = labels[kind]
    return {
        "name": f"Sensor {i}",
        "description": "air quality",
        "properties": {"domain": "environment", "kind": "air_quality"},
        "Locations": [
            {
                "name": f"L{i}",
                "description": "-",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
            }
        ],
        "Datastreams": [_stream(f"{label} sensor {i}", label, symbol, definition)],
    }


async def _fill(
    settings_overrides: dict[str, Any], things: list[dict[str, Any]], hours: int
) -> None:
    settings = load_settings(settings_overrides, environ={})
    pm = plugin_manager()
    registry = build_registry(pm)
    storage = build_storage(pm, registry, settings)
    await storage.migrate()
    await storage.open()
    try:
        # the seeding acts as an all-powerful client, like the servers it fills (--insecure)
        service = Service(registry, storage, Bus(), max_batch_requests=10_000, auth=False)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        for start in range(0, len(things), 500):
            chunk = things[start : start + 500]
            requests = [
                {"id": str(k), "method": "post", "url": "Things", "body": t}
                for k, t in enumerate(chunk)
            ]
            await _call(service, "POST", "$batch", {"requests": requests})
        ids = [d["@iot.id"] for d in await _all(service, "Datastreams?$select=id&$top=1000")]
        for start in range(0, len(ids), 200):
            arrays = []
            for ds in ids[start : start + 200]:
                rows = []
                for h in range(hours, -1, -1):
                    t = (now - timedelta(hours=h)).isoformat().replace("+00:00", "Z")
                    rows.append([t, round(20 + 15 * math.sin((ds + h) / 5), 2)])
                arrays.append(
                    {
                        "Datastream": {"@iot.id": ds},
                        "components": ["phenomenonTime", "result"],
                        "dataArray": rows,
                    }
                )
            await _call(service, "POST", "CreateObservations", arrays)
    finally:
        await storage.close()


async def _call(service: Service, method: str, target: str, body: Any = None) -> Any:
    path, _, query = target.partition("?")
    resp = await service.handle(
        Request(
            method,
            "v1.1",
            path,
            query=parse_qsl(query),
            body=orjson.dumps(body) if body is not None else b"",
            content_type="application/json",
        )
    )
    if resp.status >= 400:
        raise RuntimeError(f"seeding failed: {method} {target}: {resp.body[:500]!r}")
    return orjson.loads(resp.body) if resp.body else None


async def _all(service: Service, path: str) -> list[Any]:
    out: list[Any] = []
    while path:
        page = await _call(service, "GET", path)
        out += page["value"]
        link = page.get("@iot.nextLink")
        path = link.split("/v1.1/", 1)[1] if link else ""
    return out


def fill(db: str, things: list[dict[str, Any]], *, hours: int = 24) -> None:
    """Create ``things`` (deep inserts) in the store at ``db``, with hourly Observations
    over the last ``hours`` for every Datastream. Runs in its own thread, since
    Playwright's synchronous API keeps an event loop running in the test's thread."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _fill({"db": db}, things, hours)).result()


def vehicle_thing(i: int) -> dict[str, Any]:
    """A ride-pooling vehicle with its state of charge."""
    return {
        "name": f"Shuttle {i}",
        "description": "ride-pooling vehicle",
        "properties": {"domain": "mobility", "kind": "vehicle"},
        "Locations": [
            {
                "name": f"Shuttle {i} position",
                "description": "-",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [CENTRE[0] + 0.01 * i, CENTRE[1]]},
            }
        ],
        "Datastreams": [
            _stream(f"State of charge shuttle {i}", "State of charge", "%", "urn:soc"),
        ],
    }


def wallbox_thing(topic: str) -> dict[str, Any]:
    """A wallbox that can be dimmed under §14a EnWG; the device listens on ``topic``."""
    return {
        "name": "Wallbox Ringstraße 4",
        "description": "11 kW wallbox",
        "properties": {"domain": "energy", "kind": "wallbox", "district": "Altstadt"},
        "Locations": [
            {
                "name": "Ringstraße 4",
                "description": "-",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [CENTRE[0] + 0.02, CENTRE[1] - 0.01]},
            }
        ],
        "Datastreams": [
            _stream(
                "Charging power wallbox", "Charging power", "kW", "https://w3id.org/obis#1-0:1.7.0"
            ),
        ],
        "TaskingCapabilities": [
            {
                "name": "Dim",
                "description": "Limit the charging power (§14a EnWG)",
                "taskingParameters": {
                    "type": "DataRecord",
                    "field": [
                        {
                            "name": "powerLimit",
                            "label": "Power limit",
                            "type": "Quantity",
                            "uom": {"code": "kW"},
                            "constraint": {"type": "AllowedValues", "interval": [[4.2, 11.0]]},
                        }
                    ],
                },
                "properties": {"driver": {"name": "mqtt", "topic": topic}},
                "Actuator": {
                    "name": "Wallbox controller",
                    "description": "-",
                    "encodingType": "text/html",
                    "metadata": "-",
                },
            }
        ],
    }
