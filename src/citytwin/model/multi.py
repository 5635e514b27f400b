"""The MultiDatastream extension of SensorThings API 1.1 (OGC 18-088, section 9).

A MultiDatastream groups Observations whose result is an array, one value per
ObservedProperty, in the order of its ObservedProperties; ``unitOfMeasurements`` and
``multiObservationDataTypes`` are arrays of the same length. An Observation belongs to
exactly one Datastream or one MultiDatastream, so its Datastream is no longer required.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from citytwin.model.types import EntityType, Kind, Navigation, Property

P = Property
N = Navigation

OM_COMPLEX = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation"
LINK = ("multi_datastream_observed_properties", "multi_datastream_id", "observed_property_id")

MULTI_DATASTREAM = EntityType(
    name="MultiDatastream",
    set_name="MultiDatastreams",
    table="multi_datastreams",
    properties=(
        P("name", Kind.STRING, "name", required=True, nullable=False),
        P("description", Kind.STRING, "description", required=True, nullable=False),
        P("unitOfMeasurements", Kind.ANY, "unit_of_measurements", required=True, nullable=False),
        P("observationType", Kind.STRING, "observation_type", required=True, nullable=False),
        P(
            "multiObservationDataTypes",
            Kind.ANY,
            "multi_observation_data_types",
            required=True,
            nullable=False,
        ),
        P("observedArea", Kind.GEOMETRY, "observed_area"),
        P("phenomenonTime", Kind.INTERVAL, "phenomenon_time", writable=False),
        P("resultTime", Kind.INTERVAL, "result_time", writable=False),
        P("properties", Kind.OBJECT, "properties"),
    ),
    navigations=(
        N("Thing", "Thing", False, "MultiDatastreams", fk="thing_id", required=True),
        N("Sensor", "Sensor", False, "MultiDatastreams", fk="sensor_id", required=True),
        N(
            "ObservedProperties",
            "ObservedProperty",
            True,
            "MultiDatastreams",
            link=LINK,
            order="position",
        ),
        N("Observations", "Observation", True, "MultiDatastream", reverse_fk="multi_datastream_id"),
    ),
)

# the navigations the other entity types gain, by entity type
_ADDED: dict[str, tuple[Navigation, ...]] = {
    "Thing": (N("MultiDatastreams", "MultiDatastream", True, "Thing", reverse_fk="thing_id"),),
    "Sensor": (N("MultiDatastreams", "MultiDatastream", True, "Sensor", reverse_fk="sensor_id"),),
    "ObservedProperty": (
        N(
            "MultiDatastreams",
            "MultiDatastream",
            True,
            "ObservedProperties",
            link=(LINK[0], LINK[2], LINK[1]),
        ),
    ),
    "Observation": (
        N("MultiDatastream", "MultiDatastream", False, "Observations", fk="multi_datastream_id"),
    ),
}


def with_multi_datastreams(types: Sequence[EntityType]) -> tuple[EntityType, ...]:
    """``types`` with MultiDatastreams added and the others linked to them."""
    out = []
    for et in types:
        navs = tuple(
            # an Observation has a Datastream or a MultiDatastream: the rules check which
            replace(n, required=False) if (et.name, n.name) == ("Observation", "Datastream") else n
            for n in et.navigations
        )
        navs += _ADDED.get(et.name, ())
        if navs != et.navigations:
            et = EntityType(et.name, et.set_name, et.table, et.properties, navs, et.id_column)
        out.append(et)
    out.append(MULTI_DATASTREAM)
    return tuple(out)
