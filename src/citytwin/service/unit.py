"""One write transaction: storing drafts, relinking, deleting, and the change events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

from citytwin.access import audit
from citytwin.bus import ChangeEvent, ChangeKind
from citytwin.errors import InvalidEntity
from citytwin.model import EntityType, Navigation, Registry
from citytwin.model.types import (
    K_ANY,
    K_GEOMETRY,
    K_INSTANT,
    K_INTERVAL,
    K_OBJECT,
    K_RESULT,
    K_TIME,
    Kind,
)
from citytwin.model.values import Interval, encode_result
from citytwin.planner.tables import Tables
from citytwin.service.drafts import Draft, geometry_of
from citytwin.service.extensions import WriteRule
from citytwin.service.rules import Rules
from citytwin.storage.base import Json, Row, Storage, Writer

if TYPE_CHECKING:
    from citytwin.access.guard import Guard

NONE: frozenset[str] = frozenset()  # what a creation changed: one set shared by all
OVERLAP_CHUNK = 1000  # rows of a bulk insert the database takes in while the next are made


class Unit:
    """A write transaction and what it changed."""

    def __init__(
        self,
        registry: Registry,
        storage: Storage,
        writer: Writer,
        now: datetime | None = None,
        extensions: Sequence[WriteRule] = (),
        access: Guard | None = None,
        origin: audit.Origin | None = None,
    ) -> None:
        self.registry = registry
        self.storage = storage
        self.tables: Tables = storage.tables
        self.dialect = storage.dialect
        self.w = writer
        self.now = now or datetime.now(UTC)
        self.events: list[ChangeEvent] = []
        self.written: dict[tuple[str, int], dict[str, Any]] = {}  # rows this unit inserted
        self.known: set[tuple[str, int]] = set()  # entities found to exist, not deleted since
        self.rules = Rules(self)
        # the principal's checks (None: access control is off) run before any plugin's
        self.access = access
        self.extensions: Sequence[WriteRule] = (
            extensions if access is None else (access, *extensions)
        )
        # who writes, for the audit log (None: a write nobody asked for, not recorded)
        self.origin = origin
        self.actions: list[audit.Action] = []  # recorded besides the change events
        self.streams: dict[str, set[int]] = {}  # operation -> Datastreams of Observations

    async def close(self) -> None:
        """Record what the transaction changed in the audit log, in the transaction:
        called just before it commits (:meth:`Service.transaction`)."""
        if self.origin is None:
            return
        done = audit.actions(self.events, self.streams, self.actions)
        await audit.record(self.w, self.storage, self.origin, done, self.now)

    def _streams_of(self, operation: str, rows: Iterable[Mapping[str, Any]]) -> None:
        found = {r["datastream_id"] for r in rows if r.get("datastream_id") is not None}
        if found:
            self.streams.setdefault(operation, set()).update(found)

    # --- events ---------------------------------------------------------------------------
    def note(
        self, et: EntityType, entity_id: int, kind: ChangeKind, changed: Iterable[str] = ()
    ) -> None:
        changes = frozenset(changed)
        self.events.append(ChangeEvent(et.name, entity_id, kind, changes if changes else NONE))

    # --- lookups --------------------------------------------------------------------------
    def table(self, et: EntityType) -> sa.Table:
        return self.tables.of(et)

    async def row(self, et: EntityType, entity_id: int) -> Row | None:
        t = self.table(et)
        rows = await self.w.fetch(sa.select(t).where(t.c[et.id_column] == entity_id))
        return rows[0] if rows else None

    async def require(self, et: EntityType, entity_id: int, where: str) -> None:
        if (et.name, entity_id) in self.known:
            return
        t = self.table(et)
        hidden = self._hidden(et, t)
        found = await self.w.scalar(
            sa.select(sa.literal_column("1")).where(t.c[et.id_column] == entity_id, *hidden)
        )
        if found is None:  # a hidden entity is answered as a missing one: ids do not leak
            raise InvalidEntity(f"{where}: there is no {et.name} with @iot.id {entity_id}")
        self.known.add((et.name, entity_id))

    async def existing(self, et: EntityType, ids: Iterable[int]) -> set[int]:
        """Which of ``ids`` exist, in one query; they are known from then on."""
        t = self.table(et)
        key = et.id_column

        def build() -> Any:
            return sa.select(t.c[key]).where(self.dialect.in_ids_param(t.c[key], "ids"))

        hidden = self._hidden(et, t)
        if hidden:
            query = sa.select(t.c[key]).where(t.c[key].in_(sorted(set(ids))), *hidden)
            rows = await self.w.fetch(query)
        else:
            query = self.tables.template(f"existing:{et.name}", build)
            rows = await self.w.fetch(query, {"ids": sorted(set(ids))})
        found = {int(r[0]) for r in rows}
        self.known |= {(et.name, i) for i in found}
        return found

    async def existing_streams(self, ids: Iterable[int]) -> set[int]:
        """Which of the Datastreams exist, for Observations about to be inserted: checked,
        locked and their generated FeaturesOfInterest found in one query
        (:meth:`Rules.claim_streams`); they are known from then on."""
        et = self.registry.type("Datastream")
        return await self.rules.claim_streams(ids, self._hidden(et, self.table(et)))

    async def _claim_streams(
        self, drafts: Sequence[Draft], each: Sequence[Mapping[str, int]]
    ) -> None:
        """Claim the Datastreams that new Observations name and that this transaction has
        not claimed yet (:meth:`existing_streams`); one that does not exist or is hidden
        is refused later, where its Observation is checked."""
        named = {i["Datastream"] for i in each if "Datastream" in i}
        for d in drafts:
            sub = d.one.get("Datastream")
            if sub is not None and sub.ref is not None:
                named.add(sub.ref)
        named -= self.rules.claimed
        if named:
            await self.existing_streams(named)

    def _hidden(self, et: EntityType, table: Any) -> list[Any]:
        """The condition, if any, for the entities the principal may see."""
        cond = None if self.access is None else self.access.visible(et, table)
        return [] if cond is None else [cond]

    # --- values to columns ----------------------------------------------------------------
    def columns(
        self,
        et: EntityType,
        values: Mapping[str, Any],
        *,
        all_props: bool = False,
        encoding: str | None = None,
        where: str = "",
    ) -> dict[str, Any]:
        """Storage columns for property values; with ``all_props`` missing ones become null."""
        cols: dict[str, Any] = {}
        enc = values.get("encodingType", encoding)
        for prop in et.writable:
            if prop.name in values:
                value: Any = values[prop.name]
            elif all_props:
                value = None
            else:
                continue
            k = prop.kind
            if k is K_INTERVAL or k is K_TIME:
                iv: Interval | None = value
                cols[prop.start] = iv.start if iv else None
                cols[prop.end] = iv.end if iv else None
            elif k is K_RESULT:
                (
                    cols["result_type"],
                    cols["result_number"],
                    cols["result_string"],
                    cols["result_json"],
                ) = encode_result(value)
            elif k is K_GEOMETRY:
                cols[prop.column] = None if value is None else Json(value)
                try:
                    cols[prop.geom] = geometry_of(et, prop, value, enc)
                except ValueError as exc:
                    raise InvalidEntity(f"{where or et.name}.{prop.name}: {exc}") from None
            elif k is K_OBJECT or k is K_ANY:
                cols[prop.column] = None if value is None else Json(value)
            else:
                cols[prop.column] = value
        return cols

    # --- create ---------------------------------------------------------------------------
    async def create(self, draft: Draft, implied: Mapping[str, int] | None = None) -> int:
        """Store a draft (and everything in it); return its id."""
        et = draft.et
        if draft.ref is not None:
            await self.require(et, draft.ref, draft.where)
            return draft.ref
        row = await self._row(draft, implied)
        new_id = await self.w.insert(et.table, row)
        self.note(et, new_id, "created")
        self.written[(et.name, new_id)] = row
        if et.name == "Observation":
            self._streams_of("create", (row,))
        for name, subs in draft.many.items():
            await self.add_related(et, new_id, self._nav(et, name), subs, creating=True)
        await self.rules.after_insert(et, new_id, draft, row)
        return new_id

    async def create_many(
        self, drafts: list[Draft], implied: Mapping[str, int] | Sequence[Mapping[str, int]]
    ) -> list[int]:
        """Store new drafts of one type that have no to-many relations, in one batch
        (COPY on PostgreSQL, executemany on SQLite), with one summary update each.
        ``implied`` holds the relations given by the path: one for all, or one per draft."""
        et = drafts[0].et
        each = [implied] * len(drafts) if isinstance(implied, Mapping) else implied
        if et.name == "Observation":
            await self._claim_streams(drafts, each)
        refs: dict[str, set[int]] = {}  # entities the drafts name by id: checked at once
        for d in drafts:
            for sub in d.one.values():
                if sub.ref is not None and (sub.et.name, sub.ref) not in self.known:
                    refs.setdefault(sub.et.name, set()).add(sub.ref)
        for name, named in refs.items():
            if len(named) > 1:
                await self.existing(self.registry.type(name), named)
        ids = await self.w.reserve_ids(et.table, len(drafts))
        step = OVERLAP_CHUNK if self.w.overlaps_writes else max(len(drafts), 1)
        rows: list[dict[str, Any]] = []
        writing: asyncio.Future[None] | None = None
        flat = self._observation_columns(et, drafts, each)
        # rows made from flat Observations have the same columns, unless a rule adds some
        uniform = flat is not None and not any(_looks_at(r, et) for r in self.extensions)
        try:
            for start in range(0, len(drafts), step):
                end = start + step
                if flat is not None:
                    chunk = await self._observation_rows(flat, drafts[start:end], each[start:end])
                else:
                    chunk = [
                        await self._row(d, i)
                        for d, i in zip(drafts[start:end], each[start:end], strict=True)
                    ]
                names = chunk[0].keys()
                if not uniform and any(row.keys() != names for row in chunk):
                    columns = {c for row in chunk for c in row}  # the same columns for all
                    chunk = [{c: row.get(c) for c in columns} for row in chunk]
                for row, new_id in zip(chunk, ids[start:], strict=False):
                    row["id"] = new_id
                rows.extend(chunk)
                if writing is not None:
                    await writing
                # the database takes in this chunk while the next one is prepared
                writing = asyncio.ensure_future(self.w.insert_many(et.table, chunk))
                await asyncio.sleep(0)
            if writing is not None:
                await writing
        except BaseException:
            if writing is not None:  # the transaction is rolled back only once it is idle
                await asyncio.gather(writing, return_exceptions=True)
            raise
        # made as tuples straight away, without a Python call each: the class's own
        # constructor costs more than the rest of an event's making
        name = et.name
        fields = zip(repeat(name), ids, repeat("created"), repeat(NONE), repeat(None))
        self.events += map(tuple.__new__, repeat(ChangeEvent), fields)
        self.written.update(zip(zip(repeat(name), ids), rows, strict=True))
        if et.name == "Observation":
            self._streams_of("create", rows)
        await self.rules.after_insert_many(et, drafts, rows)
        return ids

    def _observation_columns(
        self, et: EntityType, drafts: Sequence[Draft], each: Sequence[Mapping[str, int]]
    ) -> ObservationColumns | None:
        """The columns of Observations of Datastreams made straight from their values
        (:meth:`_observation_rows`), when every draft is one: flat, its Datastream given by
        the path or the body's id. None when any is not: they go through :meth:`_row`."""
        if et.name != "Observation":
            return None
        columns = ObservationColumns.of(self.tables, et)
        if columns is None:
            return None
        for d, implied in zip(drafts, each, strict=True):
            if d.one or d.many or "Datastream" not in implied or "MultiDatastream" in implied:
                return None
        return columns

    async def _observation_rows(
        self, c: ObservationColumns, drafts: Sequence[Draft], each: Sequence[Mapping[str, int]]
    ) -> list[dict[str, Any]]:
        """What :meth:`_row` makes of flat Observations of Datastreams, in one loop: the
        same columns, the generated FeatureOfInterest where none is named, and the write
        rules that look at Observations."""
        et = drafts[0].et
        rules = [r for r in self.extensions if _looks_at(r, et)]
        features = self.rules.features
        now = self.now
        rows = []
        for draft, implied in zip(drafts, each, strict=True):
            values = draft.values
            phenomenon = values.get("phenomenonTime")
            valid = values.get("validTime")
            quality = values.get("resultQuality")
            parameters = values.get("parameters")
            kind, number, string, text = encode_result(values.get("result"))
            stream = implied["Datastream"]
            feature = implied.get("FeatureOfInterest")
            if feature is None:
                feature = features.get(("Datastream", stream))
                if feature is None:
                    feature = await self.rules.feature_of(("Datastream", stream), draft.where)
            row = {
                c.phenomenon_start: now if phenomenon is None else phenomenon.start,
                c.phenomenon_end: now if phenomenon is None else phenomenon.end,
                c.result_time: values.get("resultTime"),
                "result_type": kind,
                "result_number": number,
                "result_string": string,
                "result_json": text,
                c.result_quality: None if quality is None else Json(quality),
                c.valid_start: None if valid is None else valid.start,
                c.valid_end: None if valid is None else valid.end,
                c.parameters: None if parameters is None else Json(parameters),
                c.datastream: stream,
                c.feature: feature,
            }
            for rule in rules:
                await rule.before_insert(self, et, draft, row)
            rows.append(row)
        return rows

    async def _row(self, draft: Draft, implied: Mapping[str, int] | None) -> dict[str, Any]:
        """The columns of a new entity, with its to-one relations created or checked."""
        et = draft.et
        implied = implied or {}
        row = self.columns(et, draft.values, all_props=True, where=draft.where)
        for name, sub in draft.one.items():
            nav = self._nav(et, name)
            assert nav.fk is not None
            if name in implied:
                if sub.ref is not None and sub.ref != implied[name]:
                    raise InvalidEntity(
                        f"{draft.where}.{name}: the path already relates this {et.name} to "
                        f"{nav.target} {implied[name]}"
                    )
                continue
            row[nav.fk] = await self.create(sub)
        for name, ident in implied.items():
            nav = self._nav(et, name)
            if nav.fk is not None:
                row[nav.fk] = ident
        await self.rules.before_insert(et, draft, row)
        for ext in self.extensions:
            await ext.before_insert(self, et, draft, row)
        for nav in et.navigations:
            if nav.fk is not None and nav.required and row.get(nav.fk) is None:
                raise InvalidEntity(f"{draft.where}: {_a(et.name)} needs {_a(nav.name)}")
        return row

    def _nav(self, et: EntityType, name: str) -> Navigation:
        nav = et.navigation(name)
        assert nav is not None
        return nav

    async def add_related(
        self, et: EntityType, entity_id: int, nav: Navigation, subs: list[Draft], *, creating: bool
    ) -> list[int]:
        """Create or link the entities of a to-many navigation property; return their ids."""
        target = self.registry.target(nav)
        inverse = self.registry.inverse(nav)
        ids = []
        batch = [s for s in subs if s.ref is None and not s.many]
        if nav.reverse_fk is not None and len(batch) > 1:
            ids.extend(await self.create_many(batch, {inverse.name: entity_id}))
            batched = {id(s) for s in batch}  # by identity: comparing Drafts would be O(n²)
            subs = [s for s in subs if id(s) not in batched]
        for sub in subs:
            if nav.reverse_fk is not None:
                if sub.ref is None:
                    ids.append(await self.create(sub, {inverse.name: entity_id}))
                    continue
                before = await self.row(target, sub.ref)
                if before is None:
                    raise InvalidEntity(
                        f"{sub.where}: there is no {target.name} with @iot.id {sub.ref}"
                    )
                await self.w.update(target.table, sub.ref, {nav.reverse_fk: entity_id})
                self.note(target, sub.ref, "updated", (inverse.name,))
                await self.rules.relinked(target, inverse, before, entity_id)
                ids.append(sub.ref)
            else:
                child = await self.create(sub)
                await self.link(nav, entity_id, child)
                ids.append(child)
        if not creating and ids:
            self.note(et, entity_id, "updated", (nav.name,))
        return ids

    async def link(self, nav: Navigation, source_id: int, target_id: int) -> None:
        assert nav.link is not None
        table, src, dst = nav.link
        t = self.tables.link[table]
        order = nav.order or self.registry.inverse(nav).order
        if order is not None:
            # an ordered list (which may name an entity twice): append at the owner's end
            owner, owner_id = (src, source_id) if nav.order else (dst, target_id)
            position = await self.w.scalar(
                sa.select(sa.func.coalesce(sa.func.max(t.c[order]) + 1, 0)).where(
                    t.c[owner] == owner_id
                )
            )
            await self.w.insert(table, {src: source_id, dst: target_id, order: int(position)})
            return
        exists = await self.w.scalar(
            sa.select(sa.literal_column("1")).where(t.c[src] == source_id, t.c[dst] == target_id)
        )
        if exists is None:
            await self.w.insert(table, {src: source_id, dst: target_id})

    async def unlink_all(self, nav: Navigation, source_id: int) -> None:
        assert nav.link is not None
        table, src, _ = nav.link
        t = self.tables.link[table]
        await self.w.execute(sa.delete(t).where(t.c[src] == source_id))

    # --- update ---------------------------------------------------------------------------
    async def update(
        self,
        et: EntityType,
        entity_id: int,
        draft: Draft,
        *,
        replace: bool,
        current: Row,
    ) -> None:
        encoding = current["encoding_type"] if et.property("encodingType") else None
        cols = self.columns(
            et, draft.values, all_props=replace, encoding=encoding, where=draft.where
        )
        for name, sub in draft.one.items():
            nav = self._nav(et, name)
            assert nav.fk is not None and sub.ref is not None
            await self.require(self.registry.target(nav), sub.ref, sub.where)
            cols[nav.fk] = sub.ref
        changed = set(draft.values) | set(draft.one)
        for ext in self.extensions:
            await ext.before_update(self, et, entity_id, draft, cols, current)
        await self.w.update(et.table, entity_id, cols)
        self.note(et, entity_id, "updated", changed)
        for name, subs in draft.many.items():
            await self.rules.replace_related(et, entity_id, self._nav(et, name), subs)
        await self.rules.after_update(et, entity_id, draft, cols, current)

    # --- delete ---------------------------------------------------------------------------
    async def delete(self, et: EntityType, entity_id: int) -> None:
        if self.access is not None:
            await self.access.before_delete(self, et, entity_id)
        state = await self.rules.before_delete(et, entity_id)
        t = self.table(et)
        await self.w.execute(sa.delete(t).where(t.c[et.id_column] == entity_id))
        self.known.clear()  # cascades may have taken others with it
        self.note(et, entity_id, "deleted")
        await self.rules.after_delete(et, entity_id, state)

    async def delete_observations(self, table: Any, conditions: Sequence[Any]) -> int:
        """Delete the Observations of ``table`` (an alias the conditions are written on)
        that match ``conditions``, in one statement; return how many were deleted."""
        et = self.registry.type("Observation")
        stmt = (
            sa.delete(table)
            .where(*conditions)
            .returning(table.c[et.id_column], table.c.datastream_id)
        )
        rows = await self.w.execute_returning(stmt)
        self.known.clear()
        for row in rows:
            self.note(et, row[0], "deleted")
        if rows:
            self.streams.setdefault("delete", set()).update(int(row[1]) for row in rows)
        await self.rules.recompute_summary(sorted({row[1] for row in rows}))
        return len(rows)


