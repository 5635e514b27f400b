"""The rules of the SensorThings data model that go beyond storing what was sent.

* A Thing that gets Locations (on create or update) gets a HistoricalLocation at server
  time linked to them; its previous Locations are replaced (OGC 18-088 10.2, 10.3).
* A Location created or updated with Things becomes the current Location of each of
  them, with a HistoricalLocation each.
* A HistoricalLocation posted directly moves its Thing only if it is the newest one:
  a Location cannot be changed in the past.
* An Observation without phenomenonTime gets the server time; without a
  FeatureOfInterest it gets one generated from its Thing's GeoJSON Location, reused by
  later Observations (and regenerated after it is deleted).
* A Datastream's (and a MultiDatastream's) phenomenonTime and resultTime span its
  Observations; inserts widen them in place, deletes and moves recompute them from the index.
* MultiDatastreams: see :mod:`citytwin.service.multi`; deleting an ObservedProperty deletes
  the MultiDatastreams that use it.
* Deleting a Location also deletes the HistoricalLocations left without any Location.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from citytwin.errors import InvalidEntity
from citytwin.model import EntityType, Navigation
from citytwin.model.values import GEOJSON_ENCODINGS, geometry_from_geojson
from citytwin.service.drafts import Draft
from citytwin.service.multi import MultiRules
from citytwin.storage.base import Json, Row

if TYPE_CHECKING:
    from citytwin.service.unit import Unit


SUMMARY_PARAMS = ("ds", "ps", "pe", "rs", "re", "n", "s", "e", "i")  # see Rules._added
# the columns of an Observation that name its (Multi)Datastream
STREAM_COLUMNS = (("Datastream", "datastream_id"), ("MultiDatastream", "multi_datastream_id"))


class Rules:
    def __init__(self, unit: Unit) -> None:
        self.u = unit
        self.reg = unit.registry
        # (Datastream or MultiDatastream, id) -> generated FoI, this transaction
        self.features: dict[tuple[str, int], int] = {}
        self.claimed: set[int] = set()  # Datastreams locked for new Observations
        self.multi = MultiRules(unit)

    def _t(self, name: str) -> sa.Table:
        return self.u.tables.entity[name]

    def _p(self, value: Any) -> Any:
        return self.u.dialect.time_param(value)

    # --- inserts ----------------------------------------------------------------------------
    async def before_insert(self, et: EntityType, draft: Draft, row: dict[str, Any]) -> None:
        if et.name == "Observation":
            await self.multi.check_observation(row, draft.values.get("result"), draft.where)
            if row.get("phenomenon_time_start") is None:
                row["phenomenon_time_start"] = row["phenomenon_time_end"] = self.u.now
            stream = _stream(row)
            if row.get("feature_id") is None:
                row["feature_id"] = await self.feature_of(stream, draft.where)
        elif et.name == "MultiDatastream":
            self.multi.check_values(draft.values, draft.where)

    async def after_insert_many(
        self, et: EntityType, drafts: Sequence[Draft], rows: Sequence[dict[str, Any]]
    ) -> None:
        """Like after_insert for a batch; Observations update each Datastream once."""
        if et.name != "Observation":
            for draft, row in zip(drafts, rows, strict=True):
                await self.after_insert(et, row["id"], draft, row)
            return
        if self.u.dialect.written_here(self._t("Observation")) is not None:
            # the database sums up the rows it has just taken in (their ids are a range
            # of this transaction's): sending it a summary of each Datastream took 30% of
            # the intake's instructions in batches of 1,000 Observations of as many.
            # The ids bound the rows; their times bound the partitions to plan and scan.
            ids = [row["id"] for row in rows]
            starts = [row["phenomenon_time_start"] for row in rows]
            t = self.u.dialect.time_value
            span = {
                "first": min(ids),
                "last": max(ids),
                "since": t(min(starts)),
                "until": t(max(starts)),
            }
            for kind, column in STREAM_COLUMNS:
                if any(row.get(column) is not None for row in rows):
                    await self.u.w.execute(self._summary_of_written_template(kind), span)
            return
        by_stream = _summaries(rows)
        # in id order, so that concurrent batches lock the Datastreams in the same order
        for kind in ("Datastream", "MultiDatastream"):
            params = [self._params(s[1], by_stream[s]) for s in sorted(by_stream) if s[0] == kind]
            if params:
                await self.u.w.execute_many(self._summary_template(kind), params)

    async def after_insert(
        self, et: EntityType, new_id: int, draft: Draft, row: Mapping[str, Any]
    ) -> None:
        if et.name == "Thing" and draft.many.get("Locations"):
            await self.historical_location(new_id, await self.locations_of(new_id))
        elif et.name == "Location" and draft.many.get("Things"):
            linked = {sub.ref for sub in draft.many["Things"] if sub.ref is not None}
            for thing_id in await self.things_at(new_id):
                if thing_id in linked:
                    await self.move_thing(thing_id, [new_id])  # an existing Thing moves here
                else:
                    await self.historical_location(thing_id, [new_id])  # a new Thing starts here
        elif et.name == "HistoricalLocation":
            await self.apply_if_newest(new_id, row)
        elif et.name == "Observation":
            await self.observations_added(_stream(row), [{**row, "id": new_id}])
        elif et.name == "MultiDatastream":
            await self.multi.check(new_id, draft.where)
        elif et.name == "ObservedProperty":
            for md_id in [s.ref for s in draft.many.get("MultiDatastreams", ()) if s.ref]:
                await self.multi.check(md_id, draft.where)

    def _locations_of(self, stream: str) -> Any:
        loc = self._t("Location")
        tl = self.u.tables.link["thing_locations"]
        ds = self._t(stream)
        return (
            sa.select(
                loc.c.id,
                loc.c.encoding_type,
                loc.c.gen_foi_id,
                loc.c.name,
                loc.c.description,
                loc.c.location,
                loc.c.properties,
            )
            .select_from(
                loc.join(tl, tl.c.location_id == loc.c.id).join(ds, ds.c.thing_id == tl.c.thing_id)
            )
            .where(ds.c.id == sa.bindparam("ds"))
            .order_by(loc.c.id)
        )

    async def claim_streams(self, ids: Iterable[int], hidden: Sequence[Any] = ()) -> set[int]:
        """Which of the Datastreams exist (and are visible, where ``hidden`` limits them),
        for Observations about to be inserted: one query that also finds the generated
        FeatureOfInterest each one's Observations get when they name none, and locks the
        Datastreams and those FeaturesOfInterest against deletion until the transaction
        ends, as the writer would lock them before the insert (which then need not)."""
        if hidden:
            query = self._claimed_streams(hidden)
        else:
            query = self.u.tables.template("claimed_streams", lambda: self._claimed_streams(()))
        rows = await self.u.w.fetch(query, {"ds": sorted(set(ids))})
        found = {int(r[0]) for r in rows}
        generated = {int(r[0]): int(r[1]) for r in rows if r[2]}
        for stream, feature in generated.items():
            self.features.setdefault(("Datastream", stream), feature)
        self.u.w.held(self._t("Datastream").name, found)
        self.u.w.held(self._t("FeatureOfInterest").name, generated.values())
        self.u.known |= {("Datastream", i) for i in found}
        self.claimed |= found
        return found

    def _claimed_streams(self, hidden: Sequence[Any]) -> Any:
        """Datastream ids (template parameter ``ds``), each with its generated
        FeatureOfInterest (its Thing's first Location's) and whether that still exists,
        both locked FOR KEY SHARE in id order."""
        loc = self._t("Location")
        tl = self.u.tables.link["thing_locations"]
        ds = self._t("Datastream")
        foi = self._t("FeatureOfInterest")
        generated = (
            sa.select(loc.c.gen_foi_id)
            .select_from(loc.join(tl, tl.c.location_id == loc.c.id))
            .where(tl.c.thing_id == ds.c.thing_id, loc.c.gen_foi_id.is_not(None))
            .order_by(loc.c.id)
            .limit(1)
            .scalar_subquery()
        )
        streams = (
            sa.select(ds.c.id.label("id"), generated.label("feature"))
            .where(self.u.dialect.in_ids_param(ds.c.id, "ds"), *hidden)
            .order_by(ds.c.id)
            .with_for_update(read=True, key_share=True, of=ds)
            .cte("claimed_streams")
        )
        features = (
            sa.select(foi.c.id.label("id"))
            .where(foi.c.id.in_(sa.select(streams.c.feature)))
            .order_by(foi.c.id)
            .with_for_update(read=True, key_share=True)
            .cte("claimed_features")
        )
        return sa.select(streams.c.id, streams.c.feature, features.c.id.is_not(None)).select_from(
            streams.outerjoin(features, features.c.id == streams.c.feature)
        )

    async def feature_of(self, stream: tuple[str, int], where: str) -> int:
        """The FeatureOfInterest that an Observation of a (Multi)Datastream gets when it
        names none: its Thing's Location's, made once (:meth:`generated_feature`)."""
        found = self.features.get(stream)
        if found is None:
            found = self.features[stream] = await self.generated_feature(stream, where)
        return found

    async def generated_feature(self, stream: tuple[str, int], where: str) -> int:
        kind, stream_id = stream
        query = self.u.tables.template(f"locations_of:{kind}", lambda: self._locations_of(kind))
        rows = await self.u.w.fetch(query, {"ds": stream_id})
        for r in rows:
            if r["gen_foi_id"] is not None:
                return int(r["gen_foi_id"])
        geo = [r for r in rows if r["encoding_type"] in GEOJSON_ENCODINGS]
        if not geo:
            raise InvalidEntity(
                f"{where}: no FeatureOfInterest given, and none can be generated because the "
                f"Thing of {kind} {stream_id} has no GeoJSON Location"
            )
        src = geo[-1]
        # another transaction may be generating it at this moment: the Location is locked
        # as the update below would lock it and read again, so that whatever writes race
        # (two instances, say), one feature is made for it and all of them use that one
        loc = self._t("Location")
        made = await self.u.w.scalar(
            sa.select(loc.c.gen_foi_id).where(loc.c.id == src["id"]).with_for_update(key_share=True)
        )
        if made is not None:
            return int(made)
        feature = _json(src["location"])
        props = _json(src["properties"])
        foi_id = await self.u.w.insert(
            "features",
            {
                "name": src["name"],
                "description": src["description"],
                "encoding_type": src["encoding_type"],
                "feature": Json(feature),
                "feature_geom": geometry_from_geojson(feature),
                "properties": None if props is None else Json(props),
            },
        )
        await self.u.w.update("locations", src["id"], {"gen_foi_id": foi_id})
        self.u.note(self.reg.type("FeatureOfInterest"), foi_id, "created")
        return foi_id

    # --- locations and their history ------------------------------------------------------
    async def locations_of(self, thing_id: int) -> list[int]:
        tl = self.u.tables.link["thing_locations"]
        rows = await self.u.w.fetch(
            sa.select(tl.c.location_id).where(tl.c.thing_id == thing_id).order_by(tl.c.location_id)
        )
        return [r[0] for r in rows]

    async def things_at(self, location_id: int) -> list[int]:
        tl = self.u.tables.link["thing_locations"]
        rows = await self.u.w.fetch(
            sa.select(tl.c.thing_id).where(tl.c.location_id == location_id).order_by(tl.c.thing_id)
        )
        return [r[0] for r in rows]

    async def historical_location(self, thing_id: int, location_ids: list[int]) -> None:
        hl_id = await self.u.w.insert(
            "historical_locations", {"time": self.u.now, "thing_id": thing_id}
        )
        for loc in location_ids:
            await self.u.w.insert(
                "location_historical_locations",
                {"location_id": loc, "historical_location_id": hl_id},
            )
        self.u.note(self.reg.type("HistoricalLocation"), hl_id, "created")

    async def move_thing(
        self, thing_id: int, location_ids: list[int], *, history: bool = True
    ) -> None:
        """Make ``location_ids`` the Thing's current Locations (replacing the others)."""
        thing = self.reg.type("Thing")
        nav = thing.navigation("Locations")
        assert nav is not None
        await self.u.unlink_all(nav, thing_id)
        for loc in location_ids:
            await self.u.link(nav, thing_id, loc)
        self.u.note(thing, thing_id, "updated", ("Locations",))
        if history:
            await self.historical_location(thing_id, location_ids)

    async def apply_if_newest(self, hl_id: int, row: Mapping[str, Any]) -> None:
        hl = self._t("HistoricalLocation")
        link = self.u.tables.link["location_historical_locations"]
        newest = await self.u.w.scalar(
            sa.select(sa.func.max(hl.c.time)).where(
                hl.c.thing_id == row["thing_id"], hl.c.id != hl_id
            )
        )
        if newest is not None and self.u.storage.decode_time(newest) > row["time"]:
            return
        rows = await self.u.w.fetch(
            sa.select(link.c.location_id).where(link.c.historical_location_id == hl_id)
        )
        if rows:
            await self.move_thing(row["thing_id"], [r[0] for r in rows], history=False)

    # --- updates ------------------------------------------------------------------------------
    async def relinked(self, et: EntityType, nav: Navigation, before: Row, new_parent: int) -> None:
        """An existing entity was moved to another parent by reference."""
        if et.name == "Observation" and nav.name in ("Datastream", "MultiDatastream"):
            names = before.keys()  # a Row iterates over its values, not its names
            moved = {**{k: before[k] for k in names}, nav.fk or "": new_parent}
            where = f"{nav.target}.Observations"
            await self.multi.check_observation(moved, self.multi.stored_result(moved), where)
            await self.recompute_summary(sorted({before[nav.fk or ""], new_parent}), nav.name)

    async def after_update(
        self,
        et: EntityType,
        entity_id: int,
        draft: Draft,
        cols: Mapping[str, Any],
        current: Row,
    ) -> None:
        changed = set(draft.values) | set(draft.one)
        if et.name == "Observation":
            after = {**current, **cols}
            if {"result", "Datastream", "MultiDatastream"} & changed:
                await self.multi.check_observation(
                    after, self.multi.stored_result(after), draft.where
                )
            if {"phenomenonTime", "resultTime", "Datastream", "MultiDatastream"} & changed:
                for kind, fk in (
                    ("Datastream", "datastream_id"),
                    ("MultiDatastream", "multi_datastream_id"),
                ):
                    ids = {current[fk], after[fk]} - {None}
                    await self.recompute_summary(sorted(ids), kind)
        elif et.name == "MultiDatastream":
            self.multi.check_values(draft.values, draft.where)
            await self.multi.check(entity_id, draft.where)
        elif et.name == "ObservedProperty":
            for md_id in [s.ref for s in draft.many.get("MultiDatastreams", ()) if s.ref]:
                await self.multi.check(md_id, draft.where)

    async def replace_related(
        self, et: EntityType, entity_id: int, nav: Navigation, subs: list[Draft]
    ) -> None:
        """References in PATCH/PUT: a Thing's Locations are replaced, other sets extended."""
        if et.name == "Thing" and nav.name == "Locations":
            ids = []
            for sub in subs:
                assert sub.ref is not None
                await self.u.require(self.reg.type("Location"), sub.ref, sub.where)
                ids.append(sub.ref)
            if ids:
                await self.move_thing(entity_id, ids)
            return
        if et.name == "Location" and nav.name == "Things":
            for sub in subs:
                assert sub.ref is not None
                await self.u.require(self.reg.type("Thing"), sub.ref, sub.where)
                await self.move_thing(sub.ref, [entity_id])
            return
        if et.name == "MultiDatastream" and nav.name == "ObservedProperties":
            ids = []
            for sub in subs:
                assert sub.ref is not None
                await self.u.require(self.reg.type("ObservedProperty"), sub.ref, sub.where)
                ids.append(sub.ref)
            await self.multi.replace_properties(entity_id, ids)
            self.u.note(et, entity_id, "updated", (nav.name,))
            return
        await self.u.add_related(et, entity_id, nav, subs, creating=False)

    # --- deletes ------------------------------------------------------------------------------
    async def before_delete(self, et: EntityType, entity_id: int) -> Any:
        obs = self._t("Observation")
        if et.name == "Location":
            link = self.u.tables.link["location_historical_locations"]
            rows = await self.u.w.fetch(
                sa.select(link.c.historical_location_id).where(link.c.location_id == entity_id)
            )
            return [r[0] for r in rows]
        if et.name in ("FeatureOfInterest", "Observation"):
            key = obs.c.feature_id if et.name == "FeatureOfInterest" else obs.c.id
            rows = await self.u.w.fetch(
                sa.select(obs.c.datastream_id, obs.c.multi_datastream_id)
                .where(key == entity_id)
                .distinct()
            )
            return [_stream({"datastream_id": r[0], "multi_datastream_id": r[1]}) for r in rows]
        if et.name == "ObservedProperty":
            return await self.multi.using(entity_id)
        return None

    async def after_delete(self, et: EntityType, entity_id: int, state: Any) -> None:
        if et.name == "Location" and state:
            hl = self._t("HistoricalLocation")
            link = self.u.tables.link["location_historical_locations"]
            orphans = sa.select(hl.c.id).where(
                hl.c.id.in_(state),
                ~sa.exists(
                    sa.select(sa.literal_column("1")).where(
                        link.c.historical_location_id == hl.c.id
                    )
                ),
            )
            for row in await self.u.w.fetch(orphans):
                await self.u.w.execute(sa.delete(hl).where(hl.c.id == row[0]))
                self.u.note(self.reg.type("HistoricalLocation"), row[0], "deleted")
        elif et.name in ("FeatureOfInterest", "Observation") and state:
            for kind in ("Datastream", "MultiDatastream"):
                await self.recompute_summary(sorted(i for k, i in state if k == kind), kind)
        elif et.name == "ObservedProperty" and state:
            # a MultiDatastream cannot lose one of its ObservedProperties (section 9.2)
            md = self.reg.type("MultiDatastream")
            t = self._t(md.name)
            await self.u.w.execute(sa.delete(t).where(t.c.id.in_(state)))
            for md_id in state:
                self.u.note(md, md_id, "deleted")

    # --- the Datastream summary ---------------------------------------------------------------
    def _summary_template(self, stream: str) -> Any:
        def build() -> Any:
            params = {n: sa.bindparam(n, type_=t) for n, t in self._summary_columns()}
            return self._summary_added(stream, params)

        return self.u.tables.template(f"summary_added:{stream}", build)

    def _summary_of_written_template(self, stream: str) -> Any:
        """The summary update of the (Multi)Datastreams of the Observations this
        transaction wrote with ids from ``first`` to ``last`` and phenomenon times from
        ``since`` to ``until`` (so that only their partitions are planned and scanned: all
        18 months of the benchmark's database took 5 to 8 ms to plan), summed up by the database
        (:meth:`Dialect.written_here`). It locks the (Multi)Datastreams first, in id
        order, since the update's own order is the plan's and concurrent batches must not
        lock the same rows in different orders."""

        def build() -> Any:
            obs = self._t("Observation")
            column = obs.c[dict(STREAM_COLUMNS)[stream]]
            written = self.u.dialect.written_here(obs)
            assert written is not None, "only where the database tells this transaction's rows"
            batch = (
                sa.select(
                    column.label("ds"),
                    obs.c.id,
                    obs.c.phenomenon_time_start.label("s"),
                    obs.c.phenomenon_time_end.label("e"),
                    obs.c.result_time.label("r"),
                )
                .where(
                    obs.c.id.between(sa.bindparam("first"), sa.bindparam("last")),
                    obs.c.phenomenon_time_start.between(
                        sa.bindparam("since", type_=self.u.tables.types.time),
                        sa.bindparam("until", type_=self.u.tables.types.time),
                    ),
                    column.is_not(None),
                    written,
                )
                .cte("batch")
            )
            # one pass over the batch, sorted once: each row with its Datastream's totals
            # and its rank by phenomenon time, then the lower id (as _summaries); the
            # latest row of each carries them. A join of separate totals and latest rows
            # would depend on the planner's estimate of the batch, which it cannot know
            # (this transaction's rows), and nested loops over 1,000 rows are quadratic.
            ds_id = batch.c.ds
            rank = sa.func.row_number().over(
                partition_by=ds_id, order_by=(batch.c.s.desc(), batch.c.e.desc(), batch.c.id)
            )
            ranked = sa.select(
                ds_id,
                batch.c.id.label("i"),
                batch.c.s,
                batch.c.e,
                sa.func.min(batch.c.s).over(partition_by=ds_id).label("ps"),
                sa.func.max(batch.c.e).over(partition_by=ds_id).label("pe"),
                sa.func.min(batch.c.r).over(partition_by=ds_id).label("rs"),
                sa.func.max(batch.c.r).over(partition_by=ds_id).label("re"),
                sa.func.count().over(partition_by=ds_id).label("n"),
                rank.label("rank"),
            ).subquery("ranked")
            latest = sa.select(ranked).where(ranked.c.rank == 1).subquery("latest")
            ds = self._t(stream)
            locking = ds.alias("locking")
            locked = (
                sa.select(locking.c.id)
                .where(locking.c.id.in_(sa.select(batch.c.ds)))
                .order_by(locking.c.id)
                .with_for_update(key_share=True)  # FOR NO KEY UPDATE, as the UPDATE takes
                .subquery("locked")
            )
            # a condition on no row: it runs (and locks) once, before any row is updated
            all_locked = sa.select(sa.func.count()).select_from(locked).scalar_subquery() > 0
            values = {n: latest.c[n] for n in SUMMARY_PARAMS}
            return self._summary_added(stream, values).where(all_locked)

        return self.u.tables.template(f"summary_of_written:{stream}", build)

    def _summary_columns(self) -> list[tuple[str, Any]]:
        types = self.u.tables.types
        counts = ("ds", "n", "i")
        return [(n, types.id if n in counts else types.time) for n in SUMMARY_PARAMS]

    def _summary_added(self, stream: str, v: dict[str, Any]) -> Any:
        """UPDATE of a (Multi)Datastream's summary by the values ``v`` of its new
        Observations (see :meth:`_added`)."""
        ds = self._t(stream)

        def low(col: Any, value: Any) -> Any:
            return sa.case(
                (value.is_(None), col), (sa.or_(col.is_(None), col > value), value), else_=col
            )

        def high(col: Any, value: Any) -> Any:
            return sa.case(
                (value.is_(None), col), (sa.or_(col.is_(None), col < value), value), else_=col
            )

        s, e, i = v["s"], v["e"], v["i"]
        newer = sa.or_(
            ds.c.last_observation_id.is_(None),
            ds.c.last_observation_start < s,
            sa.and_(ds.c.last_observation_start == s, ds.c.last_observation_end < e),
            sa.and_(
                ds.c.last_observation_start == s,
                ds.c.last_observation_end == e,
                ds.c.last_observation_id > i,
            ),
        )
        return (
            sa.update(ds)
            .where(ds.c.id == v["ds"])
            .values(
                phenomenon_time_start=low(ds.c.phenomenon_time_start, v["ps"]),
                phenomenon_time_end=high(ds.c.phenomenon_time_end, v["pe"]),
                result_time_start=low(ds.c.result_time_start, v["rs"]),
                result_time_end=high(ds.c.result_time_end, v["re"]),
                observation_count=ds.c.observation_count + v["n"],
                last_observation_id=sa.case((newer, i), else_=ds.c.last_observation_id),
                last_observation_start=sa.case((newer, s), else_=ds.c.last_observation_start),
                last_observation_end=sa.case((newer, e), else_=ds.c.last_observation_end),
            )
        )

    async def observations_added(
        self, stream: tuple[str, int], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Widen the Datastream's times, count the new Observations and move its latest
        reference, in one UPDATE with no scan of Observations."""
        update = self._summary_template(stream[0])
        await self.u.w.execute(update, self._added(stream[1], rows))

    def _added(self, datastream_id: int, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The parameters of the summary update for new Observations of one Datastream."""
        (summary,) = _summaries(rows).values()
        return self._params(datastream_id, summary)

    def _params(self, datastream_id: int, summary: Summary) -> dict[str, Any]:
        t = self.u.dialect.time_value
        first, last, results_from, results_to, n, latest = summary
        return {
            "ds": datastream_id,
            "ps": t(first),
            "pe": t(last),
            "rs": None if results_from is None else t(results_from),
            "re": None if results_to is None else t(results_to),
            "n": n,
            "s": t(latest["phenomenon_time_start"]),
            "e": t(latest["phenomenon_time_end"]),
            "i": latest["id"],
        }

    async def recompute_summary(
        self, datastream_ids: Sequence[int], stream: str = "Datastream"
    ) -> None:
        """Rebuild the summary of (Multi)Datastreams that lost or moved Observations."""
        if not datastream_ids:
            return
        ds, obs = self._t(stream), self._t("Observation")
        fk = "datastream_id" if stream == "Datastream" else "multi_datastream_id"
        mine = obs.c[fk] == ds.c.id

        def agg(fn: Any, col: Any) -> Any:
            return sa.select(fn(col)).where(mine).scalar_subquery()

        def latest(col: Any) -> Any:
            return (
                sa.select(col)
                .where(mine)
                .order_by(
                    obs.c.phenomenon_time_start.desc(),
                    obs.c.phenomenon_time_end.desc(),
                    obs.c.id.asc(),
                )
                .limit(1)
                .scalar_subquery()
            )

        await self.u.w.execute(
            sa.update(ds)
            .where(ds.c.id.in_(list(datastream_ids)))
            .values(
                phenomenon_time_start=agg(sa.func.min, obs.c.phenomenon_time_start),
                phenomenon_time_end=agg(sa.func.max, obs.c.phenomenon_time_end),
                result_time_start=agg(sa.func.min, obs.c.result_time),
                result_time_end=agg(sa.func.max, obs.c.result_time),
                observation_count=sa.select(sa.func.count()).where(mine).scalar_subquery(),
                last_observation_id=latest(obs.c.id),
                last_observation_start=latest(obs.c.phenomenon_time_start),
                last_observation_end=latest(obs.c.phenomenon_time_end),
            )
        )


# what new Observations of one (Multi)Datastream add to its summary: the earliest
# phenomenon start, the latest end, the earliest and latest result times, how many, and
# the row of the latest (by phenomenon time, then the lower id)
Summary = list[Any]


def _summaries(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int], Summary]:
    """The :data:`Summary` of each (Multi)Datastream of new Observations' rows, in one
    pass over them."""
    found: dict[tuple[str, int], Summary] = {}
    for row in rows:
        ds = row.get("datastream_id")
        if ds is not None:
            stream = ("Datastream", int(ds))
        else:
            stream = ("MultiDatastream", int(row["multi_datastream_id"]))
        start, end = row["phenomenon_time_start"], row["phenomenon_time_end"]
        results = row.get("result_time")
        s = found.get(stream)
        if s is None:
            found[stream] = [start, end, results, results, 1, row]
            continue
        if start < s[0]:
            s[0] = start
        if end > s[1]:
            s[1] = end
        if results is not None:
            if s[2] is None or results < s[2]:
                s[2] = results
            if s[3] is None or results > s[3]:
                s[3] = results
        s[4] += 1
        latest = s[5]
        latest_start, latest_end = latest["phenomenon_time_start"], latest["phenomenon_time_end"]
        if start > latest_start or (
            start == latest_start
            and (end > latest_end or (end == latest_end and row["id"] < latest["id"]))
        ):
            s[5] = row
    return found


def _stream(row: Mapping[str, Any]) -> tuple[str, int]:
    """The (Multi)Datastream of an Observation's row."""
    if row.get("datastream_id") is not None:
        return "Datastream", int(row["datastream_id"])
    return "MultiDatastream", int(row["multi_datastream_id"])


def _json(raw: Any) -> Any:
    if raw is None:
        return None
    return orjson.loads(raw) if isinstance(raw, str | bytes) else raw
