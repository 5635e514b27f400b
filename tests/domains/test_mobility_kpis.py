"""Mobility KPIs on hand-made data; every expected figure is worked out in the comments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from citytwin.domains.mobility import kpis as k


def at(hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, 20, hh, mm, tzinfo=UTC)


# One vehicle's morning: an empty drive to the first pick-up (08:00-08:05), two passengers
# on board (08:05-08:10), a third boards, so the ride is pooled (08:10-08:20), everyone
# leaves at 08:20 and the van drives back empty (08:20-08:30).
ODOMETER = [(at(8), 100.0), (at(8, 5), 102.0), (at(8, 10), 105.0), (at(8, 20), 106.5),
            (at(8, 30), 110.5)]  # fmt: skip
PASSENGERS = [(at(7, 58), 0), (at(8, 5), 2), (at(8, 10), 3), (at(8, 20), 0)]


def test_legs_weight_odometer_differences_by_passengers_on_board() -> None:
    shuffled = [ODOMETER[3], ODOMETER[0], ODOMETER[4], ODOMETER[2], ODOMETER[1]]
    legs = k.legs(shuffled, list(reversed(PASSENGERS)))
    assert [(leg.start, leg.km, leg.passengers) for leg in legs] == [
        (at(8), 2.0, 0),
        (at(8, 5), 3.0, 2),
        (at(8, 10), 1.5, 3),
        (at(8, 20), 4.0, 0),
    ]
    km = k.km_of(legs)
    assert km.vehicle_km == pytest.approx(2 + 3 + 1.5 + 4)  # 10.5
    assert km.passenger_km == pytest.approx(0 * 2 + 2 * 3 + 3 * 1.5 + 0 * 4)  # 10.5
    assert km.empty_km == pytest.approx(2 + 4)
    assert km.occupancy == pytest.approx(10.5 / 10.5)
    assert km.empty_share == pytest.approx(6 / 10.5)


def test_a_period_with_only_an_empty_trip() -> None:
    km = k.km_of(k.legs([(at(9), 50.0), (at(9, 10), 53.5)], [(at(8, 50), 0)]))
    assert (km.vehicle_km, km.passenger_km, km.empty_km) == (3.5, 0.0, 3.5)
    assert km.occupancy == 0.0
    assert km.empty_share == 1.0


def test_odometer_reset_adds_no_km_and_unknown_passengers_stay_out_of_the_ratios() -> None:
    odometer = [(at(9), 500.0), (at(9, 5), 502.0), (at(9, 10), 0.5), (at(9, 15), 1.5)]
    # passengers are known from 09:05 only; the one before 07:58 is older than MAX_HOLD
    legs = k.legs(odometer, [(at(7, 0), 1), (at(9, 5), 1)])
    assert [(leg.km, leg.passengers) for leg in legs] == [(2.0, None), (1.0, 1)]
    km = k.km_of(legs)
    assert (km.vehicle_km, km.unknown_km, km.passenger_km) == (1.0, 2.0, 1.0)
    assert km.occupancy == 1.0


def test_non_numeric_readings_are_ignored() -> None:
    legs = k.legs([(at(9), 1.0), (at(9, 1), "x"), (at(9, 2), True), (at(9, 3), 2.0)],
                  [(at(9), 1)])  # fmt: skip
    assert [(leg.start, leg.end, leg.km) for leg in legs] == [(at(9), at(9, 3), 1.0)]


def test_km_by_bucket_counts_a_leg_where_it_starts() -> None:
    buckets = k.km_by_bucket(k.legs(ODOMETER, PASSENGERS), at(8), timedelta(minutes=10))
    assert list(buckets) == [at(8), at(8, 10), at(8, 20)]
    assert buckets[at(8)].vehicle_km == pytest.approx(2 + 3)
    assert buckets[at(8)].passenger_km == pytest.approx(2 * 3)
    assert buckets[at(8, 10)].occupancy == pytest.approx(3 * 1.5 / 1.5)
    assert buckets[at(8, 20)].empty_share == 1.0


def trip(direct: float, ride: float, pooled: bool, n: int = 1, **extra: object) -> object:
    return {"direct_km": direct, "ride_km": ride, "pooled": pooled, "passengers": n, **extra}


def test_pooling_rate_and_detour_factor() -> None:
    trips = [
        k.trip(at(8), trip(2.0, 2.0, False)),
        k.trip(at(8, 30), trip(3.0, 4.5, True, 2)),
        k.trip(at(9), trip(1.0, 1.2, True)),
    ]
    assert all(t is not None for t in trips)
    found = [t for t in trips if t is not None]
    p = k.pooling(found)
    assert (p.trips, p.pooled, p.rate) == (3, 2, pytest.approx(2 / 3))
    d = k.detour(found)
    assert d.ride_pkm == pytest.approx(2.0 + 2 * 4.5 + 1.2)  # 12.2
    assert d.direct_pkm == pytest.approx(2.0 + 2 * 3.0 + 1.0)  # 9.0
    assert d.factor == pytest.approx(12.2 / 9.0)
    assert d.mean_trip_factor == pytest.approx((1.0 + 1.5 + 1.2) / 3)
    assert d.max_trip_factor == pytest.approx(1.5)
    by_hour = k.trips_by_bucket(found, at(8), timedelta(hours=1))
    assert [len(v) for v in by_hour.values()] == [2, 1]


def test_no_trips_give_no_figures() -> None:
    assert k.pooling([]).rate is None
    assert k.detour([]).factor is None
    assert k.detour([]).mean_trip_factor is None
    # a zero direct distance cannot give a factor, so such a trip is left out
    zero = k.trip(at(8), trip(0.0, 0.3, False))
    assert zero is not None
    assert k.detour([zero]).trips == 0


@pytest.mark.parametrize(
    "record",
    [None, "trip", {"direct_km": 1.0, "ride_km": 1.0}, trip(1.0, "far", False),  # type: ignore[arg-type]
     {"direct_km": True, "ride_km": 1.0, "pooled": False}],
)  # fmt: skip
def test_unusable_trip_records_are_skipped(record: object) -> None:
    assert k.trip(at(8), record) is None


def test_trip_area_is_its_origin_or_else_the_vehicles() -> None:
    named = k.trip(
        at(8), trip(1, 1, False, origin_district="Hafen", origin_neighbourhood="Hafen-Süd")
    )
    bare = k.trip(at(8), trip(1, 1, False))
    assert named is not None
    assert bare is not None
    depot = {"district": "Altstadt", "neighbourhood": "Altstadt-Nord"}
    assert k.trip_in_area(named, "district:Hafen", depot)
    assert k.trip_in_area(named, "neighbourhood:Hafen-Süd", depot)
    assert not k.trip_in_area(named, "district:Altstadt", depot)
    assert k.trip_in_area(bare, "district:Altstadt", depot)
    assert not k.trip_in_area(bare, "district:Hafen", depot)
    assert k.trip_in_area(named, "city", depot)


def test_usage_weights_status_by_time_and_leaves_out_of_service_time_out() -> None:
    samples = [
        (at(9), "CHARGING"),  # holds until 10:00 (MAX_HOLD) although nothing follows
        (at(7, 30), "CHARGING"),  # before the period: occupied 08:00-08:15
        (at(8, 45), "OUTOFORDER"),  # 08:45-09:00 counts neither way
        (at(8, 15), "AVAILABLE"),  # free 08:15-08:45
    ]
    total, buckets = k.usage(samples, at(8), at(11), timedelta(hours=1))
    assert total.occupied == timedelta(minutes=15 + 60)
    assert total.in_service == timedelta(minutes=15 + 30 + 60)
    assert total.utilisation == pytest.approx(75 / 105)
    assert buckets[at(8)].utilisation == pytest.approx(15 / 45)
    assert buckets[at(9)].utilisation == 1.0
    assert at(10) not in buckets


def test_usage_of_occupied_flags_and_unknown_values() -> None:
    samples = [(at(8), 1), (at(8, 30), 0), (at(8, 40), {"odd": 1}), (at(8, 50), "Charging")]
    total, buckets = k.usage(samples, at(8), at(9))
    # 1 for 30 min, 0 for 10 min, the odd value for 10 min counts nowhere, CHARGING 10 min
    assert total.occupied == timedelta(minutes=30 + 10)
    assert total.in_service == timedelta(minutes=30 + 10 + 10)
    assert buckets == {}
    assert k.Usage().utilisation is None


def test_state_names_ocpi_statuses() -> None:
    assert [k.state(s) for s in ("CHARGING", "BLOCKED", "AVAILABLE", "RESERVED", "out_of_order",
                                 "INOPERATIVE", "UNKNOWN", "REMOVED", "PLANNED")] == [
        "occupied", "occupied", "free", "free", "out", "out", "out", "out", "out"
    ]  # fmt: skip
    assert (k.state(True), k.state(0), k.state(None)) == ("occupied", "free", None)


def test_latest_and_mean_series() -> None:
    assert k.latest([(at(9), 40.0), (at(8), 80.0), (at(8, 30), "x")]) == (at(9), 40.0)
    assert k.latest([]) is None
    series = k.mean_series({1: {at(8): 50.0, at(9): 60.0}, 2: {at(8): 70.0}})
    assert series == [
        {"time": at(8), "value": (50.0 + 70.0) / 2, "vehicles": 2},
        {"time": at(9), "value": 60.0, "vehicles": 1},
    ]
