"""Energy KPIs on plain data, against figures computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from citytwin.domains.energy.kpis import peak_stats, shares, slot_profile
from citytwin.domains.energy.meters import (
    Increment,
    energy_between,
    intervals,
    rebucket,
    register_increments,
)

T0 = datetime(2026, 11, 21, tzinfo=UTC)
Q = timedelta(minutes=15)


def at(quarters: int) -> datetime:
    return T0 + quarters * Q


def total(readings: list[tuple[datetime, object, str | None]]) -> float:
    return sum(i.kwh for i in register_increments(readings).increments)


def test_plain_register_differences() -> None:
    # 100.0 -> 100.5 -> 101.25: 0.5 + 0.75 = 1.25
    assert total([(at(0), 100.0, None), (at(1), 100.5, None), (at(2), 101.25, None)]) == 1.25


def test_out_of_order_readings_are_sorted_by_time() -> None:
    readings: list[tuple[datetime, object, str | None]] = [
        (at(2), 101.25, None),
        (at(0), 100.0, None),
        (at(1), 100.5, None),
    ]
    reg = register_increments(readings)
    # in arrival order a naive difference would give -1.25 then +0.5; by time 0.5 + 0.75
    assert [i.kwh for i in reg.increments] == [0.5, 0.75]
    assert reg.resets == 0


def test_duplicates_are_counted_once() -> None:
    reg = register_increments(
        [(at(0), 10.0, None), (at(1), 11.0, None), (at(1), 11.0, None), (at(2), 12.0, None)]
    )
    assert reg.duplicates == 1
    assert [i.kwh for i in reg.increments] == [1.0, 1.0]


def test_reset_counts_the_new_value_never_negative() -> None:
    # 500 -> 501 (+1), reset: 0.4 (+0.4, not -500.6), 0.4 -> 1.0 (+0.6): 2.0 in all
    reg = register_increments(
        [(at(0), 500.0, None), (at(1), 501.0, None), (at(2), 0.4, None), (at(3), 1.0, None)]
    )
    assert reg.resets == 1
    assert [round(i.kwh, 6) for i in reg.increments] == [1.0, 0.4, 0.6]
    assert all(i.kwh >= 0 for i in reg.increments)


def test_swap_to_a_fresh_meter_counts_from_zero() -> None:
    # old meter A at 7,000.0 -> 7,000.3 (+0.3); new meter B first reads 0.2 (+0.2), then
    # 0.9 (+0.7): 1.2 kWh
    reg = register_increments(
        [
            (at(0), 7000.0, "A"),
            (at(1), 7000.3, "A"),
            (at(2), 0.2, "B"),
            (at(3), 0.9, "B"),
        ]
    )
    assert (reg.swaps, reg.resets) == (1, 0)
    assert round(sum(i.kwh for i in reg.increments), 6) == 1.2


def test_swap_to_a_used_meter_takes_its_first_reading_as_baseline() -> None:
    # meter B was used before and starts at 9,000: the gap is unknown and counts 0, then
    # 9,000 -> 9,002 (+2); A contributed 1: 3 kWh, not 9,001
    reg = register_increments(
        [(at(0), 10.0, "A"), (at(1), 11.0, "A"), (at(2), 9000.0, "B"), (at(3), 9002.0, "B")]
    )
    assert reg.swaps == 1
    assert sum(i.kwh for i in reg.increments) == 3.0


def test_swap_without_serial_shows_as_a_reset() -> None:
    reg = register_increments([(at(0), 7000.0, "A"), (at(1), 0.5, None), (at(2), 1.5, None)])
    # None keeps serial A, so the drop is a reset: 0.5 + 1.0
    assert (reg.resets, reg.swaps) == (1, 0)
    assert sum(i.kwh for i in reg.increments) == 1.5


def test_non_numeric_readings_are_ignored() -> None:
    reg = register_increments(
        [(at(0), 1.0, None), (at(1), "n/a", None), (at(2), float("nan"), None), (at(3), 2.0, None)]
    )
    assert reg.readings == 2
    assert [i.kwh for i in reg.increments] == [1.0]


def test_energy_between_takes_shares_of_increments_that_straddle_the_period() -> None:
    incs = [Increment(at(0), at(4), 4.0), Increment(at(4), at(5), 1.0)]
    # [at(2), at(5)): half of the first (2.0) and all of the second (1.0)
    assert energy_between(incs, at(2), at(5)) == 3.0
    assert energy_between(incs, at(5), at(9)) == 0.0


def test_intervals_lie_wholly_inside_the_period() -> None:
    # 00:07 .. 01:00 holds 00:15, 00:30 and 00:45 (00:00 starts before the period)
    got = intervals(T0 + timedelta(minutes=7), at(4))
    assert got == [at(1), at(2), at(3)]
    assert intervals(at(0), at(0) + timedelta(minutes=14)) == []


def test_rebucket_sums_per_hour() -> None:
    values = {at(0): 1.0, at(1): 2.0, at(4): 5.0}
    assert rebucket(values, T0, timedelta(hours=1)) == {at(0): 3.0, at(4): 5.0}


def test_local_and_balanced_shares() -> None:
    # three intervals (consumption, generation): night (2, 0), noon (1, 4), evening (3, 0)
    s = shares([(2.0, 0.0), (1.0, 4.0), (3.0, 0.0)])
    assert (s.consumption, s.generation, s.local) == (6.0, 4.0, 1.0)
    assert s.autarky == pytest.approx(1 / 6)  # only 1 of 6 kWh met in the same interval
    assert s.self_consumption == pytest.approx(1 / 4)
    assert s.autarky_balanced == pytest.approx(4 / 6)  # balanced it looks like 67 %
    assert s.self_consumption_balanced == 1.0


def test_shares_without_generation_or_consumption() -> None:
    s = shares([(2.0, 0.0)])
    assert s.autarky == 0.0
    assert s.self_consumption is None
    empty = shares([])
    assert empty.autarky is None
    assert empty.self_consumption is None
    # negative (inconsistent) figures count as 0
    assert shares([(-1.0, 2.0)]).local == 0.0


def test_rates_stay_between_0_and_1() -> None:
    s = shares([(0.5, 3.0), (4.0, 1.0), (0.0, 2.0)])
    # local = 0.5 + 1.0 + 0.0 = 1.5; consumption 4.5; generation 6.0
    assert s.autarky == pytest.approx(1.5 / 4.5)
    assert s.self_consumption == pytest.approx(1.5 / 6.0)


def test_peak_and_load_factor() -> None:
    st = peak_stats([100.0, 300.0, 200.0])
    assert (st.peak, st.mean) == (300.0, 200.0)
    assert st.load_factor == pytest.approx(2 / 3)
    assert peak_stats([]).peak is None
    assert peak_stats([-5.0, -1.0]).load_factor is None


def test_slot_profile_means_per_slot_of_the_day() -> None:
    day = timedelta(days=1)
    values = {at(0): 1.0, at(0) + day: 3.0, at(1): 5.0}
    assert slot_profile(values, ZoneInfo("UTC")) == [("00:00", 2.0), ("00:15", 5.0)]
    # in Berlin (UTC+1 in November) 00:00 UTC is the 01:00 slot
    assert slot_profile(values, ZoneInfo("Europe/Berlin"))[0] == ("01:00", 2.0)
