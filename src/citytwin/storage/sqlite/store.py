"""The embedded store: one SQLite file in WAL mode.

One writer connection on its own thread takes every write transaction (``BEGIN
IMMEDIATE``, so a request is stored whole or not at all); a pool of reader connections
on other threads serves reads concurrently from WAL snapshots. The event loop never
waits on SQLite. ``synchronous=FULL`` by default: an acknowledged write survives a power
loss, not only a crash of the process.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import orjson
import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry

from citytwin.errors import Unavailable
from citytwin.model import Kind, Registry
from citytwin.model.values import format_micros, from_micros, to_micros
from citytwin.planner.sqlite import SqliteDialect, rtree_name
from citytwin.planner.tables import Tables
from citytwin.storage.base import Json, Row
from citytwin.storage.sqlite.functions import register

R = TypeVar("R")


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_micros(value)
    if isinstance(value, Json):
        return orjson.dumps(value.value).decode()
    if isinstance(value, BaseGeometry):
        return shapely.to_wkb(value)
    return value


def path_from_url(url: str) -> str:
    if not url.startswith("sqlite:"):
        raise ValueError(f"not a SQLite URL: {url}")
    rest = url[len("sqlite:") :]
    if rest.startswith("///"):
        return rest[3:] or ":memory:"
    if rest.startswith("//"):
        return rest[2:]
    return rest


class _Connection:
    """A connection and the executor whose threads use it."""

    def __init__(
        self, conn: sqlite3.Connection, executor: ThreadPoolExecutor, store: SqliteStore
    ) -> None:
        self.conn = conn
        self.executor = executor
        self.store = store
        self.begun = False

    async def run(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, fn, self.conn)
        except sqlite3.OperationalError as exc:
            if str(exc).startswith(("database is locked", "disk I/O error", "unable to open")):
                raise Unavailable(f"the database cannot be used just now: {exc}") from None
            raise

    def _sql(
        self, stmt: sa.Executable, params: Mapping[str, Any] | None = None
    ) -> tuple[str, list[Any]]:
        return self.store.dialect.compile(stmt, params)  # type: ignore[arg-type]


class _Reader(_Connection):
    begin_sql = "BEGIN"

    def _begin(self, conn: sqlite3.Connection) -> None:
        if not self.begun:
            conn.execute(self.begin_sql)
            self.begun = True

    async def fetch(
        self, stmt: sa.Executable, params: Mapping[str, Any] | None = None
    ) -> list[Row]:
        def run(conn: sqlite3.Connection) -> list[Row]:
            self._begin(conn)
            sql, args = self._sql(stmt, params)
            return conn.execute(sql, args).fetchall()

        return await self.run(run)

    async def scalar(self, stmt: sa.Executable, params: Mapping[str, Any] | None = None) -> Any:
        rows = await self.fetch(stmt, params)
        return rows[0][0] if rows else None

    async def estimate_count(self, stmt: sa.Executable) -> int | None:
        return None  # SQLite keeps no row estimates worth quoting


class _Writer(_Reader):
    overlaps_writes = False  # rows are made first, then written in one executemany
    begin_sql = "BEGIN IMMEDIATE"

    async def insert(self, table: str, values: Mapping[str, Any]) -> int:
        def run(conn: sqlite3.Connection) -> int:
            self._begin(conn)
            sql, names = self.store.insert_sql(table, tuple(values))
            cur = conn.execute(sql, [_encode(values[n]) for n in names])
            row_id = cur.lastrowid or 0
            self.store.index_geometry(conn, table, row_id, values, replace=False)
            return row_id

        return await self.run(run)

    async def insert_many(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return

        def run(conn: sqlite3.Connection) -> None:
            self._begin(conn)
            sql, names = self.store.insert_sql(table, tuple(rows[0]))
            conn.executemany(sql, ([_encode(r[n]) for n in names] for r in rows))
            for r in rows:
                if "id" in r:
                    self.store.index_geometry(conn, table, r["id"], r, replace=False)

        await self.run(run)

    def held(self, table: str, ids: Iterable[int]) -> None:
        """Nothing to remember: the transaction holds the whole database (BEGIN IMMEDIATE)."""

    async def reserve_ids(self, table: str, n: int) -> list[int]:
        """The next ``n`` ids; safe because this is the only writer (AUTOINCREMENT)."""

        def run(conn: sqlite3.Connection) -> list[int]:
            self._begin(conn)
            row = conn.execute(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0), "
                f"coalesce((SELECT max(id) FROM {table}), 0))",
                (table,),
            ).fetchone()
            first = int(row[0]) + 1
            return list(range(first, first + n))

        return await self.run(run)

    async def update(self, table: str, row_id: int, values: Mapping[str, Any]) -> None:
        if not values:
            return

        def run(conn: sqlite3.Connection) -> None:
            self._begin(conn)
            t = self.store.tables.metadata.tables[table]
            stmt = (
                sa.update(t)
                .where(t.c.id == row_id)
                .values({k: _encode(v) for k, v in values.items()})
            )
            sql, params = self._sql(stmt)
            conn.execute(sql, params)
            self.store.index_geometry(conn, table, row_id, values, replace=True)

        await self.run(run)

    async def execute(self, stmt: sa.Executable, params: Mapping[str, Any] | None = None) -> int:
        def run(conn: sqlite3.Connection) -> int:
            self._begin(conn)
            sql, args = self._sql(stmt, params)
            return conn.execute(sql, args).rowcount

        return await self.run(run)

    async def execute_many(self, stmt: sa.Executable, params: Sequence[Mapping[str, Any]]) -> None:
        if not params:
            return

        def run(conn: sqlite3.Connection) -> None:
            self._begin(conn)
            sql, args = self.store.dialect.compile_many(stmt, params)  # type: ignore[arg-type]
            conn.executemany(sql, args)

        await self.run(run)

    async def execute_returning(self, stmt: sa.Executable) -> list[Row]:
        return await self.fetch(stmt)  # the writer's fetch runs in its write transaction


class SqliteStore:
    """The embedded storage backend."""

    def __init__(
        self, url: str, registry: Registry, *, readers: int = 4, synchronous: str = "FULL"
    ) -> None:
        self.url = url
        self.path = path_from_url(url)
        self.registry = registry
        self.dialect = SqliteDialect()
        self.tables = Tables(registry, self.dialect.column_types)
        self.readers = readers
        self.synchronous = synchronous
        self._insert_sql: dict[tuple[str, tuple[str, ...]], tuple[str, list[str]]] = {}
        self._geometry_columns = self._find_geometry_columns()
        self._writer: _Writer | None = None
        self._read_pool: asyncio.Queue[sqlite3.Connection] | None = None
        self._read_executor: ThreadPoolExecutor | None = None
        self._write_executor: ThreadPoolExecutor | None = None
        self._write_lock = asyncio.Lock()
        self._all: list[sqlite3.Connection] = []

    def _find_geometry_columns(self) -> dict[str, list[tuple[str, str]]]:
        found: dict[str, list[tuple[str, str]]] = {}
        for et in self.registry:
            for prop in et.properties:
                if prop.kind is Kind.GEOMETRY:
                    found.setdefault(et.table, []).append((prop.geom, rtree_name(et, prop)))
        return found

    # --- connections ----------------------------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, cached_statements=512
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=10000")
        register(conn)
        return conn

    async def open(self) -> None:
        self._write_executor = ThreadPoolExecutor(1, thread_name_prefix="citytwin-sqlite-w")
        self._read_executor = ThreadPoolExecutor(
            self.readers, thread_name_prefix="citytwin-sqlite-r"
        )
        writer = self.connect()
        self._all.append(writer)
        self._writer = _Writer(writer, self._write_executor, self)
        self._read_pool = asyncio.Queue()
        for _ in range(self.readers):
            conn = self.connect()
            self._all.append(conn)
            self._read_pool.put_nowait(conn)

    async def close(self) -> None:
        for conn in self._all:
            conn.close()
        self._all.clear()
        for ex in (self._read_executor, self._write_executor):
            if ex is not None:
                ex.shutdown(wait=True)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[_Reader]:
        assert self._read_pool is not None and self._read_executor is not None
        conn = await self._read_pool.get()
        reader = _Reader(conn, self._read_executor, self)
        try:
            yield reader
        finally:
            if reader.begun:
                await reader.run(lambda c: c.execute("COMMIT"))
            self._read_pool.put_nowait(conn)

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[_Writer]:
        assert self._writer is not None
        async with self._write_lock:
            w = self._writer
            w.begun = False
            try:
                yield w
            except BaseException:
                if w.begun:
                    await w.run(lambda c: c.execute("ROLLBACK"))
                raise
            else:
                if w.begun:
                    await w.run(lambda c: c.execute("COMMIT"))
            finally:
                w.begun = False

    def decode_time(self, value: Any) -> datetime | None:
        return None if value is None else from_micros(value)

    @property
    def format_time(self) -> Callable[[Any], str]:
        return format_micros

    def stored_row(self, values: Mapping[str, Any]) -> Row:
        return {k: _encode(v) for k, v in values.items()}

    # --- writing helpers --------------------------------------------------------------------
    def insert_sql(self, table: str, columns: tuple[str, ...]) -> tuple[str, list[str]]:
        key = (table, columns)
        hit = self._insert_sql.get(key)
        if hit is None:
            t = self.tables.metadata.tables[table]
            stmt = sa.insert(t).values({c: sa.bindparam(c) for c in columns})
            compiled = stmt.compile(dialect=self.dialect.sa_dialect)
            hit = (compiled.string, list(compiled.positiontup or []))
            self._insert_sql[key] = hit
        return hit

    def index_geometry(
        self,
        conn: sqlite3.Connection,
        table: str,
        row_id: int,
        values: Mapping[str, Any],
        *,
        replace: bool,
    ) -> None:
        for column, rtree in self._geometry_columns.get(table, ()):
            if column not in values:
                continue
            if replace:
                conn.execute(f"DELETE FROM {rtree} WHERE id = ?", (row_id,))
            geom = values[column]
            if isinstance(geom, BaseGeometry) and not geom.is_empty:
                minx, miny, maxx, maxy = geom.bounds
                conn.execute(
                    f"INSERT INTO {rtree} (id, minx, maxx, miny, maxy) VALUES (?, ?, ?, ?, ?)",
                    (row_id, minx, maxx, miny, maxy),
                )

    # --- schema -------------------------------------------------------------------------------
    @staticmethod
    def migrations() -> list[tuple[int, str, str]]:
        folder = resources.files("citytwin.storage.sqlite").joinpath("migrations")
        found = []
        for entry in folder.iterdir():
            name = entry.name
            if name.endswith(".sql"):
                found.append((int(name.split("_", 1)[0]), name, entry.read_text("utf-8")))
        return sorted(found)

    async def schema_version(self) -> int:
        conn = self.connect()
        try:
            return self._version(conn)
        finally:
            conn.close()

    @staticmethod
    def _version(conn: sqlite3.Connection) -> int:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    async def migrate(self) -> list[str]:
        conn = self.connect()
        applied = []
        try:
            current = self._version(conn)
            known = self.migrations()
            newest = known[-1][0] if known else 0
            if current > newest:
                raise RuntimeError(
                    f"database {self.path} has schema version {current}, newer than this "
                    f"citytwin knows ({newest}); upgrade citytwin"
                )
            for version, name, sql in known:
                if version <= current:
                    continue
                now = datetime.now(UTC).isoformat()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _split_sql(sql):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) "
                        "VALUES (?, ?, ?)",
                        (version, name, now),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                applied.append(name)
        finally:
            conn.close()
        return applied


def _split_sql(script: str) -> list[str]:
    """Statements of a migration script, keeping trigger bodies whole."""
    statements: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--") and not buf.strip():
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements
