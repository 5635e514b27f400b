"""Observations refer to their Datastream and FeatureOfInterest without foreign keys on
PostgreSQL (migration 0006): the writer locks what new Observations refer to and refuses
what does not exist, and deletes take the Observations along, also when the delete and
an insert of Observations race."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import orjson
import pytest

from citytwin.access import ANONYMOUS
from citytwin.access.audit import Origin
from citytwin.errors import Conflict
from citytwin.storage.postgres.store import PostgresStore, _Writer
from tests.support import REGISTRY, Client, datastream, location, make_client, thing

R = TypeVar("R")
LOCK_WAIT_SECONDS = 10.0


def run(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


async def _world(conn: asyncpg.Connection) -> tuple[int, int]:
    """A Thing with one Datastream, and a FeatureOfInterest: their ids."""
    thing = await conn.fetchval(
        "INSERT INTO things (name, description) VALUES ('T', 'd') RETURNING id"
    )
    sensor = await conn.fetchval(
        "INSERT INTO sensors (name, description, encoding_type, metadata) "
        "VALUES ('S', 'd', 'text/html', '\"m\"') RETURNING id"
    )
    prop = await conn.fetchval(
        "INSERT INTO observed_properties (name, definition, description) "
        "VALUES ('P', 'x', 'd') RETURNING id"
    )
    ds = await conn.fetchval(
        "INSERT INTO datastreams (name, description, unit_of_measurement, observation_type, "
        "thing_id, sensor_id, observed_property_id) "
        "VALUES ('D', 'd', '{}', 'x', $1, $2, $3) RETURNING id",
        thing,
        sensor,
        prop,
    )
    feature = await conn.fetchval(
        "INSERT INTO features (name, description, encoding_type, feature) "
        "VALUES ('F', 'd', 'application/geo+json', '{}') RETURNING id"
    )
    return ds, feature


async def _rows(store: PostgresStore, w: Any, ds: int, feature: int, n: int) -> list[dict]:
    now = datetime.now(UTC)
    ids = await w.reserve_ids("observations", n)
    return [
        {
            "id": i,
            "phenomenon_time_start": now,
            "phenomenon_time_end": now,
            "result_type": 2,
            "result_number": float(i),
            "datastream_id": ds,
            "feature_id": feature,
        }
        for i in ids
    ]


async def _count(conn: asyncpg.Connection, where: str = "true") -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM observations WHERE {where}"))


async def _insert(store: PostgresStore, *batches: tuple[int, int, int]) -> list[int]:
    """Insert, in one transaction, ``n`` Observations of each (Datastream, feature, n);
    a batch of one goes through the single-row insert."""
    out = []
    async with store.writer() as w:
        for ds, feature, n in batches:
            rows = await _rows(store, w, ds, feature, n)
            if n == 1:
                await w.insert("observations", rows[0])
            else:
                await w.insert_many("observations", rows)
            out += [r["id"] for r in rows]
    return out


async def _move(store: PostgresStore, observation: int, ds: int) -> None:
    async with store.writer() as w:
        await w.update("observations", observation, {"datastream_id": ds})


async def _waits_for_a_lock(conn: asyncpg.Connection, pid: int) -> None:
    """Return once the backend ``pid`` waits for a lock; fail if it never does."""
    deadline = asyncio.get_running_loop().time() + LOCK_WAIT_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        event = await conn.fetchval(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid
        )
        if event == "Lock":
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"backend {pid} never waited for a lock")


async def _with_store(url: str, body: Callable[[PostgresStore], Awaitable[R]]) -> R:
    store = PostgresStore(url, REGISTRY)
    await store.open()
    try:
        return await body(store)
    finally:
        await store.close()


def test_observations_of_a_missing_datastream_or_feature_are_refused(pg_url: str) -> None:
    async def body(store: PostgresStore) -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            ds, feature = await _world(conn)
            for bad_ds, bad_feature, named in [
                (ds + 1000, feature, "Datastream"),
                (ds, feature + 1000, "FeatureOfInterest"),
            ]:
                with pytest.raises(Conflict, match=f"no {named} with id"):
                    await _insert(store, (ds, feature, 3), (bad_ds, bad_feature, 2))
                with pytest.raises(Conflict, match=f"no {named} with id"):
                    await _insert(store, (bad_ds, bad_feature, 1))
            [kept] = await _insert(store, (ds, feature, 1))  # moving one is checked too
            with pytest.raises(Conflict, match="no Datastream with id"):
                await _move(store, kept, ds + 1000)
            assert await _count(conn) == 1  # nothing of the refused writes is stored
            assert await _count(conn, f"datastream_id = {ds}") == 1
        finally:
            await conn.close()

    run(_with_store(pg_url, body))


def test_a_datastream_deleted_while_its_observations_are_inserted_takes_them_along(
    pg_url: str,
) -> None:
    """The insert locked the Datastream first: the delete waits for its commit and then
    deletes the new Observations too."""

    async def body(store: PostgresStore) -> None:
        conn = await asyncpg.connect(pg_url)
        other = await asyncpg.connect(pg_url)
        try:
            ds, feature = await _world(conn)
            async with store.writer() as w:
                await w.insert_many("observations", await _rows(store, w, ds, feature, 50))
                deleting = asyncio.ensure_future(
                    other.execute("DELETE FROM datastreams WHERE id = $1", ds)
                )
                await _waits_for_a_lock(conn, other.get_server_pid())
                assert not deleting.done()
            assert await deleting == "DELETE 1"
            assert await _count(conn) == 0
        finally:
            await other.close()
            await conn.close()

    run(_with_store(pg_url, body))


def test_observations_of_a_datastream_being_deleted_are_refused_once_it_is_gone(
    pg_url: str,
) -> None:
    """The delete came first: the insert waits for it and, once it is committed, finds
    the Datastream gone and stores nothing; had it been rolled back, the insert goes on."""

    async def body(store: PostgresStore) -> None:
        conn = await asyncpg.connect(pg_url)
        other = await asyncpg.connect(pg_url)
        try:
            ds, feature = await _world(conn)
            for outcome in ("rollback", "commit"):
                tx = other.transaction()
                await tx.start()
                await other.execute("DELETE FROM datastreams WHERE id = $1", ds)

                async def insert(pid: asyncio.Future[int]) -> None:
                    async with store.writer() as w:
                        rows = await _rows(store, w, ds, feature, 50)
                        pid.set_result(w.conn.get_server_pid())
                        await w.insert_many("observations", rows)

                pid: asyncio.Future[int] = asyncio.get_running_loop().create_future()
                inserting = asyncio.ensure_future(insert(pid))
                await _waits_for_a_lock(conn, await pid)
                assert not inserting.done()
                if outcome == "rollback":
                    await tx.rollback()
                    await inserting
                    assert await _count(conn, f"datastream_id = {ds}") == 50
                else:
                    await tx.commit()
                    with pytest.raises(Conflict, match="no Datastream with id"):
                        await inserting
                    assert await _count(conn) == 0  # the earlier 50 went with the delete
        finally:
            await other.close()
            await conn.close()

    run(_with_store(pg_url, body))


def test_deletes_take_the_observations_along(pg_url: str) -> None:
    """A FeatureOfInterest's and a Thing's (through its Datastreams) Observations go with
    them, as the foreign keys' ON DELETE CASCADE did."""

    async def body(store: PostgresStore) -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            ds, feature = await _world(conn)
            async with store.writer() as w:
                await w.insert_many("observations", await _rows(store, w, ds, feature, 5))
            other_feature = await conn.fetchval(
                "INSERT INTO features (name, description, encoding_type, feature) "
                "VALUES ('F2', 'd', 'application/geo+json', '{}') RETURNING id"
            )
            async with store.writer() as w:
                await w.insert_many("observations", await _rows(store, w, ds, other_feature, 3))
            await conn.execute("DELETE FROM features WHERE id = $1", other_feature)
            assert await _count(conn) == 5
            await conn.execute("DELETE FROM things")  # its Datastream goes, and with it ...
            assert await conn.fetchval("SELECT count(*) FROM datastreams") == 0
            assert await _count(conn) == 0
        finally:
            await conn.close()

    run(_with_store(pg_url, body))


