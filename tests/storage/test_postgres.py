"""The PostgreSQL store on its own: schema, partitions, COPY, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
import shapely
import sqlalchemy as sa

from citytwin.access.keys import keys_table, organisations_table
from citytwin.domains.packages import packages_table
from citytwin.errors import BadRequest
from citytwin.planner.tables import EXTRA_COLUMNS
from citytwin.storage.base import Json, SetupNeeded
from citytwin.storage.postgres.store import PostgresStore
from tests.support import (
    REGISTRY,
    datastream,
    location,
    make_client,
    thing,
)

R = TypeVar("R")


def run(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


async def _columns(url: str) -> dict[str, set[str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        )
    finally:
        await conn.close()
    out: dict[str, set[str]] = {}
    for r in rows:
        out.setdefault(r["table_name"], set()).add(r["column_name"])
    return out


def test_schema_matches_the_planner_tables_and_migrations_run_once(pg_url: str) -> None:
    store = PostgresStore(pg_url, REGISTRY)
    assert run(store.migrate()) == []  # the template is migrated already
    assert run(store.schema_version()) == 8
    assert [name for _, name, _ in store.migrations()][-4:] == [
        "0005_access.sql",
        "0006_ingest.sql",
        "0007_audit.sql",
        "0008_summary_room.sql",
    ]
    stored = run(_columns(pg_url))
    for name, table in store.tables.metadata.tables.items():
        assert stored[name] == {c.name for c in table.columns}, name
    assert set(EXTRA_COLUMNS) <= set(store.tables.metadata.tables)
    packages = packages_table(store.dialect.column_types)
    assert stored["domain_packages"] == {c.name for c in packages.columns}
    for access in (organisations_table, keys_table):
        table = access(store.dialect.column_types)
        assert stored[table.name] == {c.name for c in table.columns}


def test_summary_updates_find_room_on_their_page(pg_url: str) -> None:
    """Each batch of Observations rewrites its Datastreams' summaries: half of each page
    is kept free so the new row version fits beside the old one and no index changes."""

    async def options() -> dict[str, list[str] | None]:
        conn = await asyncpg.connect(pg_url)
        try:
            rows = await conn.fetch(
                "SELECT relname, reloptions FROM pg_class "
                "WHERE relname IN ('datastreams', 'multi_datastreams')"
            )
        finally:
            await conn.close()
        return {r["relname"]: r["reloptions"] for r in rows}

    assert run(options()) == {
        "datastreams": ["fillfactor=50"],
        "multi_datastreams": ["fillfactor=50"],
    }


def test_a_database_from_a_newer_version_is_refused(pg_url: str) -> None:
    async def scenario() -> None:
        conn = await asyncpg.connect(pg_url)
        await conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', now())")
        await conn.close()
        with pytest.raises(RuntimeError, match="newer than this citytwin"):
            await PostgresStore(pg_url, REGISTRY).migrate()

    run(scenario())


async def _partitions(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'observations'"
        )
    finally:
        await conn.close()
    return {r[0] for r in rows}


def test_partitions_exist_for_now_and_appear_for_backfills(pg_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    current = f"observations_y{now.year:04d}m{now.month:02d}"
    assert current in run(_partitions(pg_url))
    c = make_client(tmp_path, db=pg_url)
    try:
        tid = c.create(
            "Things",
            thing(
                "T",
                Locations=[
                    {
                        "name": "L",
                        "description": "d",
                        "encodingType": "application/geo+json",
                        "location": {"type": "Point", "coordinates": [8, 51]},
                    }
                ],
                Datastreams=[
                    {
                        "name": "D",
                        "description": "d",
                        "observationType": "x",
                        "unitOfMeasurement": {"name": None, "symbol": None, "definition": None},
                        "Sensor": {
                            "name": "s",
                            "description": "d",
                            "encodingType": "text/html",
                            "metadata": "m",
                        },
                        "ObservedProperty": {"name": "p", "definition": "x", "description": "d"},
                    }
                ],
            ),
        )
        [d] = c.ids(f"Things({tid})/Datastreams")
        times = ["2010-05-17T10:00:00Z", "1990-01-01T00:00:00Z", "2150-06-01T00:00:00Z"]
        for t in times:
            c.create(f"Datastreams({d})/Observations", {"result": 1, "phenomenonTime": t})
        # a backfill batch across two new months, in one request
        batch = [
            {"result": i, "phenomenonTime": f"2011-0{m}-02T00:00:00Z"}
            for i, m in enumerate([3, 3, 4])
        ]
        c.ok("PATCH", f"Datastreams({d})", {"name": "renamed"})
        c.create(
            f"Things({tid})/Datastreams",
            {
                "name": "D2",
                "description": "d",
                "observationType": "x",
                "unitOfMeasurement": {"name": None, "symbol": None, "definition": None},
                "Sensor": {"@iot.id": 1},
                "ObservedProperty": {"@iot.id": 1},
                "Observations": batch,
            },
        )
        assert c.ok("GET", "Observations?$count=true&$top=0")["@iot.count"] == 6
        found = c.values(
            "Observations?$filter=year(phenomenonTime) eq 2011&$orderby=phenomenonTime"
        )
        assert [o["result"] for o in found] == [0, 1, 2]
    finally:
        c.close()
    made = run(_partitions(pg_url))
    assert {"observations_y2010m05", "observations_y2011m03", "observations_y2011m04"} <= made
    assert not any(n.startswith(("observations_y1990", "observations_y2150")) for n in made)


def test_a_large_backfill_whose_later_chunks_need_a_new_month_is_stored_whole(
    pg_url: str, tmp_path: Path
) -> None:
    """The first chunk's month is made before anything is written; the next chunk's month
    is found missing after rows were written, so the request is set up and run again."""
    c = make_client(tmp_path, db=pg_url)
    try:
        tid = c.create("Things", thing("T", locations=[location()]))
        observations = [
            {
                "result": i,
                "phenomenonTime": f"2012-0{1 + i // 1200}-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
            }
            for i in range(2400)
        ]
        did = c.create(
            "Datastreams", datastream("Backfill", Thing={"@iot.id": tid}, Observations=observations)
        )
        body = c.ok("GET", f"Datastreams({did})/Observations?$count=true&$top=0")
        assert body["@iot.count"] == 2400
    finally:
        c.close()
    made = run(_partitions(pg_url))
    assert {"observations_y2012m01", "observations_y2012m02"} <= made


def _feature(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": "d",
        "encoding_type": "application/geo+json",
        "feature": Json({"type": "Point", "coordinates": [8, 51]}),
    }


def test_a_new_month_needed_after_a_write_rolls_the_write_back_until_it_is_set_up(
    pg_url: str,
) -> None:
    month = [{"phenomenon_time_start": datetime(2005, 2, 3, tzinfo=UTC)}]

    async def scenario() -> tuple[int, set[str]]:
        store = PostgresStore(pg_url, REGISTRY)
        await store.open()

        async def given_up() -> None:
            async with store.writer() as w:
                await w.insert("features", _feature("given up"))
                await w._partitions("observations", month)

        try:
            with pytest.raises(SetupNeeded) as needed:
                await given_up()
            assert (2005, 2) not in store.partitions.known
            assert "observations_y2005m02" not in await _partitions(pg_url)
            await needed.value.setup()
            assert (2005, 2) in store.partitions.known
            async with store.writer() as w:  # written again: nothing more to set up
                await w.insert("features", _feature("kept"))
                await w._partitions("observations", month)
            async with store.reader() as r:
                count = await r.scalar(sa.text("SELECT count(*) FROM features"))
            return int(count), await _partitions(pg_url)
        finally:
            await store.close()

    count, made = run(scenario())
    assert count == 1  # the given-up write left nothing
    assert "observations_y2005m02" in made


def test_two_instances_needing_the_same_new_month_mid_write_both_succeed(pg_url: str) -> None:
    """Both instances' transactions have written a FeatureOfInterest (the table a new
    partition's foreign key refers to) when they find the month missing: making it in
    either transaction would wait for the other one."""
    month = [{"phenomenon_time_start": datetime(2007, 7, 7, tzinfo=UTC)}]

    async def scenario() -> tuple[list[int], int, set[str]]:
        a, b = PostgresStore(pg_url, REGISTRY), PostgresStore(pg_url, REGISTRY)
        await a.open()
        await b.open()
        both_wrote = asyncio.Barrier(2)

        async def write(store: PostgresStore, name: str) -> int:
            for attempt in range(3):
                try:
                    async with store.writer() as w:
                        await w.insert("features", _feature(name))
                        if attempt == 0:
                            await both_wrote.wait()
                        await w._partitions("observations", month)
                    return attempt
                except SetupNeeded as needed:
                    await needed.setup()
            raise AssertionError("still not set up")

        try:
            attempts = await asyncio.wait_for(asyncio.gather(write(a, "a"), write(b, "b")), 30)
            async with a.reader() as r:
                count = await r.scalar(sa.text("SELECT count(*) FROM features"))
            return list(attempts), int(count), await _partitions(pg_url)
        finally:
            await a.close()
            await b.close()

    attempts, count, made = run(scenario())
    assert attempts == [1, 1]  # each gave up once, set up, and wrote again
    assert count == 2
    assert "observations_y2007m07" in made


def test_a_new_month_is_made_while_a_long_read_of_observations_goes_on(pg_url: str) -> None:
    async def scenario() -> set[str]:
        store = PostgresStore(pg_url, REGISTRY)
        await store.open()
        try:
            async with store.reader() as r:  # a read transaction left open meanwhile
                await r.scalar(sa.text("SELECT count(*) FROM observations"))
                async with store.writer() as w:
                    await asyncio.wait_for(
                        w._partitions(
                            "observations",
                            [{"phenomenon_time_start": datetime(2009, 9, 9, tzinfo=UTC)}],
                        ),
                        20,
                    )
            return await _partitions(pg_url)
        finally:
            await store.close()

    assert "observations_y2009m09" in run(scenario())


def test_reads_plan_statements_for_their_own_values_and_writes_keep_cached_plans(
    pg_url: str,
) -> None:
    """A generic plan cannot prune the Observations partitions by a query's times; but a
    COPY's foreign-key checks run one cached query per row, which must not be re-planned."""

    async def scenario() -> list[str]:
        store = PostgresStore(pg_url, REGISTRY, pool_size=2)
        await store.open()
        try:
            modes = []
            async with store.reader() as r1, store.reader() as r2, store.writer() as w:
                for c in (r1, r2, w):
                    modes.append(await c.scalar(sa.text("SHOW plan_cache_mode")))
            return modes
        finally:
            await store.close()

    assert run(scenario()) == ["force_custom_plan", "force_custom_plan", "auto"]


