"""What a domain package declares: its templates and its KPIs.

A domain (energy, mobility, water, environment, or one a city adds as a plugin) names the
ObservedProperties, Sensors and kinds of Thing it works with, and the KPIs it computes
from stored Observations. The conventions that tie stored entities to a domain are
written down in docs/domains.md: ``Thing.properties`` carries ``domain``, ``kind``,
``district`` and ``neighbourhood``; ``Datastream.properties`` carries ``domain`` and
``property`` (a :class:`PropertyTemplate` key).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from citytwin.domains.data import DomainData

OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
OM_OBSERVATION = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Observation"
OM_COUNT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CountObservation"
OM_TRUTH = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_TruthObservation"
UCUM = "http://unitsofmeasure.org/ucum#"


@dataclass(frozen=True)
class Unit:
    """A unit of measurement; ``symbol`` is its UCUM code."""

    name: str
    symbol: str

    def as_sta(self) -> dict[str, str]:
        return {"name": self.name, "symbol": self.symbol, "definition": UCUM + self.symbol}


@dataclass(frozen=True)
class PropertyTemplate:
    """An ObservedProperty with the unit and observation type its Datastreams use."""

    key: str
    name: str
    definition: str  # a stable URI (OBIS, Smart Data Models, QUDT)
    description: str
    unit: Unit
    observation_type: str = OM_MEASUREMENT

    def observed_property(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "definition": self.definition,
            "description": self.description,
            "properties": {"key": self.key},
        }


@dataclass(frozen=True)
class SensorTemplate:
    key: str
    name: str
    description: str
    metadata: str  # a data sheet or model description
    encoding_type: str = "text/html"

    def sensor(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "encodingType": self.encoding_type,
            "metadata": self.metadata,
            "properties": {"key": self.key},
        }


@dataclass(frozen=True)
class ThingKind:
    """A kind of Thing: which properties its Datastreams observe, with which Sensor."""

    key: str
    name: str
    description: str
    properties: tuple[str, ...]  # PropertyTemplate keys, one Datastream each
    sensor: str  # SensorTemplate key
    personal: bool = False  # its Datastreams carry personal data (household meters)
    open_data: bool = False  # its Things are published as open data (docs/security.md)


@dataclass(frozen=True)
class KpiQuery:
    """What a KPI is asked for: an area, a half-open period and an optional bucket."""

    area: str  # "city", "district:<name>" or "neighbourhood:<name>"
    start: datetime
    end: datetime
    bucket: timedelta | None = None
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass
class KpiResult:
    """A KPI's answer; see docs/domains.md for the JSON it becomes."""

    value: float | int | bool | None = None
    values: dict[str, Any] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    series: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    # how personal data of households the principal may not read entered the figures
    # (citytwin.domains.privacy); None where none did
    privacy: dict[str, Any] | None = None


KpiFunction = Callable[["DomainData", KpiQuery], Awaitable[KpiResult]]


@dataclass(frozen=True)
class Kpi:
    key: str
    title: str
    unit: str  # UCUM code of the headline value ("1" for ratios)
    description: str
    compute: KpiFunction
    default_bucket: timedelta | None = None


@dataclass(frozen=True)
class Domain:
    """A domain package. ``version`` follows semantic versioning: solution packages made
    for one major version install on any platform with the same major version."""

    name: str
    title: str
    version: str
    properties: tuple[PropertyTemplate, ...]
    sensors: tuple[SensorTemplate, ...]
    thing_kinds: tuple[ThingKind, ...]
    kpis: tuple[Kpi, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)  # KPI defaults a city may change

    def property(self, key: str) -> PropertyTemplate:
        return _by_key(self.properties, key, f"property of domain {self.name}")

    def sensor(self, key: str) -> SensorTemplate:
        return _by_key(self.sensors, key, f"sensor of domain {self.name}")

    def thing_kind(self, key: str) -> ThingKind:
        return _by_key(self.thing_kinds, key, f"kind of Thing of domain {self.name}")

    def kpi(self, key: str) -> Kpi:
        return _by_key(self.kpis, key, f"KPI of domain {self.name}")


class UnknownKey(KeyError):
    pass


T = TypeVar("T")


def _by_key(items: Sequence[T], key: str, what: str) -> T:
    for item in items:
        if getattr(item, "key", None) == key:
            return item
    raise UnknownKey(f"no {what} named {key!r}")
