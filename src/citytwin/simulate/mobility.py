"""The simulated ride-pooling fleet of the district: battery-electric vans answering ride
requests, together with the stationary sensors of :mod:`.mobility_sensors` (traffic
counters, car parks, charging points).

The simulation runs in ticks of ten seconds from the start time. Ride requests arrive with
a daily demand curve (peaks in the morning and afternoon rush hours) between buildings;
each is assigned to the vehicle whose plan it lengthens least, which pools it with up to
two other requests when every passenger's ride stays within a small detour of the direct
route. Vehicles drive along the street grid (:meth:`City.route`) at 25-35 km/h, stop to
pick up and drop off, return to their depot when idle for a while and charge at the
depot's DC charging points when their state of charge is low. They report their position
every 20 s while moving, the passengers on board at each change, the odometer every
minute while moving and at each stop (so each passenger count covers whole odometer legs),
the state of charge every five minutes and one trip record per drop-off. Counts, odometer
and status are repeated every 15 minutes even when nothing changes.

Everything is drawn from :func:`rng` and the simulator's own state, which changes only
tick by tick: for the same seed, start and ``advance`` times the events are identical,
however the period is cut into calls.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from citytwin.model.values import floor_time
from citytwin.simulate.base import (
    Coordinates,
    Event,
    Move,
    Reading,
    SimThing,
    TaskOutcome,
    rng,
)
from citytwin.simulate.city import BLOCK_M, City
from citytwin.simulate.mobility_sensors import (
    SLOT,
    Charger,
    StreetSensors,
    bump,
    charger_thing,
    local_hour,
    sim_thing,
)

Node = tuple[int, int]

TICK = timedelta(seconds=10)
MOVE_EVERY = 2  # ticks between position reports while moving
ODOMETER_EVERY = 6  # ticks between odometer readings while moving
HEARTBEAT = timedelta(minutes=15)  # passengers and charging status even without change

CAPACITY = 6  # seats of the van
BATTERY_KWH = 77.0  # usable capacity of a mid-size electric van
KWH_PER_KM = 0.22
FLEET_CHARGER_KW = 50.0  # DC at the depots
LOW_SOC = 25.0  # go and charge below this
FULL_SOC = 90.0  # stop charging here
TOP_UP_SOC = 60.0  # an idle vehicle at its depot charges below this
MAX_REQUESTS = 3  # requests a vehicle serves at once (2nd and 3rd are pooled)
MAX_PICKUP_M = 2500.0
IDLE_RETURN = timedelta(minutes=20)
PICKUP_DWELL = timedelta(seconds=30)
DROPOFF_DWELL = timedelta(seconds=20)


def max_ride_m(direct_m: float) -> float:
    """The longest ride a passenger accepts for a direct distance: a small detour."""
    return direct_m * 1.4 + 400.0


def grid_m(a: Node, b: Node) -> float:
    return (abs(a[0] - b[0]) + abs(a[1] - b[1])) * BLOCK_M


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def demand(t: datetime) -> float:
    """Ride requests per vehicle and hour."""
    h, day = local_hour(t)
    if day < 5:
        return 0.15 + 2.3 * bump(h, 7.8, 1.3) + 1.2 * bump(h, 12.5, 2.5) + 2.6 * bump(h, 17.2, 1.8)
    return 0.25 + 1.6 * bump(h, 14.0, 4.0) + 0.8 * bump(h, 22.0, 1.5)


# --- the fleet ------------------------------------------------------------------------------


@dataclass
class Request:
    id: int
    time: datetime
    origin: Node
    destination: Node
    passengers: int
    direct_m: float
    pickup: datetime | None = None
    pickup_odo_m: float = 0.0
    pooled: bool = False


@dataclass
class Stop:
    kind: str  # "pickup", "dropoff" or "depot"
    node: Node
    request: Request | None = None


@dataclass
class Depot:
    name: str
    node: Node
    chargers: list[Charger]


@dataclass
class Vehicle:
    key: str
    name: str
    depot: Depot
    r: random.Random
    node: Node
    soc: float
    odometer_m: float
    path: list[Node] = field(default_factory=list)  # crossings ahead to the next stop
    offset_m: float = 0.0  # metres from ``node`` toward ``path[0]``
    speed: float = 8.0  # m/s
    stops: list[Stop] = field(default_factory=list)
    onboard: list[Request] = field(default_factory=list)
    dwell_until: datetime | None = None
    charger: Charger | None = None
    wants_charge: bool = False
    idle_since: datetime | None = None
    ticks_since_move: int = 0
    ticks_since_odometer: int = 0

    def requests(self) -> list[Request]:
        seen = {id(r): r for r in self.onboard}
        for s in self.stops:
            if s.request is not None:
                seen.setdefault(id(s.request), s.request)
        return list(seen.values())

    def load(self) -> int:
        return sum(r.passengers for r in self.onboard)

    def anchor(self) -> tuple[Node, float]:
        """Where a new plan starts: the crossing ahead if the vehicle is between two."""
        if self.path and self.offset_m > 0:
            return self.path[0], BLOCK_M - self.offset_m
        return self.node, 0.0


class MobilitySim:
    """See the module docstring; ``vehicles`` is the size of the pooling fleet."""

    domain = "mobility"

    def __init__(self, city: City, seed: int, start: datetime, vehicles: int = 12) -> None:
        if vehicles < 0:
            raise ValueError("vehicles must not be negative")
        self.city = city
        self.seed = seed
        self.start = start
        t0 = floor_time(start, TICK)
        self.now = t0 if t0 >= start else t0 + TICK  # the next tick to run
        self._minute = floor_time(self.now, timedelta(minutes=1))  # next minute of requests
        self._pending: list[Request] = []
        self._request_ids = 0
        self._events: list[Event] = []
        self.depots = self._depots()
        self.sensors = StreetSensors(city, seed, self.now, self._emit)
        self.chargers = [c for d in self.depots for c in d.chargers] + self.sensors.public
        self.vehicles = self._vehicles(vehicles)
        self._things = self._make_things()
        self._first = True

    # --- the DomainSim interface ---------------------------------------------------------

    def things(self) -> Sequence[SimThing]:
        return self._things

    def advance(self, until: datetime) -> list[Event]:
        while self.now < until:
            self._tick(self.now)
            self.now += TICK
        events, self._events = self._events, []
        events.sort(key=lambda e: e.time)
        return events

    def task(
        self, thing: str, capability: str, parameters: Mapping[str, Any], at: datetime
    ) -> TaskOutcome:
        return TaskOutcome("rejected", f"{thing} has no tasking capability {capability!r}")

    # --- one tick ------------------------------------------------------------------------

    def _tick(self, t: datetime) -> None:
        if self._first:
            self._first = False
            for v in self.vehicles:
                self._report_vehicle(v, t, soc=True, odometer=True, passengers=True)
                self._move(v, t)
            for c in self.chargers:
                self.sensors.set_status(c, c.status, t)
                self._emit(c.key, "power", t, round(c.power, 1))
        while self._minute <= t:
            self._pending += self._requests(self._minute)
            self._minute += timedelta(minutes=1)
        due = [r for r in self._pending if r.time <= t]
        self._pending = [r for r in self._pending if r.time > t]
        for request in due:
            self._dispatch(request)
        for v in self.vehicles:
            self._drive(v, t)
        if floor_time(t, SLOT) == t:
            self._slot(t)

    def _slot(self, t: datetime) -> None:
        heartbeat = floor_time(t, HEARTBEAT) == t
        for v in self.vehicles:
            self._report_vehicle(v, t, soc=True, odometer=heartbeat, passengers=heartbeat)
        self.sensors.slot(t)
        for c in self.chargers:
            if heartbeat and c.reported != t:
                self.sensors.set_status(c, c.status, t)
            self._emit(c.key, "power", t, round(c.power, 1))

    # --- requests and dispatch ---------------------------------------------------------

    def _requests(self, minute: datetime) -> list[Request]:
        r = rng(self.seed, "requests", minute.timestamp())
        rate = demand(minute) * len(self.vehicles) / 60
        out = []
        for _ in range(_poisson(r, rate)):
            origin = r.choice(self.city.buildings).node
            destination = r.choice(self.city.buildings).node
            if grid_m(origin, destination) < 400:
                continue
            self._request_ids += 1
            n = 1 if r.random() < 0.75 else 2 if r.random() < 0.8 else 3
            at = minute + timedelta(seconds=r.uniform(0, 60))
            out.append(
                Request(self._request_ids, at, origin, destination, n, grid_m(origin, destination))
            )
        return out

    def _dispatch(self, request: Request) -> None:
        best: tuple[float, Vehicle, list[Stop]] | None = None
        for v in self.vehicles:
            if v.charger is not None or v.wants_charge or v.soc < LOW_SOC + 5:
                continue
            if len(v.requests()) >= MAX_REQUESTS:
                continue
            found = self._insert(v, request)
            if found is not None and (best is None or found[0] < best[0]):
                best = (found[0], v, found[1])
        if best is None:
            return  # nobody can serve it; the request is turned down
        _, v, stops = best
        v.stops = stops
        v.idle_since = None
        self._plan(v)

    def _insert(self, v: Vehicle, new: Request) -> tuple[float, list[Stop]] | None:
        """The cheapest feasible plan with ``new`` inserted, with the metres it adds."""
        start, lead_m = v.anchor()
        current = [s for s in v.stops if s.kind != "depot"]
        old_m = _plan_m(start, current)
        best: tuple[float, list[Stop]] | None = None
        for i in range(len(current) + 1):
            for j in range(i, len(current) + 1):
                plan = [*current[:i], Stop("pickup", new.origin, new)]
                plan += [*current[i:j], Stop("dropoff", new.destination, new), *current[j:]]
                if not self._feasible(v, start, lead_m, plan, new):
                    continue
                added = _plan_m(start, plan) - old_m
                if best is None or added < best[0]:
                    best = (added, plan)
        if best is None:
            return None
        return best[0] + lead_m, best[1]

    def _feasible(
        self, v: Vehicle, start: Node, lead_m: float, plan: list[Stop], new: Request
    ) -> bool:
        """Seats suffice all along, pick-ups are near enough and every ride stays within
        its detour limit."""
        load = v.load()
        at, done = start, lead_m
        picked: dict[int, float] = {}
        for stop in plan:
            done += grid_m(at, stop.node)
            at = stop.node
            r = stop.request
            assert r is not None
            if stop.kind == "pickup":
                if done > (MAX_PICKUP_M if r is new else MAX_PICKUP_M + 1000.0):
                    return False
                load += r.passengers
                if load > CAPACITY:
                    return False
                picked[r.id] = done
            else:
                load -= r.passengers
                ridden = (
                    done - picked[r.id] if r.id in picked else v.odometer_m - r.pickup_odo_m + done
                )
                if ridden > max_ride_m(r.direct_m):
                    return False
        return True

    def _plan(self, v: Vehicle) -> None:
        """Route to the first stop, finishing the street segment the vehicle is on."""
        if not v.stops:
            v.path = []
            v.offset_m = 0.0
            return
        target = v.stops[0].node
        if v.path and v.offset_m > 0:
            ahead = v.path[0]
            v.path = [ahead, *self.city.route(ahead, target)[1:]]
        else:
            v.path = self.city.route(v.node, target)[1:]
        v.speed = v.r.uniform(25, 35) / 3.6

    # --- driving, stops and charging -----------------------------------------------------

    def _drive(self, v: Vehicle, t: datetime) -> None:
        if v.charger is not None:
            self._charge(v, t)
            return
        if v.dwell_until is not None and t < v.dwell_until:
            return
        v.dwell_until = None
        if not v.stops:
            self._idle(v, t)
            return
        step = v.speed * TICK.total_seconds()
        moved = 0.0
        while v.path and step > 0:
            left = BLOCK_M - v.offset_m
            if step >= left:
                v.node = v.path.pop(0)
                v.offset_m = 0.0
                step -= left
                moved += left
            else:
                v.offset_m += step
                moved += step
                step = 0.0
        v.odometer_m += moved
        v.soc = max(0.0, v.soc - moved / 1000 * KWH_PER_KM / BATTERY_KWH * 100)
        v.ticks_since_move += 1
        v.ticks_since_odometer += 1
        if not v.path:
            self._arrive(v, t)
            self._move(v, t)
            self._report_vehicle(v, t, odometer=True)
            return
        if v.ticks_since_move >= MOVE_EVERY:
            self._move(v, t)
        if v.ticks_since_odometer >= ODOMETER_EVERY:
            self._report_vehicle(v, t, odometer=True)

    def _arrive(self, v: Vehicle, t: datetime) -> None:
        stop = v.stops.pop(0)
        r = stop.request
        if stop.kind == "pickup" and r is not None:
            r.pickup = t
            r.pickup_odo_m = v.odometer_m
            v.onboard.append(r)
            if len(v.onboard) > 1:
                for other in v.onboard:
                    other.pooled = True
            v.dwell_until = t + PICKUP_DWELL
            self._report_vehicle(v, t, passengers=True)
        elif stop.kind == "dropoff" and r is not None:
            v.onboard.remove(r)
            v.dwell_until = t + DROPOFF_DWELL
            self._emit(v.key, "trip", t, self._trip(v, r, t))
            self._report_vehicle(v, t, passengers=True)
        self._plan(v)
        if not v.stops:
            v.idle_since = t

    def _trip(self, v: Vehicle, r: Request, t: datetime) -> dict[str, Any]:
        assert r.pickup is not None
        origin = self.city.node(*r.origin)
        district, hood = self.city.area_of(origin)
        return {
            "origin": [round(origin[0], 6), round(origin[1], 6)],
            "destination": [round(c, 6) for c in self.city.node(*r.destination)],
            "direct_km": round(r.direct_m / 1000, 3),
            "ride_km": round((v.odometer_m - r.pickup_odo_m) / 1000, 3),
            "pooled": r.pooled,
            "pickup": iso(r.pickup),
            "dropoff": iso(t),
            "passengers": r.passengers,
            "requested": iso(r.time),
            "origin_district": district,
            "origin_neighbourhood": hood,
        }

    def _idle(self, v: Vehicle, t: datetime) -> None:
        if v.idle_since is None:
            v.idle_since = t
        if v.soc < LOW_SOC:
            v.wants_charge = True
        if v.node == v.depot.node:
            if v.wants_charge or v.soc < TOP_UP_SOC:
                free = [c for c in v.depot.chargers if c.status == "AVAILABLE"]
                if free:
                    self._connect(v, free[0], t)
            return
        if v.wants_charge or t - v.idle_since >= IDLE_RETURN:
            v.stops = [Stop("depot", v.depot.node)]
            self._plan(v)

    def _connect(self, v: Vehicle, c: Charger, t: datetime) -> None:
        v.charger = c
        c.power = c.power_kw
        self.sensors.set_status(c, "CHARGING", t)
        self._emit(c.key, "power", t, round(c.power, 1))
        self._report_vehicle(v, t, soc=True)

    def _charge(self, v: Vehicle, t: datetime) -> None:
        c = v.charger
        assert c is not None
        kw = c.power_kw if v.soc < 80 else c.power_kw * 0.5  # the battery takes less when full
        c.power = kw
        v.soc = min(100.0, v.soc + kw * (TICK / timedelta(hours=1)) / BATTERY_KWH * 100)
        if v.soc >= FULL_SOC:
            v.charger = None
            v.wants_charge = False
            v.idle_since = t
            c.power = 0.0
            self.sensors.set_status(c, "AVAILABLE", t)
            self._emit(c.key, "power", t, 0.0)
            self._report_vehicle(v, t, soc=True)

    # --- reports -------------------------------------------------------------------------

    def _emit(
        self, thing: str, prop: str, t: datetime, value: Any, delay: timedelta = timedelta(0)
    ) -> None:
        self._events.append(Reading(thing, prop, t, value, delay))

    def _report_vehicle(
        self,
        v: Vehicle,
        t: datetime,
        *,
        soc: bool = False,
        odometer: bool = False,
        passengers: bool = False,
    ) -> None:
        if passengers:
            self._emit(v.key, "passengers", t, v.load())
        if soc:
            self._emit(v.key, "soc", t, round(v.soc, 1))
        if odometer:
            self._emit(v.key, "odometer", t, round(v.odometer_m / 1000, 3))
            v.ticks_since_odometer = 0

    def _move(self, v: Vehicle, t: datetime) -> None:
        self._events.append(Move(v.key, t, self.position(v)))
        v.ticks_since_move = 0

    def position(self, v: Vehicle) -> Coordinates:
        a = self.city.node(*v.node)
        if not v.path or v.offset_m <= 0:
            return a
        b = self.city.node(*v.path[0])
        f = v.offset_m / BLOCK_M
        return (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)

    # --- the things ------------------------------------------------------------------------

    def _depots(self) -> list[Depot]:
        out = []
        for i, district in enumerate(self.city.districts):
            node = (i * 8 + 4, 1)
            chargers = []
            for j in range(2):
                position = self.city.at(node[0] * BLOCK_M + 6 + 6 * j, node[1] * BLOCK_M + 6)
                key = f"mobility/charging_point/depot-{i + 1}-{j + 1}"
                chargers.append(Charger(key, node, position, FLEET_CHARGER_KW, fleet=True))
            out.append(Depot(f"Depot {district.name}", node, chargers))
        return out

    def _vehicles(self, n: int) -> list[Vehicle]:
        out = []
        for i in range(n):
            depot = self.depots[i % len(self.depots)]
            r = rng(self.seed, "vehicle", i)
            x0 = (depot.node[0] // 8) * 8
            node = (x0 + r.randint(0, 8), r.randint(0, self.city.rows))
            out.append(
                Vehicle(
                    key=f"mobility/vehicle/{i + 1:02d}",
                    name=f"Pooling van {i + 1:02d}",
                    depot=depot,
                    r=r,
                    node=node,
                    soc=r.uniform(30, 95),
                    odometer_m=r.uniform(8_000, 60_000) * 1000,
                )
            )
        return out

    def _make_things(self) -> list[SimThing]:
        out = [
            sim_thing(
                self.city,
                v.key,
                v.name,
                f"Battery-electric pooling van based at {v.depot.name}",
                "vehicle",
                self.city.node(*v.depot.node),
                capacity=CAPACITY,
                battery_kwh=BATTERY_KWH,
                depot=v.depot.name,
            )
            for v in self.vehicles
        ]
        out += self.sensors.things()
        out += [charger_thing(self.city, c) for c in self.chargers]
        return out


def _plan_m(start: Node, stops: Sequence[Stop]) -> float:
    total, at = 0.0, start
    for s in stops:
        total += grid_m(at, s.node)
        at = s.node
    return total


def _poisson(r: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; the means here are small)."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= r.random()
        if p <= limit:
            return k
        k += 1
