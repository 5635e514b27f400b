"""Request bodies checked against the model and turned into drafts to store.

A draft is either a reference to an existing entity (``{"@iot.id": 5}``; anything else
beside the id is ignored) or a new entity with validated values and its related drafts.
Every message names where in the body the problem is, e.g. ``Datastreams[0].Sensor``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from citytwin.errors import InvalidEntity
from citytwin.model import EntityType, Property, Registry
from citytwin.model.types import (
    ID_NAMES,
    K_INSTANT,
    K_INTERVAL,
    K_OBJECT,
    K_RESULT,
    K_STRING,
    K_TIME,
    Kind,
)
from citytwin.model.values import (
    GEOJSON_ENCODINGS,
    Interval,
    geometry_from_geojson,
    parse_instant,
    parse_interval,
)

MAX_ID = 2**63 - 1


class Mode(enum.Enum):
    CREATE = "create"  # POST, deep insert allowed
    PATCH = "patch"  # only given properties; relations only by reference
    PUT = "put"  # all properties; relations only by reference


@dataclass
class Draft:
    et: EntityType
    where: str
    ref: int | None = None
    values: dict[str, Any] = field(default_factory=dict)  # property name -> Python value
    one: dict[str, Draft] = field(default_factory=dict)
    many: dict[str, list[Draft]] = field(default_factory=dict)


def load_json(body: bytes) -> Any:
    if not body.strip():
        raise InvalidEntity("the request body is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEntity(f"the request body is not valid JSON: {exc}") from None


def _ref_id(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidEntity(f"{where}: @iot.id must be an integer")
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise InvalidEntity(f"{where}: @iot.id must be an integer, got {value!r}")
        value = int(value)
    if value < 0 or value > MAX_ID:
        raise InvalidEntity(f"{where}: @iot.id {value} is out of range")
    return int(value)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {_json_type(value)}")
    return value


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"must be a JSON object, got {_json_type(value)}")
    return value


def _interval(value: Any) -> Interval:
    return parse_interval(value, allow_instant=False)


def _time(value: Any) -> Interval:
    return parse_interval(value, allow_instant=True)


# how a value of each kind is parsed; ValueError says what is wrong. Kinds missing here
# are taken as they are (ANY, RESULT, and GEOMETRY, which is checked with its encodingType)
_CONVERT: dict[Kind, Callable[[Any], Any]] = {
    K_STRING: _string,
    K_OBJECT: _object,
    K_INSTANT: parse_instant,
    K_INTERVAL: _interval,
    K_TIME: _time,
}

# a key of a flat body: the property and its parser, or (None, None) for a to-one relation
PlainKey = tuple[Property | None, Callable[[Any], Any] | None]
NOT_PLAIN: dict[str, PlainKey] = {}  # an entity type that is never taken as a flat body


class DraftParser:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._plain: dict[str, dict[str, PlainKey]] = {}  # entity type -> its plain keys

    def parse(
        self, et: EntityType, data: Any, mode: Mode, where: str | None = None, nested: bool = False
    ) -> Draft:
        where = where or et.name
        if not isinstance(data, dict):
            raise InvalidEntity(f"{where}: a {et.name} must be a JSON object")
        id_key = next((k for k in ID_NAMES if k in data), None)
        if nested and id_key is not None:
            return Draft(et, where, ref=_ref_id(data[id_key], where))
        if nested and mode is not Mode.CREATE:
            raise InvalidEntity(
                f"{where}: {mode.value.upper()} can only link existing entities by "
                '{"@iot.id": ...}, not create new ones'
            )
        draft = Draft(et, where)
        for key, value in data.items():
            if key in ID_NAMES or "@iot." in key:
                continue  # ids are assigned by the server; annotations are output only
            prop = et.property(key)
            if prop is not None:
                if prop.writable:
                    draft.values[key] = self.value(prop, value, where, key)
                continue
            nav = et.navigation(key)
            if nav is None:
                raise InvalidEntity(f"{where}: {et.name} has no property '{key}'")
            target = self.registry.target(nav)
            if nav.many:
                if not isinstance(value, list):
                    raise InvalidEntity(f"{where}.{key} must be a JSON array of {target.name}")
                draft.many[key] = [
                    self.parse(target, item, mode, f"{where}.{key}[{i}]", nested=True)
                    for i, item in enumerate(value)
                ]
            else:
                if value is None:
                    raise InvalidEntity(f"{where}.{key} cannot be null")
                draft.one[key] = self.parse(target, value, mode, f"{where}.{key}", nested=True)
        if mode is not Mode.PATCH:
            for name in et.required:
                if name not in draft.values:
                    raise InvalidEntity(f"{where}: {et.name} needs '{name}'")
        if mode is Mode.PUT:
            # PUT clears what it leaves out, which a property that cannot be null (one the
            # server fills in on create, like phenomenonTime) cannot be
            for prop in et.writable:
                if not prop.nullable and prop.name not in draft.values:
                    raise InvalidEntity(
                        f"{where}: PUT replaces the whole {et.name} and needs '{prop.name}'"
                    )
        self._check_geometry(draft)
        return draft

    def plain(self, et: EntityType, data: Any) -> tuple[dict[str, Any], dict[str, int]] | None:
        """The values and the to-one references of a flat body to create an ``et``: its
        own properties, checked as :meth:`parse` checks them, and related entities named
        only by id. None for any other body, and for one with a fault, which :meth:`parse`
        then names; so a body is either taken here as parse would take it, or not at all.

        This is the one check of every Observation that arrives over MQTT, so it looks
        each key up once in a table made per entity type (:meth:`_plain_keys`)."""
        if type(data) is not dict:
            return None
        keys = self._plain.get(et.name)
        if keys is None:
            keys = self._plain[et.name] = self._plain_keys(et)
        if keys is NOT_PLAIN:
            return None
        values: dict[str, Any] = {}
        refs: dict[str, int] = {}
        for key, value in data.items():
            entry = keys.get(key)
            if entry is None:
                return None
            prop, convert = entry
            if prop is None:  # a to-one relation: only {"@iot.id": n}
                if type(value) is not dict or len(value) != 1:
                    return None
                ref = value.get("@iot.id")
                if type(ref) is not int or not 0 <= ref <= MAX_ID:
                    return None
                refs[key] = ref
            elif value is None:
                if not prop.nullable and prop.kind is not K_RESULT:
                    return None
                values[key] = None
            elif convert is None:
                values[key] = value
            else:
                try:
                    values[key] = convert(value)
                except ValueError:
                    return None
        for name in et.required:
            if name not in values:
                return None
        return values, refs

    @staticmethod
    def _plain_keys(et: EntityType) -> dict[str, PlainKey]:
        """What :meth:`plain` takes of ``et``: each writable property with its parser, and
        each to-one relation (with None for the property)."""
        if et.geometric:
            return NOT_PLAIN  # geometry is checked with its encodingType: parse does that
        keys: dict[str, PlainKey] = {p.name: (p, _CONVERT.get(p.kind)) for p in et.writable}
        for nav in et.navigations:
            if not nav.many and nav.name not in keys:
                keys[nav.name] = (None, None)
        return keys

    def value(self, prop: Property, value: Any, where: str, key: str) -> Any:
        """The parsed value of ``where.key``; the name is put together only for an error."""
        if value is None:
            if not prop.nullable and prop.kind is not K_RESULT:
                raise InvalidEntity(f"{where}.{key} cannot be null")
            return None
        convert = _CONVERT.get(prop.kind)
        if convert is None:
            return value  # ANY, RESULT and GEOMETRY (checked with its encodingType)
        try:
            return convert(value)
        except ValueError as exc:
            raise InvalidEntity(f"{where}.{key}: {exc}") from None

    @staticmethod
    def _check_geometry(draft: Draft) -> None:
        for prop in draft.et.geometric:
            if prop.name in draft.values:
                value = draft.values[prop.name]
                encoding = draft.values.get("encodingType")
                has_encoding = draft.et.property("encodingType") is not None
                if value is None:
                    continue
                if not has_encoding or encoding in GEOJSON_ENCODINGS:
                    try:
                        geometry_from_geojson(value)
                    except ValueError as exc:
                        raise InvalidEntity(f"{draft.where}.{prop.name}: {exc}") from None


def geometry_of(et: EntityType, prop: Property, value: Any, encoding: str | None) -> Any:
    """The shapely geometry to index for a stored value, or None when it is not GeoJSON."""
    if value is None:
        return None
    if et.property("encodingType") is not None and encoding not in GEOJSON_ENCODINGS:
        return None
    return geometry_from_geojson(value)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"
