"""Environment KPIs on hand-made data: UBA class limits and DWD heat-day thresholds."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from citytwin.domains.environment.kpis import (
    Day,
    air_quality_index,
    count_heat,
    daily_extremes,
    pollutant_class,
)

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("pollutant", "concentration", "expected"),
    [
        # PM10: 0-9 / 10-27 / 28-54 / 55-90 / >90
        ("pm10", 0, 1), ("pm10", 9, 1), ("pm10", 10, 2), ("pm10", 27, 2), ("pm10", 28, 3),
        ("pm10", 54, 3), ("pm10", 55, 4), ("pm10", 90, 4), ("pm10", 91, 5),
        # hourly means are rounded half up to whole ug/m3 first
        ("pm10", 27.4, 2), ("pm10", 27.5, 3), ("pm10", 90.49, 4), ("pm10", 90.5, 5),
        # PM2.5: 0-5 / 6-15 / 16-30 / 31-50 / >50
        ("pm25", 5, 1), ("pm25", 6, 2), ("pm25", 15, 2), ("pm25", 16, 3), ("pm25", 30, 3),
        ("pm25", 31, 4), ("pm25", 50, 4), ("pm25", 51, 5),
        # NO2: 0-10 / 11-30 / 31-60 / 61-100 / >100
        ("no2", 10, 1), ("no2", 11, 2), ("no2", 30, 2), ("no2", 31, 3), ("no2", 60, 3),
        ("no2", 61, 4), ("no2", 100, 4), ("no2", 101, 5),
        # O3: 0-24 / 25-72 / 73-144 / 145-240 / >240
        ("o3", 24, 1), ("o3", 25, 2), ("o3", 72, 2), ("o3", 73, 3), ("o3", 144, 3),
        ("o3", 145, 4), ("o3", 240, 4), ("o3", 241, 5),
        # SO2 as NO2
        ("so2", 10, 1), ("so2", 11, 2), ("so2", 101, 5),
        # a small negative reading (instrument noise) is very good, not an error
        ("no2", -0.7, 1),
    ],
)  # fmt: skip
def test_class_limits(pollutant: str, concentration: float, expected: int) -> None:
    assert pollutant_class(pollutant, concentration) == expected


def test_the_worst_pollutant_decides() -> None:
    # PM10 30 -> 3, NO2 65 -> 4, O3 50 -> 2: class 4 "poor", decided by NO2
    index = air_quality_index({"pm10": 30, "no2": 65, "o3": 50})
    assert index is not None
    assert (index.value, index.label, index.pollutant) == (4, "poor", "no2")
    assert dict(index.classes) == {"pm10": 3, "no2": 4, "o3": 2}
    # a tie: PM2.5 20 -> 3 and PM10 40 -> 3; both are named, PM2.5 first
    tie = air_quality_index({"pm10": 40, "pm25": 20, "no2": 12})
    assert tie is not None
    assert (tie.value, tie.label, tie.pollutants) == (3, "moderate", ("pm25", "pm10"))
    assert air_quality_index({"pm10": 5}) is not None
    assert air_quality_index({"temperature": 20.0}) is None
    assert air_quality_index({}) is None


def test_labels() -> None:
    labels = [
        air_quality_index({"no2": v}).label  # type: ignore[union-attr]
        for v in (5, 20, 45, 80, 150)
    ]
    assert labels == ["very good", "good", "moderate", "poor", "very poor"]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_heat_day_thresholds() -> None:
    days = [
        Day(date(2026, 7, 1), 24.9, 12.0),  # nothing
        Day(date(2026, 7, 2), 25.0, 14.0),  # summer day exactly at 25.0
        Day(date(2026, 7, 3), 29.9, 20.0),  # summer day; tropical night exactly at 20.0
        Day(date(2026, 7, 4), 30.0, 19.9),  # summer and hot day; not tropical
        Day(date(2026, 7, 5), 34.0, 21.5),  # all three
    ]
    assert count_heat(days) == {"summer_days": 4, "hot_days": 2, "tropical_nights": 2}


def test_days_are_local_calendar_days() -> None:
    # July: Berlin is UTC+2; 22:30 UTC on 2 July is 00:30 local on 3 July
    readings = [
        (utc("2026-07-02T04:00"), 20.0),  # 06:00 local, 2 July
        (utc("2026-07-02T13:00"), 31.0),  # 15:00 local, 2 July
        (utc("2026-07-02T21:45"), 22.0),  # 23:45 local, 2 July
        (utc("2026-07-02T22:30"), 19.0),  # 00:30 local, 3 July
        (utc("2026-07-03T12:00"), 26.0),  # 14:00 local, 3 July
    ]
    days = daily_extremes(readings, readings, BERLIN)
    assert days == [Day(date(2026, 7, 2), 31.0, 20.0), Day(date(2026, 7, 3), 26.0, 19.0)]
    # 2 July: hot day (31 >= 30) and tropical night (min exactly 20.0); 3 July: summer day
    assert count_heat(days) == {"summer_days": 2, "hot_days": 1, "tropical_nights": 1}
    # in UTC the 22:30 reading belongs to 2 July, whose minimum becomes 19.0
    in_utc = daily_extremes(readings, readings, ZoneInfo("UTC"))
    assert in_utc == [Day(date(2026, 7, 2), 31.0, 19.0), Day(date(2026, 7, 3), 26.0, 26.0)]
    assert count_heat(in_utc)["tropical_nights"] == 1  # 3 July: one reading, 26.0
