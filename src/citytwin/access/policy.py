"""What a principal may read and write, as SQL conditions on an entity's table alias.

Ownership (docs/security.md): an organisation owns its Things and everything under
them: Locations (also those it created), HistoricalLocations, Datastreams,
MultiDatastreams, their Observations, TaskingCapabilities and their Tasks. Open data is
marked by ``"openData": true`` in the properties of a Thing (all its Datastreams) or of
one Datastream or MultiDatastream; only the owner can write those properties. A stream
with ``"personal": true`` in its properties is never open data and is readable only by
its organisation's operators (and admins), and by a household key of its Thing.

Sensors, ObservedProperties and Actuators are a shared catalogue: any key of an
organisation reads them, anonymous requests and household keys those in use by a stream
(or TaskingCapability) they may read.
FeaturesOfInterest are readable to the organisation that created them and wherever an
Observation of them is readable.

Conditions are ``None`` where nothing is hidden (admins); every value in them is a
bound parameter.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from citytwin.access import Principal, Role
from citytwin.model import EntityType, Registry
from citytwin.planner.dialect import Dialect, Sql, param
from citytwin.planner.tables import Tables

OPEN = "openData"
PERSONAL = "personal"
STREAMS = ("Datastream", "MultiDatastream")
CATALOGUE = frozenset({"Sensor", "ObservedProperty", "Actuator"})
# entity types whose rows carry the creating organisation
ORG_COLUMN = frozenset({"Thing", "Location", "FeatureOfInterest"})
# the entity each owned type belongs to, through a to-one navigation
PARENT = {
    "HistoricalLocation": "Thing",
    "Datastream": "Thing",
    "MultiDatastream": "Thing",
    "TaskingCapability": "Thing",
    "Task": "TaskingCapability",
}


class Policy:
    """Read and write conditions for one principal (never an admin: admins see all)."""

    def __init__(
        self, principal: Principal, registry: Registry, tables: Tables, dialect: Dialect
    ) -> None:
        assert principal.role is not Role.ADMIN
        self.principal = principal
        self.registry = registry
        self.tables = tables
        self.dialect = dialect
        self._names = itertools.count(1)

    # --- helpers --------------------------------------------------------------------------
    def _alias(self, et: EntityType) -> Any:
        return self.tables.alias(self.tables.of(et), f"ac{next(self._names)}")

    def _flag(self, table: Any, name: str) -> Sql:
        """True when the entity's properties hold ``name: true``; never NULL."""
        return self.dialect.coalesce_bool(self.dialect.json_bool(table.c.properties, (name,)))

    def _own(self, table: Any) -> Sql:
        org = self.principal.organisation
        if org is None or self.principal.role in (Role.PUBLIC, Role.HOUSEHOLD):
            return sa.false()
        return table.c.org_id == param(org)  # type: ignore[no-any-return]

    def _household(self, table: Any) -> Sql:
        """The one Thing of a household key (nothing for other principals)."""
        thing = self.principal.thing
        if thing is None or self.principal.role is not Role.HOUSEHOLD:
            return sa.false()
        return table.c.id == param(thing)  # type: ignore[no-any-return]

    def _related(
        self, et: EntityType, table: Any, nav_name: str, cond: Callable[[EntityType, Any], Sql]
    ) -> Sql:
        """Rows of ``table`` related over ``nav_name`` to at least one row meeting ``cond``."""
        nav = et.navigation(nav_name)
        if nav is None:
            return sa.false()
        target = self.registry.target(nav)
        other = self._alias(target)
        where = cond(target, other)
        if nav.fk is not None:
            inner = sa.select(other.c[target.id_column]).where(where)
            return table.c[nav.fk].in_(inner)  # type: ignore[no-any-return]
        if nav.reverse_fk is not None:
            inner = sa.select(other.c[nav.reverse_fk]).where(where)
            return table.c[et.id_column].in_(inner)  # type: ignore[no-any-return]
        assert nav.link is not None
        name, src, dst = nav.link
        link = self.tables.alias(self.tables.link[name], f"ac{next(self._names)}")
        inner = (
            sa.select(link.c[src])
            .select_from(link.join(other, other.c[target.id_column] == link.c[dst]))
            .where(where)
        )
        return table.c[et.id_column].in_(inner)  # type: ignore[no-any-return]

    def _any_related(
        self,
        et: EntityType,
        table: Any,
        names: tuple[str, ...],
        cond: Callable[[EntityType, Any], Sql],
    ) -> Sql:
        found = [self._related(et, table, n, cond) for n in names if et.navigation(n) is not None]
        return sa.or_(*found) if found else sa.false()

    # --- reading --------------------------------------------------------------------------
    def visible(self, et: EntityType, table: Any) -> Sql | None:
        """The rows of ``et`` in ``table`` (an alias of its table) the principal may read."""
        name = et.name
        role = self.principal.role
        if name == "Thing":
            return sa.or_(self._own(table), self._household(table), self._flag(table, OPEN))
        if name in STREAMS:
            return self._visible_stream(et, table)
        if name == "Location":
            return sa.or_(self._own(table), self._related(et, table, "Things", self._visible))
        if name in PARENT:
            return self._related(et, table, PARENT[name], self._visible)
        if name == "Observation":
            return self._any_related(et, table, STREAMS, self._visible)
        if name == "FeatureOfInterest":
            return sa.or_(self._own(table), self._related(et, table, "Observations", self._visible))
        if name in CATALOGUE:
            if role not in (Role.PUBLIC, Role.HOUSEHOLD):
                return None
            users = (
                ("TaskingCapabilities",)
                if name == "Actuator"
                else (
                    "Datastreams",
                    "MultiDatastreams",
                )
            )
            return self._any_related(et, table, users, self._visible)
        return sa.false()  # types of plugins that do not say: admins only

    def _visible(self, et: EntityType, table: Any) -> Sql:
        cond = self.visible(et, table)
        return sa.true() if cond is None else cond

    def _visible_stream(self, et: EntityType, table: Any) -> Sql:
        personal = self._flag(table, PERSONAL)
        own = self._related(et, table, "Thing", lambda _, t: self._own(t))
        open_thing = self._related(et, table, "Thing", lambda _, t: self._flag(t, OPEN))
        shared = sa.and_(sa.not_(personal), sa.or_(self._flag(table, OPEN), open_thing))
        if self.principal.role is Role.OPERATOR:
            return sa.or_(own, shared)
        if self.principal.role is Role.READER:
            return sa.or_(sa.and_(own, sa.not_(personal)), shared)
        if self.principal.role is Role.HOUSEHOLD:  # its own meter, personal data included
            mine = self._related(et, table, "Thing", lambda _, t: self._household(t))
            return sa.or_(mine, shared)
        return shared

    # --- writing --------------------------------------------------------------------------
    def writable(self, et: EntityType, table: Any) -> Sql | None:
        """The rows of ``et`` the principal may change or delete."""
        if self.principal.role is not Role.OPERATOR:
            return sa.false()
        name = et.name
        if name in ORG_COLUMN:
            return self._own(table)
        if name in PARENT:
            return self._related(et, table, PARENT[name], self._writable)
        if name == "Observation":
            return self._any_related(et, table, STREAMS, self._writable)
        if name in CATALOGUE:
            return None
        return sa.false()

    def _writable(self, et: EntityType, table: Any) -> Sql:
        cond = self.writable(et, table)
        return sa.true() if cond is None else cond