# --- Observations taken in from MQTT (the intake's shared write) ----------------------------
def _city(client: Client) -> tuple[int, int, int]:
    """Two Datastreams of a located Thing, each with an Observation: their ids (lower
    first) and the FeatureOfInterest generated for them."""
    tid = client.create(
        "Things",
        thing("T", locations=[location()], datastreams=[datastream("A"), datastream("B")]),
    )
    a, b = sorted(client.ids(f"Things({tid})/Datastreams"))
    for ds in (a, b):
        first = client.create(f"Datastreams({ds})/Observations", {"result": 0})
    foi = client.ok("GET", f"Observations({first})/FeatureOfInterest")["@iot.id"]
    return a, b, foi


def test_the_datastreams_and_features_a_batch_finds_cannot_be_deleted_until_it_ends(
    pg_url: str, tmp_path: Path
) -> None:
    """The query that finds a batch's Datastreams and generated features locks them as
    the insert would: deletes of either wait for the transaction."""
    client = make_client(tmp_path, db=pg_url)
    try:
        a, _, foi = _city(client)
        service = client.app.state.service

        async def body() -> None:
            conn = await asyncpg.connect(pg_url)
            others = [await asyncpg.connect(pg_url) for _ in range(2)]
            try:
                async with service.transaction(Origin(ANONYMOUS, "mqtt")) as unit:
                    assert await unit.existing_streams([a]) == {a}
                    deletes = [
                        asyncio.ensure_future(
                            other.execute(f"DELETE FROM {table} WHERE id = $1", i)
                        )
                        for other, (table, i) in zip(
                            others, [("datastreams", a), ("features", foi)], strict=True
                        )
                    ]
                    for other in others:
                        await _waits_for_a_lock(conn, other.get_server_pid())
                    assert not any(d.done() for d in deletes)
                assert [await d for d in deletes] == ["DELETE 1", "DELETE 1"]
            finally:
                for c in (conn, *others):
                    await c.close()

        client.call(body())
    finally:
        client.close()


