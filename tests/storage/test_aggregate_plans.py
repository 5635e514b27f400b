"""The aggregation statement reads only its interval: the (datastream, time) index on
both backends, and on PostgreSQL only the interval's monthly partitions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from citytwin.planner.aggregate import Aggregation, statement
from citytwin.storage.postgres.partitions import create_sql, name_of
from citytwin.storage.postgres.store import PostgresStore
from citytwin.storage.sqlite.store import SqliteStore
from tests.support import REGISTRY

MARCH = Aggregation(
    7, datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC), 3_600_000_000, ("avg",)
)


def test_postgres_reads_only_the_intervals_partition_by_index(pg_url: str) -> None:
    store = PostgresStore(pg_url, REGISTRY)
    sql, params = store.dialect.compile(statement(REGISTRY, store.tables, store.dialect, MARCH))

    async def explain() -> str:
        conn = await asyncpg.connect(pg_url)
        try:
            for month in ((2024, 2), (2024, 3), (2024, 4)):
                for ddl in create_sql(month):
                    await conn.execute(ddl)
            await conn.execute("SET enable_seqscan = off")
            rows = await conn.fetch(f"EXPLAIN {sql}", *params)
            return "\n".join(r[0] for r in rows)
        finally:
            await conn.close()

    plan = asyncio.run(explain())
    assert name_of((2024, 3)) in plan
    assert name_of((2024, 2)) not in plan
    assert name_of((2024, 4)) not in plan
    assert "Index" in plan
    assert "datastream_id = " in plan


def test_sqlite_uses_the_datastream_time_index(tmp_path: Path) -> None:
    store = SqliteStore(f"sqlite:///{tmp_path}/db/test.db", REGISTRY, readers=1)
    asyncio.run(store.migrate())
    sql, params = store.dialect.compile(statement(REGISTRY, store.tables, store.dialect, MARCH))
    conn = store.connect()
    try:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    finally:
        conn.close()
    plan = "\n".join(str(r[3]) for r in rows)
    assert (
        "USING INDEX observations_datastream_time "
        "(datastream_id=? AND phenomenon_time_start>? AND phenomenon_time_start<?)" in plan
    )
