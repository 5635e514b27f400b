"""Stored data as the KPI functions need it: a domain's Datastreams in an area, their
Observations over a period, and time-bucketed aggregates computed in the database.

KPI functions never write SQL themselves; they ask this class, which reads through the
storage backend with bound parameters, so every KPI works on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from citytwin.access.policy import PERSONAL
from citytwin.domains.base import Domain
from citytwin.domains.packages import installed_settings
from citytwin.errors import BadRequest
from citytwin.model import Registry
from citytwin.model.values import RESULT_FLOAT, RESULT_INT, decode_result
from citytwin.planner.dialect import param
from citytwin.planner.filters import Visibility
from citytwin.storage.base import Storage

CITY = "city"
AREA_LEVELS = ("district", "neighbourhood")
_CHUNK = 500  # Datastream ids per statement, well below every backend's parameter limit


@dataclass(frozen=True)
class Stream:
    """A Datastream with what KPIs need of it and of its Thing."""

    id: int
    name: str
    property: str | None  # the domain's PropertyTemplate key
    unit: str | None  # UCUM symbol
    properties: Mapping[str, Any]
    thing_id: int
    thing_name: str
    kind: str | None
    thing_properties: Mapping[str, Any]


@dataclass(frozen=True)
class Point:
    time: datetime  # phenomenonTime, or its start for an interval
    end: datetime
    result: Any
    parameters: Mapping[str, Any] | None = None  # e.g. the meter serial of a reading


def in_area(thing_properties: Mapping[str, Any], area: str) -> bool:
    if area == CITY:
        return True
    level, _, name = area.partition(":")
    return thing_properties.get(level) == name


def check_area(area: str) -> str:
    level, sep, name = area.partition(":")
    if area != CITY and not (sep and level in AREA_LEVELS and name):
        raise BadRequest(
            f"area must be 'city', 'district:<name>' or 'neighbourhood:<name>', not {area!r}"
        )
    return area


class DomainData:
    """Read access for KPI functions; one instance serves one KPI request."""

    def __init__(
        self,
        storage: Storage,
        registry: Registry,
        domains: Sequence[Domain] = (),
        visible: Visibility | None = None,
        privacy_k: int = 5,
    ) -> None:
        self.storage = storage
        self.registry = registry
        # what the asking principal may read (None: everything): KPIs are computed from
        # the Datastreams and Things it may read, and from personal Datastreams it may not
        # read only as sums over at least privacy_k households (citytwin.domains.privacy)
        self.visible = visible
        self.privacy_k = privacy_k
        self.domains = {d.name: d for d in domains}
        self._streams: list[Stream] | None = None
        self._hidden: list[Stream] | None = None

    async def settings(self, domain: str) -> dict[str, Any]:
        """The KPI settings of ``domain``: its defaults (:attr:`Domain.settings`) overlaid
        with those of the solution package installed here (docs/packages.md)."""
        found = self.domains.get(domain)
        out = dict(found.settings) if found is not None else {}
        async with self.storage.reader() as r:
            out.update(await installed_settings(r, self.storage, domain) or {})
        return out

    async def all_streams(self) -> list[Stream]:
        """Every Datastream the principal may read, with its Thing (read once)."""
        if self._streams is None:
            self._streams = await self._read_streams(visible=True)
        return self._streams

    async def hidden_streams(self) -> list[Stream]:
        """The personal Datastreams the principal may not read (read once): KPIs may use
        them only through :mod:`citytwin.domains.privacy`."""
        if self._hidden is None:
            if self.visible is None:
                self._hidden = []
            else:
                seen = {s.id for s in await self.all_streams()}
                every = await self._read_streams(visible=False)
                self._hidden = [
                    s for s in every if s.id not in seen and s.properties.get(PERSONAL) is True
                ]
        return self._hidden

    async def _read_streams(self, visible: bool) -> list[Stream]:
        tables = self.storage.tables
        ds_type = self.registry.type("Datastream")
        ds = tables.of(ds_type)
        things = tables.of(self.registry.type("Thing"))
        seen = None if self.visible is None or not visible else self.visible(ds_type, ds)
        stmt = (
            sa.select(
                ds.c.id,
                ds.c.name,
                ds.c.unit_of_measurement,
                ds.c.properties,
                things.c.id.label("thing_id"),
                things.c.name.label("thing_name"),
                things.c.properties.label("thing_properties"),
            )
            .select_from(ds.join(things, ds.c.thing_id == things.c.id))
            .where(*([] if seen is None else [seen]))
            .order_by(ds.c.id)
        )
        async with self.storage.reader() as r:
            rows = await r.fetch(stmt)
        return [_stream(row) for row in rows]

    async def streams(
        self,
        domain: str,
        *,
        kind: str | Iterable[str] | None = None,
        prop: str | Iterable[str] | None = None,
        area: str = CITY,
    ) -> list[Stream]:
        """The Datastreams of ``domain`` in ``area``, optionally of some kinds of Thing and
        some properties, in id order."""
        return _select(await self.all_streams(), domain, kind, prop, area)

    async def hidden(
        self,
        domain: str,
        *,
        kind: str | Iterable[str] | None = None,
        prop: str | Iterable[str] | None = None,
        area: str = CITY,
    ) -> list[Stream]:
        """Like :meth:`streams`, of the personal Datastreams the principal may not read."""
        return _select(await self.hidden_streams(), domain, kind, prop, area)

    async def areas(self) -> list[dict[str, Any]]:
        """The city, its districts and neighbourhoods as the stored Things name them."""
        districts: set[str] = set()
        neighbourhoods: dict[str, str | None] = {}
        async with self.storage.reader() as r:
            things = self.storage.tables.of(self.registry.type("Thing"))
            rows = await r.fetch(sa.select(things.c.properties))
        for row in rows:
            props = _json(row["properties"])
            district = props.get("district")
            if isinstance(district, str) and district:
                districts.add(district)
            hood = props.get("neighbourhood")
            if isinstance(hood, str) and hood:
                neighbourhoods[hood] = district if isinstance(district, str) else None
        out: list[dict[str, Any]] = [{"id": CITY, "name": "City", "level": CITY}]
        out += [{"id": f"district:{d}", "name": d, "level": "district"} for d in sorted(districts)]
        for hood in sorted(neighbourhoods):
            entry: dict[str, Any] = {
                "id": f"neighbourhood:{hood}",
                "name": hood,
                "level": "neighbourhood",
            }
            if neighbourhoods[hood]:
                entry["parent"] = f"district:{neighbourhoods[hood]}"
            out.append(entry)
        return out

    async def observations(
        self, streams: Sequence[int], start: datetime, end: datetime
    ) -> dict[int, list[Point]]:
        """Observations of ``streams`` whose phenomenonTime starts in [start, end), in time
        order per Datastream (stored order, not arrival order)."""
        out: dict[int, list[Point]] = {sid: [] for sid in streams}
        obs = self.storage.tables.of(self.registry.type("Observation"))
        dialect = self.storage.dialect
        decode = self.storage.decode_time
        for chunk in _chunks(streams):
            stmt = (
                sa.select(
                    obs.c.datastream_id,
                    obs.c.phenomenon_time_start,
                    obs.c.phenomenon_time_end,
                    obs.c.result_type,
                    obs.c.result_number,
                    obs.c.result_string,
                    obs.c.result_json,
                    obs.c.parameters,
                )
                .where(
                    obs.c.datastream_id.in_([param(s) for s in chunk]),
                    obs.c.phenomenon_time_start >= dialect.time_param(start),
                    obs.c.phenomenon_time_start < dialect.time_param(end),
                )
                .order_by(obs.c.datastream_id, obs.c.phenomenon_time_start, obs.c.id)
            )
            async with self.storage.reader() as r:
                rows = await r.fetch(stmt)
            for row in rows:
                t = decode(row["phenomenon_time_start"])
                e = decode(row["phenomenon_time_end"])
                assert t is not None
                result = decode_result(
                    row["result_type"],
                    row["result_number"],
                    row["result_string"],
                    _text(row["result_json"]),
                )
                params = _json(row["parameters"]) or None
                out[row["datastream_id"]].append(Point(t, e or t, result, params))
        return out

    async def buckets(
        self,
        streams: Sequence[int],
        start: datetime,
        end: datetime,
        size: timedelta,
        function: str = "avg",
    ) -> dict[int, dict[datetime, float]]:
        """Per Datastream, ``function`` (avg, min, max, sum or count) of its numeric results
        per bucket of ``size`` counted from ``start``; computed in the database."""
        functions: dict[str, Callable[[Any], Any]] = {
            "avg": sa.func.avg,
            "min": sa.func.min,
            "max": sa.func.max,
            "sum": sa.func.sum,
            "count": sa.func.count,
        }
        fn = functions[function]
        micros = size // timedelta(microseconds=1)
        obs = self.storage.tables.of(self.registry.type("Observation"))
        dialect = self.storage.dialect
        out: dict[int, dict[datetime, float]] = {sid: {} for sid in streams}
        for chunk in _chunks(streams):
            bucket = dialect.time_bucket(obs.c.phenomenon_time_start, start, micros)
            # bucketed in a subquery, so that GROUP BY names a column rather than repeating
            # an expression whose bound parameters would differ
            rows_q = (
                sa.select(
                    obs.c.datastream_id.label("ds"),
                    bucket.label("bucket"),
                    obs.c.result_number.label("v"),
                )
                .where(
                    obs.c.datastream_id.in_([param(s) for s in chunk]),
                    obs.c.phenomenon_time_start >= dialect.time_param(start),
                    obs.c.phenomenon_time_start < dialect.time_param(end),
                    obs.c.result_type.in_([RESULT_INT, RESULT_FLOAT]),
                )
                .subquery("numeric_results")
            )
            stmt = sa.select(
                rows_q.c.ds.label("datastream_id"), rows_q.c.bucket, fn(rows_q.c.v).label("v")
            ).group_by(rows_q.c.ds, rows_q.c.bucket)
            async with self.storage.reader() as r:
                rows = await r.fetch(stmt)
            for row in rows:
                t = self.storage.decode_time(row["bucket"])
                if t is not None and row["v"] is not None:
                    out[row["datastream_id"]][t] = float(row["v"])
        return out


def _select(
    streams: Iterable[Stream],
    domain: str,
    kind: str | Iterable[str] | None,
    prop: str | Iterable[str] | None,
    area: str,
) -> list[Stream]:
    kinds = {kind} if isinstance(kind, str) else set(kind) if kind is not None else None
    props = {prop} if isinstance(prop, str) else set(prop) if prop is not None else None
    return [
        s
        for s in streams
        if s.thing_properties.get("domain") == domain
        and (kinds is None or s.kind in kinds)
        and (props is None or s.property in props)
        and in_area(s.thing_properties, area)
    ]


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def _json(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, (str, bytes)):
        value = orjson.loads(value)
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _stream(row: Any) -> Stream:
    props = _json(row["properties"])
    thing_props = _json(row["thing_properties"])
    unit = _json(row["unit_of_measurement"])
    prop = props.get("property")
    kind = thing_props.get("kind")
    symbol = unit.get("symbol")
    return Stream(
        id=row["id"],
        name=row["name"],
        property=prop if isinstance(prop, str) else None,
        unit=symbol if isinstance(symbol, str) else None,
        properties=props,
        thing_id=row["thing_id"],
        thing_name=row["thing_name"],
        kind=kind if isinstance(kind, str) else None,
        thing_properties=thing_props,
    )
