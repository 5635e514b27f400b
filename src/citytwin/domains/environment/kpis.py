"""Environment KPIs: the air quality index of the Umweltbundesamt and the heat days of
the Deutscher Wetterdienst.

Air quality index (Luftqualitätsindex, LQI) of the Umweltbundesamt as revised in 2025
after the WHO Air Quality Guidelines 2021 (UBA, "Berechnungsgrundlagen
Luftqualitätsindex"; Pfäfflin et al. 2025, doi:10.60810/openumwelt-7990): every
pollutant's hourly mean in µg/m³ — PM10 and PM2.5 included; the index before 2025
used their hourly moving 24-hour means instead — falls into one of five classes, and
the worst class of the pollutants measured decides the station's index:

    class  label       PM10    PM2.5   NO2     O3       SO2
    1      very good   0-9     0-5     0-10    0-24     0-10
    2      good        10-27   6-15    11-30   25-72    11-30
    3      moderate    28-54   16-30   31-60   73-144   31-60
    4      poor        55-90   31-50   61-100  145-240  61-100
    5      very poor   >90     >50     >100    >240     >100

The limits are whole µg/m³, as UBA publishes the hourly means; a mean is rounded half
up to a whole µg/m³ before it is classified (27.4 is 27, class 2; 27.5 is 28, class 3).

Heat days (DWD climatological threshold days, "Kenntage"): summer day Tmax >= 25 °C,
hot day Tmax >= 30 °C, tropical night Tmin >= 20 °C, with Tmax and Tmin the extremes
of the air temperature over a calendar day in local time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from citytwin.domains.base import KpiQuery, KpiResult
from citytwin.domains.data import DomainData, Stream
from citytwin.domains.kpi_options import (
    DEFAULT_TZ,
    ceil_time,
    check_options,
    local_date,
    local_midnight,
    tz_option,
)

SETTINGS: dict[str, Any] = {"tz": DEFAULT_TZ}  # local time of heat days


@dataclass(frozen=True)
class Pollutant:
    key: str  # the PropertyTemplate key
    name: str
    limits: tuple[int, int, int, int]  # upper limits of classes 1 to 4, µg/m³


# in the order that names the deciding pollutant when several share the worst class
POLLUTANTS = (
    Pollutant("pm25", "PM2.5", (5, 15, 30, 50)),
    Pollutant("pm10", "PM10", (9, 27, 54, 90)),
    Pollutant("no2", "NO2", (10, 30, 60, 100)),
    Pollutant("o3", "O3", (24, 72, 144, 240)),
    Pollutant("so2", "SO2", (10, 30, 60, 100)),
)
BY_KEY = {p.key: p for p in POLLUTANTS}
LABELS = {1: "very good", 2: "good", 3: "moderate", 4: "poor", 5: "very poor"}
LABELS_DE = {1: "sehr gut", 2: "gut", 3: "mäßig", 4: "schlecht", 5: "sehr schlecht"}
HOUR = timedelta(hours=1)

SUMMER_DAY = 25.0  # Tmax >= 25 °C
HOT_DAY = 30.0  # Tmax >= 30 °C
TROPICAL_NIGHT = 20.0  # Tmin >= 20 °C
TEMPERATURE_STEP = timedelta(minutes=15)


# --- air quality index --------------------------------------------------------------------


def pollutant_class(pollutant: str, concentration: float) -> int:
    """The UBA class (1..5) of an hourly mean ``concentration`` (µg/m³) of ``pollutant``."""
    limits = BY_KEY[pollutant].limits
    whole = max(0, math.floor(concentration + 0.5))
    return 1 + sum(1 for limit in limits if whole > limit)


@dataclass(frozen=True)
class Index:
    value: int  # 1..5
    pollutants: tuple[str, ...]  # those in the worst class, in POLLUTANTS order
    classes: Mapping[str, int]  # each measured pollutant's class

    @property
    def label(self) -> str:
        return LABELS[self.value]

    @property
    def pollutant(self) -> str:
        return self.pollutants[0]


def air_quality_index(concentrations: Mapping[str, float]) -> Index | None:
    """The index of one station and hour from its pollutants' hourly means; None if no
    pollutant of the index was measured."""
    classes = {
        p.key: pollutant_class(p.key, concentrations[p.key])
        for p in POLLUTANTS
        if p.key in concentrations and math.isfinite(concentrations[p.key])
    }
    if not classes:
        return None
    worst = max(classes.values())
    return Index(worst, tuple(k for k, c in classes.items() if c == worst), classes)


async def air_quality(data: DomainData, query: KpiQuery) -> KpiResult:
    check_options(query.options, (), "air_quality")
    streams = await data.streams("environment", prop=BY_KEY, area=query.area)
    # hourly means on whole hours (whole hours in UTC are whole hours in CET/CEST), from
    # the first whole hour of the interval so that no earlier value enters
    means = await data.buckets(
        [s.id for s in streams], ceil_time(query.start, HOUR), query.end, HOUR, "avg"
    )
    stations: dict[int, list[Stream]] = {}
    for s in streams:
        stations.setdefault(s.thing_id, []).append(s)
    items: list[dict[str, Any]] = []
    by_hour: dict[datetime, list[tuple[Index, dict[str, Any]]]] = {}
    for group in stations.values():
        hours: dict[datetime, dict[str, float]] = {}
        for s in group:
            assert s.property is not None
            for t, value in means[s.id].items():
                hours.setdefault(t, {})[s.property] = value
        indices = [(t, air_quality_index(c), c) for t, c in sorted(hours.items())]
        known = [(t, i, c) for t, i, c in indices if i is not None]
        if not known:
            continue
        head = group[0]
        item: dict[str, Any] = {"id": head.thing_id, "name": head.thing_name}
        for t, index, _ in known:
            by_hour.setdefault(t, []).append((index, item))
        t, index, concentrations = known[-1]
        item.update(
            _index_doc(index),
            hour=t,
            concentrations={k: round(v, 2) for k, v in concentrations.items()},
            series=[{"time": t, "value": i.value} for t, i, _ in known],
        )
        items.append(item)
    series = []
    for t, found in sorted(by_hour.items()):
        worst, station = max(found, key=lambda f: f[0].value)
        series.append({"time": t, **_index_doc(worst), "station": station["name"]})
    latest = series[-1] if series else None
    return KpiResult(
        value=latest["value"] if latest else None,
        values={
            "hour": latest["time"] if latest else None,
            "label": latest["label"] if latest else None,
            "pollutant": latest["pollutant"] if latest else None,
            "stations": len(items),
        },
        units={"concentrations": "ug/m3"},
        series=series,
        items=items,
    )


def _index_doc(index: Index) -> dict[str, Any]:
    return {
        "value": index.value,
        "class": index.value,
        "label": index.label,
        "label_de": LABELS_DE[index.value],
        "pollutant": BY_KEY[index.pollutant].name,
        "pollutants": [BY_KEY[p].name for p in index.pollutants],
        "classes": {BY_KEY[k].name: c for k, c in index.classes.items()},
    }


# --- heat days ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    day: date  # local calendar day
    tmax: float
    tmin: float

    @property
    def summer_day(self) -> bool:
        return self.tmax >= SUMMER_DAY

    @property
    def hot_day(self) -> bool:
        return self.tmax >= HOT_DAY

    @property
    def tropical_night(self) -> bool:
        return self.tmin >= TROPICAL_NIGHT


def daily_extremes(
    maxima: Iterable[tuple[datetime, float]],
    minima: Iterable[tuple[datetime, float]],
    tz: ZoneInfo,
) -> list[Day]:
    """Tmax and Tmin per local calendar day from the maxima and minima of the readings
    (or from the readings themselves, passed as both), in day order."""
    highs: dict[date, float] = {}
    lows: dict[date, float] = {}
    for t, v in maxima:
        d = local_date(t, tz)
        highs[d] = max(v, highs.get(d, v))
    for t, v in minima:
        d = local_date(t, tz)
        lows[d] = min(v, lows.get(d, v))
    return [Day(d, highs[d], lows[d]) for d in sorted(highs.keys() & lows.keys())]


def count_heat(days: Iterable[Day]) -> dict[str, int]:
    summer = hot = tropical = 0
    for d in days:
        summer += d.summer_day
        hot += d.hot_day
        tropical += d.tropical_night
    return {"summer_days": summer, "hot_days": hot, "tropical_nights": tropical}


async def heat_days(data: DomainData, query: KpiQuery) -> KpiResult:
    check_options(query.options, ("tz",), "heat_days")
    tz = tz_option(query.options, SETTINGS)
    streams = await data.streams("environment", prop="air_temperature", area=query.area)
    ids = [s.id for s in streams]
    # quarter-hour extremes align with local days in every time zone in use
    origin = ceil_time(query.start, TEMPERATURE_STEP)
    maxima = await data.buckets(ids, origin, query.end, TEMPERATURE_STEP, "max") if ids else {}
    minima = await data.buckets(ids, origin, query.end, TEMPERATURE_STEP, "min") if ids else {}
    items: list[dict[str, Any]] = []
    area_days: dict[date, Day] = {}
    for s in streams:
        days = daily_extremes(maxima[s.id].items(), minima[s.id].items(), tz)
        if not days:
            continue
        for d in days:
            # the area's day: a threshold counts if some station reached it
            seen = area_days.get(d.day)
            area_days[d.day] = (
                d if seen is None else Day(d.day, max(d.tmax, seen.tmax), max(d.tmin, seen.tmin))
            )
        counts = count_heat(days)
        items.append(
            {
                "id": s.thing_id,
                "name": s.thing_name,
                "datastream": s.id,
                "value": counts["hot_days"],
                **counts,
                "days": len(days),
                "tmax": max(d.tmax for d in days),
                "tmin": min(d.tmin for d in days),
            }
        )
    ordered = [area_days[d] for d in sorted(area_days)]
    counts = count_heat(ordered)
    found = bool(ordered)
    return KpiResult(
        value=counts["hot_days"] if found else None,
        values={
            **(counts if found else dict.fromkeys(counts)),
            "days": len(ordered),
            "tz": tz.key,
        },
        units={"summer_days": "d", "hot_days": "d", "tropical_nights": "d", "tmax": "Cel"},
        series=[
            {
                "time": local_midnight(d.day, tz).astimezone(UTC),
                "day": d.day.isoformat(),
                "value": d.tmax,
                "tmax": d.tmax,
                "tmin": d.tmin,
                "summer_day": d.summer_day,
                "hot_day": d.hot_day,
                "tropical_night": d.tropical_night,
            }
            for d in ordered
        ],
        items=items,
    )
