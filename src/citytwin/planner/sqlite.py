"""SQL for the embedded SQLite store.

Times are integer microseconds since 1970 (UTC), so ranges and ordering use plain
integer indexes. Geometry is WKB evaluated by shapely through functions registered on
each connection (``ct_*``, see :mod:`citytwin.storage.sqlite.functions`); an R*Tree per
geometry column gives the bounding-box prefilter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, time
from typing import Any

import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.dialects import sqlite

from citytwin.errors import QueryTypeError
from citytwin.model import EntityType, Property
from citytwin.model.values import Duration, to_micros
from citytwin.planner.dialect import AnySelect, Dialect, JsonPath, Sql, param
from citytwin.planner.tables import ColumnTypes

_MAX_UNION = 400  # parents per UNION ALL; SQLite allows 500 terms in a compound select
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STRFTIME = {"year": "%Y", "month": "%m", "day": "%d", "hour": "%H", "minute": "%M", "second": "%S"}


def json_path(path: JsonPath) -> str:
    """A SQLite JSON path: ``$.a."b c"[0]``."""
    out = ["$"]
    for seg in path:
        if isinstance(seg, int):
            out.append(f"[{seg}]")
        elif _PLAIN_KEY.match(seg):
            out.append("." + seg)
        elif '"' in seg:
            raise QueryTypeError(
                "$filter", f"JSON keys with double quotes are not supported: {seg}"
            )
        else:
            out.append(f'."{seg}"')
    return "".join(out)


def rtree_name(et: EntityType, prop: Property) -> str:
    return f"{et.table}_{prop.column}_rtree"


class SqliteDialect(Dialect):
    name = "sqlite"
    column_types = ColumnTypes(
        id=sa.Integer(),
        text=sa.Text(),
        json=sa.Text(),
        time=sa.BigInteger(),
        number=sa.Float(),
        small=sa.SmallInteger(),
        geometry=sa.LargeBinary(),
    )
    sa_dialect = sqlite.dialect(paramstyle="qmark")

    def _seconds(self, expr: Sql) -> Sql:
        return sa.cast(expr, sa.Float) / 1000000.0

    # --- times
    def time_value(self, value: datetime) -> Any:
        return to_micros(value)

    def time_add(self, expr: Sql, duration: Duration) -> Sql:
        if duration.months:
            expr = sa.func.ct_add_months(expr, duration.months)
        if duration.micros:
            expr = expr + param(duration.micros)
        return expr

    def time_diff_micros(self, a: Sql, b: Sql) -> Sql:
        return a - b

    def time_bucket(self, expr: Sql, origin: datetime, size: int) -> Sql:
        start = param(to_micros(origin))
        return start + (expr - start) // param(size) * param(size)

    def date_part(self, expr: Sql, part: str) -> Sql:
        fmt = param(_STRFTIME[part])
        return sa.cast(sa.func.strftime(fmt, self._seconds(expr), "unixepoch"), sa.Integer)

    def fractional_seconds(self, expr: Sql) -> Sql:
        return ((expr % 1000000 + 1000000) % 1000000) / 1000000.0

    def date_of(self, expr: Sql) -> Sql:
        return sa.func.date(self._seconds(expr), "unixepoch")

    def date_param(self, value: date) -> Sql:
        return param(value.isoformat())

    def time_of(self, expr: Sql) -> Sql:
        return sa.func.strftime("%H:%M:%f", self._seconds(expr), "unixepoch")

    def timeofday_param(self, value: time) -> Sql:
        return param(f"{value:%H:%M:%S}.{value.microsecond // 1000:03d}")

    def geom_param(self, geom: BaseGeometry) -> Sql:
        return param(shapely.to_wkb(geom))

    # --- JSON
    def json_number(self, column: Sql, path: JsonPath) -> Sql:
        p = param(json_path(path))
        kind = sa.func.json_type(column, p)
        return sa.case(
            (sa.or_(kind == "integer", kind == "real"), sa.func.json_extract(column, p)),
            else_=sa.null(),
        )

    def json_bool(self, column: Sql, path: JsonPath) -> Sql:
        p = param(json_path(path))
        kind = sa.func.json_type(column, p)
        return sa.case((kind == "true", sa.true()), (kind == "false", sa.false()), else_=sa.null())

    def json_text(self, column: Sql, path: JsonPath) -> Sql:
        p = param(json_path(path))
        kind = sa.func.json_type(column, p)
        return sa.case(
            (sa.or_(kind == "true", kind == "false"), kind),
            (kind == "null", sa.null()),
            else_=sa.cast(sa.func.json_extract(column, p), sa.Text),
        )

    def json_is_null(self, column: Sql, path: JsonPath) -> Sql:
        p = param(json_path(path))
        return sa.func.coalesce(sa.func.json_type(column, p), "null") == "null"

    def json_sort(self, column: Sql, path: JsonPath) -> Sql:
        return sa.func.json_extract(column, param(json_path(path)))

    def json_array_contains(self, column: Sql, path: JsonPath, value: Sql, kind: str) -> Sql:
        each = sa.func.json_each(column, param(json_path(path))).table_valued("value", "type")
        cond = each.c.value == value
        if kind == "number":
            cond = sa.and_(sa.or_(each.c.type == "integer", each.c.type == "real"), cond)
        elif kind == "string":
            cond = sa.and_(each.c.type == "text", cond)
        return sa.exists(sa.select(sa.literal_column("1")).select_from(each).where(cond))

    # --- strings and numbers
    def lower(self, expr: Sql) -> Sql:
        return sa.func.ct_lower(expr)

    def upper(self, expr: Sql) -> Sql:
        return sa.func.ct_upper(expr)

    def modulo(self, a: Sql, b: Sql) -> Sql:
        return sa.func.mod(a, sa.func.nullif(b, 0))

    def number_text(self, expr: Sql) -> Sql:
        return sa.func.ct_number_text(expr)

    # --- geometry
    def spatial(self, name: str, a: Sql, b: Sql) -> Sql:
        return getattr(sa.func, "ct_" + name)(a, b, type_=sa.Boolean)  # type: ignore[no-any-return]

    def relate(self, a: Sql, b: Sql, pattern: Sql) -> Sql:
        return sa.func.ct_st_relate(a, b, pattern, type_=sa.Boolean)

    def distance(self, a: Sql, b: Sql) -> Sql:
        return sa.func.ct_st_distance(a, b)

    def length(self, a: Sql) -> Sql:
        return sa.func.ct_st_length(a)

    def substring(self, s: Sql, start: Sql, length: Sql | None) -> Sql:
        first = sa.func.max(start, 0) + 1
        if length is None:
            return sa.func.substr(s, first)
        return sa.func.substr(s, first, sa.func.max(length, 0))

    def limited_per_parent(
        self,
        select_for: Callable[[Sql], AnySelect],
        parent_key: Sql,
        keys: Sequence[Any],
        order: Sequence[Sql],
        skip: int,
        top: int,
    ) -> AnySelect:
        """One ordered LIMIT per parent, so that each uses an index range scan."""
        if len(keys) > _MAX_UNION:
            return super().limited_per_parent(select_for, parent_key, keys, order, skip, top)
        parts = []
        for key in keys:
            part = select_for(parent_key == key).order_by(*order).limit(top + 1)
            if skip:
                part = part.offset(skip)
            sub = part.subquery()
            parts.append(sa.select(*sub.c))
        union = sa.union_all(*parts).subquery("per_parent")
        return sa.select(*union.c)

    def spatial_prefilter(
        self,
        table: Any,
        et: EntityType,
        prop: Property,
        bounds: tuple[float, float, float, float],
    ) -> Sql | None:
        minx, miny, maxx, maxy = bounds
        rtree = sa.table(
            rtree_name(et, prop),
            sa.column("id"),
            sa.column("minx"),
            sa.column("maxx"),
            sa.column("miny"),
            sa.column("maxy"),
        )
        inner = sa.select(rtree.c.id).where(
            rtree.c.minx <= param(maxx),
            rtree.c.maxx >= param(minx),
            rtree.c.miny <= param(maxy),
            rtree.c.maxy >= param(miny),
        )
        return table.c[et.id_column].in_(inner)  # type: ignore[no-any-return]
