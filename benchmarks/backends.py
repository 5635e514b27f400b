"""Direct access to the benchmark database: create it, load it, and the raw baselines.

Each backend writes rows exactly as citytwin's store does (same table, same columns, same
encodings: ``timestamptz`` on PostgreSQL, integer microseconds on SQLite) and times the
hand-written equivalent of each measured request, so that the server is compared with
the database it runs on, in the same run.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from benchmarks.dataset import RESULT_FLOAT, YEAR_END, YEAR_START, micros_to_datetime
from benchmarks.server import process_cpu_seconds
from citytwin.model.values import to_micros

# the columns citytwin fills for a numeric Observation without resultTime, FoI given or
# generated; the others (result_string, result_json, parameters, ...) stay NULL
COLUMNS = (
    "phenomenon_time_start",
    "phenomenon_time_end",
    "result_type",
    "result_number",
    "datastream_id",
    "feature_id",
)

# Rebuilds the per-Datastream summary (see recompute_summary in citytwin/service/rules.py)
# in one statement that both PostgreSQL and SQLite run: counts and time spans per
# Datastream, and its latest Observation by (start desc, end desc, id asc).
RECOMPUTE_SUMMARY = """
UPDATE datastreams SET
    observation_count = s.n,
    phenomenon_time_start = s.p_start,
    phenomenon_time_end = s.p_end,
    result_time_start = s.r_start,
    result_time_end = s.r_end,
    last_observation_id = l.id,
    last_observation_start = l.p_start,
    last_observation_end = l.p_end
