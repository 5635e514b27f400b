"""The mobility simulator: deterministic, independent of how time is cut into calls, and
plausible (on the streets, within the city, batteries and seats within their limits)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from citytwin.domains.mobility import DOMAIN
from citytwin.simulate.base import Event, Move, Reading
from citytwin.simulate.city import BLOCK_M, City
from citytwin.simulate.mobility import CAPACITY, MobilitySim

CITY = City(seed=3, districts=2)
START = datetime(2026, 11, 19, 5, 0, 3, tzinfo=UTC)  # a Thursday, just before the rush hour
DAY = timedelta(hours=24)


def run(seed: int = 11, steps: list[timedelta] | None = None, **options: int) -> list[Event]:
    sim = MobilitySim(CITY, seed, START, **options)
    events: list[Event] = []
    t = START
    for step in steps or [DAY]:
        t += step
        events += sim.advance(t)
    return events


@pytest.fixture(scope="module")
def day() -> list[Event]:
    return run()


def test_same_seed_same_events_other_seed_other_events(day: list[Event]) -> None:
    assert run() == day
    assert run(seed=12) != day


def test_one_advance_or_many_give_the_same_events(day: list[Event]) -> None:
    uneven = [timedelta(seconds=s) for s in (1, 7, 13, 301, 3599)]
    steps = (
        uneven
        + [timedelta(minutes=37)] * 36
        + [DAY - sum(uneven, timedelta()) - timedelta(minutes=37 * 36)]
    )
    assert run(steps=steps) == day


def test_events_are_in_time_order_and_within_the_period(day: list[Event]) -> None:
    times = [e.time for e in day]
    assert times == sorted(times)
    assert times[0] >= START
    assert times[-1] < START + DAY


def test_things_are_valid_for_the_domain() -> None:
    sim = MobilitySim(CITY, 11, START, vehicles=5)
    things = sim.things()
    assert things == sim.things()
    assert len({t.key for t in things}) == len(things)
    kinds = defaultdict(int)
    districts = {d.name for d in CITY.districts}
    for t in things:
        kind = DOMAIN.thing_kind(t.kind)
        kinds[t.kind] += 1
        assert t.domain == "mobility"
        assert tuple(t.datastreams) == kind.properties
        assert t.district in districts
        assert t.neighbourhood.startswith(t.district)
    assert kinds["vehicle"] == 5
    assert kinds["traffic_counter"] >= 2
    assert kinds["parking"] >= 1
    assert kinds["charging_point"] >= 4
    parks = [t for t in things if t.kind == "parking"]
    assert all(isinstance(t.properties["capacity"], int) for t in parks)


def test_every_reading_names_a_thing_and_a_property_of_its_kind(day: list[Event]) -> None:
    sim = MobilitySim(CITY, 11, START)
    kinds = {t.key: DOMAIN.thing_kind(t.kind) for t in sim.things()}
    for e in day:
        assert e.thing in kinds
        if isinstance(e, Reading):
            assert e.prop in kinds[e.thing].properties
        else:
            assert kinds[e.thing].key == "vehicle"


def _on_street(lon: float, lat: float, tolerance_m: float = 0.02) -> bool:
    """On a street of the grid: an east-west or a north-south line through the crossings."""
    west, south = CITY.node(0, 0)
    east, north = CITY.node(CITY.cols, CITY.rows)
    eps = tolerance_m / 60_000  # degrees, a little more than the tolerance
    if not (west - eps <= lon <= east + eps and south - eps <= lat <= north + eps):
        return False
    dx_m = CITY.distance_m((lon, south), (west, south))
    dy_m = CITY.distance_m((west, lat), (west, south))
    off_x = abs(dx_m / BLOCK_M - round(dx_m / BLOCK_M)) * BLOCK_M
    off_y = abs(dy_m / BLOCK_M - round(dy_m / BLOCK_M)) * BLOCK_M
    return min(off_x, off_y) < tolerance_m


def test_vehicles_stay_on_the_street_grid_and_move_often(day: list[Event]) -> None:
    moves = [e for e in day if isinstance(e, Move)]
    assert moves
    assert all(_on_street(*m.position) for m in moves)
    by_vehicle = defaultdict(list)
    for m in moves:
        by_vehicle[m.thing].append(m)
    # while moving a vehicle reports at least every 30 s; at 35 km/h that is under 300 m
    for ms in by_vehicle.values():
        for a, b in itertools.pairwise(ms):
            if b.time - a.time <= timedelta(seconds=30):
                assert CITY.distance_m(a.position, b.position) <= 35 / 3.6 * 30 + 1


def test_values_are_plausible(day: list[Event]) -> None:
    readings = defaultdict(list)
    for e in day:
        if isinstance(e, Reading):
            readings[e.prop].append(e)
    assert all(0 <= r.value <= 100 for r in readings["soc"])
    assert all(0 <= r.value <= CAPACITY for r in readings["passengers"])
    assert max(r.value for r in readings["passengers"]) >= 2  # some pooling happened
    odometers = defaultdict(list)
    for r in readings["odometer"]:
        odometers[r.thing].append(r.value)
    for values in odometers.values():
        assert values == sorted(values)
    assert all(r.value in {"AVAILABLE", "CHARGING", "OUTOFORDER"} for r in readings["status"])
    assert all(0 <= r.value <= 50 for r in readings["power"])
    assert all(0 <= r.value <= 100 for r in readings["occupancy"])
    assert all(5 <= r.value <= 60 for r in readings["average_speed"])
    assert all(r.delay == timedelta(minutes=5) for r in readings["intensity"])


def test_trips_are_consistent(day: list[Event]) -> None:
    trips = [e for e in day if isinstance(e, Reading) and e.prop == "trip"]
    assert len(trips) > 50
    assert any(t.value["pooled"] for t in trips)
    assert not all(t.value["pooled"] for t in trips)
    for t in trips:
        v = t.value
        assert v["ride_km"] >= v["direct_km"] > 0
        assert v["pickup"] < v["dropoff"]
        assert v["dropoff"] == t.time.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert 1 <= v["passengers"] <= 3
        # trip records round coordinates to 6 decimals (at most 0.11 m here)
        assert _on_street(*v["origin"], tolerance_m=0.2)
        assert _on_street(*v["destination"], tolerance_m=0.2)
        # the origin lies in (or on the edge of) the district the record names
        ring = next(d.ring for d in CITY.districts if d.name == v["origin_district"])
        eps = 1e-5
        assert min(p[0] for p in ring) - eps <= v["origin"][0] <= max(p[0] for p in ring) + eps
        assert min(p[1] for p in ring) - eps <= v["origin"][1] <= max(p[1] for p in ring) + eps
        assert v["origin_neighbourhood"].startswith(v["origin_district"])


def test_demand_follows_the_rush_hours(day: list[Event]) -> None:
    trips = [e for e in day if isinstance(e, Reading) and e.prop == "trip"]
    # local time is UTC+1 in November: 06:00-09:00 UTC is the morning rush, 01:00-04:00 night
    rush = sum(1 for t in trips if 6 <= t.time.hour < 9)
    night = sum(1 for t in trips if 1 <= t.time.hour < 4)
    assert rush > 3 * night


def test_low_batteries_go_to_charge() -> None:
    sim = MobilitySim(CITY, 11, START, vehicles=2)
    for v in sim.vehicles:
        v.soc = 20.0
    events = sim.advance(START + timedelta(hours=3))
    socs = defaultdict(list)
    for e in events:
        if isinstance(e, Reading) and e.prop == "soc":
            socs[e.thing].append(e.value)
    assert all(max(values) >= 89 for values in socs.values())
    charging = [
        e for e in events if isinstance(e, Reading) and e.prop == "status" and e.value == "CHARGING"
    ]
    assert {e.thing for e in charging} & {c.key for d in sim.depots for c in d.chargers}


def test_history_starts_plausibly_at_any_time() -> None:
    for start in (datetime(2026, 7, 4, 13, 17, 59, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)):
        sim = MobilitySim(CITY, 5, start, vehicles=3)
        events = sim.advance(start + timedelta(minutes=20))
        assert events
        assert events[0].time >= start
        parked = [e.value for e in events if isinstance(e, Reading) and e.prop == "occupied_spots"]
        assert parked
        assert all(v >= 0 for v in parked)


def test_tasks_are_refused() -> None:
    sim = MobilitySim(CITY, 11, START, vehicles=1)
    outcome = sim.task("mobility/vehicle/01", "dim", {}, START)
    assert outcome.status == "rejected"
