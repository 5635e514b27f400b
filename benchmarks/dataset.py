"""The benchmark city: its Things, Datastreams and a year of Observations.

Everything is deterministic: the same sizes give the same entities, times and values, so
runs can be compared. Observations are generated in time order across all Datastreams
(as sensors deliver them), so one Datastream's rows are spread over the table, not
clustered.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

YEAR_START = datetime(2024, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_MICROS = (YEAR_END - YEAR_START) // timedelta(microseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
YEAR_START_MICROS = (YEAR_START - EPOCH) // timedelta(microseconds=1)

RESULT_FLOAT = 2  # citytwin.model.values.RESULT_FLOAT: what the server stores for 12.5

MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
# (ObservedProperty, unit symbol, Sensor): a few kinds shared by all stations
KINDS = (
    ("air temperature", "Cel", "thermometer"),
    ("PM10", "ug/m3", "dust sensor"),
    ("NO2", "ug/m3", "gas sensor"),
    ("traffic count", "{vehicles}/h", "induction loop"),
    ("water level", "cm", "pressure probe"),
)


def thing_name(index: int) -> str:
    return f"bench station {index:05d}"


def micros_to_datetime(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Plan:
    """How ``observations`` Observations are spread over ``datastreams`` Datastreams."""

    observations: int
    datastreams: int

    def __post_init__(self) -> None:
        if self.datastreams < 1:
            raise ValueError("at least one Datastream is needed")
        if self.observations < self.datastreams:
            raise ValueError("at least one Observation per Datastream is needed")

    def count(self, ds_index: int) -> int:
        """Observations of the Datastream created ``ds_index``-th (0-based)."""
        base, extra = divmod(self.observations, self.datastreams)
        return base + (1 if ds_index < extra else 0)

    @property
    def max_count(self) -> int:
        return self.count(0)

    def step(self, ds_index: int) -> int:
        """Microseconds between two Observations of a Datastream (a year / its count)."""
        return YEAR_MICROS // self.count(ds_index)

    def offset(self, ds_index: int) -> int:
        """Where in its first step a Datastream's first Observation lies (staggered)."""
        return (ds_index * 7_919_000_003) % self.step(ds_index)

    def time(self, ds_index: int, k: int) -> int:
        """phenomenonTime (microseconds since 1970) of the k-th Observation."""
        return YEAR_START_MICROS + self.offset(ds_index) + k * self.step(ds_index)

    @staticmethod
    def value(ds_index: int, k: int) -> float:
        """A plausible reading in 0..100 with a daily cycle; about half are above 50."""
        phase = (ds_index % 24) / 24
        daily = math.sin(2 * math.pi * ((k / 24) + phase))
        noise = ((k * 2_654_435_761 + ds_index * 40_503) % 1000) / 1000 - 0.5
        return round(50 + 35 * daily + 20 * noise, 2)

    def rows(self, first_k: int = 1) -> Iterator[tuple[int, int, float]]:
        """(ds_index, time, value) in time order, from the ``first_k``-th Observation of
        each Datastream on (the 0th of each is posted through the API)."""
        counts = [self.count(d) for d in range(self.datastreams)]
        steps = [self.step(d) for d in range(self.datastreams)]
        starts = [YEAR_START_MICROS + self.offset(d) for d in range(self.datastreams)]
        value = self.value
        for k in range(first_k, self.max_count):
            for d in range(self.datastreams):
                if k < counts[d]:
                    yield d, starts[d] + k * steps[d], value(d, k)


# --- request bodies ---------------------------------------------------------------------------


def kind_of(ds_index: int) -> tuple[str, str, str]:
    return KINDS[ds_index % len(KINDS)]


def station_body(
    index: int, sensor_ids: dict[str, int], property_ids: dict[str, int]
) -> dict[str, Any]:
    """A Thing with its Location and one Datastream; Sensors and ObservedProperties are
    created by the first station and referenced by the others."""
    prop, unit, sensor = kind_of(index)
    lon = 7.9 + (index % 100) * 0.003
    lat = 51.35 + (index // 100 % 100) * 0.002
    sensor_json: dict[str, Any] = (
        {"@iot.id": sensor_ids[sensor]}
        if sensor in sensor_ids
        else {
            "name": sensor,
            "description": f"{sensor} used by the benchmark city",
            "encodingType": "text/html",
            "metadata": "https://example.org/sensors",
        }
    )
    property_json: dict[str, Any] = (
        {"@iot.id": property_ids[prop]}
        if prop in property_ids
        else {
            "name": prop,
            "description": f"{prop} measured in the benchmark city",
            "definition": f"https://example.org/properties/{prop.replace(' ', '-')}",
        }
    )
    return {
        "name": thing_name(index),
        "description": f"Measuring station {index} of the benchmark city",
        "properties": {"district": f"district {index % 12}", "owner": "city"},
        "Locations": [
            {
                "name": f"site of station {index}",
                "description": "benchmark site",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [lon, lat]},
            }
        ],
        "Datastreams": [
            {
                "name": f"{prop} at station {index}",
                "description": f"{prop} measured at station {index}",
                "observationType": MEASUREMENT,
                "unitOfMeasurement": {
                    "name": unit,
                    "symbol": unit,
                    "definition": f"http://unitsofmeasure.org/ucum#{unit}",
                },
                "Sensor": sensor_json,
                "ObservedProperty": property_json,
            }
        ],
    }


def datastream_body(
    name: str, sensor_id: int, property_id: int, observations: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A new Datastream for an existing Thing (posted to ``Things(x)/Datastreams``)."""
    body: dict[str, Any] = {
        "name": name,
        "description": "written by the benchmark",
        "observationType": MEASUREMENT,
        "unitOfMeasurement": {"name": "degree Celsius", "symbol": "Cel", "definition": "ucum:Cel"},
        "Sensor": {"@iot.id": sensor_id},
        "ObservedProperty": {"@iot.id": property_id},
    }
    if observations is not None:
        body["Observations"] = observations
    return body