def test_copy_writes_json_and_geometry(pg_url: str) -> None:
    async def scenario() -> list[Any]:
        store = PostgresStore(pg_url, REGISTRY)
        await store.open()
        try:
            async with store.writer() as w:
                ids = await w.reserve_ids("features", 2)
                await w.insert_many(
                    "features",
                    [
                        {
                            "id": ids[0],
                            "name": "a",
                            "description": "d",
                            "encoding_type": "x",
                            "feature": Json({"type": "Point", "coordinates": [8, 51]}),
                            "feature_geom": shapely.Point(8, 51),
                            "properties": None,
                        },
                        {
                            "id": ids[1],
                            "name": "b",
                            "description": "d",
                            "encoding_type": "x",
                            "feature": Json({"k": [1, 2]}),
                            "feature_geom": None,
                            "properties": Json({"x": 1}),
                        },
                    ],
                )
            async with store.reader() as r:
                return await r.fetch(
                    sa.text(
                        "SELECT name, feature::text, ST_AsText(feature_geom), "
                        "ST_SRID(feature_geom) "
                        "FROM features ORDER BY name"
                    )
                )
        finally:
            await store.close()

    rows = run(scenario())
    assert [tuple(r) for r in rows] == [
        ("a", '{"type": "Point", "coordinates": [8, 51]}', "POINT(8 51)", 4326),
        ("b", '{"k": [1, 2]}', None, None),
    ]


