"""Bodies for Tasking Core tests: a heat pump dimmable under §14a EnWG."""

from __future__ import annotations

from typing import Any

TASKING_SETS = ("Actuators", "TaskingCapabilities", "Tasks")


def dimming_record() -> dict[str, Any]:
    """A power limit of at least 4.2 kW (§14a EnWG) and how long it holds."""
    return {
        "type": "DataRecord",
        "field": [
            {
                "name": "powerLimit",
                "label": "Power limit",
                "definition": "http://qudt.org/vocab/quantitykind/ActivePower",
                "type": "Quantity",
                "uom": {"code": "kW"},
                "constraint": {"type": "AllowedValues", "interval": [[4.2, 11.0]]},
            },
            {
                "name": "duration",
                "type": "Quantity",
                "uom": {"code": "min"},
                "constraint": {"type": "AllowedValues", "interval": [[1, 1440]]},
                "optional": True,
            },
            {
                "name": "mode",
                "type": "Category",
                "constraint": {"type": "AllowedTokens", "value": ["dim", "release"]},
                "optional": True,
            },
        ],
    }


def actuator(name: str = "Heat pump controller", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} (steuerbare Verbrauchseinrichtung)",
        "encodingType": "application/pdf",
        "metadata": "https://example.org/heatpump.pdf",
        **extra,
    }


def capability(
    name: str = "Dim", *, record: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} under §14a EnWG",
        "taskingParameters": record if record is not None else dimming_record(),
        **extra,
    }


def heat_pump(name: str = "Heat pump", **capability_extra: Any) -> dict[str, Any]:
    """A Thing with one TaskingCapability and a new Actuator, for a deep insert."""
    return {
        "name": name,
        "description": f"{name} in Arnsberg",
        "TaskingCapabilities": [capability(Actuator=actuator(), **capability_extra)],
    }


def dim(kw: float = 4.2, **extra: Any) -> dict[str, Any]:
    return {"taskingParameters": {"powerLimit": kw, "duration": 120}, **extra}
