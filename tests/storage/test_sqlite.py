"""The embedded SQLite store on its own."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
import shapely
import sqlalchemy as sa

from citytwin.access.keys import keys_table, organisations_table
from citytwin.domains.packages import packages_table
from citytwin.model.values import to_micros
from citytwin.planner.tables import EXTRA_COLUMNS
from citytwin.plugins.manager import build_registry, plugin_manager
from citytwin.storage.base import Json
from citytwin.storage.sqlite.store import SqliteStore, path_from_url

R = TypeVar("R")
REGISTRY = build_registry(plugin_manager(entry_points=False))


def run(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(f"sqlite:///{tmp_path}/db/test.db", REGISTRY, readers=2)
    run(s.migrate())
    return s


def test_url_forms() -> None:
    assert path_from_url("sqlite:///data/x.db") == "data/x.db"
    assert path_from_url("sqlite:////abs/x.db") == "/abs/x.db"
    assert path_from_url("sqlite:///") == ":memory:"


def test_migrations_apply_once_and_match_the_planner_tables(tmp_path: Path) -> None:
    s = SqliteStore(f"sqlite:///{tmp_path}/fresh.db", REGISTRY)
    assert run(s.schema_version()) == 0
    assert run(s.migrate()) == [
        "0001_sensing_core.sql",
        "0002_datastream_summary.sql",
        "0003_multidatastreams.sql",
        "0004_tasking.sql",
        "0005_domain_packages.sql",
        "0006_access.sql",
        "0007_audit.sql",
    ]
    assert run(s.migrate()) == []
    assert run(s.schema_version()) == 7
    conn = sqlite3.connect(s.path)
    for name, table in s.tables.metadata.tables.items():
        stored = {row[1] for row in conn.execute(f"PRAGMA table_info({name})")}
        assert stored == {c.name for c in table.columns}, name
    assert set(EXTRA_COLUMNS) <= set(s.tables.metadata.tables)
    packages = packages_table(s.dialect.column_types)
    stored = {row[1] for row in conn.execute("PRAGMA table_info(domain_packages)")}
    assert stored == {c.name for c in packages.columns}
    for access in (organisations_table, keys_table):
        table = access(s.dialect.column_types)
        stored = {row[1] for row in conn.execute(f"PRAGMA table_info({table.name})")}
        assert stored == {c.name for c in table.columns}
    conn.close()


def test_a_database_from_a_newer_version_is_refused(store: SqliteStore) -> None:
    conn = sqlite3.connect(store.path)
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 'x')")
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this citytwin"):
        run(store.migrate())


def test_connections_use_wal_full_sync_and_foreign_keys(store: SqliteStore) -> None:
    conn = store.connect()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    conn.close()


def _thing(name: str = "T") -> dict[str, Any]:
    return {"name": name, "description": "d", "properties": Json({"a": 1})}


def test_failed_write_rolls_back_everything(store: SqliteStore) -> None:
    async def scenario() -> int:
        await store.open()
        try:

            async def write_both() -> None:
                async with store.writer() as w:
                    await w.insert("things", _thing("kept?"))
                    await w.insert("things", {"name": None, "description": "d"})

            with pytest.raises(sqlite3.IntegrityError):
                await write_both()
            async with store.reader() as r:
                return int(await r.scalar(sa.text("SELECT count(*) FROM things")))
        finally:
            await store.close()

    assert run(scenario()) == 0


def test_readers_see_committed_data_and_are_not_blocked_by_an_open_write(
    store: SqliteStore,
) -> None:
    async def scenario() -> tuple[int, int]:
        await store.open()
        try:
            async with store.writer() as w:
                await w.insert("things", _thing())
            async with store.writer() as w:
                await w.insert("things", _thing("uncommitted"))
                async with store.reader() as r:  # while the write transaction is open
                    during = await r.scalar(sa.text("SELECT count(*) FROM things"))
            async with store.reader() as r:
                after = await r.scalar(sa.text("SELECT count(*) FROM things"))
            return during, after
        finally:
            await store.close()

    assert run(scenario()) == (1, 2)


def test_the_event_loop_keeps_running_while_sqlite_works(store: SqliteStore) -> None:
    """The writer thread waits for an event only the event loop can set."""
    release = threading.Event()

    async def scenario() -> bool:
        await store.open()
        try:
            async with store.writer() as w:
                blocked = asyncio.ensure_future(w.run(lambda conn: release.wait(10)))
                await asyncio.sleep(0)
                release.set()  # runs only if the loop was not blocked by the writer
                return await blocked
        finally:
            await store.close()

    assert run(scenario()) is True


def test_geometry_is_indexed_and_unindexed_on_cascade(store: SqliteStore) -> None:
    async def scenario() -> tuple[int, int, int]:
        await store.open()
        try:
            async with store.writer() as w:
                tid = await w.insert("things", _thing())
                sid = await w.insert(
                    "sensors",
                    {
                        "name": "s",
                        "description": "d",
                        "encoding_type": "text/html",
                        "metadata": Json("x"),
                    },
                )
                oid = await w.insert(
                    "observed_properties", {"name": "o", "definition": "x", "description": "d"}
                )
                await w.insert(
                    "datastreams",
                    {
                        "name": "ds",
                        "description": "d",
                        "unit_of_measurement": Json({}),
                        "observation_type": "x",
                        "observed_area": Json({}),
                        "observed_area_geom": shapely.box(8, 51, 9, 52),
                        "thing_id": tid,
                        "sensor_id": sid,
                        "observed_property_id": oid,
                    },
                )
            async with store.reader() as r:
                before = await r.scalar(
                    sa.text("SELECT count(*) FROM datastreams_observed_area_rtree")
                )
                box = await r.fetch(sa.text("SELECT * FROM datastreams_observed_area_rtree"))
            async with store.writer() as w:
                await w.execute(sa.text("DELETE FROM things"))
            async with store.reader() as r:
                after = await r.scalar(
                    sa.text("SELECT count(*) FROM datastreams_observed_area_rtree")
                )
            return before, after, int(box[0]["minx"])
        finally:
            await store.close()

    assert run(scenario()) == (1, 0, 8)


def test_times_are_stored_as_utc_microseconds(store: SqliteStore) -> None:
    from datetime import UTC, datetime

    t = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)

    async def scenario() -> Any:
        await store.open()
        try:
            async with store.writer() as w:
                tid = await w.insert("things", _thing())
                await w.insert("historical_locations", {"time": t, "thing_id": tid})
            async with store.reader() as r:
                raw = await r.scalar(sa.text("SELECT time FROM historical_locations"))
            return raw, store.decode_time(raw)
        finally:
            await store.close()

    raw, decoded = run(scenario())
    assert raw == to_micros(t)
    assert decoded == t


def _plan_of(store: SqliteStore, path: str, query: list[tuple[str, str]]) -> str:
    from datetime import UTC, datetime

    from citytwin.planner.reads import ReadPlanner
    from citytwin.query.parser import parse_query
    from citytwin.query.path import parse_path

    planner = ReadPlanner(
        REGISTRY,
        store.tables,
        store.dialect,
        default_top=100,
        max_top=1000,
        now=datetime(2024, 1, 1, tzinfo=UTC),
    )
    target = planner.resolve(parse_path(path, REGISTRY))
    sql, params = store.dialect.compile(planner.page(target, parse_query(query)).statement)
    conn = store.connect()
    try:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    finally:
        conn.close()
    return "\n".join(str(r[3]) for r in rows)


def test_time_range_page_of_one_datastream_is_an_index_range_in_time_order(
    store: SqliteStore,
) -> None:
    plan = _plan_of(
        store,
        "Datastreams(7)/Observations",
        [
            (
                "$filter",
                "phenomenonTime ge 2024-01-01T00:00:00Z and phenomenonTime lt 2024-02-01T00:00:00Z",
            ),
            ("$orderby", "phenomenonTime"),
        ],
    )
    assert (
        "USING INDEX observations_datastream_time (datastream_id=? AND "
        "phenomenon_time_start>? AND phenomenon_time_start<?)" in plan
    )
    assert "TEMP B-TREE" not in plan  # the index already gives the order


def test_spatial_filter_starts_from_the_rtree(store: SqliteStore) -> None:
    plan = _plan_of(
        store,
        "Locations",
        [("$filter", "st_intersects(location, geography'POLYGON((8 51,9 51,9 52,8 52,8 51))')")],
    )
    assert "VIRTUAL TABLE INDEX" in plan
    assert "locations_location_rtree" in plan


def test_relation_filter_starts_from_the_related_table(store: SqliteStore) -> None:
    plan = _plan_of(store, "Observations", [("$filter", "Datastream/Thing/name eq 'x'")])
    assert "things_name (name=?)" in plan
    assert "datastreams_thing (thing_id=?)" in plan
    assert "observations_datastream_time (datastream_id=?)" in plan
