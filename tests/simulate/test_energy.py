"""The energy simulator: deterministic, plausible, and controllable by §14a dimming."""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from citytwin.domains.energy import DOMAIN
from citytwin.domains.energy.kpis import shares
from citytwin.domains.energy.meters import register_increments
from citytwin.simulate.base import Event, Reading
from citytwin.simulate.city import City
from citytwin.simulate.energy import EnergySim
from citytwin.simulate.energy_profiles import dynamisation, solar_elevation

WINTER = datetime(2026, 11, 20, tzinfo=UTC)
SUMMER = datetime(2026, 6, 18, tzinfo=UTC)
Q = timedelta(minutes=15)


@cache
def city() -> City:
    return City(districts=2)


def sim(seed: int = 3, start: datetime = WINTER, households: int = 60) -> EnergySim:
    return EnergySim(city(), seed, start, households=households, wallbox_share=0.3)


@cache
def run(seed: int = 3, start: datetime = WINTER, days: int = 2) -> tuple[Reading, ...]:
    events = sim(seed, start).advance(start + timedelta(days=days))
    return tuple(e for e in events if isinstance(e, Reading))


def of(events: tuple[Reading, ...], thing: str, prop: str) -> list[Reading]:
    return sorted((e for e in events if e.thing == thing and e.prop == prop), key=lambda e: e.time)


def test_same_seed_same_events_other_seed_other_events() -> None:
    assert run(3) == tuple(
        e for e in sim(3).advance(WINTER + timedelta(days=2)) if isinstance(e, Reading)
    )
    assert run(3) != run(4)


def test_one_step_or_many_give_the_same_events() -> None:
    s = sim()
    events: list[Event] = []
    t = WINTER
    while t < WINTER + timedelta(days=2):
        t += timedelta(minutes=50)  # not a multiple of 15 minutes on purpose
        events += s.advance(min(t, WINTER + timedelta(days=2)))
    assert tuple(events) == run()


def test_events_come_in_time_order_and_before_until() -> None:
    times = [e.time for e in run()]
    assert times == sorted(times)
    assert times[-1] < WINTER + timedelta(days=2)


def test_things_carry_kinds_and_properties_of_the_domain() -> None:
    things = sim().things()
    kinds = {t.key: t for t in DOMAIN.thing_kinds}
    assert {t.kind for t in things} == set(kinds)
    assert len([t for t in things if t.kind == "household"]) == 60
    assert len([t for t in things if t.kind == "transformer"]) == 2  # one per district
    for t in things:
        assert t.domain == "energy"
        assert set(t.datastreams) <= set(kinds[t.kind].properties)
        assert t.district in {d.name for d in city().districts}
        if t.kind == "transformer":
            assert t.properties["rated_kva"] in (160, 250, 400, 630, 800, 1000)
        if t.kind in ("heat_pump", "wallbox"):
            assert t.properties["rated_kw"] >= 4.2
            assert [c.key for c in t.capabilities] == ["dim"]
    prosumers = [t for t in things if t.kind == "household" and "energy_export" in t.datastreams]
    assert 0.05 < len(prosumers) / 60 < 0.4  # about 20 %
    assert len({t.key for t in things}) == len(things)


def test_dynamisation_polynomial() -> None:
    # F(1) = -3.92e-10 + 3.2e-7 - 7.02e-5 + 2.1e-3 + 1.24 = 1.242030119608
    assert dynamisation(datetime(2026, 1, 1).date()) == pytest.approx(1.242030119608)
    # F(182) at 1 July: summer minimum near 0.8
    t = 182
    expected = -3.92e-10 * t**4 + 3.2e-7 * t**3 - 7.02e-5 * t**2 + 2.1e-3 * t + 1.24
    assert dynamisation(datetime(2026, 7, 1).date()) == pytest.approx(expected)
    assert 0.78 < expected < 0.82


def test_solar_elevation_at_noon_on_the_solstices() -> None:
    # 51.4 N: 90 - 51.4 + 23.44 = 62.0 in June, 90 - 51.4 - 23.44 = 15.2 in December,
    # at true solar noon (about 11:30 UTC at 8 E)
    assert solar_elevation(51.4, 8.06, datetime(2026, 6, 21, 11, 30, tzinfo=UTC)) == (
        pytest.approx(62.0, abs=0.3)
    )
    assert solar_elevation(51.4, 8.06, datetime(2026, 12, 21, 11, 30, tzinfo=UTC)) == (
        pytest.approx(15.2, abs=0.3)
    )
    assert solar_elevation(51.4, 8.06, datetime(2026, 6, 21, 23, 30, tzinfo=UTC)) < 0


def test_household_daily_consumption_is_plausible() -> None:
    s = sim()
    events = run()
    plain = [
        t.key
        for t in s.things()
        if t.kind == "household"
        and t.key not in (s.reset_meter, s.swap_meter)
        and not any(d.meter.key == t.key for d in s.devices.values())
    ]
    per_day = []
    for key in plain:
        power = of(events, key, "power")
        per_day.append(sum(max(p.value, 0) for p in power) * 0.25 / 2)
    # 1,500-5,000 kWh/a is 4-14 kWh a day on average, more in November
    assert all(1 < d < 35 for d in per_day)
    assert 4 < statistics.median(per_day) < 16


def test_power_is_the_mean_of_the_register_increments() -> None:
    s = sim()
    events = run()
    for t in s.things():
        if t.kind != "household" or t.key in (s.reset_meter, s.swap_meter):
            continue
        imp = of(events, t.key, "energy_import")
        exp = of(events, t.key, "energy_export") or None
        for i, p in enumerate(of(events, t.key, "power")):
            d_imp = imp[i + 1].value - imp[i].value
            d_exp = exp[i + 1].value - exp[i].value if exp else 0.0
            assert p.time == imp[i + 1].time
            assert d_imp - d_exp == pytest.approx(p.value * 0.25, abs=2e-4)


