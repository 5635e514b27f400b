"""The stationary mobility sensors of the simulated district: traffic counters on main
streets, off-street car parks and public charging points (see :mod:`.mobility` for the
fleet that runs alongside them).

They report on five-minute boundaries from daily patterns in local time (Europe/Berlin)
with noise that depends only on the seed and the time, so history can be backfilled from
any start: a traffic count is stamped with the start of its five minutes and sent when
they are over (TrafficFlowObserved); car park occupancy is a snapshot; a public charging
point's sessions start with an arrival rate that follows the time of day and report their
OCPI EVSE status on every change.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from citytwin.domains.mobility import DOMAIN
from citytwin.model.values import floor_time
from citytwin.simulate.base import Coordinates, SimThing, point, rng
from citytwin.simulate.city import BLOCK_M, City

Node = tuple[int, int]
Emit = Callable[[str, str, datetime, Any, timedelta], None]

SLOT = timedelta(minutes=5)
HOUR = timedelta(hours=1)
LOCAL = ZoneInfo("Europe/Berlin")
PUBLIC_CHARGER_KW = 22.0  # AC in the streets
VEHICLE_LENGTH_KM = 0.0065  # effective length a loop detector sees (vehicle + loop)


# --- daily patterns -------------------------------------------------------------------------


def local_hour(t: datetime) -> tuple[float, int]:
    """Hour of the day (fractional) and weekday (0 = Monday) in local time."""
    lt = t.astimezone(LOCAL)
    return lt.hour + lt.minute / 60 + lt.second / 3600, lt.weekday()


def bump(h: float, centre: float, width: float) -> float:
    return math.exp(-(((h - centre) / width) ** 2))


def plateau(h: float, begin: float, end: float, edge: float) -> float:
    return 1 / (1 + math.exp(-(h - begin) / edge)) / (1 + math.exp(-(end - h) / edge))


def traffic_pattern(t: datetime) -> float:
    """Traffic as a share of the weekday peak hour."""
    h, day = local_hour(t)
    if day < 5:
        rush = 0.9 * bump(h, 7.7, 1.2) + 0.45 * bump(h, 12.5, 3.0) + 0.85 * bump(h, 16.8, 1.9)
        return min(1.0, 0.04 + rush)
    if day == 5:
        return 0.05 + 0.6 * bump(h, 12.5, 3.5)
    return 0.04 + 0.42 * bump(h, 15.0, 4.0)


def parking_pattern(t: datetime) -> float:
    """Share of a town-centre car park's spaces taken."""
    h, day = local_hour(t)
    if day < 5:
        return 0.08 + 0.72 * plateau(h, 8.5, 18.5, 0.7)
    if day == 5:
        return 0.1 + 0.82 * plateau(h, 9.5, 17.5, 0.8)
    return 0.06 + 0.25 * plateau(h, 11.0, 18.0, 1.0)


def charging_arrivals(t: datetime) -> float:
    """Vehicles arriving at a free public charging point per hour."""
    h, _ = local_hour(t)
    return 0.08 + 0.35 * bump(h, 10.0, 3.0) + 0.4 * bump(h, 18.0, 2.5)


def smooth_noise(seed: int, key: str, t: datetime, step: timedelta) -> float:
    """Noise in [-1, 1] that varies smoothly over ``step`` and depends only on the time."""
    k0 = floor_time(t, step)
    frac = (t - k0) / step
    n0 = rng(seed, key, "knot", k0.timestamp()).uniform(-1, 1)
    n1 = rng(seed, key, "knot", (k0 + step).timestamp()).uniform(-1, 1)
    return n0 + (n1 - n0) * (0.5 - 0.5 * math.cos(math.pi * frac))


# --- the sensors ----------------------------------------------------------------------------


@dataclass
class Charger:
    """One EVSE; the fleet's depot chargers and the public ones alike."""

    key: str
    node: Node
    position: Coordinates
    power_kw: float
    fleet: bool
    status: str = "AVAILABLE"
    power: float = 0.0
    session_end: datetime | None = None
    session_kw: float = 0.0
    reported: datetime | None = None  # when the status was last sent


