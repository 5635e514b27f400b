"""Typed SQL values produced while compiling expressions, and the scopes paths resolve in."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from citytwin.model import EntityType, Property
from citytwin.planner.dialect import JsonPath, Sql


class T(enum.Enum):
    """Types of filter values."""

    NUMBER = "number"
    STRING = "string"
    BOOLEAN = "boolean"
    DATETIME = "date-time"
    DATE = "date"
    TIME = "time"
    DURATION = "duration"
    GEOMETRY = "geometry"
    INTERVAL = "time interval"
    JSON = "JSON value"
    RESULT = "result"
    NULL = "null"


DYNAMIC = frozenset({T.JSON, T.RESULT})
NO_VALUE: Any = object()


@dataclass(frozen=True)
class GeoColumn:
    """A geometry column of the scope's own table, for an index prefilter."""

    table: Any
    et: EntityType
    prop: Property


@dataclass(frozen=True)
class Val:
    type: T
    sql: Sql | None = None  # the value; for INTERVAL its start
    end: Sql | None = None  # INTERVAL only
    nullable: bool = True
    const: Any = NO_VALUE  # the Python value of a literal
    json: tuple[Sql, JsonPath] | None = None  # JSON: column and path inside it
    result: dict[str, Sql] | None = None  # RESULT: its storage columns
    geo: GeoColumn | None = None
    keyset: tuple[tuple[Sql, str], ...] = ()  # plain NOT NULL columns: (column, kind)
    distance_of: tuple[GeoColumn, Any] | None = None  # geo.distance(column, literal)
    pos: int = 0

    @property
    def is_const(self) -> bool:
        return self.const is not NO_VALUE


@dataclass
class Scope:
    """Where paths resolve: an entity type and the table alias holding its rows.

    ``bound`` maps navigation chains to scopes already joined in an enclosing EXISTS.
    """

    et: EntityType
    table: Any
    bound: dict[tuple[str, ...], Scope] = field(default_factory=dict)
    direct: bool = True

    def col(self, name: str) -> Sql:
        return self.table.c[name]  # type: ignore[no-any-return]


class SubqueryScope(Scope):
    """A to-one related entity read through a correlated scalar subquery per column."""

    def __init__(self, et: EntityType, table: Any, join: Sql) -> None:
        super().__init__(et, table, {}, direct=False)
        self.join = join

    def col(self, name: str) -> Sql:
        return sa.select(self.table.c[name]).where(self.join).scalar_subquery()
