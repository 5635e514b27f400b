"""Every sensor's place and latest value in one compact answer: ``GET /api/v1/sensors``.

The map's first picture needs, for each Thing, where it is and what kind it is, and for
each of its Datastreams the ObservedProperty, the unit and the latest Observation's result
and time. The SensorThings API can say all this in one request (Locations as GeoJSON with
Things, Datastreams and their latest Observation expanded), but that answer carries a
self link per entity and a next link per expanded collection: for 10,000 sensors it is
7 MB, and producing it costs the server half a second of CPU. Here the same facts come
from two statements over the stored tables (the latest Observation through the
per-Datastream summary), written column by column with repeated texts listed once: about
a tenth of the bytes and of the server's time. Everything else about an entity is read
through the SensorThings API when someone asks for it (see docs/ui.md).
"""

from __future__ import annotations

from typing import Any, cast

import orjson
import sqlalchemy as sa

from citytwin.model import Registry
from citytwin.model.values import RESULT_FLOAT, decode_result
from citytwin.planner.filters import Visibility
from citytwin.storage.base import Storage


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def _geometry(location: Any) -> dict[str, Any] | None:
    """The geometry of a stored location, which may be a GeoJSON Feature."""
    if isinstance(location, dict) and location.get("type") == "Feature":
        location = location.get("geometry")
    return location if isinstance(location, dict) else None


def _point(geometry: dict[str, Any] | None) -> tuple[float, float] | None:
    """The longitude and latitude of a Point geometry."""
    if geometry is None or geometry.get("type") != "Point":
        return None
    coords = geometry.get("coordinates")
    if not isinstance(coords, list) or len(coords) < 2:
        return None
    lon, lat = coords[0], coords[1]
    if type(lon) not in (int, float) or type(lat) not in (int, float):
        return None
    return float(lon), float(lat)


def _kind_and_domain(properties: Any) -> tuple[str | None, str | None]:
    """What the map's categories are made of (see categoryOf in web/src/twin.js)."""
    if not isinstance(properties, dict):
        return None, None
    kind, domain = properties.get("kind"), properties.get("domain")
    return (kind if isinstance(kind, str) else None, domain if isinstance(domain, str) else None)