@dataclass(frozen=True)
class Counter:
    key: str
    street: str
    position: Coordinates
    peak: float  # veh/h in the weekday peak hour, both directions
    lanes: int


@dataclass(frozen=True)
class CarPark:
    key: str
    name: str
    position: Coordinates
    capacity: int


class StreetSensors:
    """Traffic counters, car parks and public charging points; ``emit`` sends a Reading."""

    def __init__(self, city: City, seed: int, first: datetime, emit: Emit) -> None:
        self.city = city
        self.seed = seed
        self.emit = emit
        self.public = self._public_chargers(first)
        self.counters = self._counters()
        self.car_parks = self._car_parks()

    def set_status(self, c: Charger, status: str, t: datetime) -> None:
        c.status = status
        c.reported = t
        self.emit(c.key, "status", t, status, timedelta(0))

    def slot(self, t: datetime) -> None:
        for c in self.public:
            self._session(c, t)
        for counter in self.counters:
            self._count(counter, t)
        for park in self.car_parks:
            self._park(park, t)

    def _session(self, c: Charger, t: datetime) -> None:
        r = rng(self.seed, "charging", c.key, t.timestamp())
        if c.status != "AVAILABLE" and c.session_end is not None and c.session_end <= t:
            self.set_status(c, "AVAILABLE", t)
        if c.status == "AVAILABLE":
            if r.random() < 0.0003:  # a fault now and then, repaired within hours
                c.session_end = t + timedelta(hours=r.uniform(1, 5))
                self.set_status(c, "OUTOFORDER", t)
            elif r.random() < charging_arrivals(t) * (SLOT / HOUR):
                c.session_end = t + timedelta(minutes=r.uniform(40, 240))
                c.session_kw = r.choice((11.0, 11.0, 22.0))  # what the car's charger takes
                self.set_status(c, "CHARGING", t)
        charging = c.status == "CHARGING"
        c.power = min(c.power_kw, c.session_kw) * r.uniform(0.9, 1.0) if charging else 0.0

    def _count(self, counter: Counter, t: datetime) -> None:
        r = rng(self.seed, "traffic", counter.key, t.timestamp())
        noise = 1 + 0.08 * smooth_noise(self.seed, counter.key, t, timedelta(minutes=30))
        expected = counter.peak * traffic_pattern(t + SLOT / 2) * noise * (SLOT / HOUR)
        count = max(0, round(r.gauss(expected, math.sqrt(expected))))
        intensity = count * (HOUR / SLOT)
        self.emit(counter.key, "intensity", t, round(intensity), SLOT)
        if count == 0:
            self.emit(counter.key, "occupancy", t, 0.0, SLOT)
            return
        free = 48 + 3 * smooth_noise(self.seed, counter.key + "/speed", t, HOUR)
        load = min(1.2, intensity / (counter.peak * 1.15))
        speed = max(8.0, free * (1 - 0.45 * load**3) + r.gauss(0, 1))
        # share of time a lane's detector is covered: vehicles per hour x length / speed
        occupancy = min(100.0, intensity / counter.lanes * VEHICLE_LENGTH_KM / speed * 100)
        self.emit(counter.key, "occupancy", t, round(occupancy, 1), SLOT)
        self.emit(counter.key, "average_speed", t, round(speed, 1), SLOT)

    def _park(self, park: CarPark, t: datetime) -> None:
        r = rng(self.seed, "parking", park.key, t.timestamp())
        noise = 1 + 0.06 * smooth_noise(self.seed, park.key, t, timedelta(hours=2))
        share = parking_pattern(t) * noise
        occupied = min(park.capacity, max(0, round(park.capacity * share + r.uniform(-2, 2))))
        self.emit(park.key, "occupied_spots", t, occupied, timedelta(0))
        self.emit(park.key, "available_spots", t, park.capacity - occupied, timedelta(0))

    # --- placement -----------------------------------------------------------------------

    def _public_chargers(self, first: datetime) -> list[Charger]:
        r = rng(self.seed, "public chargers")
        out = []
        for i, district in enumerate(self.city.districts):
            candidates = [b for b in self.city.buildings if b.district == district.name]
            commercial = [b for b in candidates if b.use == "commercial"] or candidates
            for j, b in enumerate(r.sample(commercial, min(2, len(commercial)))):
                position = self.city.at(b.node[0] * BLOCK_M + 5, b.node[1] * BLOCK_M - 5)
                key = f"mobility/charging_point/public-{i + 1}-{j + 1}"
                c = Charger(key, b.node, position, PUBLIC_CHARGER_KW, fleet=False)
                begin = rng(self.seed, "charging", key, "start")
                if begin.random() < 0.3:  # some sessions are running when the history starts
                    c.status = "CHARGING"
                    c.session_kw = c.power = 11.0
                    c.session_end = first + timedelta(minutes=begin.uniform(10, 180))
                out.append(c)
        return out

    def _counters(self) -> list[Counter]:
        r = rng(self.seed, "counters")
        ring = self.city.streets[self.city.cols + 1 + self.city.rows // 2].name
        out = []
        for i in range(len(self.city.districts)):
            x = i * 8 + 4
            across = self.city.streets[x].name
            places = (
                (ring, (x + 0.5) * BLOCK_M, self.city.rows // 2 * BLOCK_M),
                (across, x * BLOCK_M, 9.5 * BLOCK_M),
            )
            for j, (street, xm, ym) in enumerate(places):
                key = f"mobility/traffic_counter/{i + 1}-{j + 1}"
                out.append(Counter(key, street, self.city.at(xm, ym), r.uniform(900, 1500), 2))
        return out

    def _car_parks(self) -> list[CarPark]:
        r = rng(self.seed, "car parks")
        out = []
        for i, district in enumerate(self.city.districts):
            candidates = [b for b in self.city.buildings if b.district == district.name]
            commercial = [b for b in candidates if b.use == "commercial"] or candidates
            b = r.choice(commercial)
            capacity = r.choice((180, 250, 320, 450))
            key = f"mobility/parking/{i + 1}"
            out.append(CarPark(key, f"Car park {district.name}", b.centre, capacity))
        return out

    def things(self) -> list[SimThing]:
        out = []
        for c in self.counters:
            out.append(
                sim_thing(
                    self.city,
                    c.key,
                    f"Traffic counter {c.street} ({c.key.rsplit('/', 1)[1]})",
                    f"Induction loops on {c.street}, both directions",
                    "traffic_counter",
                    c.position,
                    street=c.street,
                    lanes=c.lanes,
                    interval_s=SLOT.seconds,
                )
            )
        for p in self.car_parks:
            out.append(
                sim_thing(
                    self.city,
                    p.key,
                    p.name,
                    "Off-street car park with entry and exit counting",
                    "parking",
                    p.position,
                    capacity=p.capacity,
                )
            )
        return out


def charger_thing(city: City, c: Charger) -> SimThing:
    return sim_thing(
        city, c.key, f"Charging point {c.key.rsplit('/', 1)[1]}",
        "Fleet DC charging point" if c.fleet else "Public AC charging point",
        "charging_point", c.position, power_kw=c.power_kw,
        operator="fleet" if c.fleet else "public",
        connector="IEC_62196_T2_COMBO" if c.fleet else "IEC_62196_T2",
    )  # fmt: skip


def sim_thing(
    city: City, key: str, name: str, description: str, kind: str, at: Coordinates, **props: Any
) -> SimThing:
    """A Thing of ``kind`` at ``at``, with one Datastream per property of its kind."""
    district, hood = city.area_of(at)
    return SimThing(
        key=key,
        name=name,
        description=description,
        domain=DOMAIN.name,
        kind=kind,
        location=point(at),
        district=district,
        neighbourhood=hood,
        properties=props,
        datastreams=DOMAIN.thing_kind(kind).properties,
    )
