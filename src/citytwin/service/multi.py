"""The rules of MultiDatastreams (OGC 18-088, section 9.2), checked inside the write.

* ``observationType`` is OM_ComplexObservation; ``unitOfMeasurements`` is an array of
  objects and ``multiObservationDataTypes`` an array of strings.
* Both arrays are as long as the list of ObservedProperties, whose order is the order of
  every result. This is checked against what is stored once a write has changed any of
  the three (on create, PATCH/PUT, and linking from either side), so the transaction is
  refused as a whole when they no longer match.
* An Observation belongs to exactly one Datastream or MultiDatastream; one of a
  MultiDatastream has an array result with one value per ObservedProperty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from citytwin.errors import InvalidEntity
from citytwin.model.multi import LINK, OM_COMPLEX
from citytwin.model.values import decode_result

if TYPE_CHECKING:
    from citytwin.service.unit import Unit


class MultiRules:
    def __init__(self, unit: Unit) -> None:
        self.u = unit
        self._sizes: dict[int, int] = {}  # MultiDatastream -> ObservedProperties, checked

    @staticmethod
    def check_values(values: Mapping[str, Any], where: str) -> None:
        """The MultiDatastream properties given in a body, each on its own."""
        kind = values.get("observationType", OM_COMPLEX)
        if kind != OM_COMPLEX:
            raise InvalidEntity(
                f"{where}.observationType: a MultiDatastream's must be {OM_COMPLEX}"
            )
        units = values.get("unitOfMeasurements", [])
        if not isinstance(units, list) or not all(isinstance(u, dict) for u in units):
            raise InvalidEntity(
                f"{where}.unitOfMeasurements must be an array of objects, one per ObservedProperty"
            )
        types = values.get("multiObservationDataTypes", [])
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise InvalidEntity(
                f"{where}.multiObservationDataTypes must be an array of strings, one per "
                "ObservedProperty"
            )

    async def check(self, md_id: int, where: str) -> None:
        """The stored MultiDatastream's arrays and ObservedProperties are equally long."""
        t = self.u.tables.entity["MultiDatastream"]
        rows = await self.u.w.fetch(
            sa.select(t.c.unit_of_measurements, t.c.multi_observation_data_types).where(
                t.c.id == md_id
            )
        )
        if not rows:
            return  # deleted in this transaction
        units = len(_json(rows[0][0]) or ())
        types = len(_json(rows[0][1]) or ())
        ops = await self._count(md_id)
        if ops == 0:
            raise InvalidEntity(f"{where}: a MultiDatastream needs at least one ObservedProperty")
        if not units == types == ops:
            raise InvalidEntity(
                f"{where}: MultiDatastream {md_id} would have {ops} ObservedProperties, "
                f"{units} unitOfMeasurements and {types} multiObservationDataTypes; "
                "the three must be equally long"
            )
        self._sizes[md_id] = ops

    async def _count(self, md_id: int) -> int:
        link = self.u.tables.link[LINK[0]]
        found = await self.u.w.scalar(
            sa.select(sa.func.count()).select_from(link).where(link.c[LINK[1]] == md_id)
        )
        return int(found or 0)

    async def using(self, op_id: int) -> list[int]:
        """The MultiDatastreams whose ObservedProperties include ``op_id``."""
        link = self.u.tables.link[LINK[0]]
        rows = await self.u.w.fetch(
            sa.select(link.c[LINK[1]]).where(link.c[LINK[2]] == op_id).distinct()
        )
        return sorted(int(r[0]) for r in rows)

    async def replace_properties(self, md_id: int, op_ids: list[int]) -> None:
        """PATCH/PUT of a MultiDatastream's ObservedProperties: the list given, in order."""
        md = self.u.registry.type("MultiDatastream")
        nav = md.navigation("ObservedProperties")
        assert nav is not None
        await self.u.unlink_all(nav, md_id)
        for op_id in op_ids:
            await self.u.link(nav, md_id, op_id)
        self._sizes.pop(md_id, None)

    async def check_observation(self, row: Mapping[str, Any], result: Any, where: str) -> None:
        """An Observation's stream and, for a MultiDatastream, its result's length."""
        ds, md = row.get("datastream_id"), row.get("multi_datastream_id")
        if ds is None and md is None:
            raise InvalidEntity(f"{where}: an Observation needs a Datastream or a MultiDatastream")
        if ds is not None and md is not None:
            raise InvalidEntity(
                f"{where}: an Observation belongs to a Datastream or a MultiDatastream, not both"
            )
        if md is None:
            return
        size = self._sizes.get(md)
        if size is None:
            size = self._sizes[md] = await self._count(md)
        if not isinstance(result, list) or len(result) != size:
            raise InvalidEntity(
                f"{where}.result: an Observation of MultiDatastream {md} needs an array of "
                f"{size} values, one per ObservedProperty in order"
            )

    @staticmethod
    def stored_result(row: Mapping[str, Any]) -> Any:
        return decode_result(
            row["result_type"],
            row["result_number"],
            row["result_string"],
            _text(row["result_json"]),
        )


def _text(raw: Any) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    if isinstance(raw, bytes):
        return raw.decode()
    return orjson.dumps(raw).decode()


def _json(raw: Any) -> Any:
    if raw is None:
        return None
    return orjson.loads(raw) if isinstance(raw, str | bytes) else raw
