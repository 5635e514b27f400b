"""OpenAPI path items of the SensorThings resource paths, one set per entity type."""

from __future__ import annotations

from typing import Any

from citytwin.model import EntityType, Navigation, Property, Registry
from citytwin.openapi.schemas import Schema, create_under_name, ref, value_schema

PathItem = dict[str, Any]

PREFIX = "/v1.1"

_QUERY_OPTIONS: dict[str, tuple[Schema, str]] = {
    "$filter": ({"type": "string"}, "OData filter, e.g. result gt 20 and phenomenonTime ge 2024"),
    "$select": ({"type": "string"}, "properties to return, e.g. name,properties/owner"),
    "$expand": ({"type": "string"}, "related entities to include, with nested options"),
    "$orderby": ({"type": "string"}, "sort order, e.g. phenomenonTime desc"),
    "$top": ({"type": "integer", "minimum": 0}, "page size (capped by max_page_size)"),
    "$skip": ({"type": "integer", "minimum": 0}, "entities to skip"),
    "$count": ({"type": "boolean"}, "include @iot.count, the number of matches"),
    "$skiptoken": ({"type": "string"}, "opaque position of the next page, from @iot.nextLink"),
    "$resultFormat": (
        {"type": "string"},
        "output format: dataArray, CSV or GeoJSON; the default is SensorThings JSON",
    ),
}
COLLECTION_OPTIONS = tuple(_QUERY_OPTIONS)
ENTITY_OPTIONS = ("$select", "$expand")


def _parameter(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/parameters/{name[1:]}"}


ID_PARAMETER = {"$ref": "#/components/parameters/id"}
PREFER = {"$ref": "#/components/parameters/Prefer"}


def parameters() -> dict[str, Any]:
    """``components.parameters``: the path id, Prefer and the query options."""
    out: dict[str, Any] = {
        "id": {
            "name": "id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 0, "format": "int64"},
            "description": "the entity's @iot.id",
        },
        "Prefer": {
            "name": "Prefer",
            "in": "header",
            "schema": {"type": "string", "enum": ["return=minimal", "return=representation"]},
            "description": "return=minimal answers 204 without the entity (RFC 7240)",
        },
    }
    for name, (schema, description) in _QUERY_OPTIONS.items():
        out[name[1:]] = {"name": name, "in": "query", "schema": schema, "description": description}
    return out


def json_response(description: str, schema: Schema) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _with_result_formats(ok: dict[str, Any]) -> dict[str, Any]:
    """A collection's answer with ``$resultFormat=CSV`` or ``GeoJSON`` besides JSON."""
    ok["content"]["text/csv"] = {"schema": {"type": "string"}}
    ok["content"]["application/geo+json"] = {"schema": {"type": "object"}}
    return ok


_ERRORS = {
    "BadRequest": "the request is not valid; the message says why",
    "NotFound": "the path names no entity",
    "Conflict": "the request contradicts stored data",
    "UnsupportedMediaType": "the body is not JSON",
    "Busy": "a conflicting change or an unreachable database; try again",
    "Unauthorized": "the credentials are not valid: an unknown or revoked key, an expired token",
    "Forbidden": "the principal may not do this; the message names the role or owner it lacks",
}


def responses() -> dict[str, Any]:
    """``components.responses``: the error answers, each with an ``Error`` body."""
    return {name: json_response(text, ref("Error")) for name, text in _ERRORS.items()}


def _error(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/responses/{name}"}


BAD_REQUEST = _error("BadRequest")
NOT_FOUND = _error("NotFound")
UNSUPPORTED = _error("UnsupportedMediaType")
BUSY = _error("Busy")
UNAUTHORIZED = _error("Unauthorized")


def _reads(options: tuple[str, ...]) -> list[dict[str, Any]]:
    return [_parameter(name) for name in options]


def _get(op_id: str, summary: str, ok: dict[str, Any], options: tuple[str, ...] = ()) -> Any:
    return {
        "operationId": op_id,
        "summary": summary,
        "parameters": _reads(options),
        "responses": {"200": ok, "400": BAD_REQUEST, "404": NOT_FOUND},
    }


def _write_responses(status: str, et: EntityType, created: bool) -> dict[str, Any]:
    ok = json_response(f"the {et.name} as a GET returns it", ref(et.name))
    if created:
        ok["headers"] = {
            "Location": {"description": "its URL", "schema": {"type": "string", "format": "uri"}}
        }
    return {
        status: ok,
        "204": {"description": "stored; Prefer: return=minimal asked for no body"},
        "400": BAD_REQUEST,
        "404": NOT_FOUND,
        "409": _error("Conflict"),
        "415": UNSUPPORTED,
        "503": BUSY,
    }


def _body(schema: Schema, *, media: tuple[str, ...] = ("application/json",)) -> dict[str, Any]:
    return {"required": True, "content": {m: {"schema": schema} for m in media}}


def _post(op_id: str, summary: str, et: EntityType, schema: Schema) -> dict[str, Any]:
    return {
        "operationId": op_id,
        "summary": summary,
        "parameters": [_parameter(n) for n in ENTITY_OPTIONS] + [PREFER],
        "requestBody": _body(schema),
        "responses": _write_responses("201", et, created=True),
    }


def entity_set_paths(et: EntityType, registry: Registry) -> dict[str, PathItem]:
    """Every path of one entity set: collection, entity, properties and navigation."""
    s, t = et.set_name, et.name
    tags = [s]
    base = f"{PREFIX}/{s}"
    one = f"{base}({{id}})"
    paths: dict[str, PathItem] = {
        base: {
            "get": _get(
                f"list{s}",
                f"{s}, filtered, sorted and paged",
                _with_result_formats(json_response(f"a page of {s}", ref(f"{t}Collection"))),
                COLLECTION_OPTIONS,
            ),
            "post": _post(f"create{t}", f"create a {t}", et, ref(f"{t}Create")),
        },
        f"{base}/$ref": {
            "get": _get(
                f"list{s}Refs",
                f"links to {s}",
                json_response(f"a page of links to {s}", ref("RefCollection")),
                COLLECTION_OPTIONS,
            )
        },
        one: {
            "parameters": [ID_PARAMETER],
            "get": _get(
                f"get{t}",
                f"one {t}",
                json_response(f"the {t}", ref(t)),
                ENTITY_OPTIONS,
            ),
            "patch": {
                "operationId": f"update{t}",
                "summary": f"change some properties of a {t} (JSON merge, or JSON-Patch)",
                "parameters": [_parameter(n) for n in ENTITY_OPTIONS] + [PREFER],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": ref(f"{t}Patch")},
                        "application/merge-patch+json": {"schema": ref(f"{t}Patch")},
                        "application/json-patch+json": {"schema": ref("JsonPatch")},
                    },
                },
                "responses": _write_responses("200", et, created=False),
            },
            "put": {
                "operationId": f"replace{t}",
                "summary": f"replace a {t}; properties left out are cleared",
                "parameters": [_parameter(n) for n in ENTITY_OPTIONS] + [PREFER],
                "requestBody": _body(ref(f"{t}Put")),
                "responses": _write_responses("200", et, created=False),
            },
            "delete": {
                "operationId": f"delete{t}",
                "summary": f"delete a {t} and the entities that cannot exist without it",
                "responses": {
                    "200": {"description": "deleted"},
                    "400": BAD_REQUEST,
                    "404": NOT_FOUND,
                    "503": BUSY,
                },
            },
        },
    }
    for prop in et.properties:
        paths.update(_property_paths(et, prop, one))
    for nav in et.navigations:
        paths.update(_navigation_paths(et, nav, registry, one))
    for item in paths.values():
        for key, op in item.items():
            if key != "parameters":
                op["tags"] = tags
    return paths


