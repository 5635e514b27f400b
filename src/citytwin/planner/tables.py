"""SQLAlchemy Core tables derived from the entity registry.

The model says which columns a property needs (see :class:`citytwin.model.types.Property`);
the dialect says their SQL types. Migrations create the same tables by hand, and a test
checks that both agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeEngine

from citytwin.model import EntityType, Kind, Registry

# Storage-only columns that are not SensorThings properties, by table: (name, kind).
EXTRA_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    # the organisation owning a Thing (and everything under it), or having created a
    # Location or FeatureOfInterest (see citytwin.access)
    "things": (("org_id", "id"),),
    "features": (("org_id", "id"),),
    # the FeatureOfInterest generated from this Location, reused by later Observations
    "locations": (("gen_foi_id", "id"), ("org_id", "id")),
    # a summary kept current on every write: how many Observations, and the latest one
    # (by phenomenonTime, then end, then lowest id), so that neither needs a scan
    "datastreams": (
        ("observation_count", "id"),
        ("last_observation_id", "id"),
        ("last_observation_start", "time"),
        ("last_observation_end", "time"),
    ),
}
EXTRA_COLUMNS["multi_datastreams"] = EXTRA_COLUMNS["datastreams"]  # the same summary


@dataclass(frozen=True)
class ColumnTypes:
    """The SQL types a dialect uses for each kind of stored value."""

    id: TypeEngine[Any]
    text: TypeEngine[Any]
    json: TypeEngine[Any]
    time: TypeEngine[Any]
    number: TypeEngine[Any]
    small: TypeEngine[Any]
    geometry: TypeEngine[Any]


class Tables:
    """The tables of every registered entity type plus their link tables."""

    def __init__(self, registry: Registry, types: ColumnTypes) -> None:
        self.metadata = sa.MetaData()
        self.registry = registry
        self.types = types
        self.entity: dict[str, sa.Table] = {}
        self.link: dict[str, sa.Table] = {}
        self._aliases: dict[tuple[str, str], Any] = {}
        self.templates: dict[str, Any] = {}  # statements built once, run with named values
        for et in registry:
            self.entity[et.name] = self._entity_table(et)
        for et in registry:
            for nav in et.navigations:
                if nav.link is not None and nav.link[0] not in self.link:
                    table, src, dst = nav.link
                    order = nav.order or registry.inverse(nav).order
                    extra = [sa.Column(order, types.id, nullable=False)] if order else []
                    self.link[table] = sa.Table(
                        table,
                        self.metadata,
                        sa.Column(src, types.id, nullable=False),
                        sa.Column(dst, types.id, nullable=False),
                        *extra,
                    )

    def _entity_table(self, et: EntityType) -> sa.Table:
        t = self.types
        cols: list[sa.Column[object]] = [sa.Column(et.id_column, t.id, primary_key=True)]
        for prop in et.properties:
            k = prop.kind
            if k in (Kind.INTERVAL, Kind.TIME):
                cols.append(sa.Column(prop.start, t.time))
                cols.append(sa.Column(prop.end, t.time))
            elif k is Kind.INSTANT:
                cols.append(sa.Column(prop.column, t.time))
            elif k in (Kind.OBJECT, Kind.ANY):
                cols.append(sa.Column(prop.column, t.json))
            elif k is Kind.GEOMETRY:
                cols.append(sa.Column(prop.column, t.json))
                cols.append(sa.Column(prop.geom, t.geometry))
            elif k is Kind.RESULT:
                cols.append(sa.Column("result_type", t.small))
                cols.append(sa.Column("result_number", t.number))
                cols.append(sa.Column("result_string", t.text))
                cols.append(sa.Column("result_json", t.json))
            else:
                cols.append(sa.Column(prop.column, t.text))
        for nav in et.navigations:
            if nav.fk is not None:
                cols.append(sa.Column(nav.fk, t.id))
        for name, kind in EXTRA_COLUMNS.get(et.table, ()):
            cols.append(sa.Column(name, t.time if kind == "time" else t.id))
        return sa.Table(et.table, self.metadata, *cols)

    def alias(self, table: sa.Table, name: str) -> Any:
        """An alias of ``table`` named ``name``, made once: building an alias's column
        collection costs more than most of a request, and aliases can be shared freely."""
        key = (table.name, name)
        found = self._aliases.get(key)
        if found is None:
            found = self._aliases[key] = table.alias(name)
        return found

    def template(self, name: str, build: Callable[[], Any]) -> Any:
        """A statement built once by ``build`` and then run with named parameters."""
        found = self.templates.get(name)
        if found is None:
            found = self.templates[name] = build()
        return found

    def of(self, et: EntityType) -> sa.Table:
        return self.entity[et.name]
