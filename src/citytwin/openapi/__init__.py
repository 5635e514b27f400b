"""An OpenAPI 3.1 description of the whole service, generated from the model registry.

Every entity type the registry holds, the built-in ones and those plugins add, gets its
paths (collection, entity, properties, ``$value``, navigation one level deep, ``$ref``)
and its schemas (see :mod:`citytwin.openapi.schemas` for their names), so the
description follows the model without being edited by hand.

Features that are not entity types (``$batch``, actions such as ``CreateObservations``)
describe their own paths: a plugin implements the ``citytwin_openapi_paths`` hook and
returns ``{path: OpenAPI Path Item}``; paths start with ``/v1.1`` and may reference the
component schemas by name. A path described twice is an error, raised when the
description is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from citytwin import __version__
from citytwin.model import Registry
from citytwin.openapi.paths import (
    BAD_REQUEST,
    NOT_FOUND,
    PREFIX,
    UNAUTHORIZED,
    PathItem,
    entity_set_paths,
    json_response,
    parameters,
    responses,
)
from citytwin.openapi.schemas import components

__all__ = ["OPENAPI_PATH", "ApiDescription", "PathItem", "describe"]

OPENAPI_PATH = "/openapi.json"
"""Where the HTTP adapter serves the description, beside ``/health``."""

OPENAPI_VERSION = "3.1.0"


def _page(op_id: str, summary: str, ok: dict[str, Any]) -> PathItem:
    return {"get": {"operationId": op_id, "summary": summary, "tags": ["service"], "responses": ok}}


def service_pages() -> dict[str, PathItem]:
    """The paths that are not entity sets: landing page, health, metrics, this document."""
    landing = {
        "type": "object",
        "properties": {
            "value": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "url": {"type": "string", "format": "uri"},
                    },
                    "required": ["name", "url"],
                },
            },
            "serverSettings": {
                "type": "object",
                "properties": {"conformance": {"type": "array", "items": {"type": "string"}}},
                "required": ["conformance"],
            },
        },
        "required": ["value", "serverSettings"],
    }
    health = {
        "type": "object",
        "properties": {
            "status": {"const": "ok"},
            "version": {"type": "string"},
            "database": {"type": "string", "examples": ["sqlite", "postgresql"]},
            "mqtt": {"type": "string"},
        },
        "required": ["status", "version", "database", "mqtt"],
    }
    return {
        "/": {
            "get": {
                "operationId": "root",
                "summary": "redirects to the service root",
                "tags": ["service"],
                "responses": {"307": {"description": f"to {PREFIX}"}},
            }
        },
        PREFIX: _page(
            "landingPage",
            "the entity sets and the server's conformance classes (also under /v1.0)",
            {"200": json_response("the landing page", landing)},
        ),
        "/health": _page(
            "health", "whether the service is up", {"200": json_response("up", health)}
        ),
        "/metrics": _page(
            "metrics",
            "Prometheus metrics",
            {
                "200": {
                    "description": "in the Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        ),
        OPENAPI_PATH: _page(
            "openapi",
            "this description",
            {"200": json_response("OpenAPI 3.1", {"type": "object"})},
        ),
        "/api/v1/session": session_paths(),
    }


def session_paths() -> dict[str, Any]:
    """Signing a browser in (docs/security.md, "The browser")."""
    who = {
        "type": "object",
        "properties": {
            "accessControl": {"type": "boolean"},
            "signedIn": {"type": "boolean"},
            "identity": {"type": "string"},
            "role": {"enum": ["admin", "operator", "reader", "public"]},
            "organisation": {"type": ["string", "null"]},
            "expires": {"type": "integer", "description": "Unix seconds"},
            "mqtt": {
                "type": "object",
                "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
            },
        },
        "required": ["accessControl", "signedIn"],
    }
    return {
        "get": {
            "operationId": "getSession",
            "summary": "who this client is; signed in, a token for its MQTT connection",
            "tags": ["service"],
            "responses": {"200": json_response("the session", who)},
        },
        "post": {
            "operationId": "signIn",
            "summary": "sign in with an API key; sets the session cookie",
            "tags": ["service"],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"key": {"type": "string"}},
                            "required": ["key"],
                        }
                    }
                },
            },
            "responses": {
                "200": json_response("signed in", who),
                "400": BAD_REQUEST,
                "401": UNAUTHORIZED,
                "404": NOT_FOUND,
            },
        },
        "delete": {
            "operationId": "signOut",
            "summary": "sign out; clears the session cookie",
            "tags": ["service"],
            "responses": {"204": {"description": "signed out"}, "404": NOT_FOUND},
        },
    }


def describe(
    registry: Registry, contributed: Iterable[Mapping[str, PathItem]] = ()
) -> dict[str, Any]:
    """The OpenAPI document of the service with ``registry``'s entity types and the path
    items ``contributed`` by plugins (without ``servers``; see :class:`ApiDescription`)."""
    paths = service_pages()
    for part in [entity_set_paths(et, registry) for et in registry] + list(contributed):
        for path, item in part.items():
            if path in paths:
                raise ValueError(f"the OpenAPI path {path} is described twice")
            paths[path] = dict(item)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "citytwin: OGC SensorThings API 1.1",
            "version": __version__,
            "description": (
                "The SensorThings API of citytwin. Every path under /v1.1 is also served "
                "under /v1.0. Paths to properties inside JSON (e.g. "
                "/Things({id})/properties/owner) and to entities through longer navigation "
                "(e.g. /Things({id})/Datastreams({id2})/Observations) work as in the "
                "SensorThings standard and are not listed one by one."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": [{"name": "service"}] + [{"name": et.set_name} for et in registry],
        "paths": paths,
        "components": {
            "schemas": components(registry),
            "parameters": parameters(),
            "responses": responses(),
            "securitySchemes": SECURITY_SCHEMES,
        },
        # anonymous requests read open data; credentials widen what a request may do
        "security": [{}, *({name: []} for name in SECURITY_SCHEMES)],
    }


SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "an API key, a session token, or an OpenID Connect access token",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": "citytwin_session",
        "description": "set by POST /api/v1/session (browsers)",
    },
}


class ApiDescription:
    """The document, made on first use, as JSON for each service root URL asked for."""

    def __init__(
        self, registry: Registry, contributed: Iterable[Mapping[str, PathItem]] = ()
    ) -> None:
        self._registry = registry
        self._contributed = list(contributed)
        self._document: dict[str, Any] | None = None
        self._encoded: dict[str, bytes] = {}

    @property
    def document(self) -> dict[str, Any]:
        if self._document is None:
            self._document = describe(self._registry, self._contributed)
        return self._document

    def json(self, base_url: str) -> bytes:
        """The document with ``base_url`` (scheme://host[/prefix]) as its server."""
        encoded = self._encoded.get(base_url)
        if encoded is None:
            if len(self._encoded) >= 16:  # Host headers are the client's to choose
                self._encoded.clear()
            encoded = orjson.dumps({**self.document, "servers": [{"url": base_url}]})
            self._encoded[base_url] = encoded
        return encoded
