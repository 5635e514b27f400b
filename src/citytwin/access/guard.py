"""Checks on writes, inside the write transaction (a refused write stores nothing).

The service refuses writes of readers and anonymous requests before it starts; the
:class:`Guard` then checks each row a write stores against the principal's
organisation: a new Thing (Location, FeatureOfInterest) belongs to it, anything under a
Thing may only be created, changed or deleted under one of its own Things, and a
changed entity must be one the principal may write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from citytwin.access import Principal
from citytwin.access.policy import CATALOGUE, ORG_COLUMN, PARENT, STREAMS, Policy
from citytwin.errors import Forbidden
from citytwin.model import EntityType
from citytwin.planner.dialect import Sql, param
from citytwin.service.drafts import Draft
from citytwin.storage.base import Row

if TYPE_CHECKING:
    from citytwin.service.unit import Unit

ADMIN_ONLY_DELETES = CATALOGUE | {"FeatureOfInterest"}  # deleting them reaches every owner


def require_writer(principal: Principal) -> None:
    """Refuse a write of a principal whose role only reads."""
    if not principal.writes:
        raise Forbidden(f"writing needs the operator or admin role; {principal.describe()}")


class Guard:
    """The write checks of one principal; ``policy`` is None for admins."""

    def __init__(self, principal: Principal, policy: Policy | None) -> None:
        self.principal = principal
        self.policy = policy
        self._writable: set[tuple[str, int]] = set()  # checked once per transaction

    def visible(self, et: EntityType, table: Any) -> Sql | None:
        return None if self.policy is None else self.policy.visible(et, table)

    def writable(self, et: EntityType, table: Any) -> Sql | None:
        return None if self.policy is None else self.policy.writable(et, table)

    async def before_insert(
        self, unit: Unit, et: EntityType, draft: Draft, row: dict[str, Any]
    ) -> None:
        if et.name in ORG_COLUMN and row.get("org_id") is None:
            row["org_id"] = self.principal.organisation
        if self.policy is None:
            return
        require_writer(self.principal)
        await self._parents(unit, et, row)

    async def before_update(
        self,
        unit: Unit,
        et: EntityType,
        entity_id: int,
        draft: Draft,
        cols: Mapping[str, Any],
        current: Row,
    ) -> None:
        if self.policy is None:
            return
        require_writer(self.principal)
        await self.check(unit, et, [entity_id], "change")
        await self._parents(unit, et, cols)

    async def before_delete(self, unit: Unit, et: EntityType, entity_id: int) -> None:
        if self.policy is None:
            return
        require_writer(self.principal)
        if et.name in ADMIN_ONLY_DELETES:
            raise Forbidden(
                f"deleting a {et.name} deletes what every organisation relates to it; it "
                f"needs the admin role, and {self.principal.describe()}"
            )
        await self.check(unit, et, [entity_id], "delete")

    async def _parents(self, unit: Unit, et: EntityType, cols: Mapping[str, Any]) -> None:
        """A new or changed row may only hang under entities the principal writes."""
        names = STREAMS if et.name == "Observation" else (PARENT.get(et.name),)
        for name in names:
            nav = et.navigation(name) if name else None
            if nav is None or nav.fk is None or cols.get(nav.fk) is None:
                continue
            target = unit.registry.target(nav)
            await self.check(unit, target, [int(cols[nav.fk])], "add to")

    async def check(self, unit: Unit, et: EntityType, ids: Iterable[int], doing: str) -> None:
        """Refuse unless the principal may write every one of ``ids``."""
        assert self.policy is not None
        wanted = {i for i in ids if (et.name, i) not in self._writable}
        if not wanted:
            return
        t = unit.tables.alias(unit.tables.of(et), "gw")
        cond = self.policy.writable(et, t)
        where = [t.c[et.id_column].in_([param(i) for i in sorted(wanted)])]
        if cond is not None:
            where.append(cond)
        rows = await unit.w.fetch(sa.select(t.c[et.id_column]).where(*where))
        allowed = {int(r[0]) for r in rows}
        refused = sorted(wanted - allowed)
        if refused:
            raise Forbidden(
                f"cannot {doing} {et.name} {refused[0]}: it belongs to another organisation "
                f"than the principal's ({self.principal.describe()}); an operator writes only "
                f"its own organisation's data"
            )
        self._writable |= {(et.name, i) for i in allowed}
