"""Ride-pooling and charging KPIs as pure functions on plain data.

The fleet figures follow the KPI system of the FGSV working group 1.6.1 "Verkehrliche
Anforderungen an Ridepooling-Systeme" (Liebchen, Lehnert, Mehlert, Schiefelbusch 2020,
"Betriebliche Effizienzgrößen für Ridepooling-Systeme", doi:10.15771/1318):

- occupancy (Besetzungsgrad) = passenger-km / vehicle-km
- empty-km share (Leerkilometeranteil) = km without passengers / all km
- detour factor (Umwegfaktor) = ride distance / direct distance, here summed over the
  passengers of the trips (passenger-km ridden / direct passenger-km)
- pooling rate = share of trips that shared the vehicle with another trip

Kilometres come from odometer readings: each pair of consecutive readings of a vehicle is
a *leg* whose length is the odometer difference and whose passengers are those on board
at the leg's start (the latest passenger count at or before it). Readings are sorted by
time first, so out-of-order delivery changes nothing; a negative difference (odometer
reset or replaced) contributes no kilometres.

Charging-point utilisation is time-weighted from OCPI 2.2.1 EVSE status values
(Location -> EVSE -> Connector; status AVAILABLE, BLOCKED, CHARGING, INOPERATIVE,
OUTOFORDER, PLANNED, REMOVED, RESERVED, UNKNOWN) or 0/1 occupancy values: each value
holds until the next one, at most ``MAX_HOLD``.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeGuard

MAX_HOLD = timedelta(hours=1)  # a status or passenger count older than this is unknown
OCCUPIED = frozenset({"CHARGING", "BLOCKED"})  # a vehicle stands at the EVSE
IN_SERVICE = frozenset({"AVAILABLE", "RESERVED"}) | OCCUPIED  # the rest is out of service

Sample = tuple[datetime, Any]  # (phenomenonTime, result)


# --- kilometres -------------------------------------------------------------------------


@dataclass(frozen=True)
class Leg:
    start: datetime
    end: datetime
    km: float
    passengers: int | None  # None: no passenger count known at the leg's start


@dataclass(frozen=True)
class Km:
    vehicle_km: float = 0.0  # legs with a known passenger count
    passenger_km: float = 0.0
    empty_km: float = 0.0
    unknown_km: float = 0.0  # legs without a known passenger count (not in the ratios)

    def __add__(self, other: Km) -> Km:
        return Km(
            self.vehicle_km + other.vehicle_km,
            self.passenger_km + other.passenger_km,
            self.empty_km + other.empty_km,
            self.unknown_km + other.unknown_km,
        )

    @property
    def occupancy(self) -> float | None:
        return self.passenger_km / self.vehicle_km if self.vehicle_km > 0 else None

    @property
    def empty_share(self) -> float | None:
        return self.empty_km / self.vehicle_km if self.vehicle_km > 0 else None


def numeric(samples: Iterable[Sample]) -> list[tuple[datetime, float]]:
    """The finite numeric samples in time order (booleans are not numbers here)."""
    out = [
        (t, float(v))
        for t, v in samples
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ]
    out.sort(key=lambda s: s[0])
    return out


def legs(
    odometer: Iterable[Sample], passengers: Iterable[Sample], max_hold: timedelta = MAX_HOLD
) -> list[Leg]:
    """The legs between consecutive odometer readings (km), with the passengers on board."""
    readings = numeric(odometer)
    counts = numeric(passengers)
    times = [t for t, _ in counts]
    out = []
    for (t0, km0), (t1, km1) in itertools.pairwise(readings):
        if t1 == t0 or km1 < km0:
            continue
        i = bisect.bisect_right(times, t0) - 1
        on_board = None
        if i >= 0 and t0 - times[i] <= max_hold and counts[i][1] >= 0:
            on_board = round(counts[i][1])
        out.append(Leg(t0, t1, km1 - km0, on_board))
    return out


def km_of(legs_: Iterable[Leg]) -> Km:
    total = Km()
    for leg in legs_:
        if leg.passengers is None:
            total += Km(unknown_km=leg.km)
        else:
            total += Km(
                vehicle_km=leg.km,
                passenger_km=leg.km * leg.passengers,
                empty_km=leg.km if leg.passengers == 0 else 0.0,
            )
    return total


def bucket_of(t: datetime, start: datetime, size: timedelta) -> datetime:
    return start + ((t - start) // size) * size


def km_by_bucket(legs_: Iterable[Leg], start: datetime, size: timedelta) -> dict[datetime, Km]:
    """Kilometres per bucket; a leg counts in the bucket where it starts."""
    out: dict[datetime, Km] = {}
    for leg in legs_:
        b = bucket_of(leg.start, start, size)
        out[b] = out.get(b, Km()) + km_of([leg])
    return dict(sorted(out.items()))


# --- trips --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trip:
    time: datetime  # drop-off (the trip Observation's phenomenonTime)
    direct_km: float
    ride_km: float
    pooled: bool
    passengers: int
    district: str | None  # of the origin, when the record names it
    neighbourhood: str | None


def trip(time: datetime, result: Any) -> Trip | None:
    """A trip record ({"direct_km", "ride_km", "pooled", "passengers", ...}) or None when it
    lacks a usable distance or pooling flag."""
    if not isinstance(result, Mapping):
        return None
    direct = result.get("direct_km")
    ride = result.get("ride_km")
    pooled = result.get("pooled")
    n = result.get("passengers", 1)
    if not (_is_number(direct) and _is_number(ride)) or not isinstance(pooled, bool):
        return None
    if not _is_number(n) or n < 1:
        n = 1
    district = result.get("origin_district")
    hood = result.get("origin_neighbourhood")
    return Trip(
        time,
        float(direct),
        float(ride),
        pooled,
        int(n),
        district if isinstance(district, str) else None,
        hood if isinstance(hood, str) else None,
    )


def trip_in_area(t: Trip, area: str, vehicle_properties: Mapping[str, Any]) -> bool:
    """A trip counts toward the area of its origin; a record without the origin's area
    counts toward the vehicle's (its depot's) area."""
    if area == "city":
        return True
    level, _, name = area.partition(":")
    own = t.district if level == "district" else t.neighbourhood
    if t.district is None and t.neighbourhood is None:
        own = vehicle_properties.get(level)
    return own == name


@dataclass(frozen=True)
class Pooling:
    trips: int
    pooled: int

    @property
    def rate(self) -> float | None:
        return self.pooled / self.trips if self.trips else None


def pooling(trips: Iterable[Trip]) -> Pooling:
    ts = list(trips)
    return Pooling(len(ts), sum(1 for t in ts if t.pooled))


@dataclass(frozen=True)
class Detour:
    trips: int
    direct_pkm: float  # direct passenger-km
    ride_pkm: float  # passenger-km ridden
    mean_trip_factor: float | None
    max_trip_factor: float | None

    @property
    def factor(self) -> float | None:
        return self.ride_pkm / self.direct_pkm if self.direct_pkm > 0 else None


def detour(trips: Iterable[Trip]) -> Detour:
    """Detour over trips with a positive direct distance, weighted by their passengers."""
    ts = [t for t in trips if t.direct_km > 0]
    factors = [t.ride_km / t.direct_km for t in ts]
    return Detour(
        len(ts),
        sum(t.direct_km * t.passengers for t in ts),
        sum(t.ride_km * t.passengers for t in ts),
        sum(factors) / len(factors) if factors else None,
        max(factors) if factors else None,
    )


def trips_by_bucket(
    trips: Iterable[Trip], start: datetime, size: timedelta
) -> dict[datetime, list[Trip]]:
    out: dict[datetime, list[Trip]] = {}
    for t in trips:
        out.setdefault(bucket_of(t.time, start, size), []).append(t)
    return dict(sorted(out.items()))


# --- state of charge ----------------------------------------------------------------------


def latest(samples: Iterable[Sample]) -> tuple[datetime, float] | None:
    values = numeric(samples)
    return values[-1] if values else None


def mean_series(per_stream: Mapping[int, Mapping[datetime, float]]) -> list[dict[str, Any]]:
    """Per bucket, the mean over the streams that have a value in it."""
    by_time: dict[datetime, list[float]] = {}
    for values in per_stream.values():
        for t, v in values.items():
            by_time.setdefault(t, []).append(v)
    return [
        {"time": t, "value": sum(vs) / len(vs), "vehicles": len(vs)}
        for t, vs in sorted(by_time.items())
    ]


# --- charging points --------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    occupied: timedelta = timedelta(0)
    in_service: timedelta = timedelta(0)

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.occupied + other.occupied, self.in_service + other.in_service)

    @property
    def utilisation(self) -> float | None:
        return self.occupied / self.in_service if self.in_service else None


def state(result: Any) -> str | None:
    """'occupied', 'free' or 'out' (of service) for an EVSE status or a 0/1 value."""
    if isinstance(result, bool):
        return "occupied" if result else "free"
    if isinstance(result, (int, float)):
        return "occupied" if result > 0 else "free"
    if isinstance(result, str):
        status = result.strip().upper().replace("_", "")
        if status in OCCUPIED:
            return "occupied"
        return "free" if status in IN_SERVICE else "out"
    return None


def usage(
    samples: Iterable[Sample],
    start: datetime,
    end: datetime,
    bucket: timedelta | None = None,
    max_hold: timedelta = MAX_HOLD,
) -> tuple[Usage, dict[datetime, Usage]]:
    """Time occupied and in service within [start, end), in total and per bucket."""
    points = sorted(((t, state(v)) for t, v in samples), key=lambda s: s[0])
    total = Usage()
    buckets: dict[datetime, Usage] = {}
    for i, (t, st) in enumerate(points):
        if st is None:
            continue
        until = t + max_hold
        if i + 1 < len(points):
            until = min(until, points[i + 1][0])
        lo, hi = max(t, start), min(until, end)
        if hi <= lo or st == "out":
            continue
        for b_lo, b_hi, key in _split(lo, hi, start, bucket):
            part = Usage(b_hi - b_lo if st == "occupied" else timedelta(0), b_hi - b_lo)
            total += part
            if key is not None:
                buckets[key] = buckets.get(key, Usage()) + part
    return total, dict(sorted(buckets.items()))


def _split(
    lo: datetime, hi: datetime, origin: datetime, size: timedelta | None
) -> list[tuple[datetime, datetime, datetime | None]]:
    if size is None:
        return [(lo, hi, None)]
    out: list[tuple[datetime, datetime, datetime | None]] = []
    b = bucket_of(lo, origin, size)
    while b < hi:
        out.append((max(lo, b), min(hi, b + size), b))
        b += size
    return out


def _is_number(x: Any) -> TypeGuard[float]:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def hours(d: timedelta) -> float:
    return d.total_seconds() / 3600
