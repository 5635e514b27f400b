"""Descriptions of the endpoints that are not entity sets: ``$batch``,
``CreateObservations`` and ``$aggregate``. The built-in plugin contributes them through
``citytwin_openapi_paths``."""

from __future__ import annotations

from typing import Any

from citytwin.openapi.paths import BAD_REQUEST, ID_PARAMETER, NOT_FOUND, PREFIX, UNSUPPORTED

_ROW = {"type": "array", "items": {}}
_STREAM = {
    "type": "object",
    "properties": {
        "Datastream": {"type": "object", "properties": {"@iot.id": {"type": "integer"}}},
        "MultiDatastream": {"type": "object", "properties": {"@iot.id": {"type": "integer"}}},
        "components": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "dataArray": {"type": "array", "items": _ROW},
    },
    "required": ["components", "dataArray"],
}
_BUCKET = {"type": "object", "properties": {"phenomenonTime": {"type": "string"}}}


_BATCH_REQUEST = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "method": {"type": "string"},
        "url": {"type": "string"},
        "headers": {"type": "object"},
        "body": {},
        "atomicityGroup": {"type": "string"},
        "dependsOn": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["id", "method", "url"],
}


def extension_paths() -> dict[str, dict[str, Any]]:
    return {
        f"{PREFIX}/$batch": {
            "post": {
                "operationId": "batch",
                "summary": "several requests in one: JSON (OData 4.01) or multipart/mixed; "
                "change sets are atomic (docs/batch.md)",
                "tags": ["service"],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "requests": {"type": "array", "items": _BATCH_REQUEST}
                                },
                                "required": ["requests"],
                            }
                        },
                        "multipart/mixed": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "200": {
                        "description": "one answer per request, each with its own status",
                        "content": {
                            "application/json": {"schema": {"type": "object"}},
                            "multipart/mixed": {"schema": {"type": "string"}},
                        },
                    },
                    "400": BAD_REQUEST,
                    "413": BAD_REQUEST,
                    "415": UNSUPPORTED,
                },
            }
        },
        f"{PREFIX}/CreateObservations": {
            "post": {
                "operationId": "createObservations",
                "summary": "create Observations of several (Multi)Datastreams as data arrays",
                "tags": ["Observations"],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"type": "array", "items": _STREAM}}
                    },
                },
                "responses": {
                    "201": {
                        "description": "a selfLink per row, or the string error for a row "
                        "that was not stored",
                        "content": {
                            "application/json": {
                                "schema": {"type": "array", "items": {"type": "string"}}
                            }
                        },
                    },
                    "400": BAD_REQUEST,
                    "415": UNSUPPORTED,
                },
            }
        },
        f"{PREFIX}/Datastreams({{id}})/Observations/$aggregate": {
            "parameters": [ID_PARAMETER],
            "get": {
                "operationId": "aggregateObservations",
                "summary": "time-bucketed aggregates of a Datastream's numeric results "
                "(docs/aggregation.md)",
                "tags": ["Observations"],
                "parameters": [
                    {
                        "name": "interval",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "ISO 8601 interval on phenomenonTime, e.g. "
                        "2024-03-01T00:00:00Z/P1M",
                    },
                    {
                        "name": "bucket",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "ISO 8601 duration of fixed length, e.g. PT1H",
                    },
                    {
                        "name": "functions",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "comma-separated: avg, min, max, sum, count, first, last",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "one entry per non-empty bucket",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"value": {"type": "array", "items": _BUCKET}},
                                    "required": ["value"],
                                }
                            }
                        },
                    },
                    "400": BAD_REQUEST,
                    "404": NOT_FOUND,
                },
            },
        },
    }
