"""JSON Schemas (OpenAPI 3.1 dialect) of entities as read and as written, from the registry.

Component names, which path descriptions contributed by plugins may reference as
``#/components/schemas/<name>``:

- ``<Type>``: an entity as a GET returns it (every property optional, since ``$select``
  may leave any out; expanded navigation properties hold the related entities);
- ``<Type>Collection``: a page of them with ``@iot.count`` and ``@iot.nextLink``;
- ``<Type>Create``: a POST body, with deep insert of related entities;
- ``<Parent><Navigation>Create``: a POST body to ``<Parents>(id)/<Navigation>``, where
  the path implies the relation back to the parent;
- ``<Type>Patch`` and ``<Type>Put``: update bodies (related entities only by id);
- ``EntityRef``, ``SelfLink``, ``RefCollection``, ``JsonPatch``, ``Error``.
"""

from __future__ import annotations

from typing import Any

from citytwin.model import EntityType, Kind, Navigation, Property, Registry

Schema = dict[str, Any]

NESTING = 2
"""Levels of deep insert spelled out below a POST body; deeper related entities are
described only as objects, which keeps the description finite and small."""

REF = "#/components/schemas/"

_GEOJSON_EXAMPLE = {"type": "Point", "coordinates": [8.0644, 51.4036]}
_EXAMPLES: dict[Kind, Any] = {
    Kind.STRING: "text",
    Kind.OBJECT: {"key": "value"},
    Kind.ANY: "https://example.org/description",
    Kind.INSTANT: "2024-01-01T12:00:00Z",
    Kind.INTERVAL: "2024-01-01T00:00:00Z/2024-01-02T00:00:00Z",
    Kind.TIME: "2024-01-01T12:00:00Z",
    Kind.GEOMETRY: _GEOJSON_EXAMPLE,
    Kind.RESULT: 21.5,
}


def ref(name: str) -> Schema:
    return {"$ref": REF + name}


def _nullable(schema: Schema, nullable: bool) -> Schema:
    if nullable and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    return schema


def value_schema(prop: Property, *, nullable: bool) -> Schema:
    """The JSON Schema of one property's value."""
    k = prop.kind
    if k is Kind.ID:
        return {"type": "integer"}
    if k is Kind.STRING:
        schema: Schema = {"type": "string"}
    elif k is Kind.OBJECT:
        schema = {"type": "object"}
    elif k is Kind.INSTANT:
        schema = {"type": "string", "format": "date-time", "description": "ISO 8601 instant"}
    elif k is Kind.INTERVAL:
        schema = {"type": "string", "description": "ISO 8601 interval, start/end"}
    elif k is Kind.TIME:
        schema = {"type": "string", "description": "ISO 8601 instant or interval (start/end)"}
    elif k is Kind.GEOMETRY:
        schema = {"description": "GeoJSON geometry or feature; any JSON under another encodingType"}
    else:  # ANY, RESULT
        schema = {"description": "any JSON value"}
    return _nullable(schema, nullable)


def _encoding_example(et: EntityType) -> str:
    return "application/geo+json" if et.geometric else "text/plain"


_OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
# examples that the kind of a property does not give (a MultiDatastream with one
# ObservedProperty: arrays of one)
_TYPE_EXAMPLES: dict[tuple[str, str], Any] = {
    ("MultiDatastream", "observationType"): _OM + "OM_ComplexObservation",
    ("MultiDatastream", "multiObservationDataTypes"): [_OM + "OM_Measurement"],
    ("TaskingCapability", "taskingParameters"): {
        "type": "DataRecord",
        "field": [
            {
                "name": "powerLimit",
                "type": "Quantity",
                "uom": {"code": "kW"},
                "constraint": {"type": "AllowedValues", "interval": [[4.2, 11.0]]},
            }
        ],
    },
    ("Task", "taskingParameters"): {"powerLimit": 4.2},
    ("MultiDatastream", "unitOfMeasurements"): [
        {
            "name": "degree Celsius",
            "symbol": "degC",
            "definition": "http://qudt.org/vocab/unit/DEG_C",
        }
    ],
}


def _example(et: EntityType, prop: Property) -> Any:
    if (et.name, prop.name) in _TYPE_EXAMPLES:
        return _TYPE_EXAMPLES[(et.name, prop.name)]
    if prop.name == "encodingType":
        return _encoding_example(et)
    return _EXAMPLES.get(prop.kind)


def read_schema(et: EntityType, registry: Registry) -> Schema:
    props: dict[str, Schema] = {
        "@iot.id": {"type": "integer"},
        "@iot.selfLink": {"type": "string", "format": "uri"},
    }
    for prop in et.properties:
        schema = value_schema(prop, nullable=prop.show_null)
        if not prop.writable:
            schema["readOnly"] = True
        props[prop.name] = schema
    for nav in et.navigations:
        target = registry.target(nav)
        props[f"{nav.name}@iot.navigationLink"] = {"type": "string", "format": "uri"}
        if nav.many:
            props[nav.name] = {"type": "array", "items": ref(target.name)}
            props[f"{nav.name}@iot.count"] = {"type": "integer", "minimum": 0}
            props[f"{nav.name}@iot.nextLink"] = {"type": "string", "format": "uri"}
        else:
            props[nav.name] = ref(target.name)
    return {"type": "object", "properties": props, "additionalProperties": False}


