"""Water KPIs on hand-made data; every expected figure is worked out in the comments."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from citytwin.domains.water.kpis import (
    Overflow,
    assess_nights,
    fill_ratio,
    night_minimums,
    overflow_days,
    overflow_events,
    per_year,
    weir_flow,
)

BERLIN = ZoneInfo("Europe/Berlin")
Q = timedelta(minutes=15)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_night_window_is_0200_to_0400_local_time() -> None:
    # January: Berlin is UTC+1, so local 02:00-04:00 is 01:00-03:00 UTC
    points = [
        (utc("2026-01-10T00:45"), 1.0),  # 01:45 local: before the window
        (utc("2026-01-10T01:00"), 6.0),  # 02:00 local: in
        (utc("2026-01-10T02:45"), 5.0),  # 03:45 local: in
        (utc("2026-01-10T03:00"), 2.0),  # 04:00 local: after the window
    ]
    assert night_minimums(points, BERLIN) == {date(2026, 1, 10): 5.0}
    # the same readings judged in UTC: 02:45 and 03:00 are in, 01:00 is not
    assert night_minimums(points, ZoneInfo("UTC")) == {date(2026, 1, 10): 2.0}
    # July: Berlin is UTC+2; 00:00 UTC is 02:00 local and falls in the window
    summer = [(utc("2026-07-10T00:00"), 3.0), (utc("2026-07-10T02:00"), 1.0)]
    assert night_minimums(summer, BERLIN) == {date(2026, 7, 10): 3.0}


def _profile(days: int, leak_from: datetime | None, leak: float) -> list[tuple[datetime, float]]:
    """15-minute flows from local midnight of 2026-01-05: 4 m3/h from 00:00 to 06:00 local,
    12 m3/h otherwise, plus ``leak`` from ``leak_from`` on."""
    first = datetime(2026, 1, 5, tzinfo=BERLIN).astimezone(UTC)
    out = []
    for i in range(days * 96):
        t = first + i * Q
        flow = 4.0 if t.astimezone(BERLIN).hour < 6 else 12.0
        if leak_from is not None and t >= leak_from:
            flow += leak
        out.append((t, flow))
    return out


def test_minimum_night_flow_without_a_leak() -> None:
    nights = assess_nights(_profile(8, None, 0), BERLIN, leak_factor=1.5, leak_ratio=0.45)
    assert [n.night for n in nights] == [date(2026, 1, 5) + timedelta(days=d) for d in range(8)]
    assert all(n.mnf == 4.0 for n in nights)
    # the first night has only 4 h of data before 04:00 (less than 18 of 24 h): no ratio
    assert nights[0].mean_flow is None
    assert nights[0].ratio is None
    # later nights: the 24 h before 04:00 hold 6 h at 4 and 18 h at 12 -> mean 10 m3/h
    assert nights[1].mean_flow == pytest.approx(10.0)
    assert nights[1].ratio == pytest.approx(0.4)  # 4 / 10, not above 0.45
    # a baseline needs three earlier nights: the 4th night has one (median of 4, 4, 4)
    assert [n.baseline for n in nights[:4]] == [None, None, None, 4.0]
    assert not any(n.leak_suspected for n in nights)


def test_minimum_night_flow_with_a_leak() -> None:
    # a 3 m3/h leak from 04:00 local on 2026-01-10 (the 6th day): the night of 01-11 is
    # the first with it
    leak_from = datetime(2026, 1, 10, 4, tzinfo=BERLIN).astimezone(UTC)
    nights = assess_nights(_profile(8, leak_from, 3.0), BERLIN, leak_factor=1.5, leak_ratio=0.45)
    by_day = {n.night: n for n in nights}
    before = by_day[date(2026, 1, 10)]
    assert before.mnf == 4.0
    assert not before.leak_suspected
    first = by_day[date(2026, 1, 11)]
    assert first.mnf == 7.0  # 4 + 3
    # previous nights 01-05 .. 01-10 (six, all 4.0): median 4; 7 > 1.5 * 4 = 6
    assert first.baseline == 4.0
    assert first.rise
    # 24 h before 04:00 on 01-11 are all leaking: mean 10 + 3 = 13; 7 / 13 = 0.538 > 0.45
    assert first.mean_flow == pytest.approx(13.0)
    assert first.ratio == pytest.approx(7 / 13)
    assert first.high_ratio
    assert first.leak_suspected
    last = by_day[date(2026, 1, 12)]
    # baseline of the last night: previous seven nights 01-05..01-11 = 4,4,4,4,4,4,7 -> 4
    assert last.baseline == 4.0
    assert last.rise
    assert last.leak_suspected
    # with a stricter rule neither test fires: 7 <= 2 * 4 and 0.538 <= 0.6
    strict = assess_nights(_profile(8, leak_from, 3.0), BERLIN, leak_factor=2.0, leak_ratio=0.6)
    assert not any(n.leak_suspected for n in strict)


def test_weir_flow_by_hand() -> None:
    # C_d 0.6, b = 2 m, h = 0.2 m: 0.6 * 2/3 * sqrt(19.62) * 2 * 0.2^1.5
    # = 0.4 * 4.4294469 * 2 * 0.0894427 = 3.5435575 * 0.0894427 = 0.3169454 m3/s
    assert weir_flow(0.2, 2.0, 0.6) == pytest.approx(0.3169454, rel=1e-6)
    assert weir_flow(0.0, 2.0, 0.6) == 0.0
    assert weir_flow(-0.3, 2.0, 0.6) == 0.0


def test_overflow_event_duration_and_volume_by_hand() -> None:
    t0 = utc("2026-06-01T10:00")
    levels = [0.8, 1.2, 1.09, 1.0, 0.9]  # crest 1.0: above at t1 and t2, back at t3
    events = overflow_events(
        [(t0 + i * Q, v) for i, v in enumerate(levels)], crest_m=1.0, width_m=2.0,
        discharge_coefficient=0.6,
    )  # fmt: skip
    assert len(events) == 1
    e = events[0]
    assert (e.start, e.end) == (t0 + Q, t0 + 3 * Q)
    assert e.duration_s == 1800.0
    # Q = k * h^1.5 with k = 0.6 * 2/3 * sqrt(2 * 9.81) * 2 = 3.5435575
    # Q(0.2) = 3.5435575 * 0.0894427 = 0.3169454; Q(0.09) = 3.5435575 * 0.027 = 0.0956761
    # trapezoids of 900 s: (0.3169454 + 0.0956761) / 2 * 900 + (0.0956761 + 0) / 2 * 900
    #   = 185.67968 + 43.05425 = 228.73393 m3
    assert e.volume_m3 == pytest.approx(228.73393, rel=1e-6)
    assert e.peak_level_m == 1.2
    assert not e.ongoing


def test_overflow_at_the_end_of_the_data_and_across_a_gap() -> None:
    t0 = utc("2026-06-01T10:00")
    k = 0.6 * 2 / 3 * math.sqrt(2 * 9.81) * 1.0  # b = 1 m
    readings = [
        (t0, 1.1),  # event 1 starts (h = 0.1)
        (t0 + Q, 1.1),
        (t0 + 3 * Q, 1.1),  # 30 min later: not a gap (limit 1 h)
        (t0 + 8 * Q, 1.1),  # 75 min later: a gap; event 1 ends at t0 + 3Q, event 2 starts
        (t0 + 9 * Q, 1.4),  # the data ends while overflowing
    ]
    events = overflow_events(readings, 1.0, 1.0, 0.6)
    assert [(e.start, e.end, e.ongoing) for e in events] == [
        (t0, t0 + 3 * Q, True),
        (t0 + 8 * Q, t0 + 9 * Q, True),
    ]
    q1 = k * 0.1**1.5
    assert events[0].volume_m3 == pytest.approx(q1 * 2700)  # constant Q over 45 min
    q4 = k * 0.4**1.5
    assert events[1].volume_m3 == pytest.approx((q1 + q4) / 2 * 900)
    assert overflow_events([(t0, 0.5), (t0 + Q, 1.0)], 1.0, 1.0, 0.6) == []  # at crest: none


def test_overflow_days_in_local_time() -> None:
    # 21:50-22:10 UTC on 1 June is 23:50-00:10 CEST: two local days
    a = Overflow(utc("2026-06-01T21:50"), utc("2026-06-01T22:10"), 1.0, 1.2, False)
    # ends exactly at local midnight (22:00 UTC): only 3 June counts
    b = Overflow(utc("2026-06-03T20:00"), utc("2026-06-03T22:00"), 1.0, 1.2, False)
    assert overflow_days([a, b], BERLIN) == {date(2026, 6, 1), date(2026, 6, 2), date(2026, 6, 3)}
    assert overflow_days([a], ZoneInfo("UTC")) == {date(2026, 6, 1)}
    # 3 overflow days in 30 days scaled to 365 days: 3 * 365 / 30 = 36.5
    assert per_year(3, utc("2026-06-01T00:00"), utc("2026-07-01T00:00")) == pytest.approx(36.5)


def test_fill_ratio() -> None:
    assert fill_ratio(2.5, 5.0) == 0.5
    assert fill_ratio(2.5, None) is None
    assert fill_ratio(2.5, 0) is None
