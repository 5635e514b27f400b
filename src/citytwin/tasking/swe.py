"""taskingParameters as SWE Common 2.0 JSON (OGC 17-011), the subset Tasking Core uses.

A TaskingCapability describes its parameters as a ``DataRecord`` whose ``field`` array
(``fields`` is accepted too, as SWE Common 3 spells it) holds simple components, each
with a ``name`` and a ``type``:

* ``Quantity``: a number; ``uom`` (``{"code": "kW"}``) is required; the constraint
  ``AllowedValues`` gives ``interval`` (``[[min, max], ...]``) and/or ``value`` (numbers);
* ``Count``: an integer, with the same constraint;
* ``Boolean``: true or false;
* ``Category`` and ``Text``: a string; the constraint ``AllowedTokens`` gives ``value``
  (the allowed strings) and/or ``pattern`` (a regular expression the whole string matches);
* ``Time``: an ISO 8601 instant; the constraint ``AllowedTimes`` gives ``interval``
  (``[[start, end], ...]``) and/or ``value`` (instants).

A field is required unless it says ``"optional": true``. A Task gives its values as an
object of field name to value, checked by :func:`check_values`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from citytwin.model.values import parse_instant

TYPES = ("Quantity", "Count", "Boolean", "Category", "Text", "Time")
CONSTRAINTS = {
    "Quantity": "AllowedValues",
    "Count": "AllowedValues",
    "Category": "AllowedTokens",
    "Text": "AllowedTokens",
    "Time": "AllowedTimes",
}


@dataclass(frozen=True)
class Field:
    """One parameter a Task may give."""

    name: str
    type: str
    required: bool
    intervals: tuple[tuple[Any, Any], ...] = ()
    values: tuple[Any, ...] = ()
    pattern: re.Pattern[str] | None = None

    @property
    def constrained(self) -> bool:
        return bool(self.intervals or self.values or self.pattern)


def parse_record(record: Any) -> list[Field]:
    """The fields of a DataRecord; ValueError names what is wrong and where."""
    if not isinstance(record, Mapping):
        raise ValueError("must be a SWE Common DataRecord, a JSON object")
    if record.get("type") != "DataRecord":
        raise ValueError(f'type must be "DataRecord", got {record.get("type")!r}')
    key = "field" if "field" in record else "fields"
    items = record.get(key)
    if not isinstance(items, list) or not items:
        raise ValueError("field must be a non-empty array of components")
    fields: list[Field] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        field = _field(item, where)
        if field.name in seen:
            raise ValueError(f"{where}: the name {field.name!r} is used twice")
        seen.add(field.name)
        fields.append(field)
    return fields


def _field(item: Any, where: str) -> Field:
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} must be a JSON object")
    name = item.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name):
        raise ValueError(f"{where}: name must be a string like 'powerLimit', got {name!r}")
    where = f"{where} ({name})"
    kind = item.get("type")
    if kind not in TYPES:
        raise ValueError(f"{where}: type must be one of {', '.join(TYPES)}, got {kind!r}")
    optional = item.get("optional", False)
    if not isinstance(optional, bool):
        raise ValueError(f"{where}: optional must be true or false")
    if kind == "Quantity":
        uom = item.get("uom")
        if not isinstance(uom, Mapping) or not isinstance(uom.get("code") or uom.get("href"), str):
            raise ValueError(f'{where}: a Quantity needs uom, e.g. {{"code": "kW"}}')
    constraint = item.get("constraint")
    if constraint is None:
        return Field(name, kind, not optional)
    expected = CONSTRAINTS.get(kind)
    if expected is None:
        raise ValueError(f"{where}: a {kind} takes no constraint")
    if not isinstance(constraint, Mapping):
        raise ValueError(f"{where}: constraint must be a JSON object")
    if constraint.get("type", expected) != expected:
        raise ValueError(f"{where}: the constraint of a {kind} is {expected}")
    intervals = _intervals(kind, constraint.get("interval"), where)
    values = tuple(_value(kind, v, f"{where}: constraint value") for v in _list(constraint, where))
    pattern = None
    if "pattern" in constraint:
        if expected != "AllowedTokens" or not isinstance(constraint["pattern"], str):
            raise ValueError(f"{where}: pattern is a regular expression of AllowedTokens")
        try:
            pattern = re.compile(constraint["pattern"])
        except re.error as exc:
            raise ValueError(f"{where}: pattern is not a regular expression: {exc}") from None
    if not intervals and not values and pattern is None:
        raise ValueError(f"{where}: the constraint allows nothing; give interval or value")
    return Field(name, kind, not optional, intervals, values, pattern)


def _list(constraint: Mapping[str, Any], where: str) -> list[Any]:
    values = constraint.get("value", [])
    if not isinstance(values, list):
        raise ValueError(f"{where}: constraint value must be an array")
    return values


def _intervals(kind: str, raw: Any, where: str) -> tuple[tuple[Any, Any], ...]:
    if raw is None:
        return ()
    if kind in ("Category", "Text"):
        raise ValueError(f"{where}: a {kind} constraint has no interval")
    if not isinstance(raw, list):
        raise ValueError(f"{where}: interval must be an array of [min, max] pairs")
    out = []
    for pair in raw:
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError(f"{where}: interval must be an array of [min, max] pairs")
        low = _value(kind, pair[0], f"{where}: interval")
        high = _value(kind, pair[1], f"{where}: interval")
        if low > high:
            raise ValueError(f"{where}: interval [{pair[0]}, {pair[1]}] is empty")
        out.append((low, high))
    return tuple(out)


def _value(kind: str, value: Any, where: str) -> Any:
    """A value of a component of ``kind``, for comparisons; ValueError when it is not one."""
    if kind == "Quantity":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"{where} must be a number, got {value!r}")
        return value
    if kind == "Count":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return value
    if kind == "Boolean":
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if kind == "Time":
        try:
            instant: datetime = parse_instant(value)
        except ValueError:
            raise ValueError(f"{where} must be an ISO 8601 instant, got {value!r}") from None
        return instant
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string, got {value!r}")
    return value


def check_values(fields: Sequence[Field], given: Any) -> None:
    """Check a Task's taskingParameters against its capability's fields; ValueError names
    the field and the rule it breaks."""
    if not isinstance(given, Mapping):
        raise ValueError("must be a JSON object of parameter name to value")
    by_name = {f.name: f for f in fields}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise ValueError(
            f"unknown parameter {unknown[0]!r}; the TaskingCapability takes "
            + ", ".join(repr(n) for n in by_name)
        )
    for field in fields:
        if field.name not in given:
            if field.required:
                raise ValueError(f"{field.name!r} is required")
            continue
        where = f"{field.name!r}"
        value = _value(field.type, given[field.name], where)
        if field.constrained and not _allowed(field, value):
            raise ValueError(f"{where} = {given[field.name]!r} is not allowed: {_rule(field)}")


def _allowed(field: Field, value: Any) -> bool:
    if value in field.values:
        return True
    if any(low <= value <= high for low, high in field.intervals):
        return True
    return field.pattern is not None and field.pattern.fullmatch(value) is not None


def _rule(field: Field) -> str:
    parts = []
    if field.intervals:
        parts.append(
            "within " + " or ".join(f"[{_show(lo)}, {_show(hi)}]" for lo, hi in field.intervals)
        )
    if field.values:
        parts.append("one of " + ", ".join(repr(_show(v)) for v in field.values))
    if field.pattern is not None:
        parts.append(f"matching {field.pattern.pattern!r}")
    return "it must be " + ", or ".join(parts)


def _show(value: Any) -> Any:
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
