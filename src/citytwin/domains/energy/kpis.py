"""KPIs of the energy domain: pure functions on plain data, tested against hand-computed
cases, and the ``compute`` wrappers the domain declares.

Definitions (common practice in German distribution grids and energy communities):

- autarky (self-sufficiency) rate = locally generated energy consumed locally / total
  consumption; self-consumption rate = locally consumed generation / total generation.
  "Local" figures take min(consumption, generation) per 15-minute interval and sum them;
  "balanced" (bilanziell) figures compare the sums over the whole period, which hides the
  gap between noon generation and evening consumption.
- transformer loading = apparent power S / rated power S_r; peak load = maximum 15-minute
  mean power in the period; load factor = mean power / peak load.
- load profile = mean power per 15-minute slot of the day over the period.

An area's consumption per interval is the net grid power of its meters (households and
commercial customers: import minus export) plus the generation of its PV systems, so
self-consumed PV energy counts as consumption. All figures use the 15-minute intervals
lying wholly inside the requested period; intervals without any data are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from citytwin.domains.base import KpiQuery, KpiResult
from citytwin.domains.data import DomainData, Point, Stream
from citytwin.domains.energy.meters import (
    STEP,
    energy_between,
    intervals,
    rebucket,
    register_increments,
)
from citytwin.domains.privacy import Households, household_sum, interval_sums
from citytwin.errors import BadRequest

DOMAIN = "energy"
# PropertyTemplate keys
IMPORT = "energy_import"
EXPORT = "energy_export"
POWER = "power"
APPARENT = "apparent_power"
PV_POWER = "pv_power"
# ThingKind keys
HOUSEHOLD = "household"
PV = "pv"
COMMERCIAL = "commercial"
TRANSFORMER = "transformer"
HEAT_PUMP = "heat_pump"
WALLBOX = "wallbox"
METERS = (HOUSEHOLD, COMMERCIAL)

HOURS = STEP / timedelta(hours=1)  # kW over one interval -> kW.h
REGISTER_MARGIN = timedelta(hours=6)  # readings fetched beyond the period to bound it


# --- pure functions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Shares:
    """Sums over intervals (kW.h) and the rates derived from them (None without a base)."""

    consumption: float
    generation: float
    local: float  # sum over intervals of min(consumption, generation)
    autarky: float | None  # local / consumption
    self_consumption: float | None  # local / generation
    autarky_balanced: float | None  # min(sum consumption, sum generation) / sum consumption
    self_consumption_balanced: float | None


def shares(flows: Iterable[tuple[float, float]]) -> Shares:
    """Autarky and self-consumption from (consumption, generation) energies per interval;
    negative figures (inconsistent data) count as 0."""
    consumption = generation = local = 0.0
    for c, g in flows:
        c, g = max(c, 0.0), max(g, 0.0)
        consumption += c
        generation += g
        local += min(c, g)
    balanced = min(consumption, generation)
    return Shares(
        consumption,
        generation,
        local,
        _ratio(local, consumption),
        _ratio(local, generation),
        _ratio(balanced, consumption),
        _ratio(balanced, generation),
    )


@dataclass(frozen=True)
class PeakStats:
    peak: float | None
    mean: float | None
    load_factor: float | None  # mean / peak, None unless the peak is positive


def peak_stats(values: Sequence[float]) -> PeakStats:
    """Peak (maximum), mean and load factor of 15-minute mean powers."""
    if not values:
        return PeakStats(None, None, None)
    peak = max(values)
    mean = sum(values) / len(values)
    return PeakStats(peak, mean, mean / peak if peak > 0 else None)


def slot_profile(values: Mapping[datetime, float], tz: ZoneInfo) -> list[tuple[str, float]]:
    """Mean of ``values`` (keyed by interval start) per 15-minute slot of the local day in
    ``tz``, as ("HH:MM", mean) in slot order; slots without values are left out."""
    sums: dict[str, list[float]] = {}
    for t, v in values.items():
        local = t.astimezone(tz)
        slot = f"{local.hour:02d}:{local.minute // 15 * 15:02d}"
        acc = sums.setdefault(slot, [0.0, 0.0])
        acc[0] += v
        acc[1] += 1
    return [(slot, s / n) for slot, (s, n) in sorted(sums.items())]


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


# --- reading stored data -------------------------------------------------------------------


def _check_options(query: KpiQuery, allowed: Sequence[str] = ()) -> None:
    unknown = sorted(set(query.options) - set(allowed))
    if unknown:
        known = ", ".join(("area", "interval", "bucket", *allowed))
        raise BadRequest(f"unknown KPI parameter {unknown[0]!r}; this KPI takes {known}")


def _series_bucket(query: KpiQuery) -> timedelta:
    """The requested bucket, a multiple of 15 minutes; by default one that keeps the series
    at a few hundred to a few thousand points."""
    if query.bucket is None:
        span = query.end - query.start
        if span <= timedelta(days=7):
            return STEP
        return timedelta(hours=1) if span <= timedelta(days=62) else timedelta(days=1)
    if query.bucket % STEP:
        raise BadRequest("KPI bucket: energy KPIs need a multiple of 15 minutes (PT15M)")
    return query.bucket


async def _interval_means(
    data: DomainData, streams: Sequence[Stream], query: KpiQuery
) -> dict[int, dict[datetime, float]]:
    """Per Datastream, its mean power per 15-minute interval (keyed by the interval start)
    for the intervals lying wholly inside the period. Power values are stamped at the end
    of their interval, so the buckets are read one step later and moved back."""
    grid = intervals(query.start, query.end)
    if not grid or not streams:
        return {s.id: {} for s in streams}
    found = await data.buckets(
        [s.id for s in streams], grid[0] + STEP, grid[-1] + 2 * STEP, STEP, "avg"
    )
    return {sid: {t - STEP: v for t, v in means.items()} for sid, means in found.items()}


def _sum(per_stream: Mapping[int, Mapping[datetime, float]]) -> dict[datetime, float]:
    out: dict[datetime, float] = {}
    for means in per_stream.values():
        for t, v in means.items():
            out[t] = out.get(t, 0.0) + v
    return out


@dataclass
class Flows:
    """Consumption and generation in kW.h per 15-minute interval of an area.

    ``consumption`` is None when household meters the principal may not read would be
    in it and no interval's household sum may be released (citytwin.domains.privacy);
    intervals whose household sum may not be released are left out of both."""

    consumption: dict[datetime, float] | None
    generation: dict[datetime, float]
    households: Households | None = None  # None: no such household in the area

    def privacy(self) -> dict[str, Any] | None:
        return None if self.households is None else self.households.document()


async def _flows(data: DomainData, query: KpiQuery) -> Flows:
    meters = await data.streams(DOMAIN, kind=METERS, prop=POWER, area=query.area)
    pv = await data.streams(DOMAIN, kind=PV, prop=PV_POWER, area=query.area)
    hidden = await data.hidden(DOMAIN, kind=METERS, prop=POWER, area=query.area)
    net = _sum(await _interval_means(data, meters, query))
    generation = {t: kw * HOURS for t, kw in _sum(await _interval_means(data, pv, query)).items()}
    note = None
    if hidden:
        means = await _interval_means(data, hidden, query)
        sums, withheld, note = interval_sums(hidden, means, query.area, data.privacy_k)
        if not note.aggregated and note.withheld:
            return Flows(None, generation, note)
        for t in withheld:
            net.pop(t, None)
            generation.pop(t, None)
        for t, v in sums.items():
            net[t] = net.get(t, 0.0) + v
    consumption = {
        t: max(net.get(t, 0.0) * HOURS + generation.get(t, 0.0), 0.0)
        for t in sorted(set(net) | set(generation))
    }
    return Flows(consumption, {t: generation.get(t, 0.0) for t in consumption}, note)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


# --- KPIs ----------------------------------------------------------------------------------


async def _balance(data: DomainData, query: KpiQuery) -> tuple[Shares, KpiResult]:
    _check_options(query)
    size = _series_bucket(query)
    flows = await _flows(data, query)
    if flows.consumption is None:
        return _generation_only(flows, query, size)
    consumption, generation = flows.consumption, flows.generation
    total = shares((consumption[t], generation[t]) for t in consumption)
    series = []
    origin = query.start.astimezone(UTC)
    buckets: dict[datetime, list[datetime]] = {}
    for t in consumption:
        buckets.setdefault(origin + ((t - origin) // size) * size, []).append(t)
    for b, times in sorted(buckets.items()):
        part = shares((consumption[t], generation[t]) for t in times)
        series.append(
            {
                "time": b,
                "value": _round(part.autarky),
                "consumption": _round(part.consumption),
                "generation": _round(part.generation),
                "autarky": _round(part.autarky),
                "self_consumption": _round(part.self_consumption),
            }
        )
    result = KpiResult(
        value=_round(total.autarky),
        values={
            "consumption": _round(total.consumption) if consumption else None,
            "generation": _round(total.generation) if consumption else None,
            "local": _round(total.local) if consumption else None,
            "autarky": _round(total.autarky),
            "self_consumption": _round(total.self_consumption),
            "autarky_balanced": _round(total.autarky_balanced),
            "self_consumption_balanced": _round(total.self_consumption_balanced),
        },
        units=BALANCE_UNITS,
        series=series,
        privacy=flows.privacy(),
    )
    return total, result


BALANCE_UNITS = {
    "consumption": "kW.h",
    "generation": "kW.h",
    "local": "kW.h",
    "autarky": "1",
    "self_consumption": "1",
    "autarky_balanced": "1",
    "self_consumption_balanced": "1",
}


def _generation_only(flows: Flows, query: KpiQuery, size: timedelta) -> tuple[Shares, KpiResult]:
    """The balance when the area's consumption may not be told (privacy): generation
    only, every figure that needs consumption null."""
    origin = query.start.astimezone(UTC)
    per_bucket = rebucket(flows.generation, origin, size)
    series = [
        {
            "time": b,
            "value": None,
            "consumption": None,
            "generation": _round(g),
            "autarky": None,
            "self_consumption": None,
        }
        for b, g in sorted(per_bucket.items())
    ]
    values: dict[str, Any] = dict.fromkeys(BALANCE_UNITS)
    if flows.generation:
        values["generation"] = _round(sum(flows.generation.values()))
    none = Shares(0.0, 0.0, 0.0, None, None, None, None)
    return none, KpiResult(
        value=None, values=values, units=BALANCE_UNITS, series=series, privacy=flows.privacy()
    )


async def balance(data: DomainData, query: KpiQuery) -> KpiResult:
    """Consumption, generation, autarky and self-consumption of the area (value: autarky,
    summed per 15-minute interval)."""
    return (await _balance(data, query))[1]


async def autarky(data: DomainData, query: KpiQuery) -> KpiResult:
    total, full = await _balance(data, query)
    return KpiResult(
        value=_round(total.autarky),
        values={"local": full.values["autarky"], "balanced": full.values["autarky_balanced"]},
        units={"local": "1", "balanced": "1"},
        series=[{"time": s["time"], "value": s["autarky"]} for s in full.series],
        privacy=full.privacy,
    )


async def self_consumption(data: DomainData, query: KpiQuery) -> KpiResult:
    total, full = await _balance(data, query)
    return KpiResult(
        value=_round(total.self_consumption),
        values={
            "local": full.values["self_consumption"],
            "balanced": full.values["self_consumption_balanced"],
        },
        units={"local": "1", "balanced": "1"},
        series=[{"time": s["time"], "value": s["self_consumption"]} for s in full.series],
        privacy=full.privacy,
    )


async def consumption(data: DomainData, query: KpiQuery) -> KpiResult:
    """Energy per meter point from its registers over the period (value: their sum)."""
    _check_options(query)
    streams = await data.streams(DOMAIN, kind=METERS, prop=(IMPORT, EXPORT), area=query.area)
    hidden = await data.hidden(DOMAIN, kind=METERS, prop=(IMPORT, EXPORT), area=query.area)
    points = await data.observations(
        [s.id for s in (*streams, *hidden)],
        query.start - REGISTER_MARGIN,
        query.end + REGISTER_MARGIN,
    )
    by_thing: dict[int, dict[str, Any]] = {}
    for s in streams:
        item = by_thing.setdefault(
            s.thing_id,
            {
                "id": s.thing_id,
                "name": s.thing_name,
                "kind": s.kind,
                "consumption": None,
                "export": None,
                "readings": 0,
                "resets": 0,
                "swaps": 0,
            },
        )
        reg = register_increments((p.time, p.result, _serial(p.parameters)) for p in points[s.id])
        if reg.readings < 2:
            continue
        kwh = round(energy_between(reg.increments, query.start, query.end), 4)
        item["consumption" if s.property == IMPORT else "export"] = kwh
        item["readings"] += reg.readings
        item["resets"] += reg.resets
        item["swaps"] += reg.swaps
    items = sorted(by_thing.values(), key=lambda i: (i["name"], i["id"]))
    measured = [i["consumption"] for i in items if i["consumption"] is not None]
    exported = [i["export"] for i in items if i["export"] is not None]
    values: dict[str, Any] = {
        "consumption": sum(measured) if measured else None,
        "export": sum(exported) if exported else None,
        "meters": len(measured),
        "resets": sum(i["resets"] for i in items),
    }
    units = {"consumption": "kW.h", "export": "kW.h", "meters": "1", "resets": "1"}
    privacy = None
    if hidden:  # households the principal may not read: only sums over k of them
        note = Households(data.privacy_k, len({s.thing_id for s in hidden}))
        for prop, name in ((IMPORT, "consumption"), (EXPORT, "export")):
            energies = [(s, _register_energy(points[s.id], query)) for s in hidden]
            part, counted = household_sum(
                [(s, kwh) for s, kwh in energies if s.property == prop],
                query.area,
                data.privacy_k,
            )
            values[f"household_{name}"] = None if part is None else round(part, 4)
            units[f"household_{name}"] = "kW.h"
            if part is not None:
                note.released += 1
                values[name] = (values[name] or 0.0) + part
            elif counted:  # households would be in it, and their sum may not be told
                note.withheld += 1
                values[name] = None
        privacy = note.document("figures")
    for name in ("consumption", "export"):
        values[name] = _round(values[name])
    return KpiResult(
        value=values["consumption"], values=values, units=units, items=items, privacy=privacy
    )


def _register_energy(points: Sequence[Point], query: KpiQuery) -> float | None:
    reg = register_increments((p.time, p.result, _serial(p.parameters)) for p in points)
    return energy_between(reg.increments, query.start, query.end) if reg.readings >= 2 else None


async def transformer_loading(data: DomainData, query: KpiQuery) -> KpiResult:
    """Peak load, peak loading and load factor per transformer station (value: the
    highest peak loading)."""
    _check_options(query)
    size = _series_bucket(query)
    streams = await data.streams(DOMAIN, kind=TRANSFORMER, prop=(POWER, APPARENT), area=query.area)
    means = await _interval_means(data, streams, query)
    stations: dict[int, dict[str, Any]] = {}
    for s in streams:
        st = stations.setdefault(
            s.thing_id,
            {"stream": s, "p": {}, "s": {}, "rated": _rated_kva(s.thing_properties)},
        )
        st["p" if s.property == POWER else "s"].update(means[s.id])
    items = []
    loading_series: dict[datetime, list[float]] = {}
    kw_series: dict[datetime, float] = {}
    origin = query.start.astimezone(UTC)
    for thing_id, st in stations.items():
        p: dict[datetime, float] = st["p"]
        s_: dict[datetime, float] = st["s"]
        rated: float | None = st["rated"]
        stats = peak_stats([p[t] for t in sorted(p)])
        peak_kva = max(s_.values()) if s_ else None
        peak_time = max(p, key=lambda t: p[t]) if p else None
        items.append(
            {
                "id": thing_id,
                "name": st["stream"].thing_name,
                "rated_kva": rated,
                "peak_kw": _round(stats.peak),
                "peak_time": peak_time,
                "mean_kw": _round(stats.mean),
                "load_factor": _round(stats.load_factor),
                "peak_kva": _round(peak_kva),
                "peak_loading": _round(
                    peak_kva / rated if peak_kva is not None and rated else None
                ),
            }
        )
        for b, kva in _bucket_means(s_, origin, size).items():
            if rated:
                loading_series.setdefault(b, []).append(kva / rated)
        for b, kw in _bucket_means(p, origin, size).items():
            kw_series[b] = kw_series.get(b, 0.0) + kw
    items.sort(key=lambda i: (i["name"], i["id"]))
    loadings = [i["peak_loading"] for i in items if i["peak_loading"] is not None]
    series = [
        {
            "time": b,
            "value": _round(max(loading_series[b])) if b in loading_series else None,
            "kw": _round(kw_series.get(b)),
        }
        for b in sorted(set(loading_series) | set(kw_series))
    ]
    return KpiResult(
        value=max(loadings) if loadings else None,
        values={
            "peak_loading": max(loadings) if loadings else None,
            "stations": len(items),
            "overloaded": sum(1 for x in loadings if x > 1),
        },
        units={"peak_loading": "1", "stations": "1", "overloaded": "1"},
        series=series,
        items=items,
    )


async def load_profile(data: DomainData, query: KpiQuery) -> KpiResult:
    """Mean consumption power per 15-minute slot of the day (value: the highest slot)."""
    _check_options(query, ("tz",))
    name = query.options.get("tz", "UTC")
    try:
        tz = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"KPI parameter tz: {name!r} is not an IANA time zone") from None
    flows = await _flows(data, query)
    supply = dict(slot_profile({t: e / HOURS for t, e in flows.generation.items()}, tz))
    units = {"peak": "kW", "mean": "kW", "base": "kW", "load_factor": "1"}
    if flows.consumption is None:  # privacy: consumption may not be told, generation may
        return KpiResult(
            value=None,
            values=dict.fromkeys(units),
            units=units,
            series=[
                {"slot": slot, "value": None, "consumption": None, "generation": round(kw, 4)}
                for slot, kw in sorted(supply.items())
            ],
            privacy=flows.privacy(),
        )
    demand = slot_profile({t: e / HOURS for t, e in flows.consumption.items()}, tz)
    series = [
        {
            "slot": slot,
            "value": round(kw, 4),
            "consumption": round(kw, 4),
            "generation": round(supply.get(slot, 0.0), 4),
            "net": round(kw - supply.get(slot, 0.0), 4),
        }
        for slot, kw in demand
    ]
    stats = peak_stats([kw for _, kw in demand])
    return KpiResult(
        value=_round(stats.peak),
        values={
            "peak": _round(stats.peak),
            "mean": _round(stats.mean),
            "base": _round(min(kw for _, kw in demand)) if demand else None,
            "load_factor": _round(stats.load_factor),
        },
        units=units,
        series=series,
        privacy=flows.privacy(),
    )


def _bucket_means(
    values: Mapping[datetime, float], origin: datetime, size: timedelta
) -> dict[datetime, float]:
    sums = rebucket(values, origin, size)
    counts = rebucket(dict.fromkeys(values, 1.0), origin, size)
    return {b: sums[b] / counts[b] for b in sums}


def _rated_kva(properties: Mapping[str, Any]) -> float | None:
    value = properties.get("rated_kva")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def _serial(parameters: Mapping[str, Any] | None) -> str | None:
    """The meter serial a reading names in its parameters, if any."""
    serial = (parameters or {}).get("meter")
    return serial if isinstance(serial, str) and serial else None
