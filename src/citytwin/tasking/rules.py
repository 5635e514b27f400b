"""The rules of Tasking Core inside write transactions.

* A TaskingCapability's taskingParameters must be a SWE Common DataRecord
  (:mod:`citytwin.tasking.swe`), and a driver it names in ``properties.driver`` must exist
  and accept its configuration.
* A Task's taskingParameters must fit its capability's record; it gets the server time
  as creationTime and starts with status ``created``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from citytwin.errors import InvalidEntity
from citytwin.model import EntityType
from citytwin.service.drafts import Draft
from citytwin.storage.base import Row
from citytwin.tasking.drivers import TaskDriver
from citytwin.tasking.swe import check_values, parse_record

if TYPE_CHECKING:
    from citytwin.service.unit import Unit


def driver_config(properties: Any) -> Mapping[str, Any] | None:
    """The driver configuration in a capability's properties, if it names one."""
    if not isinstance(properties, Mapping) or "driver" not in properties:
        return None
    config = properties["driver"]
    if not isinstance(config, Mapping):
        raise ValueError('driver must be an object like {"name": "mqtt", "topic": "..."}')
    return config


class TaskingRules:
    entity_types = frozenset({"TaskingCapability", "Task"})  # what it checks (WriteRule)

    def __init__(self, drivers: Mapping[str, TaskDriver]) -> None:
        self.drivers = drivers

    async def before_insert(
        self, unit: Unit, et: EntityType, draft: Draft, row: dict[str, Any]
    ) -> None:
        if et.name == "TaskingCapability":
            self._check_capability(draft, draft.values)
        elif et.name == "Task":
            row["creation_time"] = unit.now
            row["status"] = "created"
            await self._check_task(
                unit, draft, draft.values["taskingParameters"], row.get("tasking_capability_id")
            )

    async def before_update(
        self,
        unit: Unit,
        et: EntityType,
        entity_id: int,
        draft: Draft,
        cols: Mapping[str, Any],
        current: Row,
    ) -> None:
        if et.name == "TaskingCapability":
            self._check_capability(draft, draft.values)
        elif et.name == "Task" and (
            {"taskingParameters", "TaskingCapability"} & (set(draft.values) | set(draft.one))
        ):
            params = draft.values.get("taskingParameters", _json(current["tasking_parameters"]))
            capability = cols.get("tasking_capability_id", current["tasking_capability_id"])
            await self._check_task(unit, draft, params, capability)

    def _check_capability(self, draft: Draft, values: Mapping[str, Any]) -> None:
        if "taskingParameters" in values:
            try:
                parse_record(values["taskingParameters"])
            except ValueError as exc:
                raise InvalidEntity(f"{draft.where}.taskingParameters: {exc}") from None
        if "properties" in values:
            where = f"{draft.where}.properties.driver"
            try:
                config = driver_config(values["properties"])
                if config is None:
                    return
                name = config.get("name")
                driver = self.drivers.get(name) if isinstance(name, str) else None
                if driver is None:
                    raise ValueError(
                        f"unknown driver {name!r}; known are {', '.join(sorted(self.drivers))}"
                    )
                driver.check(config)
            except ValueError as exc:
                raise InvalidEntity(f"{where}: {exc}") from None

    async def _check_task(self, unit: Unit, draft: Draft, params: Any, capability: Any) -> None:
        if capability is None:
            return  # the required TaskingCapability is reported by the unit
        table = unit.tables.entity["TaskingCapability"]
        record = await unit.w.scalar(
            sa.select(table.c.tasking_parameters).where(table.c.id == capability)
        )
        if record is None:
            raise InvalidEntity(
                f"{draft.where}: there is no TaskingCapability with @iot.id {capability}"
            )
        try:
            check_values(parse_record(_json(record)), params)
        except ValueError as exc:
            raise InvalidEntity(
                f"{draft.where}.taskingParameters do not fit TaskingCapability {capability}: {exc}"
            ) from None


def _json(raw: Any) -> Any:
    return orjson.loads(raw) if isinstance(raw, str | bytes) else raw
