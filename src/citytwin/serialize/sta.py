"""SensorThings JSON: entities with their control information, and collections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from citytwin.model import EntityType, Kind, Property
from citytwin.model.values import decode_result
from citytwin.planner.reads import Selection
from citytwin.storage.base import Row

Missing = object()


Extract = Callable[[Row], Any]


def _extractor(prop: Property, fmt: Callable[[Any], str]) -> Extract:
    """A function reading ``prop`` from a row, chosen once per property and backend."""
    k = prop.kind
    col = prop.column
    if k in (Kind.STRING, Kind.ID):
        return lambda row: row[col]
    if k in (Kind.OBJECT, Kind.ANY, Kind.GEOMETRY):

        def json_value(row: Row) -> Any:
            raw = row[col]
            return None if raw is None else orjson.Fragment(raw)

        return json_value
    if k is Kind.INSTANT:

        def instant(row: Row) -> Any:
            value = row[col]
            return None if value is None else fmt(value)

        return instant
    if k in (Kind.INTERVAL, Kind.TIME):
        start, end = prop.start, prop.end
        instant_when_equal = k is Kind.TIME

        def interval(row: Row) -> Any:
            s, e = row[start], row[end]
            if s is None or e is None:
                return None
            if instant_when_equal and s == e:
                return fmt(s)
            return f"{fmt(s)}/{fmt(e)}"

        return interval
    if k is Kind.RESULT:

        def result(row: Row) -> Any:
            raw = row["result_json"]
            if raw is not None:
                return orjson.Fragment(raw)
            return decode_result(
                row["result_type"], row["result_number"], row["result_string"], None
            )

        return result
    raise AssertionError(f"unhandled kind {k}")


_PLANS: dict[tuple[Any, ...], tuple[tuple[str, Extract, bool], ...]] = {}


class Serializer:
    """Turns stored rows into SensorThings JSON objects.

    JSON stored as text goes out verbatim (``orjson.Fragment``), so what a client posted
    is what it reads back. Each selection is turned once into a list of extractors.
    """

    def __init__(self, root: str, format_time: Callable[[Any], str]) -> None:
        self.root = root
        self.format_time = format_time
        self._by_selection: dict[int, tuple[Selection, tuple[tuple[str, Extract, bool], ...]]] = {}

    def self_link(self, et: EntityType, entity_id: int) -> str:
        return f"{self.root}/{et.set_name}({entity_id})"

    def _plan(self, et: EntityType, sel: Selection) -> tuple[tuple[str, Extract, bool], ...]:
        mine = self._by_selection.get(id(sel))
        if mine is not None and mine[0] is sel:  # the same selection, row after row
            return mine[1]
        key = (et.name, self.format_time, tuple(p.name for p in sel.properties))
        plan = _PLANS.get(key)
        if plan is None:
            plan = _PLANS[key] = tuple(
                (p.name, _extractor(p, self.format_time), p.show_null) for p in sel.properties
            )
        self._by_selection[id(sel)] = (sel, plan)
        return plan

    def entity(self, et: EntityType, row: Row, sel: Selection) -> dict[str, Any]:
        out: dict[str, Any] = {}
        entity_id = row["id"]
        if sel.include_id:
            out["@iot.selfLink"] = f"{self.root}/{et.set_name}({entity_id})"
            out["@iot.id"] = entity_id
        if sel.subpaths:
            self._with_subpaths(et, row, sel, out)
        else:
            for name, extract, show_null in self._plan(et, sel):
                value = extract(row)
                if value is not None or show_null:
                    out[name] = value
        if sel.nav_links:
            link = f"{self.root}/{et.set_name}({entity_id})"
            for name in sel.nav_links:
                out[f"{name}@iot.navigationLink"] = f"{link}/{name}"
        return out

    def _with_subpaths(self, et: EntityType, row: Row, sel: Selection, out: dict[str, Any]) -> None:
        for prop in sel.properties:
            subpaths = sel.subpaths.get(prop.name)
            if subpaths is None:
                value = self.value(prop, row)
            else:
                value = _pick(self.plain(prop, row), subpaths)
                if value is Missing:
                    continue
            if value is not None or prop.show_null:
                out[prop.name] = value

    def value(self, prop: Property, row: Row) -> Any:
        return _extractor(prop, self.format_time)(row)

    def plain(self, prop: Property, row: Row) -> Any:
        """The value as plain Python data (JSON parsed), for property paths and $value."""
        k = prop.kind
        if k in (Kind.OBJECT, Kind.ANY, Kind.GEOMETRY):
            raw = row[prop.column]
            return None if raw is None else orjson.loads(raw)
        if k is Kind.RESULT:
            raw = row["result_json"]
            if raw is not None:
                return orjson.loads(raw)
        return self.value(prop, row)


def _pick(value: Any, subpaths: tuple[tuple[str | int, ...], ...]) -> Any:
    """The parts of a JSON value named by ``$select=properties/a,properties/b``."""
    if value is None:
        return Missing
    data = value
    out: dict[str, Any] = {}
    found = False
    for path in subpaths:
        node = walk(data, path)
        if node is Missing:
            continue
        found = True
        _put(out, path, node)
    return out if found else Missing


def _put(target: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    node = target
    for seg in path[:-1]:
        node = node.setdefault(str(seg), {})
    node[str(path[-1])] = value


def walk(data: Any, path: tuple[str | int, ...]) -> Any:
    """The JSON value at path, or Missing."""
    node = data
    for seg in path:
        if isinstance(seg, int) and isinstance(node, list) and -len(node) <= seg < len(node):
            node = node[seg]
        elif isinstance(seg, str) and isinstance(node, dict) and seg in node:
            node = node[seg]
        elif (
            isinstance(seg, str)
            and isinstance(node, list)
            and seg.isdigit()
            and int(seg) < len(node)
        ):
            node = node[int(seg)]
        else:
            return Missing
    return node
