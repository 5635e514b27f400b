"""The eight entity types of the SensorThings API 1.1 Sensing core (OGC 18-088, section 8)."""

from __future__ import annotations

from citytwin.model.types import EntityType, Kind, Navigation, Property

P = Property
N = Navigation


def _named(*, definition: bool = False) -> tuple[Property, ...]:
    props = [P("name", Kind.STRING, "name", required=True, nullable=False)]
    if definition:
        props.append(P("definition", Kind.STRING, "definition", required=True, nullable=False))
    props.append(P("description", Kind.STRING, "description", required=True, nullable=False))
    return tuple(props)


PROPERTIES = P("properties", Kind.OBJECT, "properties")
ENCODING = P("encodingType", Kind.STRING, "encoding_type", required=True, nullable=False)

THING = EntityType(
    name="Thing",
    set_name="Things",
    table="things",
    properties=(*_named(), PROPERTIES),
    navigations=(
        N(
            "Locations",
            "Location",
            True,
            "Things",
            link=("thing_locations", "thing_id", "location_id"),
        ),
        N("HistoricalLocations", "HistoricalLocation", True, "Thing", reverse_fk="thing_id"),
        N("Datastreams", "Datastream", True, "Thing", reverse_fk="thing_id"),
    ),
)

LOCATION = EntityType(
    name="Location",
    set_name="Locations",
    table="locations",
    properties=(
        *_named(),
        ENCODING,
        P("location", Kind.GEOMETRY, "location", required=True, nullable=False),
        PROPERTIES,
    ),
    navigations=(
        N(
            "Things",
            "Thing",
            True,
            "Locations",
            link=("thing_locations", "location_id", "thing_id"),
        ),
        N(
            "HistoricalLocations",
            "HistoricalLocation",
            True,
            "Locations",
            link=("location_historical_locations", "location_id", "historical_location_id"),
        ),
    ),
)

HISTORICAL_LOCATION = EntityType(
    name="HistoricalLocation",
    set_name="HistoricalLocations",
    table="historical_locations",
    properties=(P("time", Kind.INSTANT, "time", required=True, nullable=False),),
    navigations=(
        N("Thing", "Thing", False, "HistoricalLocations", fk="thing_id", required=True),
        N(
            "Locations",
            "Location",
            True,
            "HistoricalLocations",
            link=("location_historical_locations", "historical_location_id", "location_id"),
        ),
    ),
)

DATASTREAM = EntityType(
    name="Datastream",
    set_name="Datastreams",
    table="datastreams",
    properties=(
        *_named(),
        P("unitOfMeasurement", Kind.OBJECT, "unit_of_measurement", required=True, nullable=False),
        P("observationType", Kind.STRING, "observation_type", required=True, nullable=False),
        P("observedArea", Kind.GEOMETRY, "observed_area"),
        P("phenomenonTime", Kind.INTERVAL, "phenomenon_time", writable=False),
        P("resultTime", Kind.INTERVAL, "result_time", writable=False),
        PROPERTIES,
    ),
    navigations=(
        N("Thing", "Thing", False, "Datastreams", fk="thing_id", required=True),
        N("Sensor", "Sensor", False, "Datastreams", fk="sensor_id", required=True),
        N(
            "ObservedProperty",
            "ObservedProperty",
            False,
            "Datastreams",
            fk="observed_property_id",
            required=True,
        ),
        N("Observations", "Observation", True, "Datastream", reverse_fk="datastream_id"),
    ),
)

SENSOR = EntityType(
    name="Sensor",
    set_name="Sensors",
    table="sensors",
    properties=(
        *_named(),
        ENCODING,
        P("metadata", Kind.ANY, "metadata", required=True, nullable=False),
        PROPERTIES,
    ),
    navigations=(N("Datastreams", "Datastream", True, "Sensor", reverse_fk="sensor_id"),),
)

OBSERVED_PROPERTY = EntityType(
    name="ObservedProperty",
    set_name="ObservedProperties",
    table="observed_properties",
    properties=(*_named(definition=True), PROPERTIES),
    navigations=(
        N("Datastreams", "Datastream", True, "ObservedProperty", reverse_fk="observed_property_id"),
    ),
)

OBSERVATION = EntityType(
    name="Observation",
    set_name="Observations",
    table="observations",
    properties=(
        # phenomenonTime is mandatory, but the server fills in its own time when it is missing
        P("phenomenonTime", Kind.TIME, "phenomenon_time", nullable=False),
        P("resultTime", Kind.INSTANT, "result_time", show_null=True),
        P("result", Kind.RESULT, "result", required=True, show_null=True),
        P("resultQuality", Kind.ANY, "result_quality"),
        P("validTime", Kind.INTERVAL, "valid_time"),
        P("parameters", Kind.OBJECT, "parameters"),
    ),
    navigations=(
        N("Datastream", "Datastream", False, "Observations", fk="datastream_id", required=True),
        N("FeatureOfInterest", "FeatureOfInterest", False, "Observations", fk="feature_id"),
    ),
)

FEATURE_OF_INTEREST = EntityType(
    name="FeatureOfInterest",
    set_name="FeaturesOfInterest",
    table="features",
    properties=(
        *_named(),
        ENCODING,
        P("feature", Kind.GEOMETRY, "feature", required=True, nullable=False),
        PROPERTIES,
    ),
    navigations=(
        N("Observations", "Observation", True, "FeatureOfInterest", reverse_fk="feature_id"),
    ),
)

SENSING_CORE: tuple[EntityType, ...] = (
    THING,
    LOCATION,
    HISTORICAL_LOCATION,
    DATASTREAM,
    SENSOR,
    OBSERVED_PROPERTY,
    OBSERVATION,
    FEATURE_OF_INTEREST,
)
