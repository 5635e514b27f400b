"""Compile ``$filter`` and ``$orderby`` expressions into SQL with bound parameters.

Semantics, where the standard leaves room:

* Logic is two-valued as in OData: a comparison with a missing value is false, so
  ``not (x gt 1)`` and ``x ne 1`` hold for entities without ``x``.
* A path through a relation means "some related entity satisfies the condition"
  (``Things?$filter=Datastreams/name eq 'x'``); ``Datastreams/id eq null`` holds for
  Things without Datastreams. A condition naming only one relation becomes an
  uncorrelated ``IN`` semi-join so that the database can start from the related table.
* Typed properties compare only with values of their type (``name gt 5`` is an error).
  JSON values and ``result`` adapt to the literal: numbers compare with JSON numbers,
  strings compare with the text of any JSON scalar, as FROST-Server does.
* Time intervals compare by the rules of OGC 18-088 as implemented by FROST-Server:
  ``gt`` means starts after, ``lt`` means ends at or before, ``eq`` means same start and end.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from citytwin.errors import QueryTypeError
from citytwin.model import EntityType, Kind, Navigation, Property, Registry
from citytwin.model.types import ID_NAMES
from citytwin.model.values import RESULT_NULL, Duration, Interval
from citytwin.planner.dialect import Dialect, Sql
from citytwin.planner.functions import call
from citytwin.planner.tables import Tables
from citytwin.planner.values import DYNAMIC, GeoColumn, Scope, SubqueryScope, T, Val
from citytwin.query.ast import (
    ARITHMETIC,
    COMPARISON,
    Binary,
    Call,
    Expr,
    In,
    Literal,
    LitType,
    Path,
    Unary,
)

_LIT_TYPES = {
    LitType.NUMBER: T.NUMBER,
    LitType.STRING: T.STRING,
    LitType.BOOLEAN: T.BOOLEAN,
    LitType.NULL: T.NULL,
    LitType.DATETIME: T.DATETIME,
    LitType.DATE: T.DATE,
    LitType.TIME: T.TIME,
    LitType.DURATION: T.DURATION,
    LitType.GEOMETRY: T.GEOMETRY,
    LitType.INTERVAL: T.INTERVAL,
}
_FLIP = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
_SQL_OPS = {
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}
_TIMES = (T.DATETIME, T.INTERVAL)


# the rows of an entity type's table alias the request's principal may see (None: all)
Visibility = Callable[[EntityType, Any], Sql | None]


def paths_in(expr: Expr) -> Iterator[Path]:
    if isinstance(expr, Path):
        yield expr
    elif isinstance(expr, Call):
        for a in expr.args:
            yield from paths_in(a)
    elif isinstance(expr, Unary):
        yield from paths_in(expr.operand)
    elif isinstance(expr, Binary):
        yield from paths_in(expr.left)
        yield from paths_in(expr.right)
    elif isinstance(expr, In):
        yield from paths_in(expr.left)
        for item in expr.items:
            yield from paths_in(item)


def strip_head(expr: Expr, head: str) -> Expr:
    """The expression with ``head/`` removed from the paths that start with it."""
    if isinstance(expr, Path):
        if expr.segments[0] == head:
            return Path(expr.segments[1:], pos=expr.pos)
        return expr
    if isinstance(expr, Call):
        return Call(expr.name, tuple(strip_head(a, head) for a in expr.args), pos=expr.pos)
    if isinstance(expr, Unary):
        return Unary(expr.op, strip_head(expr.operand, head), pos=expr.pos)
    if isinstance(expr, Binary):
        return Binary(
            expr.op, strip_head(expr.left, head), strip_head(expr.right, head), pos=expr.pos
        )
    if isinstance(expr, In):
        return In(
            strip_head(expr.left, head),
            tuple(strip_head(i, head) for i in expr.items),
            pos=expr.pos,
        )
    return expr


class Compiler:
    """Turns expressions into SQL for one request; ``now`` is fixed per request."""

    def __init__(
        self,
        registry: Registry,
        tables: Tables,
        dialect: Dialect,
        *,
        now: datetime | None = None,
        option: str = "$filter",
        visible: Visibility | None = None,
    ) -> None:
        self.registry = registry
        # what the request's principal may see; None: everything. Every entity a path
        # reaches through a relation must be visible, so that a $filter over a hidden
        # entity matches nothing and reveals nothing
        self.visible = visible
        self.tables = tables
        self.dialect = dialect
        self.now = now or datetime.now(UTC)
        self.option = option
        self._aliases = itertools.count(1)

    # --- helpers --------------------------------------------------------------------------
    def for_option(self, option: str) -> Compiler:
        """This compiler naming ``option`` in its errors; table aliases stay unique."""
        other = copy.copy(self)
        other.option = option
        return other

    def error(self, message: str, pos: int | None) -> QueryTypeError:
        return QueryTypeError(self.option, message, pos or None)

    def alias(self, et: EntityType) -> Any:
        return self.tables.alias(self.tables.of(et), f"{et.table[:2]}{next(self._aliases)}")

    def link_alias(self, name: str) -> Any:
        return self.tables.alias(self.tables.link[name], f"lk{next(self._aliases)}")

    def scope(self, et: EntityType) -> Scope:
        return Scope(et, self.alias(et))

    def visibility(self, scope: Scope) -> list[Sql]:
        """The condition (none or one) for the rows of ``scope`` the principal may see."""
        cond = None if self.visible is None else self.visible(scope.et, scope.table)
        return [] if cond is None else [cond]

    # --- relations --------------------------------------------------------------------------
    def join_condition(self, src: Scope, nav: Navigation, tgt: Any) -> tuple[list[Any], Sql]:
        """FROM items and the condition joining ``src`` to a target alias over ``nav``."""
        target_et = self.registry.target(nav)
        if nav.fk is not None:
            return [tgt], tgt.c[target_et.id_column] == src.col(nav.fk)
        if nav.reverse_fk is not None:
            return [tgt], tgt.c[nav.reverse_fk] == src.col(src.et.id_column)
        assert nav.link is not None
        table, src_col, dst_col = nav.link
        link = self.link_alias(table)
        cond = sa.and_(
            link.c[src_col] == src.col(src.et.id_column),
            tgt.c[target_et.id_column] == link.c[dst_col],
        )
        return [link, tgt], cond

    def semijoin(self, src: Scope, nav: Navigation, tgt: Scope, cond: Sql | None) -> Sql:
        """``src`` rows with at least one ``nav``-related row in ``tgt`` meeting ``cond``."""
        target_et = tgt.et
        where = [cond] if cond is not None else []
        if nav.fk is not None:
            inner = sa.select(tgt.table.c[target_et.id_column]).where(*where)
            return src.col(nav.fk).in_(inner)
        if nav.reverse_fk is not None:
            inner = sa.select(tgt.table.c[nav.reverse_fk]).where(*where)
            return src.col(src.et.id_column).in_(inner)
        assert nav.link is not None
        table, src_col, dst_col = nav.link
        link = self.link_alias(table)
        if cond is None:
            inner = sa.select(link.c[src_col])
        else:
            inner = (
                sa.select(link.c[src_col])
                .join(tgt.table, tgt.table.c[target_et.id_column] == link.c[dst_col])
                .where(*where)
            )
        return src.col(src.et.id_column).in_(inner)

    def semijoin_id(self, src: Scope, nav: Navigation, entity_id: int) -> Sql:
        """``src`` rows related over ``nav`` to the entity with ``entity_id``."""
        if nav.fk is not None:
            return src.col(nav.fk) == entity_id
        if nav.link is not None:
            table, src_col, dst_col = nav.link
            link = self.link_alias(table)
            inner = sa.select(link.c[src_col]).where(link.c[dst_col] == entity_id)
            return src.col(src.et.id_column).in_(inner)
        target = self.registry.target(nav)
        tgt = self.alias(target)
        assert nav.reverse_fk is not None
        inner = sa.select(tgt.c[nav.reverse_fk]).where(tgt.c[target.id_column] == entity_id)
        return src.col(src.et.id_column).in_(inner)

    # --- conditions ---------------------------------------------------------------------------
    def condition(self, expr: Expr, scope: Scope) -> Sql:
        sql, _ = self._bool(expr, scope)
        return sql

    def _bool(self, expr: Expr, scope: Scope) -> tuple[Sql, bool]:
        """A condition and whether it can be NULL (unknown)."""
        if isinstance(expr, Binary) and expr.op in ("and", "or"):
            a, na = self._bool(expr.left, scope)
            b, nb = self._bool(expr.right, scope)
            combine = sa.and_ if expr.op == "and" else sa.or_
            return combine(a, b), na or nb
        if isinstance(expr, Unary) and expr.op == "not":
            inner, nullable = self._bool(expr.operand, scope)
            if nullable:
                inner = self.dialect.coalesce_bool(inner)
            return sa.not_(inner), False
        heads, local = self._heads(expr, scope)
        if not heads:
            return self._leaf(expr, scope)
        if len(heads) == 1 and not local:
            return self._via(expr, scope, heads.pop())
        return self._exists(expr, scope)

    def _heads(self, expr: Expr, scope: Scope) -> tuple[set[str], bool]:
        heads: set[str] = set()
        local = False
        for path in paths_in(expr):
            first = path.segments[0]
            if isinstance(first, str) and scope.et.navigation(first) is not None:
                if len(path.segments) == 1:
                    raise self.error(
                        f"{first} is a navigation property of {scope.et.name}; name one of "
                        f"its properties, e.g. {first}/id",
                        path.pos,
                    )
                if not any(k[0] == first for k in scope.bound):
                    heads.add(first)
            else:
                local = True
        return heads, local

    def _via(self, expr: Expr, scope: Scope, head: str) -> tuple[Sql, bool]:
        nav = scope.et.navigation(head)
        assert nav is not None
        inner_scope = self.scope(self.registry.target(nav))
        inner_expr = strip_head(expr, head)
        cond, _ = self._bool(inner_expr, inner_scope)
        seen = self.visibility(inner_scope)
        found = self.semijoin(scope, nav, inner_scope, sa.and_(cond, *seen))
        if nav.many and self._is_null_test(expr):
            # left-join semantics: with no related entity at all the value is null
            none = self.semijoin(scope, nav, inner_scope, sa.and_(*seen) if seen else None)
            return sa.or_(found, sa.not_(none)), False
        return found, False

    @staticmethod
    def _is_null_test(expr: Expr) -> bool:
        return (
            isinstance(expr, Binary)
            and expr.op == "eq"
            and any(
                isinstance(s, Literal) and s.type is LitType.NULL for s in (expr.left, expr.right)
            )
        )

    def _exists(self, expr: Expr, scope: Scope) -> tuple[Sql, bool]:
        """A condition over several relations (or a relation and the entity itself)."""
        froms: list[Any] = []
        conds: list[Sql] = []
        bound = dict(scope.bound)
        for path in paths_in(expr):
            parent = scope
            chain: tuple[str, ...] = ()
            for seg in path.segments[:-1]:
                if not isinstance(seg, str):
                    break
                nav = parent.et.navigation(seg)
                if nav is None:
                    break
                chain = (*chain, seg)
                if chain not in bound:
                    target = self.registry.target(nav)
                    alias = self.alias(target)
                    items, cond = self.join_condition(parent, nav, alias)
                    froms.extend(items)
                    conds.append(cond)
                    bound[chain] = Scope(target, alias)
                    conds.extend(self.visibility(bound[chain]))
                parent = bound[chain]
        inner = Scope(scope.et, scope.table, bound, scope.direct)
        sql, _ = self._leaf(expr, inner)
        return sa.exists(
            sa.select(sa.literal_column("1")).select_from(*froms).where(*conds, sql)
        ), False

    def _leaf(self, expr: Expr, scope: Scope) -> tuple[Sql, bool]:
        if isinstance(expr, Binary) and expr.op in COMPARISON:
            return self.compare(
                expr.op, self.value(expr.left, scope), self.value(expr.right, scope), expr.pos
            )
        if isinstance(expr, In):
            return self._in(expr, scope)
        val = self.value(expr, scope)
        if val.type is T.BOOLEAN:
            return self.sql(val, T.BOOLEAN), val.nullable
        if val.type in DYNAMIC:
            return self.sql(val, T.BOOLEAN) == sa.true(), True
        raise self.error(f"expected a condition (true or false), got a {val.type.value}", expr.pos)

    # --- values -------------------------------------------------------------------------------
    def value(self, expr: Expr, scope: Scope) -> Val:
        if isinstance(expr, Literal):
            return Val(_LIT_TYPES[expr.type], const=expr.value, nullable=False, pos=expr.pos)
        if isinstance(expr, Path):
            return self.path(expr, scope)
        if isinstance(expr, Call):
            return call(self, expr, scope)
        if isinstance(expr, Unary) and expr.op == "neg":
            v = self.value(expr.operand, scope)
            if v.type is T.DURATION and v.is_const:
                return Val(T.DURATION, const=v.const.negate(), nullable=False, pos=expr.pos)
            sql = self.sql(v, T.NUMBER, expr.pos)
            return Val(T.NUMBER, -sql, nullable=v.nullable, pos=expr.pos)
        if isinstance(expr, Binary) and expr.op in ARITHMETIC:
            return self._arith(expr, scope)
        sql, nullable = self._bool(expr, scope)
        return Val(T.BOOLEAN, sql, nullable=nullable, pos=expr.pos)

    def path(self, path: Path, scope: Scope) -> Val:
        segs = path.segments
        for k in range(len(segs) - 1, 0, -1):
            chain = segs[:k]
            if chain in scope.bound:
                return self.path(Path(segs[k:], pos=path.pos), scope.bound[chain])  # type: ignore[index]
        first = segs[0]
        et = scope.et
        if not isinstance(first, str):
            raise self.error("a path cannot start with an index", path.pos)
        if first in ID_NAMES:
            if len(segs) > 1:
                raise self.error(f"{first} has no sub-properties", path.pos)
            col = scope.col(et.id_column)
            id_keys: tuple[tuple[Sql, str], ...] = ((col, "id"),) if scope.direct else ()
            return Val(T.NUMBER, col, nullable=False, keyset=id_keys, pos=path.pos)
        prop = et.property(first)
        if prop is not None:
            return self._property(prop, segs[1:], scope, path.pos)
        nav = et.navigation(first)
        if nav is not None:
            if len(segs) == 1:
                raise self.error(
                    f"{first} is a navigation property of {et.name}; name one of its "
                    f"properties, e.g. {first}/id",
                    path.pos,
                )
            if nav.many:
                raise self.error(
                    f"{first} leads to many entities; it cannot be used as a single value here",
                    path.pos,
                )
            target = self.registry.target(nav)
            alias = self.alias(target)
            _, join = self.join_condition(scope, nav, alias)
            seen = self.visibility(Scope(target, alias))
            sub = SubqueryScope(target, alias, sa.and_(join, *seen) if seen else join)
            return self.path(Path(segs[1:], pos=path.pos), sub)
        raise self.error(f"{et.name} has no property or navigation property '{first}'", path.pos)

    def _property(self, prop: Property, rest: tuple[str | int, ...], scope: Scope, pos: int) -> Val:
        k = prop.kind
        json_kinds = (Kind.OBJECT, Kind.ANY, Kind.GEOMETRY, Kind.RESULT)
        if rest and k not in json_kinds:
            raise self.error(f"{prop.name} is not a JSON object; it has no sub-properties", pos)
        nn = not prop.nullable
        if k in (Kind.STRING, Kind.ID):
            col = scope.col(prop.column)
            keys: tuple[tuple[Sql, str], ...] = ((col, "text"),) if nn and scope.direct else ()
            return Val(T.STRING, col, nullable=prop.nullable, keyset=keys, pos=pos)
        if k is Kind.INSTANT:
            col = scope.col(prop.column)
            keys = ((col, "time"),) if nn and scope.direct else ()
            return Val(T.DATETIME, col, nullable=prop.nullable, keyset=keys, pos=pos)
        if k in (Kind.INTERVAL, Kind.TIME):
            start, end = scope.col(prop.start), scope.col(prop.end)
            keys = ((start, "time"), (end, "time")) if nn and scope.direct else ()
            return Val(T.INTERVAL, start, end, nullable=prop.nullable, keyset=keys, pos=pos)
        if k is Kind.RESULT:
            if rest:
                return Val(T.JSON, json=(scope.col("result_json"), rest), pos=pos)
            cols = {
                c: scope.col(c)
                for c in ("result_type", "result_number", "result_string", "result_json")
            }
            return Val(T.RESULT, result=cols, pos=pos)
        if k is Kind.GEOMETRY and not rest:
            geo = GeoColumn(scope.table, scope.et, prop) if scope.direct else None
            return Val(T.GEOMETRY, scope.col(prop.geom), nullable=True, geo=geo, pos=pos)
        return Val(T.JSON, json=(scope.col(prop.column), rest), pos=pos)

    # --- conversion to SQL --------------------------------------------------------------------
    def sql(self, val: Val, want: T | None = None, pos: int | None = None) -> Sql:
        """The SQL of ``val`` as type ``want`` (default: its own type)."""
        want = want or val.type
        d = self.dialect
        if val.is_const:
            return self._const_sql(val, want, pos)
        if val.type is T.JSON:
            assert val.json is not None
            col, path = val.json
            if want is T.NUMBER:
                return d.json_number(col, path)
            if want is T.BOOLEAN:
                return d.json_bool(col, path)
            if want in (T.STRING, T.JSON):
                return d.json_text(col, path)
        elif val.type is T.RESULT:
            assert val.result is not None
            table = _Cols(val.result)
            if want is T.NUMBER:
                return d.result_number(table)
            if want is T.BOOLEAN:
                return d.result_bool(table)
            if want in (T.STRING, T.RESULT):
                return d.result_text(table)
        elif want is val.type or (want is T.DATETIME and val.type is T.INTERVAL):
            assert val.sql is not None
            return val.sql
        raise self.error(f"expected a {want.value}, got a {val.type.value}", pos or val.pos)

    def _const_sql(self, val: Val, want: T, pos: int | None) -> Sql:
        d = self.dialect
        v = val.const
        t = val.type
        if t is T.DATE and want is T.DATETIME:
            return d.time_param(datetime(v.year, v.month, v.day, tzinfo=UTC))
        if t is T.INTERVAL and want is T.DATETIME:
            return d.time_param(v.start)
        if t is not want and not (t is T.NUMBER and want is T.DURATION):
            raise self.error(f"expected a {want.value}, got a {t.value}", pos or val.pos)
        if t is T.DATETIME:
            return d.time_param(v)
        if t is T.DATE:
            return d.date_param(v)
        if t is T.TIME:
            return d.timeofday_param(v)
        if t is T.GEOMETRY:
            return d.geom_param(v)
        if t is T.DURATION:
            if v.months:
                raise self.error(
                    "durations with years or months cannot be compared; use days or hours",
                    pos or val.pos,
                )
            return sa.bindparam(None, v.micros)
        if t is T.BOOLEAN:
            return sa.bindparam(None, bool(v), type_=sa.Boolean)
        return sa.bindparam(None, v)

    def interval_sql(self, val: Val) -> tuple[Sql, Sql]:
        if val.is_const:
            iv = val.const
            if isinstance(iv, Interval):
                return self.dialect.time_param(iv.start), self.dialect.time_param(iv.end)
            s = self._const_sql(val, T.DATETIME, None)
            return s, s
        if val.type is T.INTERVAL:
            assert val.sql is not None and val.end is not None
            return val.sql, val.end
        s = self.sql(val, T.DATETIME)
        return s, s

    # --- comparisons --------------------------------------------------------------------------
    def compare(self, op: str, a: Val, b: Val, pos: int) -> tuple[Sql, bool]:
        if a.type is T.NULL or b.type is T.NULL:
            return self._null_compare(op, a, b, pos)
        if T.DATE not in (a.type, b.type) or {a.type, b.type} & {T.DATETIME, T.INTERVAL}:
            a, b = self._promote_dates(a), self._promote_dates(b)
        ta, tb = a.type, b.type
        if ta in _TIMES and tb in _TIMES and T.INTERVAL in (ta, tb):
            return self._time_compare(op, a, b)
        if ta in DYNAMIC and tb in DYNAMIC:
            domain = T.STRING
        elif ta in DYNAMIC or tb in DYNAMIC:
            domain = tb if ta in DYNAMIC else ta
            if domain not in (T.NUMBER, T.STRING, T.BOOLEAN):
                raise self.error(
                    f"a JSON value can be compared with numbers, strings or booleans, "
                    f"not with a {domain.value}",
                    pos,
                )
        elif ta is not tb:
            raise self.error(f"cannot compare a {ta.value} with a {tb.value}", pos)
        else:
            domain = ta
        if domain is T.GEOMETRY:
            raise self.error("compare geometries with st_equals(a, b)", pos)
        if domain is T.BOOLEAN and op in _SQL_OPS:
            raise self.error(f"booleans have no order: compare them with eq or ne, not {op}", pos)
        sa_, sb = self.sql(a, domain, pos), self.sql(b, domain, pos)
        nullable = a.nullable or b.nullable or ta in DYNAMIC or tb in DYNAMIC
        prefilter = self._distance_prefilter(op, a, b)
        if op == "eq":
            if nullable and not a.is_const and not b.is_const:
                return sa_.is_not_distinct_from(sb), False
            return sa_ == sb, nullable
        if op == "ne":
            if nullable:
                return sa_.is_distinct_from(sb), False
            return sa_ != sb, False
        cond = _SQL_OPS[op](sa_, sb)
        if prefilter is not None:
            cond = sa.and_(prefilter, cond)
        return cond, nullable

    def _promote_dates(self, v: Val) -> Val:
        if v.type is T.DATE and v.is_const:
            d = v.const
            return Val(
                T.DATETIME,
                const=datetime(d.year, d.month, d.day, tzinfo=UTC),
                nullable=False,
                pos=v.pos,
            )
        return v

    def _distance_prefilter(self, op: str, a: Val, b: Val) -> Sql | None:
        """``geo.distance(location, literal) lt d`` may use the bounding-box index."""
        if op in ("lt", "le") and a.distance_of is not None and b.is_const:
            geo, geom = a.distance_of
            d = float(b.const)
            minx, miny, maxx, maxy = geom.bounds
            bounds = (minx - d, miny - d, maxx + d, maxy + d)
            return self.dialect.spatial_prefilter(geo.table, geo.et, geo.prop, bounds)
        return None

    def _null_compare(self, op: str, a: Val, b: Val, pos: int) -> tuple[Sql, bool]:
        if op not in ("eq", "ne"):
            raise self.error(f"null can only be compared with eq or ne, not {op}", pos)
        other = b if a.type is T.NULL else a
        if other.type is T.NULL:
            test: Sql = sa.true()
        elif other.is_const:
            test = sa.false()
        elif other.type is T.JSON:
            assert other.json is not None
            test = self.dialect.json_is_null(*other.json)
        elif other.type is T.RESULT:
            assert other.result is not None
            test = other.result["result_type"] == RESULT_NULL
        else:
            assert other.sql is not None
            test = other.sql.is_(None)
        return (test if op == "eq" else sa.not_(test)), False

    def _time_compare(self, op: str, a: Val, b: Val) -> tuple[Sql, bool]:
        # put the stored interval (or the non-literal) on the left
        if a.is_const and not b.is_const:
            a, b, op = b, a, _FLIP[op]
        s1, e1 = self.interval_sql(a)
        s2, e2 = self.interval_sql(b)
        left_instant = a.type is not T.INTERVAL
        right_instant = b.type is not T.INTERVAL
        if right_instant:
            t = s2
            rules = {
                "eq": sa.and_(s1 == t, e1 == t),
                "gt": s1 > t,
                "ge": s1 >= t,
                "lt": sa.and_(e1 <= t, s1 < t),
                "le": e1 <= t,
            }
        elif left_instant:
            t1 = s1
            rules = {
                "eq": sa.and_(t1 == s2, t1 == e2),
                "gt": sa.and_(t1 >= e2, t1 > s2),
                "ge": t1 >= e2,
                "lt": t1 < s2,
                "le": t1 <= s2,
            }
        else:
            rules = {
                "eq": sa.and_(s1 == s2, e1 == e2),
                "gt": sa.and_(s1 >= e2, s1 > s2),
                "ge": sa.and_(s1 >= s2, e1 >= e2),
                "lt": sa.and_(e1 <= s2, s1 < s2),
                "le": sa.and_(s1 <= s2, e1 <= e2),
            }
        nullable = a.nullable or b.nullable
        if op == "ne":
            eq = rules["eq"]
            return sa.not_(self.dialect.coalesce_bool(eq) if nullable else eq), False
        return rules[op], nullable

    def _in(self, expr: In, scope: Scope) -> tuple[Sql, bool]:
        left = self.value(expr.left, scope)
        items = [self.value(i, scope) for i in expr.items]
        if left.is_const and len(items) == 1 and items[0].type is T.JSON:
            # FROST extension: 9 in properties/intArray (JSON array containment)
            col, path = items[0].json  # type: ignore[misc]
            kind = {T.NUMBER: "number", T.STRING: "string"}.get(left.type)
            if kind is None:
                raise self.error(
                    "only numbers and strings can be looked up in a JSON array", expr.pos
                )
            return self.dialect.json_array_contains(col, path, self.sql(left), kind), True
        if not all(i.is_const for i in items):
            raise self.error("the list after 'in' must hold literal values", expr.pos)
        types = {self._promote_dates(i).type for i in items}
        if len(types) != 1:
            raise self.error("the values after 'in' must all have the same type", expr.pos)
        domain = types.pop()
        if domain is T.NULL:
            raise self.error("use eq null instead of in (null)", expr.pos)
        if left.type not in DYNAMIC and self._promote_dates(left).type is not domain:
            raise self.error(
                f"cannot look up a {left.type.value} in a list of {domain.value} values", expr.pos
            )
        lsql = self.sql(left, domain, expr.pos)
        values = [self.sql(self._promote_dates(i), domain, i.pos) for i in items]
        return lsql.in_(values), True

    # --- arithmetic ---------------------------------------------------------------------------
    def _arith(self, expr: Binary, scope: Scope) -> Val:
        a = self._promote_dates(self.value(expr.left, scope))
        b = self._promote_dates(self.value(expr.right, scope))
        op, pos = expr.op, expr.pos
        d = self.dialect
        nullable = a.nullable or b.nullable
        if T.DURATION in (a.type, b.type) or (a.type in _TIMES and b.type in _TIMES):
            return self._time_arith(op, a, b, pos, nullable)
        if a.type in _TIMES or b.type in _TIMES:
            raise self.error(f"cannot {op} a {a.type.value} and a {b.type.value}", pos)
        x, y = self.sql(a, T.NUMBER, pos), self.sql(b, T.NUMBER, pos)
        if op == "add":
            sql = x + y
        elif op == "sub":
            sql = x - y
        elif op == "mul":
            sql = x * y
        elif op == "div":
            sql, nullable = d.divide(x, y), True
        else:
            sql, nullable = d.modulo(x, y), True
        return Val(
            T.NUMBER,
            sql,
            nullable=nullable or T.JSON in (a.type, b.type) or T.RESULT in (a.type, b.type),
            pos=pos,
        )

    def _time_arith(self, op: str, a: Val, b: Val, pos: int, nullable: bool) -> Val:
        d = self.dialect
        ta, tb = a.type, b.type
        if ta in _TIMES and tb is T.DURATION and b.is_const and op in ("add", "sub"):
            dur: Duration = b.const if op == "add" else b.const.negate()
            if a.is_const and ta is T.DATETIME:
                return Val(T.DATETIME, const=dur.add_to(a.const), nullable=False, pos=pos)
            if ta is T.INTERVAL:
                s, e = self.interval_sql(a)
                return Val(
                    T.INTERVAL, d.time_add(s, dur), d.time_add(e, dur), nullable=nullable, pos=pos
                )
            return Val(
                T.DATETIME, d.time_add(self.sql(a, T.DATETIME), dur), nullable=nullable, pos=pos
            )
        if ta is T.DURATION and tb is T.DATETIME and op == "add":
            return self._time_arith(op, b, a, pos, nullable)
        if ta in _TIMES and tb in _TIMES and op == "sub":
            if a.is_const and b.is_const and ta is tb is T.DATETIME:
                micros = (a.const - b.const) // timedelta(microseconds=1)
                return Val(T.DURATION, const=Duration(0, micros), nullable=False, pos=pos)
            x = self.sql(a, T.DATETIME)
            y = self.sql(b, T.DATETIME)
            return Val(T.DURATION, d.time_diff_micros(x, y), nullable=nullable, pos=pos)
        if ta is tb is T.DURATION and a.is_const and b.is_const and op in ("add", "sub"):
            other = b.const if op == "add" else b.const.negate()
            return Val(
                T.DURATION,
                const=Duration(a.const.months + other.months, a.const.micros + other.micros),
                nullable=False,
                pos=pos,
            )
        raise self.error(f"cannot {op} a {ta.value} and a {tb.value}", pos)


class _Cols:
    """Columns by attribute, for dialect helpers that expect ``table.c.name``."""

    def __init__(self, cols: dict[str, Sql]) -> None:
        self.c = _Attr(cols)


class _Attr:
    def __init__(self, cols: dict[str, Sql]) -> None:
        self.__dict__.update(cols)
