"""The storage protocol every backend implements.

The service hands a backend SQLAlchemy statements (built by the planner with the
backend's dialect) and plain Python values; the backend runs them without blocking the
event loop. Writes run in a transaction: all of a request is stored or none of it.
Values given to writes are ``str``/``int``/``float``/``bool``/``None``, ``datetime``
(stored as the backend's time type), shapely geometries and :class:`Json` wrappers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from citytwin.planner.dialect import Dialect
from citytwin.planner.tables import Tables


class Row(Protocol):
    """A result row, readable by column label or by position."""

    def __getitem__(self, key: str | int, /) -> Any: ...

    def keys(self) -> Any: ...


@dataclass(frozen=True)
class Json:
    """A value stored as JSON text (so that a JSON string is not confused with text)."""

    value: Any


class SetupNeeded(Exception):
    """A write needs something made outside any transaction first (a new partition of the
    Observations table). Its transaction is rolled back; await :meth:`setup`, then run
    the write again."""

    def __init__(self, reason: str, setup: Callable[[], Awaitable[None]]) -> None:
        super().__init__(reason)
        self.setup = setup


class Reader(Protocol):
    """``params`` name the values of a template statement's named parameters."""

    async def fetch(
        self, stmt: sa.Executable, params: Mapping[str, Any] | None = None
    ) -> list[Row]: ...

    async def scalar(self, stmt: sa.Executable, params: Mapping[str, Any] | None = None) -> Any: ...

    async def estimate_count(self, stmt: sa.Executable) -> int | None:
        """The database's estimate of the rows ``stmt`` returns, or None if it has none."""
        ...


class Writer(Reader, Protocol):
    # True: one bulk insert may still be under way while the caller prepares the next
    # rows, and calls meanwhile wait their turn on the connection
    overlaps_writes: bool

    async def insert(self, table: str, values: Mapping[str, Any]) -> int:
        """Insert one row and return its id (link tables return 0)."""
        ...

    async def insert_many(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert rows with identical columns in one batch (COPY, executemany)."""
        ...

    async def reserve_ids(self, table: str, n: int) -> list[int]:
        """``n`` new ids for rows of ``table`` that this transaction will insert."""
        ...

    def held(self, table: str, ids: Iterable[int]) -> None:
        """Rows of ``table`` that a query of the caller has locked against deletion until
        the transaction ends (FOR KEY SHARE): Observations about to be inserted that refer
        to them need not lock them again."""
        ...

    async def update(self, table: str, row_id: int, values: Mapping[str, Any]) -> None: ...

    async def execute(self, stmt: sa.Executable, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement; return the number of rows it changed."""
        ...

    async def execute_many(self, stmt: sa.Executable, params: Sequence[Mapping[str, Any]]) -> None:
        """Run a template statement once per parameter set, in one round trip."""
        ...

    async def execute_returning(self, stmt: sa.Executable) -> list[Row]:
        """Run a writing statement with a RETURNING clause; return the rows it returns."""
        ...


class Storage(Protocol):
    @property
    def dialect(self) -> Dialect: ...

    @property
    def tables(self) -> Tables: ...

    @property
    def url(self) -> str: ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def reader(self) -> AbstractAsyncContextManager[Reader]: ...

    def writer(self) -> AbstractAsyncContextManager[Writer]: ...

    def decode_time(self, value: Any) -> datetime | None: ...

    @property
    def format_time(self) -> Callable[[Any], str]:
        """Writes a stored (non-null) time as ISO 8601 UTC text, without decoding it first."""
        ...

    def stored_row(self, values: Mapping[str, Any]) -> Row:
        """Written values as a read would return them (to answer without reading back)."""
        ...

    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the names of those applied."""
        ...

    async def schema_version(self) -> int: ...
