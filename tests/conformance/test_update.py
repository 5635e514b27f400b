"""Update: PATCH (merge), PUT (replace), JSON-Patch (RFC 6902), Location changes through
updates, and the server-maintained Datastream phenomenonTime/resultTime."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conformance.cud_support import (
    JSON_PATCH,
    World,
    assert_error,
    assert_recent,
    at,
    build_world,
    counts,
    foi,
    nav_id,
    obs,
    parse_period,
    snapshot,
    without_links,
)
from tests.support import (
    BASE,
    Client,
    datastream,
    location,
    observed_property,
    point,
    sensor,
    thing,
)


def url_of(w: World, entity_set: str) -> str:
    ids = {
        "Things": w.thing,
        "Locations": w.location,
        "HistoricalLocations": w.hl,
        "Datastreams": w.datastream,
        "Sensors": w.sensor,
        "ObservedProperties": w.prop,
        "Observations": w.observation,
        "FeaturesOfInterest": w.foi,
    }
    return f"{entity_set}({ids[entity_set]})"


# --- PATCH ------------------------------------------------------------------------------------

PATCHES = [
    ("Things", "description", "patched description"),
    ("Things", "name", "patched name"),
    ("Things", "properties", {"new": [1, 2]}),
    ("Locations", "location", point(1.5, 2.5)),
    ("Locations", "name", "renamed"),
    ("HistoricalLocations", "time", "2015-03-01T00:40:00Z"),
    ("Sensors", "metadata", "https://example.org/other-metadata"),
    ("Sensors", "encodingType", "application/pdf"),
    ("ObservedProperties", "definition", "https://example.org/def/other"),
    ("FeaturesOfInterest", "feature", point(9.0, 9.5)),
    (
        "Datastreams",
        "unitOfMeasurement",
        {"name": "Kelvin", "symbol": "K", "definition": "http://unitsofmeasure.org/ucum#K"},
    ),
    (
        "Datastreams",
        "observationType",
        "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Observation",
    ),
    ("Observations", "phenomenonTime", "2023-06-01T10:00:00Z"),
    ("Observations", "result", "changed"),
    ("Observations", "result", None),
    ("Observations", "resultTime", "2023-06-01T11:00:00Z"),
    ("Observations", "parameters", {"depth": 3}),
]


@pytest.mark.parametrize(
    ("entity_set", "key", "value"),
    PATCHES,
    ids=[f"{s}-{k}-{i}" for i, (s, k, _) in enumerate(PATCHES)],
)
def test_patch_changes_only_the_given_property(
    client: Client, entity_set: str, key: str, value: Any
) -> None:
    w = build_world(client)
    url = url_of(w, entity_set)
    before = client.ok("GET", url)
    resp = client.patch(url, {key: value})
    assert resp.status_code == 200, resp.text
    after = client.ok("GET", url)
    assert resp.json() == after
    assert key in after
    assert after[key] == value
    for k, v in before.items():
        if k != key:
            assert after.get(k) == v, (k, before, after)
    assert set(after) - {key} == set(before) - {key}


def test_patch_keeps_relations(client: Client) -> None:
    w = build_world(client)
    client.ok("PATCH", f"Datastreams({w.datastream})", {"name": "renamed"})
    assert nav_id(client, f"Datastreams({w.datastream})/Thing") == w.thing
    assert nav_id(client, f"Datastreams({w.datastream})/Sensor") == w.sensor
    assert nav_id(client, f"Datastreams({w.datastream})/ObservedProperty") == w.prop
    assert client.ids(f"Datastreams({w.datastream})/Observations") == [w.observation]


def test_patch_relinks_datastream_sensor(client: Client) -> None:
    w = build_world(client)
    new_sensor = client.create("Sensors", sensor("Replacement"))
    before = counts(client)
    client.ok("PATCH", f"Datastreams({w.datastream})", {"Sensor": {"@iot.id": new_sensor}})
    assert nav_id(client, f"Datastreams({w.datastream})/Sensor") == new_sensor
    assert client.ids(f"Sensors({w.sensor})/Datastreams") == []
    assert client.ids(f"Sensors({new_sensor})/Datastreams") == [w.datastream]
    assert counts(client) == before


def test_patch_relinks_datastream_thing_and_property(client: Client) -> None:
    w = build_world(client)
    other_thing = client.create("Things", thing("Other"))
    other_prop = client.create("ObservedProperties", observed_property("Other"))
    client.ok(
        "PATCH",
        f"Datastreams({w.datastream})",
        {"Thing": {"@iot.id": other_thing}, "ObservedProperty": {"@iot.id": other_prop}},
    )
    assert nav_id(client, f"Datastreams({w.datastream})/Thing") == other_thing
    assert nav_id(client, f"Datastreams({w.datastream})/ObservedProperty") == other_prop
    assert client.ids(f"Things({w.thing})/Datastreams") == []


def test_patch_relinks_observation_datastream_and_feature(client: Client) -> None:
    w = build_world(client)
    other_ds = client.create(f"Things({w.thing})/Datastreams", datastream("Other"))
    other_foi = client.create("FeaturesOfInterest", foi("Other"))
    client.ok(
        "PATCH",
        f"Observations({w.observation})",
        {"Datastream": {"@iot.id": other_ds}, "FeatureOfInterest": {"@iot.id": other_foi}},
    )
    assert nav_id(client, f"Observations({w.observation})/Datastream") == other_ds
    assert nav_id(client, f"Observations({w.observation})/FeatureOfInterest") == other_foi
    assert client.ids(f"Datastreams({w.datastream})/Observations") == []
    assert client.ids(f"Datastreams({other_ds})/Observations") == [w.observation]


def test_patch_relink_to_missing_entity_is_400(client: Client) -> None:
    w = build_world(client)
    before = snapshot(client)
    resp = client.patch(f"Datastreams({w.datastream})", {"Sensor": {"@iot.id": 99}})
    assert_error(resp, 400, "99")
    assert snapshot(client) == before
    assert nav_id(client, f"Datastreams({w.datastream})/Sensor") == w.sensor


INLINE_PATCHES: list[tuple[str, dict[str, Any]]] = [
    ("Things", {"Locations": [location("Inline")]}),
    ("Things", {"Datastreams": [datastream("Inline")]}),
    (
        "Sensors",
        {
            "Datastreams": [
                datastream(
                    "Inline",
                    new_related=False,
                    Thing={"@iot.id": 1},
                    ObservedProperty={"@iot.id": 1},
                )
            ]
        },
    ),
    (
        "ObservedProperties",
        {
            "Datastreams": [
                datastream("Inline", new_related=False, Thing={"@iot.id": 1}, Sensor={"@iot.id": 1})
            ]
        },
    ),
    ("Datastreams", {"Sensor": sensor("Inline")}),
    ("Datastreams", {"ObservedProperty": observed_property("Inline")}),
    ("Datastreams", {"Thing": thing("Inline")}),
    ("Datastreams", {"Observations": [obs(5)]}),
    ("Observations", {"FeatureOfInterest": foi("Inline")}),
    ("Locations", {"Things": [thing("Inline")]}),
]


@pytest.mark.parametrize(
    ("entity_set", "body"), INLINE_PATCHES, ids=[f"{s}-{next(iter(b))}" for s, b in INLINE_PATCHES]
)
def test_patch_with_inline_new_entity_is_400(
    client: Client, entity_set: str, body: dict[str, Any]
) -> None:
    w = build_world(client)
    before = snapshot(client)
    assert_error(client.patch(url_of(w, entity_set), body), 400)
    assert snapshot(client) == before


@pytest.mark.parametrize("entity_set", ["Things", "Datastreams", "Observations", "Sensors"])
def test_patch_missing_entity_is_404(client: Client, entity_set: str) -> None:
    build_world(client)
    before = snapshot(client)
    assert_error(
        client.patch(
            f"{entity_set}(999)", {"name": "x"} if entity_set != "Observations" else {"result": 1}
        ),
        404,
    )
    assert snapshot(client) == before


@pytest.mark.parametrize("entity_set", ["Things", "Locations", "Sensors", "Datastreams"])
def test_patch_properties_null_clears_it(client: Client, entity_set: str) -> None:
    w = build_world(client)
    url = url_of(w, entity_set)
    client.ok("PATCH", url, {"properties": {"a": 1}})
    assert client.ok("GET", url)["properties"] == {"a": 1}
    client.ok("PATCH", url, {"properties": None})
    got = client.ok("GET", url)
    assert got.get("properties") is None
    assert got["name"]


def test_patch_observation_optional_properties_null_clears_them(client: Client) -> None:
    w = build_world(client)
    url = f"Observations({w.observation})"
    client.ok("PATCH", url, {"resultTime": "2024-01-01T00:00:00Z", "parameters": {"a": 1}})
    client.ok("PATCH", url, {"resultTime": None, "parameters": None})
    got = client.ok("GET", url)
    assert "resultTime" in got
    assert got["resultTime"] is None
    assert got.get("parameters") is None


MANDATORY_NULLS = [
    ("Things", "name"),
    ("Things", "description"),
    ("Locations", "location"),
    ("Locations", "encodingType"),
    ("Sensors", "metadata"),
    ("ObservedProperties", "definition"),
    ("FeaturesOfInterest", "feature"),
    ("Datastreams", "unitOfMeasurement"),
    ("Datastreams", "observationType"),
    ("Datastreams", "Sensor"),
    ("Datastreams", "Thing"),
    ("Observations", "Datastream"),
    ("HistoricalLocations", "time"),
]


@pytest.mark.parametrize(
    ("entity_set", "key"), MANDATORY_NULLS, ids=[f"{s}-{k}" for s, k in MANDATORY_NULLS]
)
def test_patch_mandatory_to_null_is_400(client: Client, entity_set: str, key: str) -> None:
    w = build_world(client)
    before = snapshot(client)
    assert_error(client.patch(url_of(w, entity_set), {key: None}), 400, key)
    assert snapshot(client) == before


@pytest.mark.parametrize(
    ("entity_set", "body", "key"),
    [
        ("Things", {"name": 5}, "name"),
        ("Things", {"properties": [1]}, "properties"),
        ("Things", {"colour": "red"}, "colour"),
        ("Locations", {"location": {"type": "Point", "coordinates": [8.0, 100.0]}}, "location"),
        ("Observations", {"phenomenonTime": "yesterday"}, "phenomenonTime"),
        ("Observations", {"validTime": "2024-01-01T00:00:00Z"}, "validTime"),
        ("HistoricalLocations", {"time": "soon"}, "time"),
        ("Datastreams", {"unitOfMeasurement": "Cel"}, "unitOfMeasurement"),
    ],
)
def test_patch_with_invalid_value_is_400(
    client: Client, entity_set: str, body: dict[str, Any], key: str
) -> None:
    w = build_world(client)
    before = snapshot(client)
    assert_error(client.patch(url_of(w, entity_set), body), 400, key)
    assert snapshot(client) == before


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"[1]", b'"x"'], ids=["empty", "truncated", "array", "string"]
)
def test_patch_with_unusable_body_is_400(client: Client, raw: bytes) -> None:
    w = build_world(client)
    before = snapshot(client)
    resp = client.request(
        "PATCH", f"Things({w.thing})", content=raw, headers={"content-type": "application/json"}
    )
    assert_error(resp, 400)
    assert snapshot(client) == before


def test_patch_with_text_plain_is_415(client: Client) -> None:
    w = build_world(client)
    resp = client.request(
        "PATCH",
        f"Things({w.thing})",
        content=json.dumps({"name": "x"}).encode(),
        headers={"content-type": "text/plain"},
    )
    assert_error(resp, 415)
    assert client.ok("GET", f"Things({w.thing})")["name"] == "W"


def test_patch_ignores_matching_id_in_body(client: Client) -> None:
    w = build_world(client)
    body = client.ok("PATCH", f"Things({w.thing})", {"@iot.id": w.thing, "name": "same id"})
    assert body["@iot.id"] == w.thing
    assert client.ok("GET", f"Things({w.thing})")["name"] == "same id"
    assert counts(client)["Things"] == 1


def test_patch_on_entity_via_navigation_path(client: Client) -> None:
    w = build_world(client)
    body = client.ok("PATCH", f"Things({w.thing})/Datastreams({w.datastream})", {"name": "via nav"})
    assert body["name"] == "via nav"
    assert client.ok("GET", f"Datastreams({w.datastream})")["name"] == "via nav"


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_on_collection_or_property_is_405(client: Client, method: str) -> None:
    w = build_world(client)
    before = snapshot(client)
    for path in ("Things", f"Things({w.thing})/name", f"Things({w.thing})/Datastreams"):
        resp = client.request(method, path, json=thing("X"))
        assert_error(resp, 405)
    assert snapshot(client) == before


# --- Locations changed through updates --------------------------------------------------------


def test_patch_thing_locations_replaces_and_records_history(client: Client) -> None:
    tid = client.create("Things", thing("T", locations=[location("A"), location("B", 1.0, 1.0)]))
    old = sorted(client.ids(f"Things({tid})/Locations"))
    new = client.create("Locations", location("C", 2.0, 2.0))
    hl_before = counts(client)["HistoricalLocations"]
    client.ok("PATCH", f"Things({tid})", {"Locations": [{"@iot.id": new}]})
    assert client.ids(f"Things({tid})/Locations") == [new]
    for lid in old:
        assert client.ids(f"Locations({lid})/Things") == []
        assert client.ok("GET", f"Locations({lid})")["@iot.id"] == lid
    assert counts(client)["HistoricalLocations"] == hl_before + 1
    hls = client.values(f"Things({tid})/HistoricalLocations?$expand=Locations&$orderby=id")
    assert len(hls) == 2
    assert sorted(loc["@iot.id"] for loc in hls[0]["Locations"]) == old
    assert [loc["@iot.id"] for loc in hls[1]["Locations"]] == [new]
    assert_recent(hls[1]["time"])


def test_patch_thing_with_two_location_references(client: Client) -> None:
    tid = client.create("Things", thing("T", locations=[location("A")]))
    l2 = client.create("Locations", location("B", 1.0, 1.0))
    l3 = client.create("Locations", location("C", 2.0, 2.0))
    client.ok("PATCH", f"Things({tid})", {"Locations": [{"@iot.id": l2}, {"@iot.id": l3}]})
    assert sorted(client.ids(f"Things({tid})/Locations")) == [l2, l3]
    newest = client.values(f"Things({tid})/HistoricalLocations?$expand=Locations&$orderby=id")[-1]
    assert sorted(loc["@iot.id"] for loc in newest["Locations"]) == [l2, l3]


def test_patch_thing_without_locations_keeps_them_and_history(client: Client) -> None:
    tid = client.create("Things", thing("T", locations=[location("A")]))
    [lid] = client.ids(f"Things({tid})/Locations")
    client.ok("PATCH", f"Things({tid})", {"description": "no move"})
    assert client.ids(f"Things({tid})/Locations") == [lid]
    assert counts(client)["HistoricalLocations"] == 1


# --- PUT --------------------------------------------------------------------------------------


def test_put_replaces_all_properties(client: Client) -> None:
    tid = client.create("Things", thing("T", properties={"keep": "me?"}))
    resp = client.put(f"Things({tid})", {"name": "Put name", "description": "Put description"})
    assert resp.status_code == 200, resp.text
    got = client.ok("GET", f"Things({tid})")
    assert resp.json() == got
    assert got["name"] == "Put name"
    assert got["description"] == "Put description"
    assert got.get("properties") is None


@pytest.mark.parametrize(
    ("entity_set", "body"),
    [
        ("Sensors", sensor("Put sensor")),
        ("ObservedProperties", observed_property("PutProp")),
        ("Locations", location("Put location", 3.0, 3.0)),
        ("FeaturesOfInterest", foi("Put feature", 4.0, 4.0)),
        ("Datastreams", datastream("Put ds", new_related=False)),
        ("Observations", {"result": "99", "phenomenonTime": "2022-02-02T02:02:02Z"}),
        ("HistoricalLocations", {"time": "2019-01-01T00:00:00Z"}),
    ],
)
def test_put_each_type(client: Client, entity_set: str, body: dict[str, Any]) -> None:
    w = build_world(client)
    url = url_of(w, entity_set)
    if entity_set in ("Observations", "HistoricalLocations"):
        client.ok(
            "PATCH",
            url,
            {"resultTime": "2024-01-01T00:00:00Z"}
            if entity_set == "Observations"
            else {"time": "2001-01-01T00:00:00Z"},
        )
    else:
        client.ok("PATCH", url, {"properties": {"x": 1}})
    got = client.ok("PUT", url, body)
    assert got == client.ok("GET", url)
    computed = (
        {"phenomenonTime", "resultTime", "observedArea"} if entity_set == "Datastreams" else set()
    )
    expected = {k: v for k, v in body.items() if not k[0].isupper()}
    if entity_set == "Observations":
        expected["resultTime"] = None
    assert {k: v for k, v in without_links(got).items() if k not in computed} == expected


def test_put_keeps_relations(client: Client) -> None:
    w = build_world(client)
    client.ok(
        "PUT",
        f"Observations({w.observation})",
        {"result": 2, "phenomenonTime": "2024-01-01T00:00:00Z"},
    )
    assert nav_id(client, f"Observations({w.observation})/Datastream") == w.datastream
    assert nav_id(client, f"Observations({w.observation})/FeatureOfInterest") == w.foi
    client.ok("PUT", f"Datastreams({w.datastream})", datastream("P", new_related=False))
    assert nav_id(client, f"Datastreams({w.datastream})/Thing") == w.thing
    assert nav_id(client, f"Datastreams({w.datastream})/Sensor") == w.sensor


def test_put_relinks_by_reference(client: Client) -> None:
    w = build_world(client)
    other = client.create("Sensors", sensor("Other"))
    client.ok(
        "PUT",
        f"Datastreams({w.datastream})",
        datastream("P", new_related=False, Sensor={"@iot.id": other}),
    )
    assert nav_id(client, f"Datastreams({w.datastream})/Sensor") == other


@pytest.mark.parametrize(
    ("entity_set", "body", "missing"),
    [
        ("Things", {"name": "only name"}, "description"),
        ("Sensors", {k: v for k, v in sensor("S").items() if k != "metadata"}, "metadata"),
        (
            "Datastreams",
            {
                k: v
                for k, v in datastream("D", new_related=False).items()
                if k != "unitOfMeasurement"
            },
            "unitOfMeasurement",
        ),
        ("Locations", {k: v for k, v in location("L").items() if k != "location"}, "location"),
        ("Observations", {"phenomenonTime": "2022-02-02T02:02:02Z"}, "result"),
        # filled in by the server on create, but PUT would clear it (was a 500)
        ("Observations", {"result": None}, "phenomenonTime"),
    ],
)
def test_put_without_mandatory_property_is_400(
    client: Client, entity_set: str, body: dict[str, Any], missing: str
) -> None:
    w = build_world(client)
    before = snapshot(client)
    assert_error(client.put(url_of(w, entity_set), body), 400, missing)
    assert snapshot(client) == before


def test_put_accepts_body_with_id(client: Client) -> None:
    w = build_world(client)
    body = {"@iot.id": w.sensor, **sensor("Frost style", properties={"v": 2})}
    got = client.ok("PUT", f"Sensors({w.sensor})", body)
    assert got["@iot.id"] == w.sensor
    assert got["name"] == "Frost style"
    assert client.ok("GET", f"Sensors({w.sensor})")["properties"] == {"v": 2}
    assert counts(client)["Sensors"] == 1


def test_put_missing_entity_is_404(client: Client) -> None:
    build_world(client)
    before = snapshot(client)
    assert_error(client.put("Things(999)", thing("X")), 404)
    assert snapshot(client) == before


def test_put_with_inline_new_entity_is_400(client: Client) -> None:
    w = build_world(client)
    before = snapshot(client)
    resp = client.put(f"Things({w.thing})", thing("X", Datastreams=[datastream("Inline")]))
    assert_error(resp, 400)
    assert snapshot(client) == before


def test_put_keeps_server_computed_datastream_times(client: Client) -> None:
    w = build_world(client)
    before = client.ok("GET", f"Datastreams({w.datastream})")
    assert before.get("phenomenonTime")
    client.ok("PUT", f"Datastreams({w.datastream})", datastream("P", new_related=False))
    after = client.ok("GET", f"Datastreams({w.datastream})")
    assert after.get("phenomenonTime") == before["phenomenonTime"]


def test_put_thing_locations_replaces_and_records_history(client: Client) -> None:
    tid = client.create("Things", thing("T", locations=[location("A")]))
    l2 = client.create("Locations", location("B", 1.0, 1.0))
    client.ok("PUT", f"Things({tid})", thing("T2", Locations=[{"@iot.id": l2}]))
    assert client.ids(f"Things({tid})/Locations") == [l2]
    assert counts(client)["HistoricalLocations"] == 2


# --- JSON-Patch -------------------------------------------------------------------------------


def json_patch(client: Client, url: str, ops: Any, method: str = "PATCH") -> Any:
    return client.request(method, url, content=json.dumps(ops).encode(), headers=JSON_PATCH)


@pytest.mark.parametrize("entity_set", ["Things", "Datastreams", "Sensors", "Locations"])
def test_json_patch_add_copy_move(client: Client, entity_set: str) -> None:
    w = build_world(client)
    url = url_of(w, entity_set)
    before = client.ok("GET", url)
    steps = [
        ([{"op": "add", "path": "/properties", "value": {"key1": 1}}], {"key1": 1}),
        (
            [{"op": "copy", "from": "/properties/key1", "path": "/properties/keyCopy1"}],
            {"key1": 1, "keyCopy1": 1},
        ),
        (
            [{"op": "move", "from": "/properties/key1", "path": "/properties/key2"}],
            {"keyCopy1": 1, "key2": 1},
        ),
    ]
    for ops, expected in steps:
        resp = json_patch(client, url, ops)
        assert resp.status_code == 200, resp.text
        got = client.ok("GET", url)
        assert got["properties"] == expected
    got = client.ok("GET", url)
    for k, v in before.items():
        if k != "properties":
            assert got[k] == v


def test_json_patch_several_ops_in_one_request(client: Client) -> None:
    w = build_world(client)
    ops = [
        {"op": "add", "path": "/properties", "value": {"key1": 1}},
        {"op": "copy", "from": "/properties/key1", "path": "/properties/keyCopy1"},
        {"op": "move", "from": "/properties/key1", "path": "/properties/key2"},
        {"op": "add", "path": "/properties/list", "value": [1, 2]},
        {"op": "add", "path": "/properties/list/-", "value": 3},
        {"op": "remove", "path": "/properties/list/0"},
        {"op": "test", "path": "/properties/keyCopy1", "value": 1},
    ]
    resp = json_patch(client, f"Things({w.thing})", ops)
    assert resp.status_code == 200, resp.text
    assert client.ok("GET", f"Things({w.thing})")["properties"] == {
        "keyCopy1": 1,
        "key2": 1,
        "list": [2, 3],
    }


@pytest.mark.parametrize("entity_set", ["Things", "Datastreams"])
def test_json_patch_replace_name(client: Client, entity_set: str) -> None:
    w = build_world(client)
    url = url_of(w, entity_set)
    resp = json_patch(client, url, [{"op": "replace", "path": "/name", "value": "JP name"}])
    assert resp.status_code == 200, resp.text
    got = client.ok("GET", url)
    assert got["name"] == "JP name"
    assert resp.json() == got


def test_json_patch_replace_description_frost_client_style(client: Client) -> None:
    w = build_world(client)
    resp = json_patch(
        client,
        f"Things({w.thing})",
        [{"op": "replace", "path": "/description", "value": "patched"}],
    )
    assert resp.status_code == 200, resp.text
    assert client.ok("GET", f"Things({w.thing})")["description"] == "patched"


def test_json_patch_failing_test_op_changes_nothing(client: Client) -> None:
    w = build_world(client)
    before = snapshot(client)
    ops = [
        {"op": "replace", "path": "/name", "value": "should not stick"},
        {"op": "add", "path": "/properties", "value": {"a": 1}},
        {"op": "test", "path": "/description", "value": "something else"},
    ]
    assert_error(json_patch(client, f"Things({w.thing})", ops), 400)
    assert snapshot(client) == before


@pytest.mark.parametrize(
    "ops",
    [
        {"op": "replace", "path": "/name", "value": "x"},
        "replace",
        [{"op": "frobnicate", "path": "/name", "value": "x"}],
        [{"op": "replace", "value": "x"}],
        [{"op": "remove", "path": "/properties/missing"}],
        [{"op": "move", "from": "/nothing", "path": "/properties/x"}],
        [{"op": "remove", "path": "/name"}],
        [{"op": "replace", "path": "/name", "value": 12}],
        [{"op": "add", "path": "/unknownProperty", "value": 1}],
    ],
    ids=[
        "object-body",
        "string-body",
        "unknown-op",
        "no-path",
        "remove-missing",
        "move-missing",
        "remove-mandatory",
        "wrong-type",
        "unknown-property",
    ],
)
def test_json_patch_invalid_is_400(client: Client, ops: Any) -> None:
    w = build_world(client)
    client.ok("PATCH", f"Things({w.thing})", {"properties": {"a": 1}})
    before = snapshot(client)
    assert_error(json_patch(client, f"Things({w.thing})", ops), 400)
    assert snapshot(client) == before


def test_json_patch_removing_observation_phenomenon_time_is_400(client: Client) -> None:
    # the server fills it in on create; a patch cannot take it away (was a 500)
    w = build_world(client)
    before = snapshot(client)
    resp = json_patch(
        client, f"Observations({w.observation})", [{"op": "remove", "path": "/phenomenonTime"}]
    )
    assert_error(resp, 400, "phenomenonTime")
    assert snapshot(client) == before


def test_json_patch_with_put_is_415(client: Client) -> None:
    w = build_world(client)
    before = snapshot(client)
    resp = json_patch(
        client, f"Things({w.thing})", [{"op": "replace", "path": "/name", "value": "x"}], "PUT"
    )
    assert_error(resp, 415)
    assert snapshot(client) == before


def test_json_patch_with_post_is_415(client: Client) -> None:
    before = counts(client)
    resp = json_patch(client, "Things", [{"op": "add", "path": "/name", "value": "x"}], "POST")
    assert_error(resp, 415)
    assert counts(client) == before


def test_json_patch_missing_entity_is_404(client: Client) -> None:
    resp = json_patch(client, "Things(42)", [{"op": "replace", "path": "/name", "value": "x"}])
    assert_error(resp, 404)


# --- Datastream phenomenonTime / resultTime ---------------------------------------------------


def ds_times(client: Client, did: int) -> tuple[Any, Any]:
    got = client.ok("GET", f"Datastreams({did})")
    return got.get("phenomenonTime"), got.get("resultTime")


def assert_period(text: Any, start: str, end: str) -> None:
    assert text is not None, "expected a period, got none"
    s, e = parse_period(text)
    assert (s, e) == (at(start), at(end)), f"{text} != {start}/{end}"


def _ds_with_observations(client: Client) -> tuple[int, dict[str, int]]:
    tid = client.create("Things", thing("T", locations=[location()], datastreams=[datastream("D")]))
    [did] = client.ids(f"Things({tid})/Datastreams")
    ids = {
        "early": client.create(
            f"Datastreams({did})/Observations",
            obs(1, "2024-01-01T00:00:00Z", resultTime="2024-02-05T00:00:00Z"),
        ),
        "interval": client.create(
            f"Datastreams({did})/Observations",
            obs(2, "2024-01-02T00:00:00Z/2024-01-09T00:00:00Z", resultTime="2024-02-01T00:00:00Z"),
        ),
        "middle": client.create(
            f"Datastreams({did})/Observations",
            obs(3, "2024-01-05T00:00:00Z", resultTime="2024-02-03T00:00:00Z"),
        ),
        "no result time": client.create(
            f"Datastreams({did})/Observations", obs(4, "2024-01-03T00:00:00Z")
        ),
    }
    return did, ids


def test_datastream_times_cover_its_observations(client: Client) -> None:
    did, _ = _ds_with_observations(client)
    phen, res = ds_times(client, did)
    assert_period(phen, "2024-01-01T00:00:00Z", "2024-01-09T00:00:00Z")
    assert_period(res, "2024-02-01T00:00:00Z", "2024-02-05T00:00:00Z")


def test_datastream_without_observations_has_no_times(client: Client) -> None:
    tid = client.create("Things", thing("T", datastreams=[datastream("D")]))
    [did] = client.ids(f"Things({tid})/Datastreams")
    assert ds_times(client, did) == (None, None)


def test_datastream_times_shrink_after_deleting_extremes(client: Client) -> None:
    did, ids = _ds_with_observations(client)
    client.ok("DELETE", f"Observations({ids['interval']})")
    phen, res = ds_times(client, did)
    assert_period(phen, "2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z")
    assert_period(res, "2024-02-03T00:00:00Z", "2024-02-05T00:00:00Z")
    client.ok("DELETE", f"Observations({ids['early']})")
    phen, res = ds_times(client, did)
    assert_period(phen, "2024-01-03T00:00:00Z", "2024-01-05T00:00:00Z")
    assert_period(res, "2024-02-03T00:00:00Z", "2024-02-03T00:00:00Z")


def test_datastream_times_disappear_after_deleting_all(client: Client) -> None:
    did, ids = _ds_with_observations(client)
    for oid in ids.values():
        client.ok("DELETE", f"Observations({oid})")
    assert ds_times(client, did) == (None, None)


def test_datastream_result_time_disappears_when_no_observation_has_one(client: Client) -> None:
    did, ids = _ds_with_observations(client)
    for key in ("early", "interval", "middle"):
        client.ok("DELETE", f"Observations({ids[key]})")
    phen, res = ds_times(client, did)
    assert_period(phen, "2024-01-03T00:00:00Z", "2024-01-03T00:00:00Z")
    assert res is None


def test_patching_observation_time_updates_datastream(client: Client) -> None:
    did, ids = _ds_with_observations(client)
    client.ok(
        "PATCH",
        f"Observations({ids['middle']})",
        {"phenomenonTime": "2023-12-01T00:00:00Z", "resultTime": "2024-03-01T00:00:00Z"},
    )
    phen, res = ds_times(client, did)
    assert_period(phen, "2023-12-01T00:00:00Z", "2024-01-09T00:00:00Z")
    assert_period(res, "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z")
    client.ok(
        "PATCH", f"Observations({ids['interval']})", {"phenomenonTime": "2024-01-02T00:00:00Z"}
    )
    phen, _ = ds_times(client, did)
    assert_period(phen, "2023-12-01T00:00:00Z", "2024-01-03T00:00:00Z")


def test_moving_observation_updates_both_datastreams(client: Client) -> None:
    did, ids = _ds_with_observations(client)
    [tid] = client.ids("Things")
    other = client.create(f"Things({tid})/Datastreams", datastream("Other"))
    client.ok("PATCH", f"Observations({ids['interval']})", {"Datastream": {"@iot.id": other}})
    phen, res = ds_times(client, did)
    assert_period(phen, "2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z")
    assert_period(res, "2024-02-03T00:00:00Z", "2024-02-05T00:00:00Z")
    phen, res = ds_times(client, other)
    assert_period(phen, "2024-01-02T00:00:00Z", "2024-01-09T00:00:00Z")
    assert_period(res, "2024-02-01T00:00:00Z", "2024-02-01T00:00:00Z")


def test_put_observation_updates_datastream_times(client: Client) -> None:
    did, ids = _ds_with_observations(client)
    client.ok(
        "PUT",
        f"Observations({ids['middle']})",
        {"result": 3, "phenomenonTime": "2025-01-01T00:00:00Z"},
    )
    phen, res = ds_times(client, did)
    assert_period(phen, "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z")
    assert_period(res, "2024-02-01T00:00:00Z", "2024-02-05T00:00:00Z")


def test_client_sent_datastream_times_are_ignored_on_create(client: Client) -> None:
    tid = client.create("Things", thing("T", locations=[location()]))
    did = client.create(
        f"Things({tid})/Datastreams",
        datastream(
            "D",
            phenomenonTime="2000-01-01T00:00:00Z/2000-01-02T00:00:00Z",
            resultTime="2000-01-01T00:00:00Z/2000-01-02T00:00:00Z",
        ),
    )
    assert ds_times(client, did) == (None, None)
    client.create(f"Datastreams({did})/Observations", obs(1, "2024-06-01T00:00:00Z"))
    phen, res = ds_times(client, did)
    assert_period(phen, "2024-06-01T00:00:00Z", "2024-06-01T00:00:00Z")
    assert res is None


def test_client_sent_datastream_phenomenon_time_is_ignored_on_patch(client: Client) -> None:
    did, _ = _ds_with_observations(client)
    resp = client.patch(
        f"Datastreams({did})", {"phenomenonTime": "2000-01-01T00:00:00Z/2000-01-02T00:00:00Z"}
    )
    assert resp.status_code == 200, resp.text
    phen, _ = ds_times(client, did)
    assert_period(phen, "2024-01-01T00:00:00Z", "2024-01-09T00:00:00Z")


# --- v1.0 -------------------------------------------------------------------------------------


def test_v10_patch_put_and_json_patch(client: Client) -> None:
    w = build_world(client)
    body = client.ok("PATCH", f"/v1.0/Things({w.thing})", {"name": "v10 patch"})
    assert body["@iot.selfLink"] == f"{BASE}/v1.0/Things({w.thing})"
    assert body["name"] == "v10 patch"
    body = client.ok("PUT", f"/v1.0/Sensors({w.sensor})", sensor("v10 put"))
    assert body["@iot.selfLink"] == f"{BASE}/v1.0/Sensors({w.sensor})"
    assert client.ok("GET", f"Sensors({w.sensor})")["name"] == "v10 put"
    resp = json_patch(
        client,
        f"/v1.0/Things({w.thing})",
        [{"op": "add", "path": "/properties", "value": {"k": 1}}],
    )
    assert resp.status_code == 200, resp.text
    assert client.ok("GET", f"Things({w.thing})")["properties"] == {"k": 1}
    assert_error(client.patch("/v1.0/Things(99)", {"name": "x"}), 404)
