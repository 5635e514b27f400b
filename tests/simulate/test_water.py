"""The water simulator: deterministic, independent of how time is advanced, plausible,
and its tank pumps obey Tasks."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from citytwin.domains.water import DOMAIN
from citytwin.domains.water.kpis import assess_nights, night_minimums, overflow_events
from citytwin.simulate.base import Reading
from citytwin.simulate.city import City
from citytwin.simulate.water import WaterSim

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 5, 1, tzinfo=UTC)
CITY = City(seed=3)


def readings(sim: WaterSim, until: datetime) -> dict[tuple[str, str], list[tuple[datetime, float]]]:
    out: dict[tuple[str, str], list[tuple[datetime, float]]] = defaultdict(list)
    for e in sim.advance(until):
        assert isinstance(e, Reading)
        out[(e.thing, e.prop)].append((e.time, e.value))
    return out


@pytest.fixture(scope="module")
def summer() -> tuple[WaterSim, dict[tuple[str, str], list[tuple[datetime, float]]]]:
    sim = WaterSim(CITY, 11, START)
    return sim, readings(sim, START + timedelta(days=45))


def test_same_seed_same_events_and_other_seed_other_events() -> None:
    end = START + timedelta(days=2)
    a = WaterSim(CITY, 5, START).advance(end)
    assert a == WaterSim(CITY, 5, START).advance(end)
    assert a != WaterSim(CITY, 6, START).advance(end)


def test_one_step_or_many_give_the_same_events() -> None:
    end = START + timedelta(days=3)
    whole = WaterSim(CITY, 5, START).advance(end)
    sim = WaterSim(CITY, 5, START)
    parts = []
    t = START
    while t < end:
        t = min(end, t + timedelta(hours=7, minutes=13))
        parts.extend(sim.advance(t))
    assert parts == whole
    assert [e.time for e in whole] == sorted(e.time for e in whole)


def test_events_start_at_the_start_and_stop_before_until() -> None:
    sim = WaterSim(CITY, 5, START + timedelta(minutes=7))
    events = sim.advance(START + timedelta(hours=1))
    times = sorted({e.time for e in events})
    assert times == [START + timedelta(minutes=m) for m in (15, 30, 45)]
    assert sim.advance(START + timedelta(hours=1)) == []


def test_things_carry_kinds_and_properties_of_the_domain() -> None:
    sim = WaterSim(CITY, 5, START)
    things = sim.things()
    assert things == sim.things()
    assert len({t.key for t in things}) == len(things)
    kinds = defaultdict(list)
    for t in things:
        kind = DOMAIN.thing_kind(t.kind)
        assert t.domain == "water"
        assert tuple(t.datastreams) == kind.properties
        assert t.district in {d.name for d in CITY.districts}
        assert t.neighbourhood in {n.name for n in CITY.neighbourhoods}
        kinds[t.kind].append(t)
    assert len(kinds["dma"]) == len(CITY.neighbourhoods)
    assert len(kinds["tank"]) == 2
    assert len(kinds["cso"]) == 2
    assert len(kinds["rain_gauge"]) == 1
    for t in kinds["tank"]:
        assert t.properties["height_m"] > 0
        assert t.properties["area_m2"] > 0
        assert [c.key for c in t.capabilities] == ["pump"]
    for t in kinds["cso"]:
        assert t.properties["crest_m"] > 0
        assert t.properties["weir_width_m"] > 0


def test_tank_levels_stay_within_the_tank(summer) -> None:  # type: ignore[no-untyped-def]
    sim, data = summer
    for t in sim.things():
        if t.kind == "tank":
            levels = [v for _, v in data[(t.key, "level")]]
            assert min(levels) >= 0
            assert max(levels) <= t.properties["height_m"]
            assert max(levels) - min(levels) > 0.2 * t.properties["height_m"]  # it moves


def test_the_leaky_dma_has_a_higher_night_flow(summer) -> None:  # type: ignore[no-untyped-def]
    sim, data = summer
    dmas = [t for t in sim.things() if t.kind == "dma"]
    assert sim.leaky in {t.key for t in dmas}
    last_week = START + timedelta(days=38)

    def mnf_per_mean(key: str, mean: float) -> float:
        flows = [(t, v) for t, v in data[(key, "flow")] if t >= last_week]
        return statistics.median(night_minimums(flows, BERLIN).values()) / mean

    shares = {t.key: mnf_per_mean(t.key, t.properties["mean_demand_m3h"]) for t in dmas}
    leaky = shares.pop(sim.leaky)
    # the leak adds 40 % of the mean demand to a night flow of about a third of it
    assert leaky > max(shares.values()) + 0.3
    for t in dmas:
        nights = assess_nights(data[(t.key, "flow")], BERLIN, leak_factor=1.5, leak_ratio=0.45)
        flagged = [n for n in nights if n.leak_suspected]
        if t.key == sim.leaky:
            assert len(flagged) >= len(nights) - 6  # all from the leak's start (day 2-5)
            assert any(n.rise for n in flagged)  # the rise is seen when the leak starts
        else:
            assert flagged == []


def test_pressure_and_flow_are_plausible(summer) -> None:  # type: ignore[no-untyped-def]
    sim, data = summer
    for t in sim.things():
        if t.kind == "dma":
            assert all(v > 0 for _, v in data[(t.key, "flow")])
            assert all(1.0 < v < 7.0 for _, v in data[(t.key, "pressure")])


def test_overflows_happen_only_during_or_after_rain(summer) -> None:  # type: ignore[no-untyped-def]
    sim, data = summer
    rain = [t for t, v in data[("water/rain_gauge/1", "precipitation")] if v > 0]
    assert rain
    events = []
    for t in sim.things():
        if t.kind == "cso":
            levels = data[(t.key, "level")]
            events += overflow_events(
                levels, t.properties["crest_m"], t.properties["weir_width_m"], 0.6
            )
    assert events, "45 days of May and June bring some overflow"
    for e in events:
        # it rained during the six hours before the overflow began (or as it began)
        assert any(e.start - timedelta(hours=6) <= t <= e.start for t in rain), e


def test_the_leak_starts_when_told() -> None:
    sim = WaterSim(CITY, 5, START, leak_after=timedelta(days=1))
    data = readings(sim, START + timedelta(days=3))
    mean = next(t for t in sim.things() if t.key == sim.leaky).properties["mean_demand_m3h"]
    nights = night_minimums(data[(sim.leaky, "flow")], BERLIN)
    first, *_, last = nights.values()
    assert last - first == pytest.approx(0.4 * mean, rel=0.25)


def test_the_pump_follows_tasks() -> None:
    sim = WaterSim(CITY, 5, START)
    tank = next(t for t in sim.things() if t.kind == "tank")
    assert sim.task(tank.key, "pump", {"mode": "off"}, START).status == "done"
    data = readings(sim, START + timedelta(days=1))
    levels = [v for _, v in data[(tank.key, "level")]]
    assert all(b <= a for a, b in itertools.pairwise(levels))  # never filled
    assert levels[-1] < levels[0] - 1.0
    assert sim.task(tank.key, "pump", {"mode": "on"}, START).status == "done"
    data = readings(sim, START + timedelta(days=3))
    levels = [v for _, v in data[(tank.key, "level")]]
    assert max(levels) == tank.properties["height_m"]  # filled to the top, not beyond
    assert sim.task(tank.key, "pump", {"mode": "auto"}, START).status == "done"
    data = readings(sim, START + timedelta(days=5))
    assert max(v for _, v in data[(tank.key, "level")][8:]) < tank.properties["height_m"]
    assert sim.task(tank.key, "pump", {"mode": "fast"}, START).status == "rejected"
    assert sim.task(tank.key, "valve", {"mode": "on"}, START).status == "rejected"
    assert sim.task("water/dma/x", "pump", {"mode": "on"}, START).status == "rejected"