def test_a_batch_locks_the_summaries_it_updates_in_id_order_before_updating_any(
    pg_url: str, tmp_path: Path
) -> None:
    """Concurrent batches lock the Datastreams they summarise in one order, so they
    cannot deadlock: while another transaction holds the higher id, the lower one is
    already locked by the waiting batch; while it holds the lower, the higher is not."""
    client = make_client(tmp_path, db=pg_url)
    try:
        a, b, _ = _city(client)
        ingest = client.app.state.mqtt.ingest
        publishes = [
            (f"v1.1/Datastreams({ds})/Observations", orjson.dumps({"result": i}), ANONYMOUS)
            for i, ds in enumerate((b, a, b, a))
        ]

        async def locked_elsewhere(conn: asyncpg.Connection, ds: int) -> bool:
            async with conn.transaction():
                try:
                    await conn.execute(
                        "SELECT 1 FROM datastreams WHERE id = $1 FOR NO KEY UPDATE NOWAIT", ds
                    )
                except asyncpg.exceptions.LockNotAvailableError:
                    return True
            return False

        async def body(held: int, other_id: int) -> bool:
            conn = await asyncpg.connect(pg_url)
            holder = await asyncpg.connect(pg_url)
            probe = await asyncpg.connect(pg_url)
            try:
                tx = holder.transaction()
                await tx.start()
                await holder.execute(
                    "SELECT 1 FROM datastreams WHERE id = $1 FOR NO KEY UPDATE", held
                )
                storing = asyncio.ensure_future(ingest.handle_many(publishes))
                await _lock_waiter(conn, holder.get_server_pid())
                assert not storing.done()
                other_locked = await locked_elsewhere(probe, other_id)
                await tx.rollback()
                assert await storing == [None] * len(publishes)
                return other_locked
            finally:
                for c in (conn, holder, probe):
                    await c.close()

        assert client.call(body(held=b, other_id=a)) is True
        assert client.call(body(held=a, other_id=b)) is False
        for ds in (a, b):  # both batches were stored whole
            count = client.ok("GET", f"Datastreams({ds})/Observations?$count=true&$top=0")
            assert count["@iot.count"] == 5
    finally:
        client.close()


