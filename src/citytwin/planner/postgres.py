"""SQL for PostgreSQL with PostGIS.

Times are ``timestamptz``, JSON is ``jsonb`` (paths as ``#>`` with text[] parameters),
geometry is PostGIS ``geometry(Geometry, 4326)`` behind GiST indexes that the ``ST_*``
functions use by themselves. Per-parent limits in ``$expand`` use a LATERAL join so that
each parent costs one index range scan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.types import UserDefinedType

from citytwin.model.values import RESULT_BOOL, Duration
from citytwin.planner.dialect import AnySelect, Dialect, JsonPath, Sql, param
from citytwin.planner.tables import ColumnTypes


class Geometry(UserDefinedType[Any]):
    """PostGIS geometry in WGS 84; values travel as EWKB (see the storage codec)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "geometry(Geometry, 4326)"


def ewkb(geom: BaseGeometry) -> bytes:
    """Extended WKB with SRID 4326, as PostGIS reads and writes it."""
    return bytes(shapely.to_wkb(shapely.set_srid(geom, 4326), include_srid=True))


def _path(path: JsonPath) -> Sql:
    """A JSON path as a text[] constant.

    The path is part of the expression, like a column name (its segments are names the
    query grammar allows, quoted here all the same): as a constant it lets PostgreSQL use
    an expression index such as ``((properties #>> '{owner}'))``. Values stay bound.
    """
    quoted = ",".join('"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"' for s in path)
    literal = "'{" + quoted.replace("'", "''") + "}'"
    return sa.literal_column(literal + "::text[]")


