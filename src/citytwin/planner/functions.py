"""The ``$filter`` functions of OGC 18-088 (Table 'built-in query functions').

Positions follow the standard: ``substring`` counts from 0, ``indexof`` from 1 (as the
standard's example and FROST-Server do), ``substringof(a, b)`` asks whether a is in b.
Geometry functions work on WGS 84 coordinates as planar values: ``geo.distance`` and
``geo.length`` are in degrees, as in FROST-Server.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from citytwin.planner.dialect import DATE_PARTS, SPATIAL_PREDICATES, Sql
from citytwin.planner.values import T, Val

if TYPE_CHECKING:
    from citytwin.planner.filters import Compiler
    from citytwin.planner.values import Scope
    from citytwin.query.ast import Call

_DE9IM = re.compile(r"^[TF*012]{9}$")
MIN_DATETIME = datetime(1, 1, 1, tzinfo=UTC)
MAX_DATETIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

Handler = Callable[["Compiler", "Call", list[Val]], Val]
_FUNCTIONS: dict[str, tuple[int, int, Handler]] = {}


def _fn(name: str, min_args: int, max_args: int | None = None) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _FUNCTIONS[name] = (min_args, min_args if max_args is None else max_args, handler)
        return handler

    return register


def function_names() -> list[str]:
    return sorted(_FUNCTIONS)


def call(c: Compiler, expr: Call, scope: Scope) -> Val:
    spec = _FUNCTIONS.get(expr.name)
    if spec is None:
        raise c.error(f"unknown function {expr.name}()", expr.pos)
    lo, hi, handler = spec
    n = len(expr.args)
    if not lo <= n <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise c.error(f"{expr.name}() takes {want} argument(s), got {n}", expr.pos)
    args = [c.value(a, scope) for a in expr.args]
    return handler(c, expr, args)


def _nullable(*vals: Val) -> bool:
    return any(v.nullable for v in vals)


# --- strings ----------------------------------------------------------------------------------
def _strings(c: Compiler, expr: Call, args: list[Val]) -> list[Sql]:
    return [c.sql(a, T.STRING, a.pos or expr.pos) for a in args]


def _string_fn(result: T, fn: Callable[..., Sql]) -> Handler:
    """A function of string arguments, e.g. ``startswith(name, 'A')``."""

    def handler(c: Compiler, e: Call, a: list[Val]) -> Val:
        sql = fn(c.dialect, *_strings(c, e, a))
        nullable = result is T.BOOLEAN or _nullable(*a)
        return Val(result, sql, nullable=nullable, pos=e.pos)

    return handler


def _substring(c: Compiler, e: Call, a: list[Val]) -> Val:
    s = c.sql(a[0], T.STRING, a[0].pos)
    start = c.sql(a[1], T.NUMBER, a[1].pos)
    length = c.sql(a[2], T.NUMBER, a[2].pos) if len(a) == 3 else None
    return Val(T.STRING, c.dialect.substring(s, start, length), nullable=_nullable(*a), pos=e.pos)


_fn("substringof", 2)(_string_fn(T.BOOLEAN, lambda d, needle, hay: d.contains(hay, needle)))
_fn("contains", 2)(_string_fn(T.BOOLEAN, lambda d, hay, needle: d.contains(hay, needle)))
_fn("startswith", 2)(_string_fn(T.BOOLEAN, lambda d, s, prefix: d.starts_with(s, prefix)))
_fn("endswith", 2)(_string_fn(T.BOOLEAN, lambda d, s, suffix: d.ends_with(s, suffix)))
_fn("length", 1)(_string_fn(T.NUMBER, lambda d, s: sa.func.length(s)))
_fn("indexof", 2)(_string_fn(T.NUMBER, lambda d, s, sub: d.position(s, sub)))
_fn("tolower", 1)(_string_fn(T.STRING, lambda d, s: d.lower(s)))
_fn("toupper", 1)(_string_fn(T.STRING, lambda d, s: d.upper(s)))
_fn("trim", 1)(_string_fn(T.STRING, lambda d, s: sa.func.trim(s)))
_fn("concat", 2)(_string_fn(T.STRING, lambda d, x, y: d.concat(x, y)))
_fn("substring", 2, 3)(_substring)


# --- date and time ----------------------------------------------------------------------------
def _time_arg(c: Compiler, e: Call, v: Val) -> Sql:
    if v.type not in (T.DATETIME, T.INTERVAL, T.DATE) or (v.type is T.DATE and not v.is_const):
        raise c.error(f"{e.name}() needs a date-time, got a {v.type.value}", v.pos or e.pos)
    if v.type is T.DATE:
        v = c._promote_dates(v)
    return c.sql(v, T.DATETIME, v.pos or e.pos)


def _part(part: str) -> Handler:
    def handler(c: Compiler, e: Call, a: list[Val]) -> Val:
        sql = c.dialect.date_part(_time_arg(c, e, a[0]), part)
        return Val(T.NUMBER, sql, nullable=a[0].nullable, pos=e.pos)

    return handler


for _p in DATE_PARTS:
    _fn(_p, 1)(_part(_p))


@_fn("fractionalseconds", 1)
def _fractional(c: Compiler, e: Call, a: list[Val]) -> Val:
    sql = c.dialect.fractional_seconds(_time_arg(c, e, a[0]))
    return Val(T.NUMBER, sql, nullable=a[0].nullable, pos=e.pos)


@_fn("date", 1)
def _date(c: Compiler, e: Call, a: list[Val]) -> Val:
    return Val(T.DATE, c.dialect.date_of(_time_arg(c, e, a[0])), nullable=a[0].nullable, pos=e.pos)


@_fn("time", 1)
def _time(c: Compiler, e: Call, a: list[Val]) -> Val:
    return Val(T.TIME, c.dialect.time_of(_time_arg(c, e, a[0])), nullable=a[0].nullable, pos=e.pos)


@_fn("totaloffsetminutes", 1)
def _offset(c: Compiler, e: Call, a: list[Val]) -> Val:
    _time_arg(c, e, a[0])  # checks the argument
    offset = a[0].const.utcoffset() if a[0].is_const and a[0].type is T.DATETIME else None
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0  # stored: UTC
    return Val(T.NUMBER, const=minutes, nullable=False, pos=e.pos)


@_fn("now", 0)
def _now(c: Compiler, e: Call, a: list[Val]) -> Val:
    return Val(T.DATETIME, const=c.now, nullable=False, pos=e.pos)


@_fn("mindatetime", 0)
def _mindatetime(c: Compiler, e: Call, a: list[Val]) -> Val:
    return Val(T.DATETIME, const=MIN_DATETIME, nullable=False, pos=e.pos)


@_fn("maxdatetime", 0)
def _maxdatetime(c: Compiler, e: Call, a: list[Val]) -> Val:
    return Val(T.DATETIME, const=MAX_DATETIME, nullable=False, pos=e.pos)


# --- math -------------------------------------------------------------------------------------
def _math(name: str) -> Handler:
    def handler(c: Compiler, e: Call, a: list[Val]) -> Val:
        x = c.sql(a[0], T.NUMBER, a[0].pos or e.pos)
        sql = getattr(c.dialect, name)(x)
        return Val(T.NUMBER, sql, nullable=a[0].nullable or a[0].type is not T.NUMBER, pos=e.pos)

    return handler


for _m in ("round", "floor", "ceiling"):
    _fn(_m, 1)(_math(_m))


# --- geometry ---------------------------------------------------------------------------------
def _geom(c: Compiler, e: Call, v: Val) -> Sql:
    if v.type is not T.GEOMETRY:
        raise c.error(f"{e.name}() needs a geometry, got a {v.type.value}", v.pos or e.pos)
    return c.sql(v, T.GEOMETRY)


def _with_prefilter(c: Compiler, sql: Sql, a: Val, b: Val) -> Sql:
    """AND an index prefilter when one side is an indexed column and the other a literal."""
    for col, lit in ((a, b), (b, a)):
        if col.geo is not None and lit.is_const:
            pre = c.dialect.spatial_prefilter(
                col.geo.table, col.geo.et, col.geo.prop, lit.const.bounds
            )
            if pre is not None:
                return sa.and_(pre, sql)
    return sql


def _spatial(name: str) -> Handler:
    def handler(c: Compiler, e: Call, a: list[Val]) -> Val:
        x, y = _geom(c, e, a[0]), _geom(c, e, a[1])
        sql = c.dialect.spatial(name, x, y)
        if name != "st_disjoint":
            sql = _with_prefilter(c, sql, a[0], a[1])
        return Val(T.BOOLEAN, sql, nullable=True, pos=e.pos)

    return handler


for _s in SPATIAL_PREDICATES:
    _fn(_s, 2)(_spatial(_s))
_fn("geo.intersects", 2)(_spatial("st_intersects"))


@_fn("st_relate", 3)
def _relate(c: Compiler, e: Call, a: list[Val]) -> Val:
    x, y = _geom(c, e, a[0]), _geom(c, e, a[1])
    pattern = a[2]
    if not (pattern.type is T.STRING and pattern.is_const and _DE9IM.match(pattern.const)):
        raise c.error(
            "st_relate() needs a DE-9IM pattern like 'T********' as third argument",
            pattern.pos or e.pos,
        )
    return Val(T.BOOLEAN, c.dialect.relate(x, y, c.sql(pattern)), nullable=True, pos=e.pos)


@_fn("geo.distance", 2)
def _distance(c: Compiler, e: Call, a: list[Val]) -> Val:
    x, y = _geom(c, e, a[0]), _geom(c, e, a[1])
    distance_of = None
    for col, lit in ((a[0], a[1]), (a[1], a[0])):
        if col.geo is not None and lit.is_const:
            distance_of = (col.geo, lit.const)
    return Val(
        T.NUMBER, c.dialect.distance(x, y), nullable=True, distance_of=distance_of, pos=e.pos
    )


@_fn("geo.length", 1)
def _geo_length(c: Compiler, e: Call, a: list[Val]) -> Val:
    return Val(T.NUMBER, c.dialect.length(_geom(c, e, a[0])), nullable=True, pos=e.pos)
