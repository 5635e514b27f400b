"""Plans for reading entities: resource paths, pages, counts and expansions.

A plan is a set of SQLAlchemy statements plus what is needed to read their rows; the
service runs them through a storage reader. Paging is by keyset (``$skiptoken``) when
the ordering is over plain non-null columns, else by offset.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from citytwin.errors import BadRequest, NotFound, QuerySyntaxError, QueryTypeError
from citytwin.model import EntityType, Kind, Navigation, Property, Registry
from citytwin.model.types import ID_NAMES
from citytwin.model.values import from_micros, to_micros
from citytwin.planner.dialect import AnySelect, Dialect, Sql
from citytwin.planner.filters import Compiler, Visibility
from citytwin.planner.tables import Tables
from citytwin.planner.values import Scope, T, Val
from citytwin.query.ast import Expand, OrderBy, Path, QueryOptions
from citytwin.query.path import ResourcePath

LATEST = (OrderBy(Path(("phenomenonTime",)), descending=True),)
STREAMS = ("Datastream", "MultiDatastream")  # entity types with an Observation summary


@dataclass(frozen=True)
class Selection:
    """What of an entity is returned: id, properties (with JSON sub-paths), links."""

    include_id: bool
    properties: tuple[Property, ...]
    subpaths: dict[str, tuple[tuple[str | int, ...], ...]]
    nav_links: tuple[str, ...]


@dataclass
class Target:
    """A resolved resource path: the entity type addressed and how to find its rows."""

    et: EntityType
    scope: Scope
    conditions: list[Sql]
    single: bool  # an entity (by id or a to-one navigation), not a collection
    id: int | None = None  # the id given in the path's last segment
    parent: Target | None = None  # the path without its last navigation, for 404 checks
    via: Navigation | None = None  # the navigation of the last segment


@dataclass
class Page:
    statement: AnySelect
    count: AnySelect | None
    top: int
    keyset: list[tuple[str, str, bool]] | None  # (label, kind, descending)
    # with a count limit: "count up to limit + 1" and the rows whose number to estimate
    count_probe: AnySelect | None = None
    count_rows: AnySelect | None = None
    count_limit: int | None = None


@dataclass
class ExpandPlan:
    nav: Navigation
    et: EntityType
    statement: AnySelect
    count: AnySelect | None
    options: QueryOptions
    selection: Selection
    top: int
    children: list[Expand] = field(default_factory=list)
    totals: bool = False  # rows carry "_total", each parent's number of related entities


class ReadPlanner:
    def __init__(
        self,
        registry: Registry,
        tables: Tables,
        dialect: Dialect,
        *,
        default_top: int,
        max_top: int,
        now: datetime | None = None,
        count_limit: int | None = None,
        visible: Visibility | None = None,
    ) -> None:
        self.registry = registry
        self.tables = tables
        self.dialect = dialect
        self.default_top = default_top
        self.max_top = max_top
        self.count_limit = count_limit  # None: always count exactly
        self.compiler = Compiler(registry, tables, dialect, now=now, visible=visible)
        self.restricted = visible is not None  # the principal may not see everything

    # --- resource paths ---------------------------------------------------------------------
    def resolve(self, path: ResourcePath) -> Target:
        first = path.segments[0]
        et = self.registry.by_set(first.name)
        if et is None:
            raise NotFound(f"no entity set named {first.name}")
        scope = self.compiler.scope(et)
        conds: list[Sql] = self.compiler.visibility(scope)
        if first.id is not None:
            conds.append(scope.col(et.id_column) == first.id)
        target = Target(et, scope, conds, single=first.id is not None, id=first.id)
        for seg in path.segments[1:]:
            nav = target.et.navigation(seg.name)
            if nav is None:
                raise NotFound(f"{target.et.name} has no navigation property {seg.name}")
            if not target.single:
                raise NotFound(
                    f"{seg.name} must follow a single entity, e.g. {target.et.set_name}(1)"
                )
            if seg.id is not None and not nav.many:
                raise NotFound(f"{seg.name} is a single entity; it takes no id")
            child_et = self.registry.target(nav)
            child = self.compiler.scope(child_et)
            inverse = self.registry.inverse(nav)
            if target.id is not None:
                cond = self.compiler.semijoin_id(child, inverse, target.id)
            else:
                cond = self.compiler.semijoin(
                    child, inverse, target.scope, sa.and_(*target.conditions)
                )
            conds = [cond, *self.compiler.visibility(child)]
            if seg.id is not None:
                conds.append(child.col(child_et.id_column) == seg.id)
            single = seg.id is not None or not nav.many
            target = Target(child_et, child, conds, single, id=seg.id, parent=target, via=nav)
        return target

    def ancestors_exist(self, target: Target) -> AnySelect | None:
        """One query that is empty unless every entity named along the path exists and
        each is related to the one before it (``Things(1)/Datastreams(2)``)."""
        checks = []
        node = target.parent
        while node is not None:
            checks.append(
                sa.exists(
                    sa.select(sa.literal_column("1"))
                    .select_from(node.scope.table)
                    .where(*node.conditions)
                )
            )
            node = node.parent
        if not checks:
            return None
        return sa.select(sa.literal_column("1")).where(*checks)

    # --- selection --------------------------------------------------------------------------
    def selection(self, et: EntityType, options: QueryOptions, top_level: bool) -> Selection:
        expanded = {e.navigation for e in options.expand}
        if options.select is None:
            all_links = tuple(n.name for n in et.navigations if n.name not in expanded)
            return Selection(True, et.properties, {}, all_links if top_level else ())
        include_id = False
        props: list[Property] = []
        subpaths: dict[str, list[tuple[str | int, ...]]] = {}
        links: list[str] = []
        for item in options.select:
            name = item.segments[0]
            if name == "*":
                return self.selection(et, QueryOptions(expand=options.expand), top_level)
            if name in ID_NAMES and len(item.segments) == 1:
                include_id = True
                continue
            prop = et.property(str(name))
            if prop is not None:
                if len(item.segments) > 1:
                    if prop.kind not in (Kind.OBJECT, Kind.ANY, Kind.GEOMETRY, Kind.RESULT):
                        raise QueryTypeError("$select", f"{name} has no sub-properties", item.pos)
                    subpaths.setdefault(prop.name, []).append(item.segments[1:])
                elif prop.name in subpaths:
                    subpaths[prop.name].append(())
                if prop not in props:
                    props.append(prop)
                continue
            nav = et.navigation(str(name))
            if nav is not None and len(item.segments) == 1:
                if nav.name not in expanded and nav.name not in links:
                    links.append(nav.name)
                continue
            raise QueryTypeError("$select", f"{et.name} has no property {name}", item.pos)
        # a sub-path next to the whole property selects the whole property
        clean = {k: tuple(v) for k, v in subpaths.items() if () not in v}
        return Selection(include_id, tuple(props), clean, tuple(links))

    def columns(self, scope: Scope, sel: Selection, extra_fks: Sequence[str] = ()) -> list[Any]:
        et = scope.et
        t = scope.table
        cols: list[Any] = [t.c[et.id_column].label("id")]
        for prop in sel.properties:
            for name in storage_columns(prop):
                cols.append(t.c[name].label(name))
        for fk in extra_fks:
            if fk not in {c.name for c in cols}:
                cols.append(t.c[fk].label(fk))
        return cols

    def fks_for(self, et: EntityType, options: QueryOptions) -> list[str]:
        """Foreign-key columns needed to expand to-one navigations."""
        out = []
        for exp in options.expand:
            nav = self._nav(et, exp.navigation)
            if nav.fk is not None:
                out.append(nav.fk)
        return out

    def _nav(self, et: EntityType, name: str) -> Navigation:
        nav = et.navigation(name)
        if nav is None:
            raise QuerySyntaxError("$expand", f"{et.name} has no navigation property {name}")
        return nav

    # --- ordering and paging ------------------------------------------------------------------
    def _order(
        self, scope: Scope, orderby: Sequence[OrderBy]
    ) -> tuple[list[Sql], list[tuple[Sql, str, bool]] | None]:
        """ORDER BY terms, and keyset keys when every term is a plain NOT NULL column."""
        c = self.compiler.for_option("$orderby")
        terms: list[Sql] = []
        keys: list[tuple[Sql, str, bool]] | None = []
        ordered_by_id = False
        for item in orderby:
            val = c.value(item.expr, scope)
            if val.is_const:
                continue
            for sql in self._sort_sql(c, val):
                terms.append(self._direction(sql, item.descending))
            if val.keyset and keys is not None:
                keys.extend((col, kind, item.descending) for col, kind in val.keyset)
                ordered_by_id = ordered_by_id or any(k == "id" for _, k in val.keyset)
            else:
                keys = None
        if not ordered_by_id:
            idcol = scope.col(scope.et.id_column)
            terms.append(idcol.asc())
            if keys is not None:
                keys.append((idcol, "id", False))
        return terms, keys

    def _sort_sql(self, c: Compiler, val: Val) -> list[Sql]:
        if val.type is T.INTERVAL:
            s, e = c.interval_sql(val)
            return [s, e]
        if val.type is T.RESULT:
            assert val.result is not None
            return [
                val.result["result_number"],
                val.result["result_string"],
                val.result["result_json"],
            ]
        if val.type is T.JSON:
            assert val.json is not None
            return [self.dialect.json_sort(*val.json)]
        if val.type is T.GEOMETRY:
            raise QueryTypeError("$orderby", "geometries cannot be ordered", val.pos)
        return [c.sql(val)]

    def _direction(self, sql: Sql, desc: bool) -> Sql:
        return self.dialect.order(sql, desc)

    def page(self, target: Target, options: QueryOptions) -> Page:
        scope = target.scope
        where = list(target.conditions)
        if options.filter is not None:
            where.append(self.compiler.condition(options.filter, scope))
        count: AnySelect | None = None
        probe: AnySelect | None = None
        rows: AnySelect | None = None
        if options.count:
            count = self._summary_count(target, options)
            if count is None:
                count = sa.select(sa.func.count()).select_from(scope.table).where(*where)
                if self.count_limit is not None:
                    rows = sa.select(sa.literal_column("1")).select_from(scope.table).where(*where)
                    limited = rows.limit(self.count_limit + 1).subquery()
                    probe = sa.select(sa.func.count()).select_from(limited)
        terms, keys = self._order(scope, options.orderby)
        position = self._position(target) if not options.orderby else None
        if position is not None:
            terms.insert(0, position)
            keys = None  # paged by offset: the position is not a column of the rows
        top = min(self.default_top if options.top is None else options.top, self.max_top)
        sel = self.selection(target.et, options, top_level=True)
        cols = self.columns(scope, sel, self.fks_for(target.et, options))
        keyset: list[tuple[str, str, bool]] | None = None
        skip = options.skip
        if keys is not None:
            keyset = []
            selected = {c.name: c.element for c in cols}  # label -> column
            for i, (col, kind, desc) in enumerate(keys):
                label = getattr(col, "name", None)
                if label is None or selected.get(label) is not col:
                    label = f"_k{i}"  # not among the selected columns: add it
                    cols.append(col.label(label))
                keyset.append((label, kind, desc))
            if options.skiptoken is not None:
                where.append(self._after(keys, options.skiptoken))
                skip = 0
        elif options.skiptoken is not None:
            raise BadRequest("$skiptoken does not fit this $orderby; follow @iot.nextLink as given")
        stmt = sa.select(*cols).where(*where).order_by(*terms).limit(top + 1)
        if skip:
            stmt = stmt.offset(skip)
        return Page(stmt, count, top, keyset, probe, rows, self.count_limit)

    def _position(self, target: Target) -> Sql | None:
        """For an ordered list (``MultiDatastreams(1)/ObservedProperties``), each entity's
        place in it."""
        nav, parent = target.via, target.parent
        if nav is None or nav.order is None or nav.link is None or parent is None:
            return None
        if parent.id is None:
            return None
        table, src_col, dst_col = nav.link
        link = self.compiler.link_alias(table)
        return (
            sa.select(sa.func.min(link.c[nav.order]))
            .where(
                link.c[src_col] == parent.id,
                link.c[dst_col] == target.scope.col(target.et.id_column),
            )
            .scalar_subquery()
            .asc()
        )

    # --- the Datastream summary ---------------------------------------------------------------
    def _summary_count(self, target: Target, options: QueryOptions) -> AnySelect | None:
        """Unfiltered counts of Observations, read from the Datastream summary."""
        if target.et.name != "Observation" or options.filter is not None:
            return None
        if target.parent is None and not target.conditions and not self.restricted:
            sums = []
            for name in STREAMS:
                ds = self.compiler.alias(self.registry.type(name))
                total = sa.select(sa.func.coalesce(sa.func.sum(ds.c.observation_count), 0))
                sums.append(total.scalar_subquery())
            return sa.select(sa.func.coalesce(sums[0] + sums[1], 0))
        parent = target.parent
        if (
            parent is not None
            and parent.et.name in STREAMS
            and parent.id is not None
            and target.via is not None
            and target.via.name == "Observations"
        ):
            ds = self.compiler.alias(parent.et)
            return sa.select(ds.c.observation_count).where(ds.c.id == parent.id)
        return None

    @staticmethod
    def _is_latest(parent_et: EntityType, nav: Navigation, options: QueryOptions) -> bool:
        """``Datastreams?$expand=Observations($top=1;$orderby=phenomenonTime desc)``."""
        return (
            parent_et.name in STREAMS
            and nav.name == "Observations"
            and options.top == 1
            and not options.skip
            and options.filter is None
            and options.orderby == LATEST
        )

    def _after(self, keys: list[tuple[Sql, str, bool]], token: str) -> Sql:
        values = decode_skiptoken(token, [k for _, k, _ in keys])
        params = [self._key_param(v, kind) for v, (_, kind, _) in zip(values, keys, strict=True)]
        ors = []
        for i, (col, _kind, desc) in enumerate(keys):
            eqs = [keys[j][0] == params[j] for j in range(i)]
            step = col < params[i] if desc else col > params[i]
            ors.append(sa.and_(*eqs, step))
        return sa.or_(*ors)

    def _key_param(self, value: Any, kind: str) -> Sql:
        if kind == "time":
            return self.dialect.time_param(from_micros(int(value)))
        return sa.bindparam(None, value)

    # --- expansion ----------------------------------------------------------------------------
    def expand(self, parent_et: EntityType, exp: Expand, parent_keys: Sequence[Any]) -> ExpandPlan:
        """Rows of ``exp.navigation`` for all parents at once, labelled ``_parent``."""
        nav = self._nav(parent_et, exp.navigation)
        et = self.registry.target(nav)
        options = exp.options
        scope = self.compiler.scope(et)
        t = scope.table
        sel = self.selection(et, options, top_level=False)
        cols = self.columns(scope, sel, self.fks_for(et, options))
        # the latest Observation of a visible stream is visible: no condition needed there
        where: list[Sql] = self.compiler.visibility(scope)
        if options.filter is not None:
            where.append(self.compiler.condition(options.filter, scope))
        top = min(self.default_top if options.top is None else options.top, self.max_top)
        keys = list(parent_keys)
        if self._is_latest(parent_et, nav, options):
            # the maintained reference: one index probe per Datastream, no scan
            ds = self.compiler.alias(parent_et)
            on = sa.and_(
                t.c[nav.reverse_fk or ""] == ds.c.id,  # the distribution key, when sharded
                t.c[et.id_column] == ds.c.last_observation_id,
                t.c.phenomenon_time_start == ds.c.last_observation_start,
            )
            joined: Any = ds.join(t, on)
            picked: list[Any] = list(cols)
            if self.dialect.joins_lateral:
                # a probe per Datastream, whatever the row estimates: over a large table
                # PostgreSQL would otherwise hash-join every partition to find 1,000 rows
                latest = sa.select(*cols).select_from(t).where(on).limit(1).lateral("latest")
                joined, picked = ds.join(latest, sa.true()), list(latest.c)
            stmt = (
                sa.select(*picked, ds.c.id.label("_parent"), ds.c.observation_count.label("_total"))
                .select_from(joined)
                .where(self.dialect.in_ids(ds.c.id, keys))
            )
            return ExpandPlan(
                nav, et, stmt, None, options, sel, top, list(options.expand), totals=True
            )
        if nav.fk is not None:
            parent_key = t.c[et.id_column]
            stmt = sa.select(*cols, parent_key.label("_parent")).where(
                self.dialect.in_ids(parent_key, keys), *where
            )
            return ExpandPlan(nav, et, stmt, None, options, sel, top, list(options.expand))
        source: Any = t
        first: list[Sql] = []  # ordering before the requested one
        if nav.reverse_fk is not None:
            parent_key = t.c[nav.reverse_fk]
        else:
            assert nav.link is not None
            table, src_col, dst_col = nav.link
            link = self.compiler.link_alias(table)
            parent_key = link.c[src_col]
            source = link.join(t, t.c[et.id_column] == link.c[dst_col])
            if nav.order is not None and not options.orderby:
                first.append(link.c[nav.order].asc())

        def select_for(cond: Sql) -> AnySelect:
            return (
                sa.select(*cols, parent_key.label("_parent"))
                .select_from(source)
                .where(cond, *where)
            )

        terms, _ = self._order(scope, options.orderby)
        terms = first + terms
        if len(keys) == 1:
            stmt = select_for(parent_key == keys[0]).order_by(*terms).limit(top + 1)
            if options.skip:
                stmt = stmt.offset(options.skip)
        else:
            stmt = self.dialect.limited_per_parent(
                select_for, parent_key, keys, terms, options.skip, top
            )
        count = None
        if (
            options.count
            and parent_et.name in STREAMS
            and nav.name == "Observations"
            and options.filter is None
        ):
            ds = self.compiler.alias(parent_et)
            count = sa.select(ds.c.id.label("_parent"), ds.c.observation_count.label("n")).where(
                self.dialect.in_ids(ds.c.id, keys)
            )
        elif options.count:
            count = (
                sa.select(parent_key.label("_parent"), sa.func.count().label("n"))
                .select_from(source)
                .where(self.dialect.in_ids(parent_key, keys), *where)
                .group_by(parent_key)
            )
        return ExpandPlan(nav, et, stmt, count, options, sel, top, list(options.expand))


def storage_columns(prop: Property) -> tuple[str, ...]:
    """The columns read to output ``prop``."""
    k = prop.kind
    if k in (Kind.INTERVAL, Kind.TIME):
        return prop.start, prop.end
    if k is Kind.RESULT:
        return "result_type", "result_number", "result_string", "result_json"
    return (prop.column,)


def encode_skiptoken(values: Sequence[Any]) -> str:
    raw = orjson.dumps([to_micros(v) if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_skiptoken(token: str, kinds: Sequence[str]) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        values = orjson.loads(raw)
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise BadRequest("$skiptoken is not valid; follow @iot.nextLink as given") from None
    if not isinstance(values, list) or len(values) != len(kinds):
        raise BadRequest("$skiptoken does not fit this request; follow @iot.nextLink as given")
    for v, kind in zip(values, kinds, strict=True):
        ok = (
            isinstance(v, str) if kind == "text" else isinstance(v, int) and not isinstance(v, bool)
        )
        if not ok:
            raise BadRequest("$skiptoken is not valid; follow @iot.nextLink as given")
    return values