def test_values_the_database_cannot_compute_are_client_errors(pg_url: str, tmp_path: Path) -> None:
    c = make_client(tmp_path, db=pg_url)
    try:
        c.create("Things", thing("T", properties={"big": 1e300}))
        resp = c.get("Things?$filter=properties/big mul 1e300 mul 1e300 gt 1")
        assert resp.status_code == 400
        assert "cannot be evaluated" in resp.json()["message"]
    finally:
        c.close()

    async def direct() -> None:
        store = PostgresStore(pg_url, REGISTRY)
        await store.open()
        try:
            async with store.reader() as r:
                division = r.scalar(sa.text("SELECT 1 / 0"))
                with pytest.raises(BadRequest):
                    await division
        finally:
            await store.close()

    run(direct())


def test_an_expression_index_on_a_json_path_is_used(pg_url: str) -> None:
    """The documented way to index a JSON path: README, 'Production'."""
    from citytwin.planner.reads import ReadPlanner
    from citytwin.query.parser import parse_query
    from citytwin.query.path import parse_path

    store = PostgresStore(pg_url, REGISTRY)
    planner = ReadPlanner(REGISTRY, store.tables, store.dialect, default_top=100, max_top=1000)
    target = planner.resolve(parse_path("Things", REGISTRY))
    page = planner.page(target, parse_query([("$filter", "properties/owner eq 'city'")]))
    sql, params = store.dialect.compile(page.statement)

    async def explain() -> str:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute("CREATE INDEX things_owner ON things ((properties #>> '{owner}'))")
            await conn.execute("SET enable_seqscan = off")
            rows = await conn.fetch(f"EXPLAIN {sql}", *params)
            return "\n".join(r[0] for r in rows)
        finally:
            await conn.close()

    assert "things_owner" in run(explain())


