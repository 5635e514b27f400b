"""The dataArray result format (OGC 18-088, section 14.3): Observations grouped by their
Datastream or MultiDatastream, each group one list of ``components`` and one row of
values per Observation, in the order the Observations were read."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from citytwin.errors import BadRequest
from citytwin.model import EntityType, Property
from citytwin.model.types import ID_NAMES
from citytwin.planner.reads import Selection
from citytwin.query.ast import Path
from citytwin.serialize.sta import Serializer
from citytwin.storage.base import Row

NAME = "dataArray"
# the components without $select: every property of an Observation, id first
DEFAULT = ("id", "phenomenonTime", "resultTime", "result", "resultQuality", "validTime")
EXTRA = ("parameters",)


def components(et: EntityType, select: Sequence[Path] | None) -> list[str]:
    """The components $select asks for, in its order (all properties without it)."""
    if select is None:
        return [*DEFAULT, *EXTRA]
    out: list[str] = []
    for item in select:
        name = str(item.segments[0])
        if name == "*":
            return [*DEFAULT, *EXTRA]
        if len(item.segments) != 1:
            raise BadRequest(f"$resultFormat=dataArray takes whole properties; not {name}/...")
        name = "id" if name in ID_NAMES else name
        if name != "id" and et.property(name) is None:
            raise BadRequest(f"$resultFormat=dataArray: Observation has no property {name}")
        if name not in out:
            out.append(name)
    return out


def selection(et: EntityType, names: Iterable[str]) -> Selection:
    props: list[Property] = []
    for name in names:
        prop = et.property(name)
        if prop is not None:
            props.append(prop)
    return Selection(False, tuple(props), {}, ())


class Groups:
    """Data arrays being filled, one per Datastream or MultiDatastream, in first-seen order."""

    def __init__(self, ser: Serializer, et: EntityType, names: Sequence[str]) -> None:
        self.ser = ser
        self.et = et
        self.names = list(names)
        self.sel = selection(et, names)
        self.groups: dict[str, dict[str, Any]] = {}

    def add_row(self, kind: str, link: str, row: Row) -> None:
        """An Observation read from storage, of the ``kind`` (Datastream) at ``link``."""
        values = self.ser.entity(self.et, row, self.sel)
        group = self.open(kind, link)
        group["dataArray"].append([row["id"] if n == "id" else values.get(n) for n in self.names])

    def add_entity(self, kind: str, link: str, entity: dict[str, Any]) -> None:
        """An Observation already serialized (expanded below its Datastream)."""
        group = self.open(kind, link)
        group["dataArray"].append([entity.get("@iot.id" if n == "id" else n) for n in self.names])

    def open(self, kind: str, link: str) -> dict[str, Any]:
        """The group of a stream, made empty if it has none yet."""
        group = self.groups.get(link)
        if group is None:
            group = self.groups[link] = {
                f"{kind}@iot.navigationLink": link,
                "components": self.names,
                "dataArray": [],
            }
        return group

    def value(self) -> list[dict[str, Any]]:
        out = []
        for group in self.groups.values():
            rows = group.pop("dataArray")
            group["dataArray@iot.count"] = len(rows)
            group["dataArray"] = rows
            out.append(group)
        return out