def test_reset_and_swap_happen_in_the_first_days_and_registers_survive_them() -> None:
    s = sim()
    events = run()
    assert WINTER < s.reset_at < s.swap_at < WINTER + timedelta(days=2)
    for key in (s.reset_meter, s.swap_meter):
        imp = of(events, key, "energy_import")
        drops = [b for a, b in itertools.pairwise(imp) if b.value < a.value]
        assert len(drops) == 1
        # the robust register energy equals the energy of the power readings
        reg = register_increments((r.time, r.value, (r.parameters or {}).get("meter")) for r in imp)
        drawn = sum(max(p.value, 0) * 0.25 for p in of(events, key, "power"))
        exported = of(events, key, "energy_export")
        if not exported:  # with PV the power is net of feed-in
            assert sum(i.kwh for i in reg.increments) == pytest.approx(drawn, abs=1e-2)
    serials = {(r.parameters or {}).get("meter") for r in of(events, s.swap_meter, "energy_import")}
    assert len(serials) == 2
    assert (
        register_increments(
            (r.time, r.value, (r.parameters or {}).get("meter"))
            for r in of(events, s.swap_meter, "energy_import")
        ).swaps
        == 1
    )


def test_some_deliveries_are_late_and_some_out_of_order() -> None:
    delays = [e.delay for e in run() if e.delay > timedelta(0)]
    assert any(d < Q for d in delays)
    assert any(d > Q for d in delays)  # arrives after the next interval's reading
    assert len(delays) < 0.1 * len(run())


def test_pv_is_zero_at_night_and_produces_in_summer() -> None:
    events = run(3, SUMMER)
    lat, lon = city().centre[1], city().centre[0]
    pv = [e for e in events if e.prop == "pv_power"]
    assert pv
    for e in pv:
        if solar_elevation(lat, lon, e.time - Q / 2) <= 0:
            assert e.value == 0
    assert max(e.value for e in pv) > 1.0


def test_autarky_of_the_city_lies_between_0_and_1() -> None:
    events = run(3, SUMMER)
    consumption: dict[datetime, float] = {}
    generation: dict[datetime, float] = {}
    for e in events:
        if e.prop == "power" and e.thing.split("/")[1] in ("household", "commercial"):
            consumption[e.time] = consumption.get(e.time, 0.0) + e.value * 0.25
        elif e.prop == "pv_power":
            generation[e.time] = generation.get(e.time, 0.0) + e.value * 0.25
    flows = [(consumption[t] + generation.get(t, 0.0), generation.get(t, 0.0)) for t in consumption]
    s = shares(flows)
    assert s.autarky is not None
    assert 0 < s.autarky < 1
    assert s.self_consumption is not None
    assert 0 < s.self_consumption <= 1
    assert s.autarky_balanced is not None
    assert s.autarky <= s.autarky_balanced


def test_transformer_carries_its_district_plus_losses() -> None:
    s = sim()
    events = run()
    district = city().districts[0].name
    keys = {
        t.key
        for t in s.things()
        if t.district == district and t.kind in ("household", "commercial")
    }
    at = WINTER + timedelta(hours=19)
    net = sum(e.value for e in events if e.thing in keys and e.prop == "power" and e.time == at)
    p = next(e.value for e in of(events, f"energy/transformer/{district}", "power") if e.time == at)
    sva = next(
        e.value
        for e in of(events, f"energy/transformer/{district}", "apparent_power")
        if e.time == at
    )
    assert net < p < net * 1.1 + 2  # losses are a few percent at most
    assert sva >= p


def dimmed_window(events: tuple[Reading, ...]) -> tuple[str, datetime]:
    """A wallbox and a time when it charges above 4.2 kW without dimming."""
    for e in events:
        if e.thing.startswith("energy/wallbox/") and e.value > 5:
            return e.thing, e.time
    raise AssertionError("no wallbox charged in two days")


def test_dimmed_wallbox_stays_under_max_kw_and_charges_later() -> None:
    wallbox, t = dimmed_window(run())
    s = sim()
    s.advance(t - timedelta(hours=1))
    outcome = s.task(wallbox, "dim", {"max_kw": 4.2, "duration_min": 180}, t - timedelta(hours=1))
    assert outcome.status == "accepted"
    rest = [e for e in s.advance(WINTER + timedelta(days=2)) if isinstance(e, Reading)]
    power = [e for e in rest if e.thing == wallbox and e.prop == "power"]
    window = [e for e in power if t - timedelta(hours=1) < e.time <= t + timedelta(hours=2)]
    assert window
    assert all(e.value <= 4.2 for e in window)
    # the energy the car did not get while dimmed is drawn afterwards: same total
    before = [e for e in of(run(), wallbox, "power") if e.time >= t - timedelta(hours=1) + Q]
    assert sum(e.value for e in power) == pytest.approx(sum(e.value for e in before), rel=1e-6)


def test_dimming_below_4_2_kw_or_of_other_things_is_rejected() -> None:
    s = sim()
    device = next(iter(s.devices))
    assert s.task(device, "dim", {"max_kw": 3.0}, WINTER).status == "rejected"
    assert s.task(device, "dim", {"max_kw": 5.0, "duration_min": 0}, WINTER).status == "rejected"
    assert s.task("energy/household/0", "dim", {"max_kw": 5.0}, WINTER).status == "rejected"
    assert s.task(device, "boost", {"max_kw": 5.0}, WINTER).status == "rejected"
