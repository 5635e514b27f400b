"""The audit log: who changed what, when, and through which transport (docs/security.md).

Every write transaction of the service is opened by :meth:`Service.transaction
<citytwin.service.Service.transaction>` with an :class:`Origin` (the principal and the
transport); just before it commits, :meth:`Unit.close <citytwin.service.unit.Unit.close>`
writes the transaction's :class:`Action` rows into ``audit_log`` in that same
transaction, so a rolled-back write leaves no row and no row exists without its write.

One row per entity type and operation of a transaction, not one per entity: a bulk
insert of 50,000 Observations is one row with their count and their Datastreams. The
ids of the entities are kept up to :data:`MAX_IDS` a row.
"""

from __future__ import annotations

import getpass
import itertools
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from citytwin.access import Principal, Role
from citytwin.errors import BadRequest
from citytwin.planner.dialect import param
from citytwin.planner.tables import ColumnTypes
from citytwin.storage.base import Storage, Writer

if TYPE_CHECKING:
    from citytwin.bus import ChangeEvent

__all__ = ["Action", "Origin", "entries", "prune", "record"]

MAX_IDS = 100  # ids kept in one row; the count is always exact
OPERATIONS = {"created": "create", "updated": "update", "deleted": "delete"}
# how a write reached the service
TRANSPORTS = ("http", "batch", "mqtt", "cli", "tasking", "system")


@dataclass(frozen=True)
class Origin:
    """Who writes, and through which transport (one of :data:`TRANSPORTS`)."""

    principal: Principal
    transport: str


def cli_origin() -> Origin:
    """A command run on the server with the database's own credentials."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container)
        user = "unknown"
    return Origin(Principal(f"cli:{user}", role=Role.ADMIN), "cli")


@dataclass
class Action:
    """One audit row: ``operation`` on ``count`` entities of ``entity``."""

    operation: str  # create, update, delete; or a domain operation (install, store, prune)
    entity: str  # an entity type, or what else was written ("layer", "package")
    ids: list[int] = field(default_factory=list)
    count: int = 0
    detail: dict[str, Any] | None = None


_KIND_AND_TYPE = operator.attrgetter("kind", "entity_type")


def actions(
    events: Iterable[ChangeEvent], streams: Mapping[str, set[int]], extra: Sequence[Action]
) -> list[Action]:
    """The rows of a transaction's change events (grouped by type and operation) and of
    its ``extra`` actions; ``streams`` names the Datastreams (and MultiDatastreams) of
    the Observations it wrote, by operation."""
    grouped: dict[tuple[str, str], Action] = {}
    # by runs of one kind and type: a bulk insert's thousands of events are one run
    for (kind, entity_type), run in itertools.groupby(events, _KIND_AND_TYPE):
        key = (OPERATIONS[kind], entity_type)
        action = grouped.get(key)
        if action is None:
            action = grouped[key] = Action(*key)
        same = list(run)
        action.count += len(same)
        room = MAX_IDS - len(action.ids)
        if room > 0:
            action.ids.extend(e.entity_id for e in same[:room])
    for (operation, entity), action in grouped.items():
        if entity == "Observation" and streams.get(operation):
            action.detail = {"Datastreams": sorted(streams[operation])}
    return [*grouped.values(), *extra]


@cache
def audit_table(types: ColumnTypes) -> sa.Table:
    """``audit_log`` in a backend's column types (its migrations create it)."""
    return sa.Table(
        "audit_log",
        sa.MetaData(),
        sa.Column("id", types.id, primary_key=True),
        sa.Column("at", types.time, nullable=False),
        sa.Column("identity", types.text, nullable=False),
        sa.Column("org_id", types.id),
        sa.Column("organisation", types.text),
        sa.Column("role", types.text, nullable=False),
        sa.Column("transport", types.text, nullable=False),
        sa.Column("operation", types.text, nullable=False),
        sa.Column("entity", types.text, nullable=False),
        sa.Column("ids", types.text),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("detail", types.text),
    )


