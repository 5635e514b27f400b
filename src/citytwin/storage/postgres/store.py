"""PostgreSQL + PostGIS through two asyncpg connection pools, one for reads, one for writes.

Reads run in read-only REPEATABLE READ transactions (a page, its count and its
expansions see one snapshot); writes run in READ COMMITTED transactions and commit
before the request is answered. Bulk rows go through COPY. Several citytwin instances may
share one database: nothing here is cached that another instance could make stale,
except the set of Observation partitions, and creating one twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import operator
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, TypeVar

import asyncpg
import orjson
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry

from citytwin.errors import BadRequest, Busy, Conflict, Unavailable
from citytwin.model import Registry
from citytwin.model.values import format_utc
from citytwin.planner.postgres import Geometry, PostgresDialect, ewkb
from citytwin.planner.tables import Tables
from citytwin.storage.base import Json, Row, SetupNeeded
from citytwin.storage.postgres.partitions import TABLE as OBSERVATIONS
from citytwin.storage.postgres.partitions import Partitions

log = logging.getLogger("citytwin.storage.postgres")
R = TypeVar("R")

# What an Observation refers to, checked by the writer instead of foreign keys (see
# migration 0006): column -> (table, entity name for messages)
REFERENCES = {
    "datastream_id": ("datastreams", "Datastream"),
    "multi_datastream_id": ("multi_datastreams", "MultiDatastream"),
    "feature_id": ("features", "FeatureOfInterest"),
}


def _encode(value: Any) -> Any:
    if isinstance(value, Json):
        return orjson.dumps(value.value).decode()
    if isinstance(value, BaseGeometry):
        return ewkb(value)
    return value


def dsn_from_url(url: str) -> str:
    """asyncpg takes postgresql:// URLs; SQLAlchemy-style driver suffixes are dropped."""
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    """Released to the pool as is: citytwin leaves no session state behind (no LISTEN,
    no settings beyond those every connection gets when it is opened, transactions always
    closed), so the reset round trip is saved."""

    def get_reset_query(self) -> str:
        return ""


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "geometry",
        schema="public",
        encoder=lambda b: b,
        decoder=lambda b: b,
        format="binary",
    )


# timestamptz on the wire: microseconds since 2000-01-01 UTC (the binary format's own)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_INFINITY = 2**63 - 1