@dataclass(frozen=True, slots=True)
class ObservationColumns:
    """Where an Observation's values go: the columns :meth:`Unit.columns` gives them."""

    phenomenon_start: str
    phenomenon_end: str
    result_time: str
    result_quality: str
    valid_start: str
    valid_end: str
    parameters: str
    datastream: str
    feature: str

    # the Observation's properties that these columns hold, and their kinds
    KINDS: ClassVar[dict[str, Kind]] = {
        "phenomenonTime": K_TIME,
        "resultTime": K_INSTANT,
        "result": K_RESULT,
        "resultQuality": K_ANY,
        "validTime": K_INTERVAL,
        "parameters": K_OBJECT,
    }

    @classmethod
    def of(cls, tables: Tables, et: EntityType) -> ObservationColumns | None:
        """For the registry's Observation; None where its properties are not the
        SensorThings ones (a plugin added one): such Observations go the general way."""

        def build() -> ObservationColumns | None:
            if {p.name: p.kind for p in et.writable} != cls.KINDS:
                return None
            p = {prop.name: prop for prop in et.writable}
            fk = {nav.name: nav.fk for nav in et.navigations}
            stream, feature = fk.get("Datastream"), fk.get("FeatureOfInterest")
            if stream is None or feature is None:
                return None
            return cls(
                p["phenomenonTime"].start,
                p["phenomenonTime"].end,
                p["resultTime"].column,
                p["resultQuality"].column,
                p["validTime"].start,
                p["validTime"].end,
                p["parameters"].column,
                stream,
                feature,
            )

        found: ObservationColumns | None = tables.template("observation_columns", build)
        return found


def _looks_at(rule: WriteRule, et: EntityType) -> bool:
    """Whether a write rule checks entities of ``et``: rules that name the entity types
    they check (``entity_types``) are left out for the others."""
    types: frozenset[str] | None = getattr(rule, "entity_types", None)
    return types is None or et.name in types


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "AEIOU" else "a ") + noun
