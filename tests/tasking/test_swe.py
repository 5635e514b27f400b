"""The SWE Common DataRecord subset of taskingParameters, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from citytwin.tasking.swe import Field, check_values, parse_record


def record(*fields: dict[str, Any], key: str = "field") -> dict[str, Any]:
    return {"type": "DataRecord", key: list(fields)}


def test_fields_are_read_with_their_constraints() -> None:
    fields = parse_record(
        record(
            {
                "name": "power",
                "type": "Quantity",
                "uom": {"href": "http://qudt.org/vocab/unit/KiloW"},
                "constraint": {"interval": [[4.2, 11]], "value": [0]},
            },
            {"name": "on", "type": "Boolean", "optional": True},
            key="fields",  # as SWE Common 3 spells it
        )
    )
    assert [f.name for f in fields] == ["power", "on"]
    assert fields[0] == Field("power", "Quantity", True, ((4.2, 11),), (0,))
    assert not fields[1].required
    assert not fields[1].constrained


def test_times_compare_as_instants_whatever_their_offset() -> None:
    fields = parse_record(
        record(
            {
                "name": "at",
                "type": "Time",
                "constraint": {"interval": [["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]]},
            }
        )
    )
    check_values(fields, {"at": "2026-01-02T00:59:00+01:00"})
    with pytest.raises(ValueError, match=r"'at' = '2026-01-02T01:01:00\+01:00' is not allowed"):
        check_values(fields, {"at": "2026-01-02T01:01:00+01:00"})


def test_integers_are_quantities_but_not_the_other_way_round() -> None:
    fields = parse_record(
        record(
            {"name": "kw", "type": "Quantity", "uom": {"code": "kW"}},
            {"name": "n", "type": "Count"},
        )
    )
    check_values(fields, {"kw": 5, "n": 2})
    with pytest.raises(ValueError, match="'n' must be an integer"):
        check_values(fields, {"kw": 5.0, "n": 2.0})


def test_a_pattern_must_match_the_whole_text() -> None:
    fields = parse_record(
        record({"name": "code", "type": "Text", "constraint": {"pattern": "[A-Z]{3}"}})
    )
    check_values(fields, {"code": "ABC"})
    with pytest.raises(ValueError, match="matching"):
        check_values(fields, {"code": "ABCD"})
