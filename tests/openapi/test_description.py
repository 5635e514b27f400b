"""The OpenAPI description: valid, complete for every entity type, and served."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis

from citytwin.model import EntityType, Kind, Property
from citytwin.openapi import OPENAPI_PATH, ApiDescription, describe
from citytwin.plugins.hookspecs import hookimpl
from citytwin.plugins.manager import build_registry, plugin_manager
from tests.support import BASE, REGISTRY, Client, datastream, location, make_client, thing

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

GADGET = EntityType(
    name="Gadget",
    set_name="Gadgets",
    table="gadgets",
    properties=(
        Property("name", Kind.STRING, "name", required=True, nullable=False),
        Property("installed", Kind.INSTANT, "installed"),
    ),
    navigations=(),
)


class GadgetPlugin:
    """An outside plugin: one more entity type and one endpoint that is not an entity set."""

    @hookimpl
    def citytwin_entity_types(self) -> Sequence[EntityType]:
        return (GADGET,)

    @hookimpl
    def citytwin_openapi_paths(self, registry: Any) -> Mapping[str, Mapping[str, Any]]:
        return {
            "/v1.1/Gadgets/$wake": {
                "post": {
                    "operationId": "wakeGadgets",
                    "responses": {
                        "200": {
                            "description": "woken",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/GadgetCollection"}
                                }
                            },
                        }
                    },
                }
            }
        }


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], pointer: str) -> Any:
    assert pointer.startswith("#/"), pointer
    node: Any = document
    for part in pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def assert_valid(document: dict[str, Any]) -> None:
    """Valid against the OpenAPI 3.1 meta-schema, and every reference resolves."""
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()
    for pointer in set(_refs(document)):
        _resolve(document, pointer)
    op_ids = [
        op["operationId"]
        for item in document["paths"].values()
        for key, op in item.items()
        if key != "parameters"
    ]
    assert len(op_ids) == len(set(op_ids)), "operationIds repeat"
    assert len(list(schema.get_all_operations())) == len(op_ids)
    for component in document["components"]["schemas"].values():
        jsonschema_rs.meta.validate({"$schema": DRAFT_2020_12, **component})


def test_the_description_is_valid_openapi_3_1() -> None:
    document = describe(REGISTRY)
    assert document["openapi"].startswith("3.1")
    assert_valid(document)


def test_a_broken_description_fails_validation() -> None:
    document = describe(REGISTRY)
    document["paths"]["/v1.1/Things"]["get"]["parameters"].append({"name": "x", "in": "body"})
    with pytest.raises(jsonschema_rs.ValidationError):
        schemathesis.openapi.from_dict(document).validate()


def test_every_entity_set_has_its_paths_and_operations() -> None:
    paths = describe(REGISTRY)["paths"]
    for et in REGISTRY:
        base = f"/v1.1/{et.set_name}"
        assert set(paths[base]) == {"get", "post"}
        assert set(paths[f"{base}/$ref"]) == {"get"}
        assert set(paths[f"{base}({{id}})"]) == {"parameters", "get", "patch", "put", "delete"}
        patch = paths[f"{base}({{id}})"]["patch"]["requestBody"]["content"]
        assert set(patch) >= {"application/json", "application/json-patch+json"}
        for prop in et.properties:
            assert "get" in paths[f"{base}({{id}})/{prop.name}"]
            assert "get" in paths[f"{base}({{id}})/{prop.name}/$value"]
        for nav in et.navigations:
            item = paths[f"{base}({{id}})/{nav.name}"]
            methods = {"parameters", "get", "post"} if nav.many else {"parameters", "get"}
            assert set(item) == methods
            assert "get" in paths[f"{base}({{id}})/{nav.name}/$ref"]
    for page in ("/v1.1", "/health", OPENAPI_PATH):
        assert "get" in paths[page]


def test_collections_take_every_query_option() -> None:
    document = describe(REGISTRY)
    get = document["paths"]["/v1.1/Observations"]["get"]
    names = {_resolve(document, p["$ref"])["name"] for p in get["parameters"]}
    assert names == {
        "$filter",
        "$select",
        "$expand",
        "$orderby",
        "$top",
        "$skip",
        "$count",
        "$skiptoken",
        "$resultFormat",
    }


def test_create_schemas_require_what_the_registry_requires() -> None:
    schemas = describe(REGISTRY)["components"]["schemas"]
    for et in REGISTRY:
        required_navs = [n.name for n in et.navigations if n.required]
        assert schemas[f"{et.name}Create"].get("required", []) == [*et.required, *required_navs]
        not_null = {p.name for p in et.writable if not p.nullable}
        assert set(schemas[f"{et.name}Put"].get("required", [])) == {*et.required, *not_null}
        assert "required" not in schemas[f"{et.name}Patch"]
        read = schemas[et.name]["properties"]
        assert {p.name for p in et.properties} <= set(read)
        assert {n.name for n in et.navigations} <= set(read)
    # the path implies the Datastream of Datastreams(1)/Observations
    under = schemas["DatastreamObservationsCreate"]
    assert "Datastream" not in under["properties"]
    assert under["required"] == ["result"]
    # server-maintained properties are read, never written
    assert schemas["Datastream"]["properties"]["phenomenonTime"]["readOnly"] is True
    assert "phenomenonTime" not in schemas["DatastreamCreate"]["properties"]


def test_value_types_follow_the_property_kinds() -> None:
    schemas = describe(REGISTRY)["components"]["schemas"]
    thing = schemas["ThingCreate"]["properties"]
    assert thing["name"]["type"] == "string"
    assert thing["properties"]["type"] == ["object", "null"]
    observation = schemas["Observation"]["properties"]
    assert observation["resultTime"]["type"] == ["string", "null"]  # shown as null
    assert observation["resultTime"]["format"] == "date-time"
    assert "type" not in observation["result"]  # any JSON


def test_entity_types_and_paths_of_plugins_appear() -> None:
    pm = plugin_manager(entry_points=False)
    pm.register(GadgetPlugin(), name="gadgets")
    registry = build_registry(pm)
    document = describe(registry, pm.hook.citytwin_openapi_paths(registry=registry))
    assert_valid(document)
    paths = document["paths"]
    assert set(paths["/v1.1/Gadgets"]) == {"get", "post"}
    assert "get" in paths["/v1.1/Gadgets({id})/installed/$value"]
    assert "post" in paths["/v1.1/Gadgets/$wake"]
    schemas = document["components"]["schemas"]
    assert schemas["GadgetCreate"]["required"] == ["name"]
    assert schemas["Gadget"]["properties"]["installed"]["format"] == "date-time"


def test_a_path_described_twice_is_an_error() -> None:
    twice = {"/v1.1/Things": {"get": {"responses": {"200": {"description": "again"}}}}}
    with pytest.raises(ValueError, match=r"/v1\.1/Things is described twice"):
        describe(REGISTRY, [twice])


def test_the_document_is_made_once_and_names_each_server() -> None:
    api = ApiDescription(REGISTRY)
    first = api.json("http://a.example")
    assert api.document is api.document
    assert b'"servers":[{"url":"http://a.example"}]' in first
    assert api.json("http://a.example") is first
    assert b'"url":"https://b.example/sta"' in api.json("https://b.example/sta")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    tmp: Path = tmp_path_factory.mktemp("openapi")
    c = make_client(tmp, db=f"sqlite:///{tmp}/citytwin.db")
    yield c
    c.close()


def test_the_service_serves_its_description(app: Client) -> None:
    resp = app.get(OPENAPI_PATH)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    document = resp.json()
    assert document["servers"] == [{"url": BASE}]
    del document["servers"]
    contributed = plugin_manager().hook.citytwin_openapi_paths(registry=REGISTRY)
    assert document == describe(REGISTRY, contributed)
    assert "/v1.1/CreateObservations" in document["paths"]
    assert "/v1.1/$batch" in document["paths"]
    assert "/v1.1/Datastreams({id})/Observations/$aggregate" in document["paths"]
    assert app.head(OPENAPI_PATH).status_code == 200
    # every route under /api/v1 is described, and how a request says who it is
    api = {p for p in document["paths"] if p.startswith("/api/v1/")}
    served = {r.path for r in app.app.routes if getattr(r, "path", "").startswith("/api/v1/")} - {
        "/api/v1/ui-config"
    }  # the page's own configuration, not an API
    assert served <= api, served - api
    assert set(document["paths"]["/api/v1/session"]) == {"get", "post", "delete"}
    schemes = document["components"]["securitySchemes"]
    assert schemes["session"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "citytwin_session",
        "description": "set by POST /api/v1/session (browsers)",
    }
    assert {} in document["security"]  # anonymous requests are allowed (open data)


def test_the_landing_page_links_the_description(app: Client) -> None:
    landing = app.ok("GET", "/v1.1")
    assert landing["serverSettings"]["citytwin"]["openapi"] == f"{BASE}{OPENAPI_PATH}"
    assert app.get(landing["serverSettings"]["citytwin"]["openapi"]).status_code == 200


def _example_body(schema: dict[str, Any], ids: dict[str, int], et: EntityType) -> dict[str, Any]:
    """The required properties' examples, with a link to every related entity made so far
    (an Observation needs its FeatureOfInterest when its Thing has no Location)."""
    body: dict[str, Any] = {
        name: schema["properties"][name]["examples"][0]
        for name in schema.get("required", [])
        if et.navigation(name) is None
    }
    for nav in et.navigations:
        if not nav.many and nav.target in ids:
            body[nav.name] = {"@iot.id": ids[nav.target]}
    if et.name == "MultiDatastream":  # as many ObservedProperties as the examples' arrays
        body["ObservedProperties"] = [{"@iot.id": ids["ObservedProperty"]}]
    for alt in schema.get("oneOf", [])[1:]:  # exactly one of them: the first is linked
        body.pop(alt["required"][0], None)
    return body


def test_the_examples_of_each_create_schema_make_an_entity(app: Client) -> None:
    """The documented examples are what the service accepts, so a client (or schemathesis)
    that follows them creates entities."""
    schemas = describe(REGISTRY)["components"]["schemas"]
    ids: dict[str, int] = {}
    pending = list(REGISTRY)
    while pending:
        ready = [
            et
            for et in pending
            if all(n.target in ids for n in et.navigations if n.required)
            and all(  # of "exactly one of" relations, the first one's target
                et.navigation(alt["required"][0]).target in ids  # type: ignore[union-attr]
                for alt in schemas[f"{et.name}Create"].get("oneOf", [])[:1]
            )
        ]
        assert ready, f"required relations go round in a circle: {[et.name for et in pending]}"
        for et in ready:
            body = _example_body(schemas[f"{et.name}Create"], ids, et)
            ids[et.name] = app.create(et.set_name, body)
            pending.remove(et)
    assert set(ids) == {et.name for et in REGISTRY}


def test_expanded_reads_match_the_read_schemas(app: Client) -> None:
    document = describe(REGISTRY)
    tid = app.create(
        "Things",
        thing("Read", locations=[location()], datastreams=[datastream("A"), datastream("B")]),
    )
    for did in app.ids(f"Things({tid})/Datastreams"):
        app.create(f"Datastreams({did})/Observations", {"result": 1.5})
    reads = {
        "ThingCollection": "Things?$expand=Locations,Datastreams($top=1;$count=true;"
        "$expand=Observations,Sensor)&$count=true&$top=1",
        "Thing": f"Things({tid})?$select=name,properties&$expand=HistoricalLocations",
        "ObservationCollection": "Observations?$expand=FeatureOfInterest,Datastream",
        "RefCollection": f"Things({tid})/Datastreams/$ref",
    }
    for name, url in reads.items():
        validator = jsonschema_rs.Draft202012Validator(
            {"$ref": f"#/components/schemas/{name}", "components": document["components"]},
            validate_formats=True,
        )
        body = app.ok("GET", url)
        errors = [str(e) for e in validator.iter_errors(body)]
        assert not errors, (url, errors, body)
        assert not validator.is_valid({"value": [{"unknown": 1}], "@iot.id": 1})
