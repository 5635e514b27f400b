"""The SQL that differs between storage backends, behind one interface.

:class:`Dialect` holds what standard SQL does the same everywhere; backends subclass it
and override only what differs (time representation, JSON paths, spatial functions,
per-parent limits). Every value reaches SQL as a bound parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine.interfaces import Dialect as SaDialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement

from citytwin.model import EntityType, Property
from citytwin.model.values import (
    RESULT_BOOL,
    RESULT_FLOAT,
    RESULT_INT,
    RESULT_JSON,
    RESULT_STRING,
    Duration,
)
from citytwin.planner.tables import ColumnTypes

Sql = ColumnElement[Any]
AnySelect = sa.Select[*tuple[Any, ...]]
JsonPath = tuple[str | int, ...]

DATE_PARTS = ("year", "month", "day", "hour", "minute", "second")

SPATIAL_PREDICATES = (
    "st_equals",
    "st_disjoint",
    "st_touches",
    "st_within",
    "st_overlaps",
    "st_crosses",
    "st_intersects",
    "st_contains",
)


def param(value: Any) -> Sql:
    """A bound parameter (never an inlined literal)."""
    return sa.bindparam(None, value)


class Dialect:
    """SQL building blocks; subclasses adapt them to one database."""

    name = "base"
    column_types: ColumnTypes
    sa_dialect: SaDialect

    # --- values ---------------------------------------------------------------------------
    def time_value(self, value: datetime) -> Any:
        """A time as the driver takes it."""
        raise NotImplementedError

    def time_param(self, value: datetime) -> Sql:
        return sa.bindparam(None, self.time_value(value), type_=self.column_types.time)

    def time_add(self, expr: Sql, duration: Duration) -> Sql:
        raise NotImplementedError

    def time_diff_micros(self, a: Sql, b: Sql) -> Sql:
        """a - b in microseconds."""
        raise NotImplementedError

    def time_bucket(self, expr: Sql, origin: datetime, size: int) -> Sql:
        """The start of the ``size``-microsecond bucket, counted from ``origin``, that
        holds ``expr`` (a time at or after ``origin``), as the backend stores times."""
        raise NotImplementedError

    def date_part(self, expr: Sql, part: str) -> Sql:
        raise NotImplementedError

    def fractional_seconds(self, expr: Sql) -> Sql:
        raise NotImplementedError

    def date_of(self, expr: Sql) -> Sql:
        raise NotImplementedError

    def date_param(self, value: date) -> Sql:
        raise NotImplementedError

    def time_of(self, expr: Sql) -> Sql:
        raise NotImplementedError

    def timeofday_param(self, value: time) -> Sql:
        raise NotImplementedError

    def geom_param(self, geom: BaseGeometry) -> Sql:
        raise NotImplementedError

    # --- JSON -----------------------------------------------------------------------------
    def json_number(self, column: Sql, path: JsonPath) -> Sql:
        """The value at path if it is a JSON number, else NULL."""
        raise NotImplementedError

    def json_bool(self, column: Sql, path: JsonPath) -> Sql:
        raise NotImplementedError

    def json_text(self, column: Sql, path: JsonPath) -> Sql:
        """The value at path as text: strings unquoted, other scalars as JSON text."""
        raise NotImplementedError

    def json_is_null(self, column: Sql, path: JsonPath) -> Sql:
        """True when path is missing or holds JSON null."""
        raise NotImplementedError

    def json_array_contains(self, column: Sql, path: JsonPath, value: Sql, kind: str) -> Sql:
        raise NotImplementedError

    # --- results --------------------------------------------------------------------------
    def result_number(self, table: Any) -> Sql:
        return table.c.result_number  # type: ignore[no-any-return]

    def result_bool(self, table: Any) -> Sql:
        return sa.case(
            (table.c.result_type == RESULT_BOOL, table.c.result_json == param("true")),
            else_=sa.null(),
        )

    def result_text(self, table: Any) -> Sql:
        """The result as text, as compared with a string literal (``result gt '3'``)."""
        rt = table.c.result_type
        return sa.case(
            (rt == RESULT_STRING, table.c.result_string),
            (rt == RESULT_INT, self.integer_text(table.c.result_number)),
            (rt == RESULT_FLOAT, self.number_text(table.c.result_number)),
            (
                sa.or_(rt == RESULT_BOOL, rt == RESULT_JSON),
                self.json_column_text(table.c.result_json),
            ),
            else_=sa.null(),
        )

    def json_column_text(self, column: Sql) -> Sql:
        """A JSON column as its JSON text."""
        return column

    def integer_text(self, expr: Sql) -> Sql:
        return sa.cast(sa.cast(expr, sa.BigInteger), sa.Text)

    def number_text(self, expr: Sql) -> Sql:
        return sa.cast(expr, sa.Text)

    # --- strings and numbers --------------------------------------------------------------
    def lower(self, expr: Sql) -> Sql:
        return sa.func.lower(expr)

    def upper(self, expr: Sql) -> Sql:
        return sa.func.upper(expr)

    def contains(self, haystack: Sql, needle: Sql) -> Sql:
        return self.position(haystack, needle) > 0

    def position(self, haystack: Sql, needle: Sql) -> Sql:
        """1-based position of needle in haystack, 0 when absent."""
        return sa.func.instr(haystack, needle)

    def starts_with(self, s: Sql, prefix: Sql) -> Sql:
        return sa.func.substr(s, 1, sa.func.length(prefix)) == prefix

    def ends_with(self, s: Sql, suffix: Sql) -> Sql:
        return sa.or_(
            sa.func.length(suffix) == 0,
            sa.func.substr(s, -sa.func.length(suffix)) == suffix,
        )

    def substring(self, s: Sql, start: Sql, length: Sql | None) -> Sql:
        """0-based start, as SensorThings defines it; negative numbers count as 0."""
        first = sa.func.greatest(start, 0) + 1
        if length is None:
            return sa.func.substr(s, first)
        return sa.func.substr(s, first, sa.func.greatest(length, 0))

    def concat(self, a: Sql, b: Sql) -> Sql:
        return a.concat(b)

    def divide(self, a: Sql, b: Sql) -> Sql:
        return sa.cast(a, sa.Float) / sa.func.nullif(b, 0)

    def modulo(self, a: Sql, b: Sql) -> Sql:
        return a % sa.func.nullif(b, 0)

    def round(self, expr: Sql) -> Sql:
        return sa.func.round(expr)

    def floor(self, expr: Sql) -> Sql:
        return sa.func.floor(expr)

    def ceiling(self, expr: Sql) -> Sql:
        return sa.func.ceil(expr)

    def false(self) -> Sql:
        return sa.false()

    def coalesce_bool(self, expr: Sql) -> Sql:
        return sa.func.coalesce(expr, sa.false())

    # --- geometry -------------------------------------------------------------------------
    def spatial(self, name: str, a: Sql, b: Sql) -> Sql:
        """One of SPATIAL_PREDICATES applied to two geometries."""
        raise NotImplementedError

    def relate(self, a: Sql, b: Sql, pattern: Sql) -> Sql:
        raise NotImplementedError

    def distance(self, a: Sql, b: Sql) -> Sql:
        raise NotImplementedError

    def length(self, a: Sql) -> Sql:
        raise NotImplementedError

    def spatial_prefilter(
        self,
        table: Any,
        et: EntityType,
        prop: Property,
        bounds: tuple[float, float, float, float],
    ) -> Sql | None:
        """A cheap index condition implied by 'geometry overlaps bounds', or None."""
        return None

    def in_ids(self, column: Sql, ids: Sequence[int]) -> Sql:
        """``column`` is one of ``ids`` (a page of parents: up to max_page_size of them)."""
        return column.in_(list(ids))

    def in_ids_param(self, column: Sql, name: str) -> Sql:
        """``column`` is one of the ids given later as the template parameter ``name``."""
        return column.in_(sa.bindparam(name, expanding=True))

    joins_lateral = False  # whether a join may run a subquery per row (LATERAL)

    def written_here(self, table: sa.Table) -> Sql | None:
        """The condition that a row of ``table`` was written by the current transaction,
        where the database can tell (None: it cannot)."""
        return None

    # --- ordering and paging ----------------------------------------------------------------
    def order(self, sql: Sql, descending: bool) -> Sql:
        """Nulls first when ascending, last when descending (OGC 18-088 9.3.3.4)."""
        return sql.desc() if descending else sql.asc()

    def json_sort(self, column: Sql, path: JsonPath) -> Sql:
        """A sort key for the JSON value at path."""
        raise NotImplementedError

    # --- paging -----------------------------------------------------------------------------
    def limited_per_parent(
        self,
        select_for: Callable[[Sql], AnySelect],
        parent_key: Sql,
        keys: Sequence[Any],
        order: Sequence[Sql],
        skip: int,
        top: int,
    ) -> AnySelect:
        """At most ``top`` rows after ``skip`` for each parent (plus one to detect more).

        ``select_for(condition)`` builds the rows' select restricted by a condition on
        ``parent_key``. This default numbers each parent's rows with a window function.
        """
        rn = sa.func.row_number().over(partition_by=parent_key, order_by=list(order))
        base = select_for(parent_key.in_(list(keys)))
        inner = base.add_columns(rn.label("_rn")).subquery("per_parent")
        cols = [c for c in inner.c if c.name != "_rn"]
        return sa.select(*cols).where(inner.c._rn > skip, inner.c._rn <= skip + top + 1)

    # --- compiling ----------------------------------------------------------------------------
    _compiled: dict[Any, Any]
    _templates: dict[int, tuple[sa.ClauseElement, SQLCompiler]]

    def compile(
        self, stmt: sa.ClauseElement, params: Mapping[str, Any] | None = None
    ) -> tuple[str, list[Any]]:
        """SQL text and positional parameters for the driver.

        A statement's shape is compiled once and kept by its SQLAlchemy cache key; later
        statements of the same shape only bind their values (and expand IN lists). This is
        how SQLAlchemy's own engine avoids recompiling. A statement given with ``params``
        is a long-lived template with named parameters: it is compiled once and kept by
        identity, so that not even its cache key is computed again.
        """
        if params is not None:
            cache = self.__dict__.setdefault("_templates", {})
            hit = cache.get(id(stmt))
            if hit is None:
                hit = cache[id(stmt)] = (stmt, _sql_compiler(stmt.compile(dialect=self.sa_dialect)))
            expanded = hit[1].construct_expanded_state(hit[1].construct_params(dict(params)))
            names = expanded.positiontup or []
            return expanded.statement, [expanded.parameters[n] for n in names]
        key = stmt._generate_cache_key()
        if key is None:  # a construct that cannot be cached: compile it every time
            compiled = _sql_compiler(stmt.compile(dialect=self.sa_dialect))
            expanded = compiled.construct_expanded_state(compiled.construct_params())
        else:
            cache = self.__dict__.setdefault("_compiled", {})
            compiled = cache.get(key.key)
            if compiled is None:
                if len(cache) >= _CACHE_SIZE:
                    cache.clear()
                compiled = _sql_compiler(stmt.compile(dialect=self.sa_dialect, cache_key=key))
                cache[key.key] = compiled
            params = compiled.construct_params(extracted_parameters=key.bindparams)
            expanded = compiled.construct_expanded_state(params)
        names = expanded.positiontup or []
        return expanded.statement, [expanded.parameters[n] for n in names]

    def compile_many(
        self, stmt: sa.ClauseElement, params: Sequence[Mapping[str, Any]]
    ) -> tuple[str, list[list[Any]]]:
        """SQL text and the positional arguments of each parameter set of a template run
        with executemany. A template without expanding parameters (IN lists) is bound by
        name alone after the first set: binding through the compiler costs as much as the
        row it updates."""
        sql, first = self.compile(stmt, params[0])
        compiled: SQLCompiler = self._templates[id(stmt)][1]
        names = compiled.positiontup or []
        expanding = compiled.post_compile_params or compiled.literal_execute_params
        if expanding or any(n not in params[0] for n in names):
            return sql, [first] + [self.compile(stmt, p)[1] for p in params[1:]]
        return sql, [first] + [[p[n] for n in names] for p in params[1:]]


_CACHE_SIZE = 2000  # statement shapes kept compiled per dialect


def _sql_compiler(compiled: Any) -> SQLCompiler:
    assert isinstance(compiled, SQLCompiler)
    return compiled
