"""Monthly partitions of the Observations table, created when needed.

Making a partition waits for every open transaction that has written to Observations;
reads go on. So partitions for the current time (last month to two months ahead) are
made at start-up, and a write of older or later data (a backfill) has its month made
before it writes, on a connection of its own and committed at once: two instances
backfilling the same month at the same moment never wait on each other's transactions
(see ``SetupNeeded`` for a write that needs a new month after it has written). Making a
partition that another instance just made is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from citytwin.errors import Busy, Unavailable

if TYPE_CHECKING:
    from citytwin.storage.postgres.store import PostgresStore

log = logging.getLogger("citytwin.storage.postgres")

TABLE = "observations"
TIME = "phenomenon_time_start"
FIRST_YEAR, END_YEAR = 2000, 2100  # outside: the catch-all partitions of the migration
LOCK_WAIT = "5s"  # how long a partition made apart waits for open writing transactions
_NAME = re.compile(r"^observations_y(\d{4})m(\d{2})$")

Month = tuple[int, int]
ATTACHED = (
    "SELECT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE c.relname = $1)"
)


def month_of(t: datetime) -> Month | None:
    t = t.astimezone(UTC)
    if FIRST_YEAR <= t.year < END_YEAR:
        return t.year, t.month
    return None


def _next(m: Month) -> Month:
    return (m[0] + 1, 1) if m[1] == 12 else (m[0], m[1] + 1)


def _prev(m: Month) -> Month:
    return (m[0] - 1, 12) if m[1] == 1 else (m[0], m[1] - 1)


def name_of(m: Month) -> str:
    return f"{TABLE}_y{m[0]:04d}m{m[1]:02d}"


def create_sql(m: Month) -> list[str]:
    """The month's table, made on its own and then attached (a check of the empty table):
    attaching takes no lock that waits for readers of Observations, as CREATE TABLE ...
    PARTITION OF would."""
    start = f"{m[0]:04d}-{m[1]:02d}-01 00:00:00+00"
    n = _next(m)
    end = f"{n[0]:04d}-{n[1]:02d}-01 00:00:00+00"
    name = name_of(m)
    return [
        f"CREATE TABLE IF NOT EXISTS {name} (LIKE {TABLE} INCLUDING DEFAULTS)",
        f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM ('{start}') TO ('{end}')",
    ]


class Partitions:
    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.known: set[Month] = set()
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Learn the existing partitions and make those for the current months."""
        async with self.store.connection() as conn:
            rows = await conn.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1",
                TABLE,
            )
        for r in rows:
            m = _NAME.match(r["relname"])
            if m:
                self.known.add((int(m.group(1)), int(m.group(2))))
        now = month_of(datetime.now(UTC))
        if now is not None:
            months = {_prev(now), now, _next(now), _next(_next(now))}
            await self.create_apart(months - self.known)

    def missing(self, rows: Iterable[Mapping[str, Any]]) -> set[Month]:
        times = [t for row in rows if isinstance(t := row.get(TIME), datetime)]
        if not times:
            return set()
        # the usual case, checked without a month per row: every month from the earliest
        # time to the latest exists
        try:
            first, last = month_of(min(times)), month_of(max(times))
        except TypeError:  # times with and without a zone do not compare
            first = last = None
        if first is not None and last is not None:
            month = first
            while month in self.known:
                if month == last:
                    return set()
                month = _next(month)
        months = set()
        for t in times:
            m = month_of(t)
            if m is not None and m not in self.known:
                months.add(m)
        return months

    async def create_apart(self, months: set[Month]) -> None:
        """Create ``months`` on a connection of their own, each committed at once.

        Raises Busy when a transaction that wrote to the tables involved stayed open
        longer than LOCK_WAIT.
        """
        async with self._lock:
            todo = sorted(months - self.known)
            if not todo:
                return
            try:
                conn = await asyncpg.connect(self.store.dsn, timeout=10)
            except (OSError, asyncpg.exceptions.PostgresConnectionError) as exc:
                raise Unavailable(f"the database cannot be reached: {exc}") from None
            try:
                await conn.execute(f"SET lock_timeout = '{LOCK_WAIT}'")
                for m in todo:
                    if await conn.fetchval(ATTACHED, name_of(m)):
                        self.known.add(m)  # made by another instance: no lock needed
                        continue
                    try:
                        async with conn.transaction():
                            for sql in create_sql(m):
                                await conn.execute(sql)
                    except asyncpg.exceptions.LockNotAvailableError:
                        raise Busy(
                            "a new month of Observations could not be prepared while other "
                            "writes went on; retry"
                        ) from None
                    except (
                        asyncpg.exceptions.DuplicateTableError,
                        asyncpg.exceptions.DuplicateObjectError,
                        asyncpg.exceptions.UniqueViolationError,
                    ):
                        if not await conn.fetchval(ATTACHED, name_of(m)):
                            raise
                        # another instance made it a moment ago
                    else:
                        log.info("created Observations partition %04d-%02d", *m)
                    self.known.add(m)
            finally:
                await conn.close()