def _time_to_wire(value: datetime) -> tuple[int]:
    """A time as written: asyncpg's own encoder takes twice as long, which counted in
    every bulk insert (two times per Observation) and summary update (six per
    Datastream). Times without a zone are UTC, as everywhere in citytwin."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return ((value - _PG_EPOCH) // _MICROSECOND,)


def _time_from_wire(value: tuple[int]) -> datetime:
    micros = value[0]
    if micros >= _INFINITY:
        return datetime.max.replace(tzinfo=UTC)
    if micros <= -_INFINITY:
        return datetime.min.replace(tzinfo=UTC)
    return _PG_EPOCH + timedelta(microseconds=micros)


async def _init_write_connection(conn: asyncpg.Connection) -> None:
    """Writes send times through :func:`_time_to_wire`; the few times they read back
    come through :func:`_time_from_wire`, a little slower than asyncpg's own decoder,
    which reads keep."""
    await _init_connection(conn)
    await conn.set_type_codec(
        "timestamptz",
        schema="pg_catalog",
        encoder=_time_to_wire,
        decoder=_time_from_wire,
        format="tuple",
    )


async def _init_read_connection(conn: asyncpg.Connection) -> None:
    """Reads plan each statement for its own values. asyncpg prepares every statement,
    and after five runs PostgreSQL may keep a generic plan, which cannot prune the
    Observations partitions by the query's times: a 1,000-row time-range page at 10M
    Observations went from 11 to 21 ms. Writes keep cached plans, since each
    foreign-key check runs a cached query per row (planning it every time halved the
    bulk rate while Observations still had foreign keys; other tables have them)."""
    await _init_connection(conn)
    await conn.execute("SET plan_cache_mode = force_custom_plan")


async def _run(op: Callable[[], Awaitable[R]]) -> R:
    """Run a database call; database-side complaints about client input become 4xx."""
    try:
        return await op()
    except asyncpg.exceptions.DataError as exc:
        raise BadRequest(f"the request cannot be evaluated: {exc}") from None
    except asyncpg.exceptions.IntegrityConstraintViolationError as exc:
        raise Conflict(f"the change contradicts stored data: {exc}") from None
    except (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError) as exc:
        raise Busy(f"the database was busy with a conflicting change; retry ({exc})") from None
    except (
        OSError,
        asyncpg.exceptions.PostgresConnectionError,
        asyncpg.exceptions.ConnectionDoesNotExistError,
        asyncpg.exceptions.AdminShutdownError,
    ) as exc:
        raise Unavailable(f"the database cannot be reached: {exc}") from None


class _Reader:
    readonly = True

    def __init__(self, conn: asyncpg.Connection, store: PostgresStore) -> None:
        self.conn = conn
        self.store = store
        self.tx: Any = None
        # one operation at a time on the connection: a write may go on (a COPY) while the
        # next rows are prepared, and preparing them may need the database too
        self._busy = asyncio.Lock()

    async def _call(self, op: Callable[[], Awaitable[R]]) -> R:
        """Run ``op`` on the connection, in the transaction begun on first use."""
        async with self._busy:
            if self.tx is None:
                if self.readonly:
                    self.tx = self.conn.transaction(isolation="repeatable_read", readonly=True)
                else:
                    self.tx = self.conn.transaction()
                await _run(self.tx.start)
            return await _run(op)

    def _sql(
        self, stmt: sa.Executable, params: Mapping[str, Any] | None = None
    ) -> tuple[str, list[Any]]:
        return self.store.dialect.compile(stmt, params)  # type: ignore[arg-type]

    async def fetch(
        self, stmt: sa.Executable, params: Mapping[str, Any] | None = None
    ) -> list[Row]:
        sql, args = self._sql(stmt, params)
        rows: list[Row] = await self._call(lambda: self.conn.fetch(sql, *args))
        return rows

    async def scalar(self, stmt: sa.Executable, params: Mapping[str, Any] | None = None) -> Any:
        sql, args = self._sql(stmt, params)
        return await self._call(lambda: self.conn.fetchval(sql, *args))

    async def estimate_count(self, stmt: sa.Executable) -> int | None:
        """The planner's row estimate for a query, without running it."""
        sql, params = self._sql(stmt)
        plan = await self._call(lambda: self.conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *params))
        data = orjson.loads(plan) if isinstance(plan, str) else plan
        return int(data[0]["Plan"]["Plan Rows"])