def _property_paths(et: EntityType, prop: Property, one: str) -> dict[str, PathItem]:
    name = prop.name[0].upper() + prop.name[1:]
    value = value_schema(prop, nullable=False)
    no_value = {"description": f"the {et.name} has no {prop.name}"}
    return {
        f"{one}/{prop.name}": {
            "parameters": [ID_PARAMETER],
            "get": {
                "operationId": f"get{et.name}{name}",
                "summary": f"the {prop.name} of a {et.name}",
                "responses": {
                    "200": json_response(
                        f"{{{prop.name!r}: value}}",
                        {
                            "type": "object",
                            "properties": {prop.name: value},
                            "required": [prop.name],
                            "additionalProperties": False,
                        },
                    ),
                    "204": no_value,
                    "400": BAD_REQUEST,
                    "404": NOT_FOUND,
                },
            },
        },
        f"{one}/{prop.name}/$value": {
            "parameters": [ID_PARAMETER],
            "get": {
                "operationId": f"get{et.name}{name}Value",
                "summary": f"the bare {prop.name} of a {et.name}",
                "responses": {
                    "200": {
                        "description": "strings and numbers as text, objects as JSON",
                        "content": {
                            "text/plain": {"schema": {"type": "string"}},
                            "application/json": {"schema": value},
                        },
                    },
                    "204": no_value,
                    "400": BAD_REQUEST,
                    "404": NOT_FOUND,
                },
            },
        },
    }


def _navigation_paths(
    et: EntityType, nav: Navigation, registry: Registry, one: str
) -> dict[str, PathItem]:
    target = registry.target(nav)
    path = f"{one}/{nav.name}"
    op = f"{et.name}{nav.name}"
    if not nav.many:
        return {
            path: {
                "parameters": [ID_PARAMETER],
                "get": _get(
                    f"get{op}",
                    f"the {nav.name} of a {et.name}",
                    json_response(f"the {target.name}", ref(target.name)),
                    ENTITY_OPTIONS,
                ),
            },
            f"{path}/$ref": {
                "parameters": [ID_PARAMETER],
                "get": _get(
                    f"get{op}Ref",
                    f"the link to the {nav.name} of a {et.name}",
                    json_response("its link", ref("SelfLink")),
                ),
            },
        }
    body = {"anyOf": [ref("EntityRef"), ref(create_under_name(et, nav))]}
    return {
        path: {
            "parameters": [ID_PARAMETER],
            "get": _get(
                f"list{op}",
                f"the {nav.name} of a {et.name}",
                json_response(f"a page of {target.set_name}", ref(f"{target.name}Collection")),
                COLLECTION_OPTIONS,
            ),
            "post": _post(
                f"create{op}",
                f"create a {target.name} related to the {et.name}, or link an existing one",
                target,
                body,
            ),
        },
        f"{path}/$ref": {
            "parameters": [ID_PARAMETER],
            "get": _get(
                f"list{op}Refs",
                f"links to the {nav.name} of a {et.name}",
                json_response("a page of links", ref("RefCollection")),
                COLLECTION_OPTIONS,
            ),
        },
    }