def collection_schema(item: Schema) -> Schema:
    return {
        "type": "object",
        "properties": {
            "@iot.count": {"type": "integer", "minimum": 0},
            "@iot.nextLink": {"type": "string", "format": "uri"},
            "value": {"type": "array", "items": item},
        },
        "required": ["value"],
        "additionalProperties": False,
    }


def _writable(et: EntityType) -> dict[str, Schema]:
    out = {}
    for prop in et.writable:
        schema = value_schema(prop, nullable=prop.nullable)
        example = _example(et, prop)
        if example is not None:
            schema["examples"] = [example]
        out[prop.name] = schema
    return out


def _body(props: dict[str, Schema], required: list[str]) -> Schema:
    schema: Schema = {
        "type": "object",
        "properties": props,
        # ids are assigned by the server and annotations are output only: both are ignored
        "patternProperties": {"@iot\\.": {}},
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def create_schema(
    et: EntityType, registry: Registry, implied: str | None = None, depth: int = 0
) -> Schema:
    """A new ``et``; ``implied`` names the navigation property its context fills in."""
    props = _writable(et)
    required = list(et.required)
    for nav in et.navigations:
        if nav.name == implied:
            continue
        target = registry.target(nav)
        if depth >= NESTING:
            new: Schema = {"type": "object", "description": f"a new {target.name}"}
        else:
            new = create_schema(target, registry, nav.inverse, depth + 1)
        item = {"anyOf": [ref("EntityRef"), new]}
        props[nav.name] = {"type": "array", "items": item} if nav.many else item
        if nav.required:
            required.append(nav.name)
    body = _body(props, required)
    either = EXACTLY_ONE_OF.get(et.name, ())
    if implied not in either and all(et.navigation(n) is not None for n in either) and either:
        body["oneOf"] = [{"required": [n]} for n in either]
    return body


# to-one relations of which a new entity needs exactly one (a rule of the service, not of
# the registry: an Observation belongs to a Datastream or to a MultiDatastream)
EXACTLY_ONE_OF = {"Observation": ("Datastream", "MultiDatastream")}


def update_schema(et: EntityType, registry: Registry, *, put: bool) -> Schema:
    """A PATCH (given properties only) or PUT (all required ones) body."""
    props = _writable(et)
    for nav in et.navigations:
        props[nav.name] = (
            {"type": "array", "items": ref("EntityRef")} if nav.many else ref("EntityRef")
        )
    if not put:
        return _body(props, [])
    # PUT clears what it leaves out, so what cannot be null must be given
    cleared = [p.name for p in et.writable if not p.nullable and p.name not in et.required]
    return _body(props, [*et.required, *cleared])


def create_under_name(parent: EntityType, nav: Navigation) -> str:
    return f"{parent.name}{nav.name}Create"


def components(registry: Registry) -> dict[str, Schema]:
    schemas: dict[str, Schema] = {
        "Error": {
            "type": "object",
            "properties": {
                "code": {"type": "integer", "description": "the HTTP status"},
                "type": {"const": "error"},
                "message": {"type": "string", "description": "what was wrong"},
            },
            "required": ["code", "type", "message"],
        },
        "EntityRef": {
            "type": "object",
            "description": "an existing entity, by its id",
            "properties": {"@iot.id": {"type": "integer", "minimum": 0}},
            "required": ["@iot.id"],
        },
        "SelfLink": {
            "type": "object",
            "properties": {"@iot.selfLink": {"type": "string", "format": "uri"}},
            "required": ["@iot.selfLink"],
            "additionalProperties": False,
        },
        "RefCollection": collection_schema(ref("SelfLink")),
        "JsonPatch": {
            "type": "array",
            "description": "RFC 6902 operations on the entity's properties",
            "items": {
                "type": "object",
                "properties": {
                    "op": {"enum": ["add", "remove", "replace", "move", "copy", "test"]},
                    "path": {"type": "string", "examples": ["/name"]},
                    "from": {"type": "string"},
                    "value": {},
                },
                "required": ["op", "path"],
            },
        },
    }
    for et in registry:
        schemas[et.name] = read_schema(et, registry)
        schemas[f"{et.name}Collection"] = collection_schema(ref(et.name))
        schemas[f"{et.name}Create"] = create_schema(et, registry)
        schemas[f"{et.name}Patch"] = update_schema(et, registry, put=False)
        schemas[f"{et.name}Put"] = update_schema(et, registry, put=True)
        for nav in et.navigations:
            if nav.many:
                schemas[create_under_name(et, nav)] = create_schema(
                    registry.target(nav), registry, nav.inverse
                )
    return schemas
