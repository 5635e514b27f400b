"""Water KPIs: minimum night flow per district metered area, combined sewer overflow
events, and tank levels.

The pure functions here take plain (time, value) data and are tested against
hand-computed cases; the ``async`` wrappers read the stored data through
:class:`~citytwin.domains.data.DomainData` and are what ``DOMAIN.kpis`` names.

Sources: the IWA water balance and its minimum-night-flow practice (night flow
02:00-04:00 in a district metered area reveals real losses, as legitimate use is
lowest then); the NRW ordinance SüwVO Abw, which asks for the duration, frequency and
volume of combined sewer overflows; the Poleni weir formula for a sharp-crested weir,
Q = C_d · 2/3 · sqrt(2 g) · b · h^1.5.
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from citytwin.domains.base import KpiQuery, KpiResult
from citytwin.domains.data import DomainData, Stream
from citytwin.domains.kpi_options import (
    DEFAULT_TZ,
    ceil_time,
    check_options,
    float_option,
    local_date,
    tz_option,
)

G = 9.81  # m/s², standard gravity rounded as in hydraulic practice
NIGHT_START = time(2)
NIGHT_END = time(4)
FLOW_STEP = timedelta(minutes=15)  # night flow works on 15-minute minima and means
REFERENCE = timedelta(hours=24)  # the mean flow a night is compared with
REFERENCE_COVER = 0.75  # share of those 24 h that must hold data
MIN_BASELINE_NIGHTS = 3
MAX_GAP = timedelta(hours=1)  # an overflow is not integrated across a longer data gap
DAYS_PER_YEAR = 365

SETTINGS: dict[str, Any] = {
    "tz": DEFAULT_TZ,  # local time of the night window and of overflow days
    "leak_factor": 1.5,  # night flow above this multiple of the recent median night flow
    "leak_ratio": 0.45,  # night flow above this share of the mean flow of the last 24 h
    "baseline_nights": 7,  # nights whose median is the baseline
    "discharge_coefficient": 0.6,  # C_d of a sharp-crested weir (Poleni), unless the
    # CSO Thing carries its own "discharge_coefficient"
}

Series = Sequence[tuple[datetime, float]]


# --- minimum night flow -------------------------------------------------------------------


@dataclass(frozen=True)
class Night:
    """One night of one DMA: its minimum night flow and how it was judged."""

    night: date  # the local date whose 02:00-04:00 window this is
    start: datetime  # the window's start (UTC)
    mnf: float  # m3/h
    baseline: float | None  # median MNF of the previous nights, m3/h
    mean_flow: float | None  # mean flow of the 24 h before the window's end, m3/h
    ratio: float | None  # mnf / mean_flow
    rise: bool  # mnf > leak_factor * baseline
    high_ratio: bool  # ratio > leak_ratio

    @property
    def leak_suspected(self) -> bool:
        return self.rise or self.high_ratio


def night_minimums(points: Iterable[tuple[datetime, float]], tz: ZoneInfo) -> dict[date, float]:
    """The minimum flow per local night: of the values whose time lies in [02:00, 04:00)
    local time in ``tz``, keyed by that local date, in date order."""
    out: dict[date, float] = {}
    for t, value in points:
        local = t.astimezone(tz)
        if NIGHT_START <= local.time() < NIGHT_END:
            day = local.date()
            out[day] = min(value, out.get(day, value))
    return dict(sorted(out.items()))


def _window(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, NIGHT_START, tzinfo=tz)
    end = datetime.combine(day, NIGHT_END, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def assess_nights(
    points: Series,
    tz: ZoneInfo,
    *,
    leak_factor: float,
    leak_ratio: float,
    baseline_nights: int = 7,
    means: Series | None = None,
    step: timedelta = FLOW_STEP,
) -> list[Night]:
    """Judge every night in ``points`` (flow values in time order, one per ``step``;
    ``means``, if given, are the per-step means that the mean flow is taken from, while
    ``points`` may then be per-step minima).

    A night is leak-suspected when either
    - its MNF exceeds ``leak_factor`` times the median MNF of the up to
      ``baseline_nights`` previous nights in the data (at least three are needed), or
    - its MNF exceeds ``leak_ratio`` times the mean flow of the 24 hours before the
      night window ends (judged only if values cover at least 18 of those hours).
    The first catches a leak that starts within the period; the second one that was
    already running, since water use at night is a small share of a day's use.
    """
    minimums = night_minimums(points, tz)
    reference = points if means is None else means
    times = [t for t, _ in reference]
    sums = list(itertools.accumulate((v for _, v in reference), initial=0.0))
    nights: list[Night] = []
    history: list[float] = []
    for day, mnf in minimums.items():
        start, end = _window(day, tz)
        recent = history[-baseline_nights:]
        baseline = statistics.median(recent) if len(recent) >= MIN_BASELINE_NIGHTS else None
        mean_flow = _mean_between(times, sums, end - REFERENCE, end, step)
        ratio = mnf / mean_flow if mean_flow else None
        nights.append(
            Night(
                night=day,
                start=start,
                mnf=mnf,
                baseline=baseline,
                mean_flow=mean_flow,
                ratio=ratio,
                rise=baseline is not None and mnf > leak_factor * baseline,
                high_ratio=ratio is not None and ratio > leak_ratio,
            )
        )
        history.append(mnf)
    return nights


def _mean_between(
    times: Sequence[datetime],
    sums: Sequence[float],
    start: datetime,
    end: datetime,
    step: timedelta,
) -> float | None:
    """Mean of the values with times in [start, end) (``sums`` are their prefix sums), if
    they cover at least REFERENCE_COVER of that time."""
    lo = bisect.bisect_left(times, start)
    hi = bisect.bisect_left(times, end)
    if hi == lo or (hi - lo) * step < REFERENCE_COVER * (end - start):
        return None
    return (sums[hi] - sums[lo]) / (hi - lo)


async def night_flow(data: DomainData, query: KpiQuery) -> KpiResult:
    check_options(query.options, ("tz", "leak_factor", "leak_ratio"), "night_flow")
    tz = tz_option(query.options, SETTINGS)
    factor = float_option(query.options, SETTINGS, "leak_factor", minimum=1.0, positive=False)
    ratio = float_option(query.options, SETTINGS, "leak_ratio")
    streams = await data.streams("water", kind="dma", prop="flow", area=query.area)
    # the nights judged are those whose window starts in the interval; their baseline
    # and mean flow may reach back before it, so that the last 24 hours alone show a leak
    baseline_nights = int(SETTINGS["baseline_nights"])
    history = timedelta(days=baseline_nights + 1)
    # 15-minute buckets on whole quarter hours, which align with local night hours (zone
    # offsets are whole quarter hours)
    origin = ceil_time(query.start - history, FLOW_STEP)
    ids = [s.id for s in streams]
    minima = await data.buckets(ids, origin, query.end, FLOW_STEP, "min") if ids else {}
    means = await data.buckets(ids, origin, query.end, FLOW_STEP, "avg") if ids else {}
    items: list[dict[str, Any]] = []
    per_night: dict[datetime, list[Night]] = {}
    for s in streams:
        # the minimum of each quarter hour finds the night minimum; the means give the
        # mean flow that the night is compared with
        nights = assess_nights(
            sorted(minima[s.id].items()),
            tz,
            leak_factor=factor,
            leak_ratio=ratio,
            baseline_nights=baseline_nights,
            means=sorted(means[s.id].items()),
        )
        nights = [n for n in nights if query.start <= n.start < query.end]
        if not nights:
            continue
        for n in nights:
            per_night.setdefault(n.start, []).append(n)
        latest = nights[-1]
        items.append(
            {
                "id": s.thing_id,
                "name": s.thing_name,
                "datastream": s.id,
                "dma": s.thing_properties.get("dma", s.thing_name),
                "value": latest.mnf,
                **_night_doc(latest),
                "nights": [_night_doc(n) for n in nights],
            }
        )
    suspected = sum(1 for item in items if item["leak_suspected"])
    series = [
        {
            "time": start,
            "value": round(sum(n.mnf for n in group), 6),
            "suspected": sum(1 for n in group if n.leak_suspected),
        }
        for start, group in sorted(per_night.items())
    ]
    return KpiResult(
        value=suspected if items else None,
        values={"dmas": len(items), "suspected": suspected, "tz": tz.key},
        units={"mnf": "m3/h", "baseline": "m3/h", "mean_flow": "m3/h", "series": "m3/h"},
        series=series,
        items=items,
    )


def _night_doc(n: Night) -> dict[str, Any]:
    return {
        "night": n.night.isoformat(),
        "time": n.start,
        "mnf": n.mnf,
        "baseline": n.baseline,
        "mean_flow": None if n.mean_flow is None else round(n.mean_flow, 6),
        "ratio": None if n.ratio is None else round(n.ratio, 6),
        "leak_suspected": n.leak_suspected,
        "reasons": [r for r, on in (("rise", n.rise), ("ratio", n.high_ratio)) if on],
    }


# --- combined sewer overflows -------------------------------------------------------------


@dataclass(frozen=True)
class Overflow:
    """One overflow of a CSO: from the first level reading above the crest to the first
    reading at or below it (or the last reading, when the data ends or pauses first)."""

    start: datetime
    end: datetime
    volume_m3: float
    peak_level_m: float
    ongoing: bool  # the data ended (or paused longer than MAX_GAP) while it overflowed

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()


def weir_flow(head_m: float, width_m: float, discharge_coefficient: float) -> float:
    """Flow over a sharp-crested weir in m3/s by Poleni:
    Q = C_d · 2/3 · sqrt(2 g) · b · h^1.5, with h the level above the crest (no flow at
    or below it)."""
    if head_m <= 0:
        return 0.0
    return discharge_coefficient * (2 / 3) * math.sqrt(2 * G) * width_m * math.pow(head_m, 1.5)


def overflow_events(
    points: Iterable[tuple[datetime, float]],
    crest_m: float,
    width_m: float,
    discharge_coefficient: float,
    max_gap: timedelta = MAX_GAP,
) -> list[Overflow]:
    """Overflow events in level readings (m, in time order). The volume integrates the
    weir flow of each reading over time by the trapezoidal rule from the event's first
    reading to its last (the closing reading, at or below the crest, contributes zero)."""
    events: list[Overflow] = []
    start: datetime | None = None
    last_t = datetime.min
    last_q = volume = peak = 0.0
    for t, level in points:
        q = weir_flow(level - crest_m, width_m, discharge_coefficient)
        if start is not None:
            if t - last_t > max_gap:
                events.append(Overflow(start, last_t, volume, peak, True))
                start = None
            else:
                volume += (last_q + q) / 2 * (t - last_t).total_seconds()
                if level <= crest_m:
                    events.append(Overflow(start, t, volume, peak, False))
                    start = None
                else:
                    peak = max(peak, level)
                    last_t, last_q = t, q
                continue
        if level > crest_m:
            start, last_t, last_q, volume, peak = t, t, q, 0.0, level
    if start is not None:
        events.append(Overflow(start, last_t, volume, peak, True))
    return events


def overflow_days(events: Iterable[Overflow], tz: ZoneInfo) -> set[date]:
    """Local calendar days on which some overflow ran (an event ending exactly at
    midnight does not count the day it ends on)."""
    days: set[date] = set()
    for e in events:
        first = local_date(e.start, tz)
        last = local_date(e.end - timedelta(microseconds=1), tz) if e.end > e.start else first
        day = first
        while day <= last:
            days.add(day)
            day += timedelta(days=1)
    return days


def per_year(days: int, start: datetime, end: datetime) -> float:
    """``days`` in the period [start, end) scaled to a year of 365 days."""
    return days * DAYS_PER_YEAR / ((end - start) / timedelta(days=1))


def _number(props: Mapping[str, Any], key: str) -> float | None:
    value = props.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


async def cso_events(data: DomainData, query: KpiQuery) -> KpiResult:
    check_options(query.options, ("tz", "discharge_coefficient"), "cso_events")
    tz = tz_option(query.options, SETTINGS)
    default_cd = float_option(query.options, SETTINGS, "discharge_coefficient")
    streams = await data.streams("water", kind="cso", prop="level", area=query.area)
    configured: list[tuple[Stream, float, float, float]] = []
    unconfigured = []
    for s in streams:
        crest = _number(s.thing_properties, "crest_m")
        width = _number(s.thing_properties, "weir_width_m")
        cd = _number(s.thing_properties, "discharge_coefficient") or default_cd
        if crest is None or width is None:
            unconfigured.append(s.thing_name)
        else:
            configured.append((s, crest, width, cd))
    points = await data.observations([c[0].id for c in configured], query.start, query.end)
    items: list[dict[str, Any]] = []
    all_events: list[Overflow] = []
    for s, crest, width, cd in configured:
        readings = [(p.time, float(p.result)) for p in points[s.id] if _numeric(p.result)]
        for e in overflow_events(readings, crest, width, cd):
            all_events.append(e)
            items.append(
                {
                    "id": s.thing_id,
                    "name": s.thing_name,
                    "datastream": s.id,
                    "start": e.start,
                    "end": e.end,
                    "duration_s": e.duration_s,
                    "volume_m3": round(e.volume_m3, 3),
                    "value": round(e.volume_m3, 3),
                    "peak_level_m": e.peak_level_m,
                    "ongoing": e.ongoing,
                }
            )
    items.sort(key=lambda i: (i["start"], i["id"]))
    days = overflow_days(all_events, tz)
    measured = bool(configured) and any(points[c[0].id] for c in configured)
    return KpiResult(
        value=len(all_events) if measured else None,
        values={
            "events": len(all_events) if measured else None,
            "duration_s": sum(e.duration_s for e in all_events) if measured else None,
            "volume_m3": round(sum(e.volume_m3 for e in all_events), 3) if measured else None,
            "overflow_days": len(days) if measured else None,
            "overflow_days_per_year": (
                round(per_year(len(days), query.start, query.end), 3) if measured else None
            ),
            "structures": len(configured),
            "unconfigured": unconfigured,
        },
        units={
            "duration_s": "s",
            "volume_m3": "m3",
            "overflow_days": "d",
            "overflow_days_per_year": "d/a",
        },
        items=items,
    )


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- tanks --------------------------------------------------------------------------------

LATEST_WINDOW = timedelta(days=1)


async def tank_levels(data: DomainData, query: KpiQuery) -> KpiResult:
    check_options(query.options, (), "tank_levels")
    streams = await data.streams("water", kind="tank", prop="level", area=query.area)
    ids = [s.id for s in streams]
    # the latest reading is nearly always within the last day of the period; read the
    # whole period only for tanks that were silent then
    recent = await data.observations(ids, max(query.start, query.end - LATEST_WINDOW), query.end)
    silent = [i for i in ids if not any(_numeric(p.result) for p in recent[i])]
    if silent and query.end - query.start > LATEST_WINDOW:
        recent.update(await data.observations(silent, query.start, query.end))
    items: list[dict[str, Any]] = []
    for s in streams:
        readings = [p for p in recent[s.id] if _numeric(p.result)]
        if not readings:
            continue
        last = readings[-1]
        height = _number(s.thing_properties, "height_m")
        level = float(last.result)
        items.append(
            {
                "id": s.thing_id,
                "name": s.thing_name,
                "datastream": s.id,
                "time": last.time,
                "value": level,
                "level_m": level,
                "height_m": height,
                "fill_ratio": fill_ratio(level, height),
            }
        )
    ratios = [i["fill_ratio"] for i in items if i["fill_ratio"] is not None]
    return KpiResult(
        value=min(ratios) if ratios else None,
        values={"tanks": len(items), "lowest_fill_ratio": min(ratios) if ratios else None},
        units={"level_m": "m", "height_m": "m", "fill_ratio": "1"},
        items=items,
    )


def fill_ratio(level_m: float, height_m: float | None) -> float | None:
    """Level as a share of the tank's height (1 = full), rounded to 4 places."""
    if height_m is None or height_m <= 0:
        return None
    return round(level_m / height_m, 4)