def test_times_keep_every_microsecond_through_the_write_connections(pg_url: str) -> None:
    """Writes encode and decode times themselves (``_time_to_wire``): the database
    must see, and both kinds of connection read back, exactly the instants given."""
    times = [
        datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # before the wire's epoch
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))),  # 12:00 UTC
        datetime(2026, 3, 1, 12, 0),  # no zone: UTC
    ]
    texts = [
        "2026-03-01 12:00:00.123456+00",
        "1999-12-31 23:59:59.999999+00",
        "0001-01-01 00:00:00+00",
        "9999-12-31 23:59:59.999999+00",
        "2026-03-01 12:00:00+00",
        "2026-03-01 12:00:00+00",
    ]

    async def body() -> None:
        store = PostgresStore(pg_url, REGISTRY)
        await store.open()
        try:
            async with store.writer() as w:
                await w.conn.execute("SET TIME ZONE 'UTC'")
                for t, text in zip(times, texts, strict=True):
                    assert await w.conn.fetchval("SELECT $1::timestamptz::text", t) == text
                    utc = t if t.tzinfo else t.replace(tzinfo=UTC)
                    assert await w.conn.fetchval("SELECT $1::timestamptz", t) == utc
                    assert await w.conn.fetchval("SELECT $1::timestamptz[]", [t]) == [utc]
                ends = await w.conn.fetch(
                    "SELECT 'infinity'::timestamptz, '-infinity'::timestamptz"
                )
                assert tuple(ends[0]) == (
                    datetime.max.replace(tzinfo=UTC),
                    datetime.min.replace(tzinfo=UTC),
                )
                await w.conn.execute("RESET TIME ZONE")
            async with store.connection(read=True) as conn:
                read = [await conn.fetchval("SELECT $1::text::timestamptz", x) for x in texts]
            assert read == [t if t.tzinfo else t.replace(tzinfo=UTC) for t in times]
        finally:
            await store.close()

    run(body())