class _Writer(_Reader):
    readonly = False
    overlaps_writes = True  # a bulk insert may go on while the next rows are prepared

    def __init__(self, conn: asyncpg.Connection, store: PostgresStore) -> None:
        super().__init__(conn, store)
        self.wrote = False  # holds locks that making a partition would wait for
        # rows that Observations refer to, locked by this transaction until it ends
        # (there are no savepoints that could give a lock up earlier)
        self._locked: dict[str, set[int]] = {column: set() for column in REFERENCES}

    def held(self, table: str, ids: Iterable[int]) -> None:
        ids = set(ids)
        for column, (target, _) in REFERENCES.items():
            if target == table:
                self._locked[column].update(ids)

    async def references(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Lock the Datastreams, MultiDatastreams and FeaturesOfInterest that Observations
        about to be written refer to (FOR KEY SHARE: a delete of one waits until this
        transaction ends, and then deletes its Observations too), and refuse any that
        does not exist, as a foreign key would. Each id is locked once a transaction."""
        if table != OBSERVATIONS:
            return
        wanted: list[tuple[str, list[int]]] = []
        for column, locked in self._locked.items():
            new: set[Any] = {r.get(column) for r in rows}
            new.discard(None)
            new.difference_update(locked)
            if new:
                wanted.append((column, sorted(new)))
        if not wanted:
            return
        sql = self.store.lock_sql(tuple(column for column, _ in wanted))
        found = await self._call(lambda: self.conn.fetchrow(sql, *(i for _, i in wanted)))
        for (column, ids), present in zip(wanted, found, strict=True):
            self._locked[column].update(present)
            if len(present) < len(ids):
                missing = sorted(set(ids) - set(present))
                name = REFERENCES[column][1]
                raise Conflict(
                    f"the change contradicts stored data: no {name} with id "
                    f"{', '.join(map(str, missing[:10]))}"
                )

    async def _partitions(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Make the Observations partitions ``rows`` need before they are written.

        A partition is made on a connection of its own, which waits for every open
        transaction that has written to Observations or to a table they refer to. So it
        is made here only while this transaction has written nothing; otherwise the
        transaction is given up and the write asked to set up first and run again.
        """
        if table != OBSERVATIONS:
            return
        partitions = self.store.partitions
        months = partitions.missing(rows)
        if not months:
            return
        if self.wrote:
            raise SetupNeeded(
                "new Observations partitions are needed",
                lambda: partitions.create_apart(months),
            )
        await partitions.create_apart(months)

    async def insert(self, table: str, values: Mapping[str, Any]) -> int:
        await self._partitions(table, [values])
        await self.references(table, [values])
        self.wrote = True
        sql, names = self.store.insert_sql(table, tuple(values))
        args = [_encode(values[n]) for n in names]
        if self.store.has_id(table):
            return int(await self._call(lambda: self.conn.fetchval(sql, *args)))
        await self._call(lambda: self.conn.execute(sql, *args))
        return 0

    async def insert_many(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        await self._partitions(table, rows)
        await self.references(table, rows)
        self.wrote = True
        columns = list(rows[0])
        encoded = self.store.encoded_columns(table)
        at = [i for i, c in enumerate(columns) if c in encoded]  # JSON and geometry
        get = operator.itemgetter(*columns)
        if len(columns) == 1:
            records = [(get(r),) for r in rows]
        elif not at:
            records = [get(r) for r in rows]
        else:
            records = []
            for r in rows:
                values = get(r)
                for i in at:
                    if values[i] is not None:  # mostly all are null: the row goes as it is
                        listed = list(values)
                        for j in at:
                            listed[j] = _encode(listed[j])
                        values = tuple(listed)
                        break
                records.append(values)
        await self._call(
            lambda: self.conn.copy_records_to_table(table, records=records, columns=columns)
        )

    async def reserve_ids(self, table: str, n: int) -> list[int]:
        seq = f"{table}_id_seq"
        rows = await self._call(
            lambda: self.conn.fetch(
                "SELECT nextval($1::regclass) FROM generate_series(1, $2)", seq, n
            )
        )
        return [r[0] for r in rows]

    async def update(self, table: str, row_id: int, values: Mapping[str, Any]) -> None:
        if not values:
            return
        await self._partitions(table, [values])
        await self.references(table, [values])
        t = self.store.tables.metadata.tables[table]
        stmt = (
            sa.update(t)
            .where(t.c.id == row_id)
            .values({k: sa.bindparam(k, _encode(v), type_=t.c[k].type) for k, v in values.items()})
        )
        await self.execute(stmt)

    async def execute(self, stmt: sa.Executable, params: Mapping[str, Any] | None = None) -> int:
        self.wrote = True
        sql, args = self._sql(stmt, params)
        status = await self._call(lambda: self.conn.execute(sql, *args))
        tail = str(status).rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def execute_many(self, stmt: sa.Executable, params: Sequence[Mapping[str, Any]]) -> None:
        if not params:
            return
        self.wrote = True
        sql, args = self.store.dialect.compile_many(stmt, params)  # type: ignore[arg-type]
        await self._call(lambda: self.conn.executemany(sql, args))

    async def execute_returning(self, stmt: sa.Executable) -> list[Row]:
        self.wrote = True
        return await self.fetch(stmt)


class PostgresStore:
    """The production storage backend."""

    def __init__(self, url: str, registry: Registry, *, pool_size: int = 10) -> None:
        self.url = url
        self.dsn = dsn_from_url(url)
        self.registry = registry
        self.dialect = PostgresDialect()
        self.tables = Tables(registry, self.dialect.column_types)
        self.pool_size = pool_size
        self.pool: asyncpg.Pool | None = None  # writes
        self.read_pool: asyncpg.Pool | None = None
        self.partitions = Partitions(self)
        self._insert_sql: dict[tuple[str, tuple[str, ...]], tuple[str, list[str]]] = {}
        self._lock_sql: dict[tuple[str, ...], str] = {}
        self._encoded: dict[str, frozenset[str]] = {}

    def encoded_columns(self, table: str) -> frozenset[str]:
        """Columns whose values need encoding for the driver (JSON, geometry)."""
        found = self._encoded.get(table)
        if found is None:
            t = self.tables.metadata.tables[table]
            found = self._encoded[table] = frozenset(
                c.name for c in t.c if isinstance(c.type, sa.JSON | Geometry)
            )
        return found

    def has_id(self, table: str) -> bool:
        return "id" in self.tables.metadata.tables[table].c

    async def open(self) -> None:
        self.pool = await self._pool(_init_write_connection)
        self.read_pool = await self._pool(_init_read_connection)
        await self.partitions.load()

    async def _pool(self, init: Callable[[asyncpg.Connection], Awaitable[None]]) -> asyncpg.Pool:
        try:
            return await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self.pool_size,
                init=init,
                connection_class=_Connection,
            )
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for pool in (self.pool, self.read_pool):
            if pool is not None:
                await pool.close()
        self.pool = self.read_pool = None

    @asynccontextmanager
    async def connection(self, *, read: bool = False) -> AsyncIterator[asyncpg.Connection]:
        pool = self.read_pool if read else self.pool
        assert pool is not None, "the store is not open"
        try:
            conn = await pool.acquire()
        except (OSError, asyncpg.exceptions.PostgresConnectionError) as exc:
            raise Unavailable(f"the database cannot be reached: {exc}") from None
        try:
            yield conn
        finally:
            await pool.release(conn)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[_Reader]:
        async with self.connection(read=True) as conn:
            r = _Reader(conn, self)
            try:
                yield r
            finally:
                if r.tx is not None:
                    await r.tx.rollback()  # read-only: nothing to keep

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[_Writer]:
        async with self.connection() as conn:
            w = _Writer(conn, self)
            try:
                yield w
            except BaseException:
                if w.tx is not None:
                    await w.tx.rollback()
                raise
            else:
                if w.tx is not None:
                    await w.tx.commit()

    def decode_time(self, value: Any) -> datetime | None:
        return value  # type: ignore[no-any-return]

    @property
    def format_time(self) -> Callable[[Any], str]:
        return format_utc

    def stored_row(self, values: Mapping[str, Any]) -> Row:
        return {k: _encode(v) for k, v in values.items()}

    def insert_sql(self, table: str, columns: tuple[str, ...]) -> tuple[str, list[str]]:
        key = (table, columns)
        hit = self._insert_sql.get(key)
        if hit is None:
            t = self.tables.metadata.tables[table]
            stmt: Any = sa.insert(t).values(
                {c: sa.bindparam(c, type_=t.c[c].type) for c in columns}
            )
            if self.has_id(table):
                stmt = stmt.returning(t.c.id)
            compiled = stmt.compile(dialect=self.dialect.sa_dialect)
            hit = (compiled.string, list(getattr(compiled, "positiontup", None) or []))
            self._insert_sql[key] = hit
        return hit

    def lock_sql(self, columns: tuple[str, ...]) -> str:
        """One statement that locks, in id order, the rows of the tables that ``columns``
        of Observations refer to, from one array of ids each, and returns the ids found."""
        sql = self._lock_sql.get(columns)
        if sql is None:
            parts = [
                f"ARRAY(SELECT id FROM {REFERENCES[c][0]} WHERE id = ANY(${i}::bigint[]) "
                "ORDER BY id FOR KEY SHARE)"
                for i, c in enumerate(columns, 1)
            ]
            sql = self._lock_sql[columns] = f"SELECT {', '.join(parts)}"
        return sql

    # --- schema ---------------------------------------------------------------------------
    @staticmethod
    def migrations() -> list[tuple[int, str, str]]:
        folder = resources.files("citytwin.storage.postgres").joinpath("migrations")
        found = []
        for entry in folder.iterdir():
            if entry.name.endswith(".sql"):
                found.append(
                    (int(entry.name.split("_", 1)[0]), entry.name, entry.read_text("utf-8"))
                )
        return sorted(found)

    async def _version(self, conn: asyncpg.Connection) -> int:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)"
        )
        return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))

    async def schema_version(self) -> int:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await self._version(conn)
        finally:
            await conn.close()

    async def migrate(self) -> list[str]:
        conn = await asyncpg.connect(self.dsn)
        applied = []
        try:
            # one migrator at a time, even with several instances starting together
            await conn.execute("SELECT pg_advisory_lock(hashtext('citytwin-migrate'))")
            current = await self._version(conn)
            known = self.migrations()
            newest = known[-1][0] if known else 0
            if current > newest:
                raise RuntimeError(
                    f"database has schema version {current}, newer than this citytwin knows "
                    f"({newest}); upgrade citytwin"
                )
            for version, name, sql in known:
                if version <= current:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) "
                        "VALUES ($1, $2, $3)",
                        version,
                        name,
                        datetime.now(UTC),
                    )
                applied.append(name)
        finally:
            await conn.close()
        return applied