FROM (
    SELECT datastream_id, count(*) AS n,
           min(phenomenon_time_start) AS p_start, max(phenomenon_time_end) AS p_end,
           min(result_time) AS r_start, max(result_time) AS r_end
    FROM observations GROUP BY datastream_id
) AS s, (
    SELECT datastream_id, id, p_start, p_end FROM (
        SELECT datastream_id, id, phenomenon_time_start AS p_start,
               phenomenon_time_end AS p_end,
               row_number() OVER (
                   PARTITION BY datastream_id
                   ORDER BY phenomenon_time_start DESC, phenomenon_time_end DESC, id ASC
               ) AS rn
        FROM observations
    ) AS ranked WHERE rn = 1
) AS l
WHERE s.datastream_id = datastreams.id AND l.datastream_id = datastreams.id
"""

# The hand-written SQL for each measured request (names as in measure.READS), with the
# parameters :thing (a Thing's name), :threshold, :ds (a Datastream id), :t1 and :t2.
_OBS = (
    "o.id, o.phenomenon_time_start, o.phenomenon_time_end, o.result_time, o.result_type, "
    "o.result_number, o.result_string, o.result_json, o.result_quality, o.valid_time_start, "
    "o.valid_time_end, o.parameters, o.datastream_id, o.feature_id"
)
QUERIES: dict[str, str] = {
    "top100": f"SELECT {_OBS} FROM observations o ORDER BY o.id LIMIT 100",
    "time_range": (
        f"SELECT {_OBS} FROM observations o WHERE o.datastream_id = :ds "
        "AND o.phenomenon_time_start >= :t1 AND o.phenomenon_time_start < :t2 "
        "ORDER BY o.phenomenon_time_start, o.phenomenon_time_end, o.id LIMIT 1000"
    ),
    "count": "SELECT count(*) FROM observations",
    "relation_filter": (
        f"SELECT {_OBS}, d.name AS datastream_name FROM observations o "
        "JOIN datastreams d ON d.id = o.datastream_id JOIN things t ON t.id = d.thing_id "
        "WHERE t.name = :thing AND o.result_number > :threshold ORDER BY o.id LIMIT 100"
    ),
}
# "latest value of every Datastream" without the maintained summary: one index probe per
# Datastream for its newest row
_LATEST_COLUMNS = (
    "d.id AS ds_id, d.name, d.description, d.unit_of_measurement, d.observation_type, "
    f"d.phenomenon_time_start AS ds_start, d.phenomenon_time_end AS ds_end, d.thing_id, {_OBS}"
)
_NEWEST = (
    "FROM observations x WHERE x.datastream_id = d.id "
    "ORDER BY x.phenomenon_time_start DESC, x.phenomenon_time_end DESC, x.id LIMIT 1"
)
LATEST = {
    "postgresql": (
        f"SELECT {_LATEST_COLUMNS} FROM datastreams d "
        f"CROSS JOIN LATERAL (SELECT * {_NEWEST}) o ORDER BY d.id LIMIT 1000"
    ),
    "sqlite": (
        f"SELECT {_LATEST_COLUMNS} FROM datastreams d "
        f"JOIN observations o ON o.id = (SELECT x.id {_NEWEST}) ORDER BY d.id LIMIT 1000"
    ),
}
# hourly means of one month (:m1 to :m2) of one Datastream, numeric results only
_BUCKETED = (
    "avg(result_number) AS avg FROM observations WHERE datastream_id = :ds "
    "AND phenomenon_time_start >= :m1 AND phenomenon_time_start < :m2 "
    "AND result_type IN (1, 2) GROUP BY b ORDER BY b"
)
AGGREGATE = {
    "postgresql": (
        f"SELECT date_bin(interval '1 hour', phenomenon_time_start, :m1) AS b, {_BUCKETED}"
    ),
    "sqlite": (
        f"SELECT :m1 + (phenomenon_time_start - :m1) / 3600000000 * 3600000000 AS b, {_BUCKETED}"
    ),
}
_PLACEHOLDER = re.compile(r":([a-z_][a-z0-9_]*)")

Row = tuple[Any, ...]


class RawDatabase(Protocol):
    """What the runner needs of a backend."""

    kind: str
    url: str

    async def reset(self) -> None: ...
    async def migrate(self) -> list[str]: ...
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def prepare(self) -> None: ...
    def cpu_seconds(self) -> float | None:
        """CPU time that the database's own server processes spent on this database so
        far, where they run on this machine; None where there are none (SQLite works
        inside the server) or they cannot be seen."""

    def row(self, ds_id: int, feature_id: int, micros: int, value: float) -> Row:
        """An Observation row as citytwin writes it (time: microseconds since 1970)."""
        ...

    async def fetch(self, sql: str) -> list[Row]: ...
    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None: ...
    async def features(self) -> dict[int, int]: ...
    async def load(self, rows: Iterable[Row]) -> None: ...
    async def recompute_summary(self) -> None: ...
    async def analyze(self) -> None: ...
    async def insert_rate(
        self, clients: int, seconds: float, make_row: Callable[[int], Row]
    ) -> tuple[int, float]: ...
    async def bulk_insert(self, batches: Sequence[Sequence[Row]]) -> float: ...
    async def query(self, name: str, params: dict[str, Any]) -> float: ...
    async def describe(self) -> dict[str, Any]: ...
    async def table_size(self) -> dict[str, Any]: ...


def database_for(url: str) -> RawDatabase:
    if url.startswith("sqlite:"):
        return SqliteDatabase(url)
    if url.startswith(("postgresql:", "postgres:", "postgresql+asyncpg:")):
        return PostgresDatabase(url)
    raise ValueError(f"not a sqlite:///path or postgresql://... URL: {url}")


async def _migrate(url: str) -> list[str]:
    """What ``citytwin db migrate --db URL`` does."""
    from citytwin.plugins.manager import build_registry, build_storage, plugin_manager
    from citytwin.settings import load_settings

    pm = plugin_manager()
    storage: Any = build_storage(pm, build_registry(pm), load_settings({"db": url}, environ={}))
    applied: list[str] = await storage.migrate()
    return applied


def _placeholders(sql: str, style: str) -> tuple[str, list[str]]:
    """``:name`` placeholders to ``$n`` (asyncpg) or ``?`` (sqlite3), and their order."""
    order: list[str] = []

    def number(m: re.Match[str]) -> str:
        order.append(m.group(1))
        return f"${len(order)}" if style == "dollar" else "?"

    return _PLACEHOLDER.sub(number, sql), order


def _statements(style: str, kind: str) -> dict[str, tuple[str, list[str]]]:
    sql = {**QUERIES, "latest": LATEST[kind], "aggregate": AGGREGATE[kind]}
    return {name: _placeholders(text, style) for name, text in sql.items()}


# --- PostgreSQL -------------------------------------------------------------------------------


def _months() -> list[tuple[int, int]]:
    months = []
    y, m = YEAR_START.year, YEAR_START.month
    while (y, m) < (YEAR_END.year, YEAR_END.month):
        months.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


class PostgresDatabase:
    kind = "postgresql"

    def __init__(self, url: str) -> None:
        from citytwin.storage.postgres.store import dsn_from_url

        self.url = url
        self.dsn = dsn_from_url(url)
        parts = urlsplit(self.dsn)
        self.name = parts.path.lstrip("/")
        if not self.name or self.name in ("postgres", "template0", "template1"):
            raise ValueError(
                f"{url}: name a database of its own for the benchmark (it is dropped and "
                "created anew), e.g. postgresql://postgres@127.0.0.1/citytwin_bench"
            )
        self.admin_dsn = urlunsplit(parts._replace(path="/postgres"))
        self.conn: asyncpg.Connection | None = None
        self.read_conn: asyncpg.Connection | None = None
        self._sql = _statements("dollar", "postgresql")

    async def reset(self) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            quoted = '"' + self.name.replace('"', '""') + '"'
            await conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
            await conn.execute(f"CREATE DATABASE {quoted}")
        finally:
            await conn.close()

    async def migrate(self) -> list[str]:
        return await _migrate(self.url)

    async def open(self) -> None:
        self.conn = await asyncpg.connect(self.dsn)
        # the raw reads plan as citytwin's reads do: a generic plan of a prepared
        # statement over the partitioned Observations table can be twice as slow
        self.read_conn = await asyncpg.connect(self.dsn)
        await self.read_conn.execute("SET plan_cache_mode = force_custom_plan")

    def cpu_seconds(self) -> float | None:
        # the backends serving this database, by their process titles
        # ("postgres: 15/main: <user> <database> <client> <state>"), also those of the
        # benchmark's own connections, which poll while the server works
        backends = [
            pid
            for pid, title in _process_titles()
            if title.startswith("postgres: ") and f" {self.name} " in title
        ]
        return sum(process_cpu_seconds(pid) for pid in backends) if backends else None

    async def close(self) -> None:
        for conn in (self.conn, self.read_conn):
            if conn is not None:
                await conn.close()
        self.conn = self.read_conn = None

    def _c(self) -> asyncpg.Connection:
        assert self.conn is not None, "the database is not open"
        return self.conn

    async def prepare(self) -> None:
        """Monthly partitions for the loaded year (the server makes them on demand)."""
        from citytwin.storage.postgres.partitions import create_sql

        for month in _months():
            for sql in create_sql(month):
                await self._c().execute(sql)

    def row(self, ds_id: int, feature_id: int, micros: int, value: float) -> Row:
        t = micros_to_datetime(micros)
        return (t, t, RESULT_FLOAT, value, ds_id, feature_id)

    async def fetch(self, sql: str) -> list[Row]:
        return [tuple(r) for r in await self._c().fetch(sql)]

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        text, order = _placeholders(sql, "dollar")
        await self._c().execute(text, *[(params or {})[p] for p in order])

    async def features(self) -> dict[int, int]:
        rows = await self._c().fetch(
            "SELECT DISTINCT ON (datastream_id) datastream_id, feature_id FROM observations "
            "ORDER BY datastream_id, id"
        )
        return {r[0]: r[1] for r in rows}

    async def load(self, rows: Iterable[Row]) -> None:
        """COPY without checking what the rows refer to: they are consistent by
        construction. (The timed raw baselines check it, as the server does.)"""
        await self._c().copy_records_to_table("observations", records=rows, columns=COLUMNS)

    async def recompute_summary(self) -> None:
        await self._c().execute("SET work_mem = '256MB'")
        await self._c().execute(RECOMPUTE_SUMMARY)
        await self._c().execute("RESET work_mem")

    async def analyze(self) -> None:
        # VACUUM also sets the visibility map, as autovacuum would in a steady state
        await self._c().execute("VACUUM (ANALYZE) observations")
        await self._c().execute("VACUUM (ANALYZE)")

    async def insert_rate(
        self, clients: int, seconds: float, make_row: Callable[[int], Row]
    ) -> tuple[int, float]:
        sql = (
            f"INSERT INTO observations ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join(f'${i + 1}' for i in range(len(COLUMNS)))}) RETURNING id"
        )
        conns = [await asyncpg.connect(self.dsn) for _ in range(clients)]
        try:

            def insert(c: asyncpg.Connection) -> Callable[[int], Awaitable[Any]]:
                async def one(i: int) -> Any:
                    row = make_row(i)
                    async with c.transaction():
                        await _lock_references(c, [row])
                        return await c.fetchval(sql, *row)

                return one

            return await _timed_loops([insert(c) for c in conns], seconds)
        finally:
            for c in conns:
                await c.close()

    async def bulk_insert(self, batches: Sequence[Sequence[Row]]) -> float:
        conn = self._c()
        start = time.perf_counter()
        for batch in batches:  # one COPY, one transaction per batch, like one request
            async with conn.transaction():
                await _lock_references(conn, batch)
                await conn.copy_records_to_table("observations", records=batch, columns=COLUMNS)
        return time.perf_counter() - start

    async def query(self, name: str, params: dict[str, Any]) -> float:
        sql, order = self._sql[name]
        args = [params[p] for p in order]
        assert self.read_conn is not None, "the database is not open"
        start = time.perf_counter()
        await self.read_conn.fetch(sql, *args)
        return time.perf_counter() - start

    async def describe(self) -> dict[str, Any]:
        c = self._c()
        names = (
            "shared_buffers", "work_mem", "effective_cache_size", "maintenance_work_mem",
            "synchronous_commit", "fsync", "max_wal_size", "random_page_cost", "jit",
            "max_parallel_workers_per_gather",
        )  # fmt: skip
        settings = {n: await c.fetchval(f"SHOW {n}") for n in names}
        return {
            "server": "PostgreSQL " + str(await c.fetchval("SHOW server_version")),
            "postgis": await c.fetchval("SELECT postgis_lib_version()"),
            "settings": settings,
        }

    async def table_size(self) -> dict[str, Any]:
        c = self._c()
        return {
            "observations": await c.fetchval("SELECT count(*) FROM observations"),
            "datastreams": await c.fetchval("SELECT count(*) FROM datastreams"),
            "database_bytes": await c.fetchval("SELECT pg_database_size(current_database())"),
        }


# Observations have no foreign keys on PostgreSQL: what a new row refers to is locked and
# checked once per statement (storage/postgres/migrations/0006_ingest.sql); the raw
# baselines do the same work
_LOCK_REFERENCES = (
    "SELECT ARRAY(SELECT id FROM datastreams WHERE id = ANY($1::bigint[]) "
    "ORDER BY id FOR KEY SHARE), "
    "ARRAY(SELECT id FROM features WHERE id = ANY($2::bigint[]) ORDER BY id FOR KEY SHARE)"
)
_DS, _FEATURE = COLUMNS.index("datastream_id"), COLUMNS.index("feature_id")


async def _lock_references(conn: asyncpg.Connection, rows: Sequence[Row]) -> None:
    streams = sorted({r[_DS] for r in rows})
    features = sorted({r[_FEATURE] for r in rows})
    found = await conn.fetchrow(_LOCK_REFERENCES, streams, features)
    if len(found[0]) != len(streams) or len(found[1]) != len(features):
        raise RuntimeError("the raw rows refer to a Datastream or feature that does not exist")


async def _timed_loops(
    calls: Sequence[Callable[[int], Awaitable[Any]]], seconds: float
) -> tuple[int, float]:
    """Run each call in a loop on its own task for ``seconds``; count completions."""
    done = 0
    stop = time.perf_counter() + seconds
    counter = iter(range(1 << 62))

    async def loop(call: Callable[[int], Awaitable[Any]]) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await call(next(counter))
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in calls))
    return done, time.perf_counter() - start


# --- SQLite -----------------------------------------------------------------------------------


class SqliteDatabase:
    kind = "sqlite"

    def __init__(self, url: str, synchronous: str = "FULL") -> None:
        from citytwin.storage.sqlite.store import path_from_url

        self.url = url
        self.path = path_from_url(url)
        if self.path == ":memory:":
            raise ValueError("the benchmark needs a SQLite file: sqlite:///path/bench.db")
        self.synchronous = synchronous  # as the server's default setting
        self.conn: sqlite3.Connection | None = None
        self._sql = _statements("qmark", "sqlite")

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    async def reset(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with suppress(FileNotFoundError):
                Path(self.path + suffix).unlink()
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)

    async def migrate(self) -> list[str]:
        return await _migrate(self.url)

    async def open(self) -> None:
        self.conn = self.connect()

    def cpu_seconds(self) -> float | None:
        return None  # the database works inside the server's processes

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _c(self) -> sqlite3.Connection:
        assert self.conn is not None, "the database is not open"
        return self.conn

    async def prepare(self) -> None:
        return None

    def row(self, ds_id: int, feature_id: int, micros: int, value: float) -> Row:
        return (micros, micros, RESULT_FLOAT, value, ds_id, feature_id)

    async def fetch(self, sql: str) -> list[Row]:
        return [tuple(r) for r in self._c().execute(sql).fetchall()]

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        text, order = _placeholders(sql, "qmark")
        args = [_sqlite_value((params or {})[p]) for p in order]
        await asyncio.to_thread(self._c().execute, text, args)

    async def features(self) -> dict[int, int]:
        rows = self._c().execute(
            "SELECT datastream_id, feature_id FROM observations GROUP BY datastream_id "
            "HAVING id = min(id)"
        )
        return {r[0]: r[1] for r in rows}

    def _insert_sql(self) -> str:
        return (
            f"INSERT INTO observations ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in COLUMNS)})"
        )

    async def load(self, rows: Iterable[Row]) -> None:
        def run() -> None:
            conn = self._c()
            conn.execute("PRAGMA synchronous=OFF")  # the load is not what is measured
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(self._insert_sql(), rows)
            conn.execute("COMMIT")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")

        await asyncio.to_thread(run)

    async def recompute_summary(self) -> None:
        conn = self._c()
        await asyncio.to_thread(conn.execute, RECOMPUTE_SUMMARY)
        await asyncio.to_thread(conn.execute, "PRAGMA wal_checkpoint(TRUNCATE)")

    async def analyze(self) -> None:
        return None  # the server does not run ANALYZE on SQLite; neither does the baseline

    async def insert_rate(
        self, clients: int, seconds: float, make_row: Callable[[int], Row]
    ) -> tuple[int, float]:
        """One transaction per row on ``clients`` connections (threads). SQLite has one
        writer at a time; the clients take turns on a lock, as the server's requests do,
        instead of sleeping in SQLite's busy handler."""
        sql = self._insert_sql()
        lock = threading.Lock()
        conns = [self.connect() for _ in range(clients)]
        counts = [0] * clients
        counter = iter(range(1 << 62))
        stop = time.perf_counter() + seconds

        def loop(i: int) -> None:
            conn = conns[i]
            while time.perf_counter() < stop:
                with lock:
                    row = make_row(next(counter))
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute(sql, row)
                    conn.execute("COMMIT")
                counts[i] += 1

        start = time.perf_counter()
        try:
            await asyncio.gather(*(asyncio.to_thread(loop, i) for i in range(clients)))
        finally:
            for c in conns:
                c.close()
        return sum(counts), time.perf_counter() - start

    async def bulk_insert(self, batches: Sequence[Sequence[Row]]) -> float:
        sql = self._insert_sql()

        def run() -> float:
            conn = self._c()
            start = time.perf_counter()
            for batch in batches:  # one transaction per batch, like one request
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(sql, batch)
                conn.execute("COMMIT")
            return time.perf_counter() - start

        return await asyncio.to_thread(run)

    async def query(self, name: str, params: dict[str, Any]) -> float:
        sql, order = self._sql[name]
        args = [_sqlite_value(params[p]) for p in order]
        conn = self._c()
        start = time.perf_counter()
        conn.execute(sql, args).fetchall()
        return time.perf_counter() - start

    async def describe(self) -> dict[str, Any]:
        conn = self._c()
        return {
            "server": f"SQLite {sqlite3.sqlite_version}",
            "settings": {
                "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
                "synchronous": self.synchronous,
            },
        }

    async def table_size(self) -> dict[str, Any]:
        conn = self._c()
        return {
            "observations": conn.execute("SELECT count(*) FROM observations").fetchone()[0],
            "datastreams": conn.execute("SELECT count(*) FROM datastreams").fetchone()[0],
            "database_bytes": Path(self.path).stat().st_size,
        }


def _sqlite_value(value: Any) -> Any:
    return to_micros(value) if isinstance(value, datetime) else value


def _process_titles() -> Iterable[tuple[int, str]]:
    """The live processes of this machine with their command lines (Linux)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            yield int(entry.name), raw.replace(b"\0", b" ").decode(errors="replace").strip()