class _Texts:
    """Repeated values (units, properties) listed once and named by their index."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._index: dict[Any, int] = {}

    def index(self, key: Any, value: Any) -> int:
        found = self._index.get(key)
        if found is None:
            found = self._index[key] = len(self.values)
            self.values.append(value)
        return found


async def sensors(
    storage: Storage, registry: Registry, visible: Visibility | None = None
) -> dict[str, Any]:
    """The compact document described in docs/ui.md ("The map feed"), of the Things and
    Datastreams ``visible`` lets through (the principal's read conditions; None: all),
    exactly those a SensorThings request of the same principal would return."""
    tables = storage.tables
    thing_t = registry.type("Thing")
    things = tables.of(thing_t)
    locations = tables.of(registry.type("Location"))
    datastreams = tables.of(registry.type("Datastream"))
    props = tables.of(registry.type("ObservedProperty"))
    obs = tables.of(registry.type("Observation"))
    nav = thing_t.navigation("Locations")
    assert nav is not None and nav.link is not None
    link_name, thing_col, location_col = nav.link
    link = tables.link[link_name]

    placed = (
        sa.select(
            things.c.id,
            things.c.name,
            things.c.properties,
            locations.c.location,
        )
        .select_from(
            things.outerjoin(link, link.c[thing_col] == things.c.id).outerjoin(
                locations, locations.c.id == link.c[location_col]
            )
        )
        .order_by(things.c.id, locations.c.id)
    )
    if visible is not None and (cond := visible(thing_t, things)) is not None:
        placed = placed.where(cond)
    latest = (
        sa.select(
            datastreams.c.id,
            datastreams.c.thing_id,
            datastreams.c.unit_of_measurement,
            props.c.name.label("property_name"),
            props.c.definition.label("property_definition"),
            obs.c.phenomenon_time_start,
            obs.c.phenomenon_time_end,
            obs.c.result_type,
            obs.c.result_number,
            obs.c.result_string,
            obs.c.result_json,
        )
        .select_from(
            datastreams.join(props, props.c.id == datastreams.c.observed_property_id).outerjoin(
                obs,
                sa.and_(
                    obs.c.datastream_id == datastreams.c.id,  # the distribution key
                    obs.c.id == datastreams.c.last_observation_id,
                    obs.c.phenomenon_time_start == datastreams.c.last_observation_start,
                ),
            )
        )
        .order_by(datastreams.c.id)
    )
    stream_t = registry.type("Datastream")
    if visible is not None and (cond := visible(stream_t, datastreams)) is not None:
        latest = latest.where(cond)
    async with storage.reader() as r:
        # both backends' rows are sequences too, and unpacking them is the quick way
        thing_rows = cast("list[tuple[Any, ...]]", await r.fetch(placed))
        stream_rows = cast("list[tuple[Any, ...]]", await r.fetch(latest))

    # Texts that repeat (a Thing's properties, units, times) are decoded once each.
    ids: list[int] = []
    names: list[str] = []
    kinds: list[str | None] = []
    domains: list[str | None] = []
    lons: list[float | None] = []
    lats: list[float | None] = []
    geometries: dict[str, Any] = {}  # Things placed by something other than a Point
    described: dict[Any, tuple[str | None, str | None]] = {}
    last = None
    for tid, name, properties, location in thing_rows:
        if tid == last:
            continue  # a Thing with several Locations is shown at its first
        last = tid
        key = properties if isinstance(properties, (str, bytes)) else orjson.dumps(properties)
        found = described.get(key)
        if found is None:
            found = described[key] = _kind_and_domain(_json(properties))
        ids.append(tid)
        names.append(name)
        kinds.append(found[0])
        domains.append(found[1])
        geometry = _geometry(_json(location))
        point = _point(geometry)
        if point is None and geometry is not None:
            geometries[str(tid)] = geometry
        lons.append(point[0] if point else None)
        lats.append(point[1] if point else None)

    units = _Texts()
    observed = _Texts()
    symbols: dict[Any, str | None] = {}
    times: dict[tuple[Any, Any], str] = {}
    fmt = storage.format_time
    out_streams: dict[str, list[Any]] = {
        "id": [],
        "thing": [],
        "property": [],
        "unit": [],
        "result": [],
        "time": [],
    }
    s_id, s_thing, s_property, s_unit, s_result, s_time = out_streams.values()
    for (
        did,
        thing_id,
        uom,
        prop_name,
        prop_definition,
        start,
        end,
        result_type,
        number,
        string,
        result_json,
    ) in stream_rows:
        key = uom if isinstance(uom, (str, bytes)) else orjson.dumps(uom)
        if key not in symbols:
            symbol = (_json(uom) or {}).get("symbol")
            symbols[key] = symbol if isinstance(symbol, str) else None
        symbol = symbols[key]
        s_id.append(did)
        s_thing.append(thing_id)
        s_property.append(
            observed.index(
                (prop_name, prop_definition), {"name": prop_name, "definition": prop_definition}
            )
        )
        s_unit.append(units.index(symbol, symbol))
        if start is None:
            s_result.append(None)
            s_time.append(None)
            continue
        if result_json is not None and not isinstance(result_json, str):
            result_json = orjson.dumps(result_json).decode()
        s_result.append(
            number
            if result_type == RESULT_FLOAT
            else decode_result(result_type, number, string, result_json)
        )
        text = times.get((start, end))
        if text is None:
            text = fmt(start) if end is None or end == start else f"{fmt(start)}/{fmt(end)}"
            times[(start, end)] = text
        s_time.append(text)

    out_things = {
        "id": ids,
        "name": names,
        "kind": kinds,
        "domain": domains,
        "lon": lons,
        "lat": lats,
    }
    return {
        "things": out_things,
        "geometries": geometries,
        "datastreams": out_streams,
        "units": units.values,
        "observedProperties": observed.values,
    }
