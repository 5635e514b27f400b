"""OpenAPI description of the domain API under /api/v1 (see docs/domains.md)."""

from __future__ import annotations

from typing import Any

from citytwin.openapi.paths import BAD_REQUEST, NOT_FOUND

_TAG = ["domains"]
_LIST = {
    "type": "object",
    "properties": {"value": {"type": "array", "items": {"type": "object"}}},
    "required": ["value"],
}
_KPI = {
    "type": "object",
    "properties": {
        "domain": {"type": "string"},
        "kpi": {"type": "string"},
        "title": {"type": "string"},
        "unit": {"type": "string"},
        "area": {"type": "string"},
        "interval": {"type": "string"},
        "value": {"type": ["number", "boolean", "null"]},
        "values": {"type": "object"},
        "units": {"type": "object"},
        "series": {"type": "array", "items": {"type": "object"}},
        "items": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["domain", "kpi", "area", "interval", "value", "values", "series", "items"],
}
_FEATURES = {
    "type": "object",
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["type", "features"],
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _name(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": "string"}, "description": description}


def domain_paths() -> dict[str, dict[str, Any]]:
    return {
        "/api/v1/domains": {
            "get": {
                "operationId": "listDomains",
                "summary": "the installed domain packages with their KPIs and templates",
                "tags": _TAG,
                "responses": {"200": _json(_LIST, "the domains")},
            }
        },
        "/api/v1/areas": {
            "get": {
                "operationId": "listAreas",
                "summary": "the city, its districts and neighbourhoods",
                "tags": _TAG,
                "responses": {"200": _json(_LIST, "the areas")},
            }
        },
        "/api/v1/kpis/{domain}/{kpi}": {
            "parameters": [_name("domain", "a domain's name"), _name("kpi", "a KPI's key")],
            "get": {
                "operationId": "computeKpi",
                "summary": "a KPI for an area and a period",
                "tags": _TAG,
                "parameters": [
                    _query("area", "city, district:<name> or neighbourhood:<name>"),
                    _query("interval", "ISO 8601 interval; default the last 24 hours"),
                    _query("bucket", "fixed-length ISO 8601 duration, at least PT1M"),
                ],
                "responses": {
                    "200": _json(_KPI, "the KPI"),
                    "400": BAD_REQUEST,
                    "404": NOT_FOUND,
                },
            },
        },
        "/api/v1/packages": {
            "get": {
                "operationId": "listPackages",
                "summary": "the solution packages installed on this platform (docs/packages.md)",
                "tags": _TAG,
                "responses": {"200": _json(_LIST, "the installed packages")},
            }
        },
        "/api/v1/sensors": {
            "get": {
                "operationId": "getSensorFeed",
                "summary": "every Thing's place and each Datastream's latest value, column by "
                "column (the map's first picture; see docs/ui.md)",
                "tags": _TAG,
                "responses": {
                    "200": {"description": "the sensors", "content": {"application/json": {}}}
                },
            }
        },
        "/api/v1/layers": {
            "get": {
                "operationId": "listLayers",
                "summary": "the city's GeoJSON layers",
                "tags": _TAG,
                "responses": {"200": _json(_LIST, "the layers")},
            }
        },
        "/api/v1/layers/{name}": {
            "parameters": [_name("name", "the layer's name: a-z, 0-9, - and _")],
            "get": {
                "operationId": "getLayer",
                "summary": "one layer",
                "tags": _TAG,
                "responses": {
                    "200": {
                        "description": "the layer",
                        "content": {"application/geo+json": {"schema": _FEATURES}},
                    },
                    "404": NOT_FOUND,
                },
            },
            "put": {
                "operationId": "putLayer",
                "summary": "store or replace a layer",
                "tags": _TAG,
                "requestBody": {
                    "required": True,
                    "content": {"application/geo+json": {"schema": _FEATURES}},
                },
                "responses": {
                    "201": {"description": "stored as a new layer"},
                    "204": {"description": "the layer was replaced"},
                    "400": BAD_REQUEST,
                    "404": NOT_FOUND,
                    "413": BAD_REQUEST,
                },
            },
        },
    }
