"""Checks that plugins run inside write transactions, for their own entity types.

The sensing core's rules live in :mod:`citytwin.service.rules`; a plugin that adds entity
types adds its rules through the ``citytwin_write_rules`` hook. Each method may raise
:class:`citytwin.errors.InvalidEntity`; the transaction is then rolled back whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from citytwin.model import EntityType
from citytwin.service.drafts import Draft
from citytwin.storage.base import Row

if TYPE_CHECKING:
    from citytwin.service.unit import Unit


class WriteRule(Protocol):
    """A plugin's checks. A rule may name the entity types it checks in a class
    attribute ``entity_types`` (a frozenset of names); the bulk insert of Observations
    then leaves it out for them."""

    async def before_insert(
        self, unit: Unit, et: EntityType, draft: Draft, row: dict[str, Any]
    ) -> None:
        """Check (and complete) the columns of a new entity before it is stored."""

    async def before_update(
        self,
        unit: Unit,
        et: EntityType,
        entity_id: int,
        draft: Draft,
        cols: Mapping[str, Any],
        current: Row,
    ) -> None:
        """Check a change (``cols``: the new columns) to an entity before it is stored."""
