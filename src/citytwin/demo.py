"""A small example district, created through the service exactly as a client would.

Air-quality stations, a PV system and a water tank in Arnsberg with the last 24 hours
of hourly values; deterministic, so every demo looks the same.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from citytwin.bus import Bus
from citytwin.plugins.manager import build_registry, build_storage, plugin_manager
from citytwin.service import Request, Service
from citytwin.settings import Settings

OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"

_SENSORS = {
    "pm10": (
        "PM10",
        "ug/m3",
        "microgram per cubic metre",
        "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved/pm10",
    ),
    "pm25": (
        "PM2.5",
        "ug/m3",
        "microgram per cubic metre",
        "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved/pm25",
    ),
    "no2": (
        "NO2",
        "ug/m3",
        "microgram per cubic metre",
        "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved/no2",
    ),
    "temp": (
        "Air temperature",
        "Cel",
        "degree Celsius",
        "https://smartdatamodels.org/dataModel.Weather/WeatherObserved/temperature",
    ),
    "pv": ("PV active power", "kW", "kilowatt", "https://w3id.org/obis#1-0:2.7.0"),
    "level": (
        "Tank level",
        "m",
        "metre",
        "https://smartdatamodels.org/dataModel.Water/WaterObserved/height",
    ),
}

_PLACES = [
    (
        "Air quality Neumarkt",
        (8.0644, 51.4036),
        ["pm10", "pm25", "no2", "temp"],
        {"domain": "environment"},
    ),
    ("Air quality Bahnhof", (8.0581, 51.3961), ["pm10", "pm25", "no2"], {"domain": "environment"}),
    ("Air quality Hüsten", (8.0247, 51.4219), ["pm10", "no2", "temp"], {"domain": "environment"}),
    ("PV Stadtwerke depot", (8.0712, 51.4102), ["pv"], {"domain": "energy", "peak_kw": 120}),
    ("Water tank Eichholz", (8.0490, 51.4150), ["level"], {"domain": "water", "height_m": 8}),
]


def _value(kind: str, hour: int, rng: random.Random) -> float:
    daylight = max(0.0, math.sin((hour - 6) / 12 * math.pi))
    base = {
        "pm10": 18 + 8 * math.sin(hour / 24 * 2 * math.pi) + rng.uniform(-3, 3),
        "pm25": 9 + 4 * math.sin(hour / 24 * 2 * math.pi) + rng.uniform(-2, 2),
        "no2": 22 + 14 * (1 if 7 <= hour <= 9 or 16 <= hour <= 18 else 0) + rng.uniform(-4, 4),
        "temp": 6 + 5 * daylight + rng.uniform(-0.5, 0.5),
        "pv": 120 * daylight * rng.uniform(0.6, 0.95),
        "level": 5.5 - 1.2 * daylight + rng.uniform(-0.05, 0.05),
    }[kind]
    return round(max(base, 0.0), 2)


async def _call(service: Service, method: str, path: str, body: Any = None) -> Any:
    req = Request(
        method,
        "v1.1",
        path,
        body=orjson.dumps(body) if body is not None else b"",
        content_type="application/json",
    )
    resp = await service.handle(req)
    if resp.status >= 400:
        raise RuntimeError(f"seeding failed: {method} {path}: {resp.body.decode()}")
    return orjson.loads(resp.body) if resp.body else None


async def seed(settings: Settings, hours: int = 24) -> int:
    """Create the example district unless the store already has Things; return #Observations."""
    pm = plugin_manager()
    registry = build_registry(pm)
    storage = build_storage(pm, registry, settings)
    await storage.migrate()
    await storage.open()
    try:
        service = Service(registry, storage, Bus())
        existing = await _call(service, "GET", "Things", None)
        if existing["value"]:
            return 0
        rng = random.Random(2024)
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        created = 0
        for name, (lon, lat), kinds, props in _PLACES:
            datastreams = []
            for kind in kinds:
                label, symbol, unit, definition = _SENSORS[kind]
                datastreams.append(
                    {
                        "name": f"{label} {name}",
                        "description": f"{label} measured at {name}",
                        "observationType": OM,
                        "unitOfMeasurement": {
                            "name": unit,
                            "symbol": symbol,
                            "definition": f"http://unitsofmeasure.org/ucum#{symbol}",
                        },
                        "Sensor": {
                            "name": f"{label} sensor",
                            "description": f"{label} sensor",
                            "encodingType": "text/html",
                            "metadata": "https://citytwin.example/sensors",
                        },
                        "ObservedProperty": {
                            "name": label,
                            "definition": definition,
                            "description": label,
                        },
                        "properties": {"kind": kind},
                    }
                )
            thing = await _call(
                service,
                "POST",
                "Things",
                {
                    "name": name,
                    "description": f"{name}, Arnsberg",
                    "properties": props,
                    "Locations": [
                        {
                            "name": name,
                            "description": f"{name}, Arnsberg",
                            "encodingType": "application/geo+json",
                            "location": {"type": "Point", "coordinates": [lon, lat]},
                        }
                    ],
                    "Datastreams": datastreams,
                },
            )
            ds = await _call(service, "GET", f"Things({thing['@iot.id']})/Datastreams", None)
            for stream in ds["value"]:
                kind = stream["properties"]["kind"]
                for h in range(hours, 0, -1):
                    t = now - timedelta(hours=h)
                    await _call(
                        service,
                        "POST",
                        f"Datastreams({stream['@iot.id']})/Observations",
                        {
                            "phenomenonTime": t.isoformat().replace("+00:00", "Z"),
                            "resultTime": t.isoformat().replace("+00:00", "Z"),
                            "result": _value(kind, t.hour, rng),
                        },
                    )
                    created += 1
        return created
    finally:
        await storage.close()