COLUMNS = (
    "at",
    "identity",
    "org_id",
    "organisation",
    "role",
    "transport",
    "operation",
    "entity",
    "ids",
    "count",
    "detail",
)


@cache
def _insert(types: ColumnTypes) -> Any:
    """The insert statement, built once (its compiled form is cached by identity)."""
    t = audit_table(types)
    return sa.insert(t).values({c: sa.bindparam(c, type_=t.c[c].type) for c in COLUMNS})


async def record(
    w: Writer, storage: Storage, origin: Origin, done: Sequence[Action], now: datetime
) -> None:
    """Write the rows of ``done`` in the open transaction of ``w``."""
    if not done:
        return
    who = origin.principal
    at = storage.dialect.time_value(now)
    rows = [
        {
            "at": at,
            "identity": who.identity,
            "org_id": who.organisation,
            "organisation": who.organisation_name,
            "role": who.role.value,
            "transport": origin.transport,
            "operation": a.operation,
            "entity": a.entity,
            "ids": orjson.dumps(a.ids).decode() if a.ids else None,
            "count": a.count,
            "detail": orjson.dumps(a.detail).decode() if a.detail else None,
        }
        for a in done
    ]
    await w.execute_many(_insert(storage.dialect.column_types), rows)


_RELATIVE = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time ("2026-11-22", "2026-11-22T10:00:00Z"; UTC if it names no
    offset) or a time ago ("30m", "12h", "7d")."""
    text = text.strip()
    match = _RELATIVE.fullmatch(text)
    if match is not None:
        ago = timedelta(**{_UNITS[match[2]]: int(match[1])})
        return (now or datetime.now(UTC)) - ago
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(
            f"{text!r} is not a time: give an ISO 8601 time (2026-11-22T10:00:00Z) or a "
            f"time ago (30m, 12h, 7d)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


async def entries(
    storage: Storage,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    who: str | None = None,
    entity: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest ``limit`` rows matching the filters, newest first. ``who`` is an
    identity ("key:3", "anonymous", "cli:alice") or an organisation's name."""
    t = audit_table(storage.dialect.column_types)
    dialect = storage.dialect
    where = []
    if since is not None:
        where.append(t.c.at >= dialect.time_param(since))
    if until is not None:
        where.append(t.c.at < dialect.time_param(until))
    if who is not None:
        where.append(sa.or_(t.c.identity == param(who), t.c.organisation == param(who)))
    if entity is not None:
        where.append(sa.func.lower(t.c.entity) == param(entity.lower()))
    stmt = sa.select(t).where(*where).order_by(t.c.at.desc(), t.c.id.desc()).limit(limit)
    async with storage.reader() as r:
        rows = await r.fetch(stmt)
    fmt = storage.format_time
    return [
        {
            "id": row["id"],
            "time": fmt(row["at"]),
            "identity": row["identity"],
            "organisationId": row["org_id"],
            "organisation": row["organisation"],
            "role": row["role"],
            "transport": row["transport"],
            "operation": row["operation"],
            "entity": row["entity"],
            "count": row["count"],
            "ids": orjson.loads(row["ids"]) if row["ids"] else [],
            "detail": orjson.loads(row["detail"]) if row["detail"] else None,
        }
        for row in rows
    ]


async def prune(storage: Storage, days: int, origin: Origin, now: datetime | None = None) -> int:
    """Delete the rows older than ``days`` days (0: keep every row); return how many.
    The pruning itself is recorded, in the same transaction."""
    if days <= 0:
        return 0
    now = now or datetime.now(UTC)
    t = audit_table(storage.dialect.column_types)
    cutoff = storage.dialect.time_param(now - timedelta(days=days))
    async with storage.writer() as w:
        deleted = await w.execute(sa.delete(t).where(t.c.at < cutoff))
        if deleted:
            done = Action("prune", "audit_log", count=deleted, detail={"olderThanDays": days})
            await record(w, storage, origin, [done], now)
    return deleted
