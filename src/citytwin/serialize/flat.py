"""Entities as flat rows: the column layout shared by the tabular result formats.

A request's ``$select`` and ``$expand`` fix the columns before any row is read, so a
streamed answer can begin with its header. An expanded single entity (``Datastream``)
adds its columns under a prefix (``Datastream/name``); an expanded collection stays one
column holding its entities as JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from citytwin.model import EntityType, Kind, Registry
from citytwin.model.types import ID_NAMES
from citytwin.planner.reads import ReadPlanner
from citytwin.query.ast import QueryOptions


@dataclass(frozen=True)
class Column:
    header: str  # "name", "Datastream/name"
    path: tuple[str, ...]  # keys leading to the value in a SensorThings JSON entity
    geometry: bool = False  # a GeoJSON geometry (Location.location, ...)


def layout(
    registry: Registry, planner: ReadPlanner, et: EntityType, options: QueryOptions
) -> list[Column]:
    """The columns of ``et``'s entities as ``options`` select and expand them."""
    return list(_columns(registry, planner, et, options, (), top_level=True))


def _columns(
    registry: Registry,
    planner: ReadPlanner,
    et: EntityType,
    options: QueryOptions,
    prefix: tuple[str, ...],
    *,
    top_level: bool,
) -> Iterator[Column]:
    sel = planner.selection(et, options, top_level=top_level)
    props = {p.name: p for p in sel.properties}
    names: list[str] = ["@iot.id"] if sel.include_id else []
    if options.select is not None and "*" not in (i.segments[0] for i in options.select):
        names = []  # in the order $select gives them
        for item in options.select:
            name = "@iot.id" if item.segments[0] in ID_NAMES else str(item.segments[0])
            if name not in names and (name in props or name == "@iot.id"):
                names.append(name)
    else:
        names += props
    for name in names:
        if name == "@iot.id":
            yield Column("/".join((*prefix, "id")), (*prefix, name))
        else:
            path = (*prefix, name)
            yield Column("/".join(path), path, props[name].kind is Kind.GEOMETRY)
    for exp in options.expand:
        nav = et.navigation(exp.navigation)
        assert nav is not None  # the planner checked it when selecting
        path = (*prefix, nav.name)
        if nav.many:
            yield Column("/".join(path), path)
        else:
            target = registry.target(nav)
            yield from _columns(registry, planner, target, exp.options, path, top_level=False)


MISSING = object()


def pick(entity: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` of a SensorThings JSON entity, or MISSING."""
    node: Any = entity
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return MISSING
        node = node[key]
    return node
