"""The mobility KPIs on stored data: each reads the Datastreams of the area through
:class:`~citytwin.domains.data.DomainData` and hands plain values to :mod:`.kpis`.

Which area a figure counts toward:

- kilometres and state of charge (occupancy, empty_km_share, fleet_soc): the vehicle's
  Thing, whose ``district``/``neighbourhood`` name the depot the vehicle belongs to. The
  stored results carry no position per odometer reading, so kilometres cannot follow the
  vehicle through the city; an area's figures are those of the fleet based there.
- trips (pooling_rate, detour_factor): the origin of the trip, from the trip record's
  ``origin_district``/``origin_neighbourhood``; a record without them counts toward the
  vehicle's area.
- charging points: the Thing's area (they do not move).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from citytwin.domains.base import KpiQuery, KpiResult
from citytwin.domains.data import DomainData, Stream
from citytwin.domains.mobility import kpis as k
from citytwin.errors import BadRequest

NAME = "mobility"
SOC_BUCKET = timedelta(minutes=15)


def _no_options(query: KpiQuery) -> None:
    if query.options:
        names = ", ".join(sorted(query.options))
        raise BadRequest(
            f"unknown KPI parameter(s) {names}; mobility KPIs take area, interval and bucket"
        )


def _item(stream: Stream, **values: Any) -> dict[str, Any]:
    return {"id": stream.thing_id, "name": stream.thing_name, **values}


async def _fleet_legs(data: DomainData, query: KpiQuery) -> list[tuple[Stream, list[k.Leg]]]:
    odometers = await data.streams(NAME, kind="vehicle", prop="odometer", area=query.area)
    counts = await data.streams(NAME, kind="vehicle", prop="passengers", area=query.area)
    count_of = {s.thing_id: s.id for s in counts}
    odo = await data.observations([s.id for s in odometers], query.start, query.end)
    pax = await data.observations(list(count_of.values()), query.start - k.MAX_HOLD, query.end)
    out = []
    for s in odometers:
        readings = [(p.time, p.result) for p in odo[s.id]]
        on_board = [(p.time, p.result) for p in pax.get(count_of.get(s.thing_id, -1), [])]
        out.append((s, k.legs(readings, on_board)))
    return out


async def _km_kpi(data: DomainData, query: KpiQuery, headline: str) -> KpiResult:
    _no_options(query)
    fleet = await _fleet_legs(data, query)
    total = k.Km()
    items = []
    buckets: dict[Any, k.Km] = {}
    for stream, legs in fleet:
        km = k.km_of(legs)
        total += km
        if km.vehicle_km or km.unknown_km:
            value = km.occupancy if headline == "occupancy" else km.empty_share
            items.append(_item(stream, value=value, **_km_values(km)))
        if query.bucket is not None:
            for t, part in k.km_by_bucket(legs, query.start, query.bucket).items():
                buckets[t] = buckets.get(t, k.Km()) + part

    def pick(km: k.Km) -> float | None:
        return km.occupancy if headline == "occupancy" else km.empty_share

    return KpiResult(
        value=pick(total),
        values={**_km_values(total), "vehicles": len(items)},
        units={"passenger_km": "km", "vehicle_km": "km", "empty_km": "km", "unknown_km": "km"},
        series=[
            {"time": t, "value": pick(km), **_km_values(km)} for t, km in sorted(buckets.items())
        ],
        items=items,
    )


def _km_values(km: k.Km) -> dict[str, float]:
    return {
        "passenger_km": km.passenger_km,
        "vehicle_km": km.vehicle_km,
        "empty_km": km.empty_km,
        "unknown_km": km.unknown_km,
    }


async def occupancy(data: DomainData, query: KpiQuery) -> KpiResult:
    """Passenger-km / vehicle-km of the fleet based in the area."""
    return await _km_kpi(data, query, "occupancy")


async def empty_km_share(data: DomainData, query: KpiQuery) -> KpiResult:
    """Km without passengers / all km of the fleet based in the area."""
    return await _km_kpi(data, query, "empty")


async def _trips(data: DomainData, query: KpiQuery) -> list[k.Trip]:
    _no_options(query)
    streams = await data.streams(NAME, kind="vehicle", prop="trip")
    found = await data.observations([s.id for s in streams], query.start, query.end)
    out = []
    for s in streams:
        for p in found[s.id]:
            t = k.trip(p.time, p.result)
            if t is not None and k.trip_in_area(t, query.area, s.thing_properties):
                out.append(t)
    return out


async def pooling_rate(data: DomainData, query: KpiQuery) -> KpiResult:
    """Share of the trips starting in the area that shared the vehicle."""
    trips = await _trips(data, query)
    total = k.pooling(trips)
    series = []
    if query.bucket is not None:
        for t, ts in k.trips_by_bucket(trips, query.start, query.bucket).items():
            p = k.pooling(ts)
            series.append({"time": t, "value": p.rate, "trips": p.trips, "pooled_trips": p.pooled})
    return KpiResult(
        value=total.rate,
        values={"trips": total.trips, "pooled_trips": total.pooled},
        units={"trips": "1", "pooled_trips": "1"},
        series=series,
    )


async def detour_factor(data: DomainData, query: KpiQuery) -> KpiResult:
    """Passenger-km ridden / direct passenger-km of the trips starting in the area."""
    trips = await _trips(data, query)
    total = k.detour(trips)
    series = []
    if query.bucket is not None:
        for t, ts in k.trips_by_bucket(trips, query.start, query.bucket).items():
            d = k.detour(ts)
            if d.trips:
                series.append({"time": t, "value": d.factor, "trips": d.trips})
    return KpiResult(
        value=total.factor,
        values={
            "trips": total.trips,
            "ride_passenger_km": total.ride_pkm,
            "direct_passenger_km": total.direct_pkm,
            "mean_trip_factor": total.mean_trip_factor,
            "max_trip_factor": total.max_trip_factor,
        },
        units={
            "trips": "1",
            "ride_passenger_km": "km",
            "direct_passenger_km": "km",
            "mean_trip_factor": "1",
            "max_trip_factor": "1",
        },
        series=series,
    )


async def fleet_soc(data: DomainData, query: KpiQuery) -> KpiResult:
    """Mean of each vehicle's latest state of charge in the period; per vehicle; series of
    the fleet mean per bucket (bucket means computed in the database)."""
    _no_options(query)
    streams = await data.streams(NAME, kind="vehicle", prop="soc", area=query.area)
    found = await data.observations([s.id for s in streams], query.start, query.end)
    items = []
    for s in streams:
        last = k.latest((p.time, p.result) for p in found[s.id])
        if last is not None:
            items.append(_item(s, value=last[1], time=last[0]))
    values = [i["value"] for i in items]
    series: list[dict[str, Any]] = []
    if items:
        ids = [s.id for s in streams if found[s.id]]
        means = await data.buckets(ids, query.start, query.end, query.bucket or SOC_BUCKET)
        series = k.mean_series(means)
    return KpiResult(
        value=sum(values) / len(values) if values else None,
        values={
            "vehicles": len(values),
            "min": min(values) if values else None,
            "max": max(values) if values else None,
        },
        units={"vehicles": "1", "min": "%", "max": "%"},
        series=series,
        items=items,
    )


async def charging_utilisation(data: DomainData, query: KpiQuery) -> KpiResult:
    """Share of in-service time the area's charging points were occupied (CHARGING or
    BLOCKED, or an occupied value of 1)."""
    _no_options(query)
    streams = await data.streams(NAME, kind="charging_point", prop="status", area=query.area)
    found = await data.observations([s.id for s in streams], query.start - k.MAX_HOLD, query.end)
    total = k.Usage()
    buckets: dict[Any, k.Usage] = {}
    items = []
    for s in streams:
        samples = [(p.time, p.result) for p in found[s.id]]
        use, parts = k.usage(samples, query.start, query.end, query.bucket)
        total += use
        for t, part in parts.items():
            buckets[t] = buckets.get(t, k.Usage()) + part
        if use.in_service:
            items.append(
                _item(
                    s,
                    value=use.utilisation,
                    occupied_h=k.hours(use.occupied),
                    in_service_h=k.hours(use.in_service),
                )
            )
    return KpiResult(
        value=total.utilisation,
        values={
            "charging_points": len(items),
            "occupied_h": k.hours(total.occupied),
            "in_service_h": k.hours(total.in_service),
        },
        units={"charging_points": "1", "occupied_h": "h", "in_service_h": "h"},
        series=[
            {"time": t, "value": u.utilisation, "occupied_h": k.hours(u.occupied)}
            for t, u in sorted(buckets.items())
        ],
        items=items,
    )