async def _lock_waiter(conn: asyncpg.Connection, holder: int) -> int:
    """The backend that waits for a lock ``holder`` holds; fail if none comes to."""
    deadline = asyncio.get_running_loop().time() + LOCK_WAIT_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        waiting = await conn.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", holder
        )
        if waiting is not None:
            return int(waiting)
        await asyncio.sleep(0.02)
    pytest.fail(f"nothing waited for a lock of backend {holder}")


def _plan_rows(node: dict[str, Any]) -> int:
    """Rows that all nodes of an EXPLAIN ANALYZE plan produced, over all their loops."""
    own = int(node.get("Actual Rows", 0)) * int(node.get("Actual Loops", 1))
    return own + sum(_plan_rows(child) for child in node.get("Plans", ()))


def _plan_relations(node: dict[str, Any]) -> set[str]:
    """The tables and partitions that an EXPLAIN plan reads or writes."""
    own = {node["Relation Name"]} if "Relation Name" in node else set()
    return own.union(*(_plan_relations(child) for child in node.get("Plans", ())))


def _explain_summaries(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """From now on, the summary updates of written batches run under EXPLAIN ANALYZE
    (and still write): their plans, in order."""
    plans: list[dict[str, Any]] = []
    real_execute = _Writer.execute

    async def explained(self: _Writer, stmt: Any, params: Any = None) -> int:
        sql, args = self._sql(stmt, params)
        if not sql.startswith("WITH batch AS"):
            return await real_execute(self, stmt, params)
        self.wrote = True
        plan = await self._call(
            lambda: self.conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
        )
        plans.append((orjson.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])
        return 0

    monkeypatch.setattr(_Writer, "execute", explained)
    return plans


def _publishes(bodies: list[dict[str, Any]]) -> list[tuple[str, bytes, Any]]:
    return [("v1.1/Observations", orjson.dumps(body), ANONYMOUS) for body in bodies]


def test_the_summary_of_a_batch_takes_work_in_proportion_to_its_size(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary update of a batch never multiplies its rows by each other: the planner
    cannot know how many rows this transaction wrote, and estimates a handful, so any join
    of two views of the batch may become a loop over one for each row of the other."""
    client = make_client(tmp_path, db=pg_url)
    try:
        streams = 300
        tid = client.create(
            "Things",
            thing(
                "T",
                locations=[location()],
                datastreams=[datastream(f"D{i}") for i in range(streams)],
            ),
        )
        ids = client.ids(f"Things({tid})/Datastreams")
        assert len(ids) == streams
        plans = _explain_summaries(monkeypatch)
        n = 2 * streams
        publishes = _publishes(
            [{"result": i, "Datastream": {"@iot.id": ds}} for i, ds in enumerate(ids * 2)]
        )
        assert client.call(client.app.state.mqtt.ingest.handle_many(publishes)) == [None] * n
        assert len(plans) == 1
        work = _plan_rows(plans[0])
        assert work < 30 * n, f"the summary of {n} Observations handled {work} rows"
        counts = client.call(_fetch(pg_url, "SELECT DISTINCT observation_count FROM datastreams"))
        assert [r[0] for r in counts] == [2]  # the explained statement wrote the summaries
    finally:
        client.close()


def _two_datastreams(client: Client) -> tuple[int, int]:
    """The ids of two new Datastreams of one Thing with a Location."""
    tid = client.create(
        "Things",
        thing("T", locations=[location()], datastreams=[datastream("A"), datastream("B")]),
    )
    a, b = sorted(client.ids(f"Things({tid})/Datastreams"))
    return a, b


def test_the_summary_of_a_batch_reads_only_the_months_of_its_observations(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Observations are partitioned by month, and a batch's summary finds its rows by id:
    the batch's earliest and latest phenomenon time keep the other months' partitions out
    of its plan (planning all 18 of the benchmark's database took 5 to 8 ms)."""
    client = make_client(tmp_path, db=pg_url)
    try:
        a, b = _two_datastreams(client)
        months = [f"2025-{m:02d}-15T12:00:00Z" for m in range(1, 7)]
        for t in months:  # a partition for each month
            client.create(
                "Observations", {"result": 0, "phenomenonTime": t, "Datastream": {"@iot.id": a}}
            )
        plans = _explain_summaries(monkeypatch)
        times = ["2025-03-01T00:00:00Z", "2025-03-31T23:59:59.999999Z", "2025-04-01T00:00:00Z"]
        bodies = [
            {"result": i, "phenomenonTime": t, "Datastream": {"@iot.id": ds}}
            for i, (t, ds) in enumerate(zip(times, (a, b, b), strict=True))
        ]
        ingest = client.app.state.mqtt.ingest
        assert client.call(ingest.handle_many(_publishes(bodies))) == [None] * 3
        (plan,) = plans
        read = {r for r in _plan_relations(plan) if r.startswith("observations")}
        assert read == {"observations_y2025m03", "observations_y2025m04"}
        for ds, n, last in ((a, 7, "2025-06-15T12:00:00Z"), (b, 2, times[2])):
            got = client.ok("GET", f"Datastreams({ds})")
            assert got["phenomenonTime"].endswith(last), got["phenomenonTime"]
            count = client.ok("GET", f"Datastreams({ds})/Observations?$count=true&$top=0")
            assert count["@iot.count"] == n
        summary = client.call(
            _fetch(
                pg_url,
                f"SELECT observation_count FROM datastreams WHERE id IN ({a}, {b}) ORDER BY id",
            )
        )
        assert [r[0] for r in summary] == [7, 2]
    finally:
        client.close()


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def test_writes_generating_the_feature_of_one_location_at_once_make_one(
    pg_url: str, tmp_path: Path
) -> None:
    """Two transactions that need the generated FeatureOfInterest of the same Location
    at the same time (the first Observations of two of its Thing's Datastreams, through
    two instances, say): the second waits for the first and uses its feature."""
    client = make_client(tmp_path, db=pg_url)
    try:
        a, b = _two_datastreams(client)
        service = client.app.state.service

        async def body() -> tuple[int, int]:
            generated, release = asyncio.Event(), asyncio.Event()

            async def first_observation(ds: int, hold: bool) -> int:
                async with service.transaction(Origin(ANONYMOUS, "http")) as unit:
                    feature = await unit.rules.feature_of(("Datastream", ds), "Observation")
                    if hold:
                        generated.set()
                        await release.wait()
                    return feature

            first = asyncio.ensure_future(first_observation(a, hold=True))
            await generated.wait()
            second = asyncio.ensure_future(first_observation(b, hold=False))
            conn = await asyncpg.connect(pg_url)
            try:  # the second waits for the first's Location
                deadline = asyncio.get_running_loop().time() + LOCK_WAIT_SECONDS
                while not await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE cardinality(pg_blocking_pids(pid)) > 0"
                ):
                    assert asyncio.get_running_loop().time() < deadline, "nothing waited"
                    await asyncio.sleep(0.02)
            finally:
                await conn.close()
            release.set()
            return await first, await second

        one, other = client.call(body())
        assert one == other
        features = client.ok("GET", "FeaturesOfInterest?$count=true&$top=0")["@iot.count"]
        assert features == 1
    finally:
        client.close()
