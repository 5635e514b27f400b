"""The environment simulator: deterministic, independent of how time is advanced, with
valid and varied UBA classes and heat days in summer."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from citytwin.domains.environment import DOMAIN
from citytwin.domains.environment.kpis import air_quality_index, count_heat, daily_extremes
from citytwin.simulate.base import Reading
from citytwin.simulate.city import City
from citytwin.simulate.environment import EnvironmentSim

BERLIN = ZoneInfo("Europe/Berlin")
CITY = City(seed=3)
JUNE = datetime(2026, 6, 1, tzinfo=UTC)
JANUARY = datetime(2026, 1, 1, tzinfo=UTC)


def collect(sim: EnvironmentSim, until: datetime) -> list[Reading]:
    events = sim.advance(until)
    assert all(isinstance(e, Reading) for e in events)
    return events  # type: ignore[return-value]


def test_same_seed_same_events_and_other_seed_other_events() -> None:
    end = JUNE + timedelta(days=2)
    a = EnvironmentSim(CITY, 5, JUNE).advance(end)
    assert a == EnvironmentSim(CITY, 5, JUNE).advance(end)
    assert a != EnvironmentSim(CITY, 6, JUNE).advance(end)


def test_one_step_or_many_give_the_same_events() -> None:
    end = JUNE + timedelta(days=3)
    whole = EnvironmentSim(CITY, 5, JUNE).advance(end)
    sim = EnvironmentSim(CITY, 5, JUNE)
    parts = []
    t = JUNE
    while t < end:
        t = min(end, t + timedelta(hours=5, minutes=7))
        parts.extend(sim.advance(t))
    assert parts == whole
    assert [e.time for e in whole] == sorted(e.time for e in whole)


@pytest.mark.parametrize("stations", [3, 4, 5])
def test_things_carry_kinds_and_properties_of_the_domain(stations: int) -> None:
    sim = EnvironmentSim(CITY, 5, JUNE, stations=stations)
    things = sim.things()
    assert len({t.key for t in things}) == len(things)
    kinds = Counter(t.kind for t in things)
    assert kinds == {"air_quality_station": stations, "weather_station": len(CITY.districts)}
    for t in things:
        assert t.domain == "environment"
        assert tuple(t.datastreams) == DOMAIN.thing_kind(t.kind).properties
        assert t.neighbourhood in {n.name for n in CITY.neighbourhoods}
    stations_districts = {t.district for t in things if t.kind == "air_quality_station"}
    assert len(stations_districts) == len(CITY.districts)  # spread across the districts
    assert sim.task(things[0].key, "anything", {}, JUNE).status == "rejected"
    with pytest.raises(ValueError, match="stations"):
        EnvironmentSim(CITY, 5, JUNE, stations=0)


def test_air_quality_values_and_classes() -> None:
    events = collect(EnvironmentSim(CITY, 7, JANUARY), JANUARY + timedelta(days=30))
    hours: dict[tuple[str, datetime], dict[str, float]] = defaultdict(dict)
    for e in events:
        if e.prop != "air_temperature":
            assert e.time.minute == 0  # hourly means at full hours
            assert 0 < e.value < 500
            hours[(e.thing, e.time)][e.prop] = e.value
    assert all(set(c) == {"pm25", "pm10", "no2", "o3"} for c in hours.values())
    classes = Counter()
    for concentrations in hours.values():
        index = air_quality_index(concentrations)
        assert index is not None
        assert index.value in {1, 2, 3, 4, 5}
        classes[index.value] += 1
    assert len(classes) >= 3  # episodes and rush hours make several classes
    # traffic sites have more NO2 in the morning rush hour than at night
    traffic = next(k for k, _ in hours if k.endswith("/1"))
    rush = [c["no2"] for (k, t), c in hours.items() if k == traffic and t.hour == 6]  # 07 CET
    night = [c["no2"] for (k, t), c in hours.items() if k == traffic and t.hour == 2]
    assert sum(rush) / len(rush) > 2 * sum(night) / len(night)


def test_summer_has_heat_days_and_winter_none() -> None:
    def heat(start: datetime, days: int) -> dict[str, int]:
        events = collect(EnvironmentSim(CITY, 7, start), start + timedelta(days=days))
        temps = [(e.time, e.value) for e in events if e.thing == "environment/weather/1"]
        assert all(-30 < v < 42 for _, v in temps)
        return count_heat(daily_extremes(temps, temps, BERLIN))

    summer = heat(JUNE, 92)
    assert summer["summer_days"] >= 10
    assert summer["hot_days"] >= 1
    assert summer["tropical_nights"] >= 1
    assert heat(JANUARY, 31) == {"summer_days": 0, "hot_days": 0, "tropical_nights": 0}
