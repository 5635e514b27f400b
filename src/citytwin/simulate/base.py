"""What every domain simulator provides to the runner.

A simulator is built for a :class:`~citytwin.simulate.city.City`, a seed and a start
time; the runner then calls :meth:`DomainSim.advance` with ever later times and sends
what comes back to the platform through its public interfaces (HTTP and MQTT), as real
sensors would. For the same city, seed, start and sequence of ``advance`` times (and
Tasks) a simulator returns exactly the same events: it draws its randomness only from
:func:`rng` and its own state, never from the clock or a global generator.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

Coordinates = tuple[float, float]  # (longitude, latitude), WGS 84


def rng(seed: int, *keys: object) -> random.Random:
    """A generator of its own for ``keys`` under ``seed``: the same on every run and every
    platform, and independent of how many numbers other keys drew."""
    digest = hashlib.blake2b(repr((seed, *keys)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


@dataclass(frozen=True)
class SimThing:
    """A Thing the simulator feeds: it becomes a SensorThings Thing with one Datastream per
    property (the domain's PropertyTemplate keys) and, if ``capabilities`` are given,
    TaskingCapabilities answered by the simulator over MQTT."""

    key: str  # unique and stable, e.g. "energy/household/17"
    name: str
    description: str
    domain: str
    kind: str  # a ThingKind key of the domain
    location: Mapping[str, Any]  # a GeoJSON geometry
    district: str
    neighbourhood: str
    properties: Mapping[str, Any] = field(default_factory=dict)  # kind-specific parameters
    datastreams: Sequence[str] = ()  # PropertyTemplate keys
    capabilities: Sequence[Capability] = ()


@dataclass(frozen=True)
class Capability:
    """A TaskingCapability of a simulated device; ``parameters`` is its SWE Common
    DataRecord of taskingParameters."""

    key: str  # unique within the Thing, e.g. "dim"
    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class Reading:
    """One Observation: ``value`` of ``prop`` of Thing ``thing`` at ``time``; sent
    ``delay`` after ``time`` (late deliveries), so a later reading may arrive first."""

    thing: str
    prop: str
    time: datetime
    value: Any
    delay: timedelta = timedelta(0)
    parameters: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Move:
    """Thing ``thing`` is at ``position`` from ``time`` on (a new Location, which the
    platform records as a HistoricalLocation)."""

    thing: str
    time: datetime
    position: Coordinates


Event = Reading | Move


@dataclass(frozen=True)
class TaskOutcome:
    """How a device answers a Task: status accepted, rejected, done or failed."""

    status: str
    message: str


class DomainSim(Protocol):
    domain: str

    def things(self) -> Sequence[SimThing]:
        """Every Thing this simulator feeds (the same list on every call)."""
        ...

    def advance(self, until: datetime) -> list[Event]:
        """Move the simulation on to ``until`` (exclusive) and return what happened since
        the last call, in time order of ``time``."""
        ...

    def task(
        self, thing: str, capability: str, parameters: Mapping[str, Any], at: datetime
    ) -> TaskOutcome:
        """A Task for ``thing``'s ``capability`` arrived at simulated time ``at``."""
        ...


def point(position: Coordinates) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [round(position[0], 7), round(position[1], 7)]}


def polygon(ring: Sequence[Coordinates]) -> dict[str, Any]:
    coords = [[round(x, 7), round(y, 7)] for x, y in ring]
    if coords[0] != coords[-1]:
        coords.append(coords[0])
    return {"type": "Polygon", "coordinates": [coords]}