class PostgresDialect(Dialect):
    name = "postgresql"
    column_types = ColumnTypes(
        id=sa.BigInteger(),
        text=sa.Text(),
        json=JSONB(),
        time=sa.DateTime(timezone=True),
        number=sa.Float(),
        small=sa.SmallInteger(),
        geometry=Geometry(),
    )
    sa_dialect = PGDialect_asyncpg()  # type: ignore[no-untyped-call]

    def _utc(self, expr: Sql) -> Sql:
        return sa.func.timezone("UTC", expr)

    # --- times
    def time_value(self, value: datetime) -> Any:
        return value

    def time_add(self, expr: Sql, duration: Duration) -> Sql:
        if not duration.months and not duration.micros:
            return expr
        interval = sa.func.make_interval(
            0,
            param(duration.months),
            0,
            0,
            0,
            0,
            sa.bindparam(None, duration.micros / 1_000_000, type_=sa.Float),
        )
        return expr + interval

    def time_diff_micros(self, a: Sql, b: Sql) -> Sql:
        return sa.extract("epoch", a - b) * 1_000_000

    def time_bucket(self, expr: Sql, origin: datetime, size: int) -> Sql:
        stride = sa.bindparam(None, timedelta(microseconds=size), type_=sa.Interval)
        return sa.func.date_bin(stride, expr, self.time_param(origin), type_=self.column_types.time)

    def date_part(self, expr: Sql, part: str) -> Sql:
        return sa.func.floor(sa.extract(part, self._utc(expr)))

    def fractional_seconds(self, expr: Sql) -> Sql:
        micros = sa.extract("microseconds", self._utc(expr))
        return sa.func.mod(micros, 1_000_000) / 1_000_000.0

    def date_of(self, expr: Sql) -> Sql:
        return sa.cast(self._utc(expr), sa.Date)

    def date_param(self, value: date) -> Sql:
        return sa.bindparam(None, value, type_=sa.Date)

    def time_of(self, expr: Sql) -> Sql:
        return sa.cast(self._utc(expr), sa.Time)

    def timeofday_param(self, value: time) -> Sql:
        return sa.bindparam(None, value, type_=sa.Time)

    def geom_param(self, geom: BaseGeometry) -> Sql:
        return sa.func.ST_GeomFromEWKB(sa.bindparam(None, ewkb(geom), type_=sa.LargeBinary))

    # --- JSON
    def _at(self, column: Sql, path: JsonPath) -> Sql:
        return column.op("#>")(_path(path)) if path else column

    def _kind(self, column: Sql, path: JsonPath) -> Sql:
        return sa.func.jsonb_typeof(self._at(column, path))

    def json_number(self, column: Sql, path: JsonPath) -> Sql:
        value = sa.cast(self._at(column, path).op("#>>")(sa.literal_column("'{}'")), sa.Float)
        return sa.case((self._kind(column, path) == "number", value), else_=sa.null())

    def json_bool(self, column: Sql, path: JsonPath) -> Sql:
        value = sa.cast(self._at(column, path).op("#>>")(sa.literal_column("'{}'")), sa.Boolean)
        return sa.case((self._kind(column, path) == "boolean", value), else_=sa.null())

    def json_text(self, column: Sql, path: JsonPath) -> Sql:
        # #>> gives strings unquoted, other values as JSON text and JSON null as NULL
        if not path:
            return column.op("#>>")(sa.literal_column("'{}'::text[]"))
        return column.op("#>>")(_path(path))

    def json_is_null(self, column: Sql, path: JsonPath) -> Sql:
        return sa.func.coalesce(self._kind(column, path), "null") == "null"

    def json_array_contains(self, column: Sql, path: JsonPath, value: Sql, kind: str) -> Sql:
        typed = sa.cast(value, sa.Float if kind == "number" else sa.Text)
        return self._at(column, path).op("@>")(sa.func.jsonb_build_array(typed))

    def json_sort(self, column: Sql, path: JsonPath) -> Sql:
        return self._at(column, path)

    # --- results
    def result_bool(self, table: Any) -> Sql:
        return sa.case(
            (
                table.c.result_type == RESULT_BOOL,
                table.c.result_json == sa.cast(sa.literal_column("'true'"), JSONB),
            ),
            else_=sa.null(),
        )

    def json_column_text(self, column: Sql) -> Sql:
        return sa.cast(column, sa.Text)

    # --- strings and numbers
    def position(self, haystack: Sql, needle: Sql) -> Sql:
        return sa.func.strpos(haystack, needle)

    def starts_with(self, s: Sql, prefix: Sql) -> Sql:
        return sa.func.left(s, sa.func.length(prefix)) == prefix

    def ends_with(self, s: Sql, suffix: Sql) -> Sql:
        return sa.func.right(s, sa.func.length(suffix)) == suffix

    def modulo(self, a: Sql, b: Sql) -> Sql:
        return sa.func.mod(sa.cast(a, sa.Numeric), sa.func.nullif(sa.cast(b, sa.Numeric), 0))

    def round(self, expr: Sql) -> Sql:
        # numeric rounds halves away from zero, as OData asks; double precision would not
        return sa.cast(sa.func.round(sa.cast(expr, sa.Numeric)), sa.Float)

    def ceiling(self, expr: Sql) -> Sql:
        return sa.func.ceiling(expr)

    def number_text(self, expr: Sql) -> Sql:
        return sa.cast(sa.cast(expr, sa.Float), sa.Text)

    # --- geometry
    def spatial(self, name: str, a: Sql, b: Sql) -> Sql:
        fn = getattr(sa.func, "ST_" + name[3:].capitalize())
        return fn(a, b, type_=sa.Boolean)  # type: ignore[no-any-return]

    def relate(self, a: Sql, b: Sql, pattern: Sql) -> Sql:
        return sa.func.ST_Relate(a, b, pattern, type_=sa.Boolean)

    def distance(self, a: Sql, b: Sql) -> Sql:
        return sa.func.ST_Distance(a, b)

    def length(self, a: Sql) -> Sql:
        return sa.func.ST_Length(a)

    # --- ordering and paging
    def in_ids(self, column: Sql, ids: Sequence[int]) -> Sql:
        # one array parameter instead of one parameter per id
        return column == sa.any_(sa.bindparam(None, list(ids), type_=ARRAY(sa.BigInteger)))

    def in_ids_param(self, column: Sql, name: str) -> Sql:
        return column == sa.any_(sa.bindparam(name, type_=ARRAY(sa.BigInteger)))

    joins_lateral = True

    def written_here(self, table: sa.Table) -> Sql:
        # rows carry the id of the transaction that wrote them; citytwin's writes use no
        # savepoints, whose rows would carry their own
        return sa.literal_column(f"{table.name}.xmin") == sa.literal_column(
            "pg_current_xact_id()::xid"
        )

    def order(self, sql: Sql, descending: bool) -> Sql:
        return sql.desc().nulls_last() if descending else sql.asc().nulls_first()

    def limited_per_parent(
        self,
        select_for: Callable[[Sql], AnySelect],
        parent_key: Sql,
        keys: Sequence[Any],
        order: Sequence[Sql],
        skip: int,
        top: int,
    ) -> AnySelect:
        ids = sa.bindparam(None, list(keys), type_=ARRAY(sa.BigInteger))
        parents = (
            sa.func.unnest(ids)
            .table_valued(sa.column("pid", sa.BigInteger))
            .render_derived(name="parents")
        )
        inner = select_for(parent_key == parents.c.pid).order_by(*order).limit(top + 1)
        if skip:
            inner = inner.offset(skip)
        lateral = inner.lateral("per_parent")
        return sa.select(*lateral.c).select_from(parents.join(lateral, sa.true()))
