"""Sensing core: data model, resource paths and request data (OGC 18-088 A.1-A.3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import ENTITY_SETS, ROOT, Client, datastream, location, make_client, thing

NAVIGATION = {
    "Things": ["Locations", "HistoricalLocations", "Datastreams"],
    "Locations": ["Things", "HistoricalLocations"],
    "HistoricalLocations": ["Thing", "Locations"],
    "Datastreams": ["Thing", "Sensor", "ObservedProperty", "Observations"],
    "Sensors": ["Datastreams"],
    "ObservedProperties": ["Datastreams"],
    "Observations": ["Datastream", "FeatureOfInterest"],
    "FeaturesOfInterest": ["Observations"],
}


@pytest.fixture
def city(client: Client) -> dict[str, Any]:
    """Two Things; the first with two Datastreams and 5 Observations each."""
    t1 = client.create(
        "Things",
        thing(
            "Station A",
            locations=[location("Square", 8.06, 51.40)],
            datastreams=[datastream("Temperature A"), datastream("Humidity A")],
            properties={"owner": "city"},
        ),
    )
    t2 = client.create("Things", thing("Station B", locations=[location("Park", 8.07, 51.41)]))
    ds = client.ids(f"Things({t1})/Datastreams")
    obs: dict[int, list[int]] = {d: [] for d in ds}
    for d in ds:
        for i in range(5):
            obs[d].append(
                client.create(
                    f"Datastreams({d})/Observations",
                    {"result": i, "phenomenonTime": f"2024-03-01T1{i}:00:00Z"},
                )
            )
    return {"things": [t1, t2], "datastreams": ds, "observations": obs}


# --- landing page ---------------------------------------------------------------------------
def test_landing_page_lists_every_entity_set_with_absolute_urls(client: Client) -> None:
    body = client.ok("GET", "/v1.1")
    assert [v["name"] for v in body["value"]][: len(ENTITY_SETS)] == list(ENTITY_SETS)
    assert "MultiDatastreams" in [v["name"] for v in body["value"]]
    for v in body["value"]:
        assert v["url"] == f"{ROOT}/{v['name']}"
    conformance = body["serverSettings"]["conformance"]
    base = "http://www.opengis.net/spec/iot_sensing/1.1/req/"
    assert {c for c in conformance if c.startswith(base)} == {
        base + "datamodel",
        base + "resource-path/resource-path-to-entities",
        base + "request-data",
        base + "create-update-delete",
        base + "multi-datastream",
        base + "data-array/data-array",
        base + "batch-request/batch-request",
    }
    assert body["serverSettings"]["citytwin"]["version"]


def test_landing_page_of_v1_0_links_to_v1_0(client: Client) -> None:
    body = client.ok("GET", "/v1.0/")
    assert body["value"][0]["url"] == "http://testserver/v1.0/Things"


def test_unknown_version_is_404(client: Client) -> None:
    resp = client.get("/v2.0/Things")
    assert resp.status_code == 404
    assert "v2.0" in resp.json()["message"]


# --- entity control information -------------------------------------------------------------
@pytest.mark.parametrize("entity_set", ENTITY_SETS)
def test_every_entity_carries_id_selflink_and_navigation_links(
    client: Client, city: dict[str, Any], entity_set: str
) -> None:
    entities = client.values(entity_set)
    assert entities, entity_set
    for e in entities:
        assert isinstance(e["@iot.id"], int)
        assert e["@iot.selfLink"] == f"{ROOT}/{entity_set}({e['@iot.id']})"
        for nav in NAVIGATION[entity_set]:
            assert e[f"{nav}@iot.navigationLink"] == f"{e['@iot.selfLink']}/{nav}"


@pytest.mark.parametrize("entity_set", ENTITY_SETS)
def test_every_navigation_link_resolves(
    client: Client, city: dict[str, Any], entity_set: str
) -> None:
    entity = client.values(entity_set)[0]
    for nav in NAVIGATION[entity_set]:
        body = client.ok("GET", entity[f"{nav}@iot.navigationLink"])
        if nav.endswith("s") and nav != "Thing":
            assert "value" in body
        else:
            assert "@iot.id" in body


def test_observation_always_shows_result_and_result_time(client: Client, city: Any) -> None:
    obs = client.values("Observations")[0]
    assert "resultTime" in obs
    assert obs["resultTime"] is None
    assert "result" in obs


# --- resource paths -------------------------------------------------------------------------
def test_entity_by_id_and_missing_entity(client: Client, city: dict[str, Any]) -> None:
    t1 = city["things"][0]
    assert client.ok("GET", f"Things({t1})")["name"] == "Station A"
    missing = client.get("Things(999999)")
    assert missing.status_code == 404
    assert missing.json()["type"] == "error"


def test_quoted_integer_id_is_accepted_and_text_id_rejected(client: Client, city: Any) -> None:
    t1 = city["things"][0]
    assert client.ok("GET", f"Things('{t1}')")["@iot.id"] == t1
    resp = client.get("Things(abc)")
    assert resp.status_code == 400
    assert "integer" in resp.json()["message"]


def test_navigation_to_many_to_one_and_nested(client: Client, city: dict[str, Any]) -> None:
    t1 = city["things"][0]
    d1, d2 = city["datastreams"]
    assert client.ids(f"Things({t1})/Datastreams") == [d1, d2]
    assert client.ok("GET", f"Datastreams({d1})/Thing")["@iot.id"] == t1
    nested = client.ids(f"Things({t1})/Datastreams({d2})/Observations")
    assert nested == city["observations"][d2]
    deep = client.ok("GET", f"Things({t1})/Datastreams({d1})/Sensor/Datastreams")
    assert [d["@iot.id"] for d in deep["value"]] == [d1]
    obs = city["observations"][d1][0]
    assert client.ok("GET", f"Observations({obs})/Datastream/Thing")["@iot.id"] == t1


def test_nested_path_with_unrelated_entity_is_404(client: Client, city: dict[str, Any]) -> None:
    t2 = city["things"][1]
    d1 = city["datastreams"][0]
    assert client.get(f"Things({t2})/Datastreams({d1})").status_code == 404
    assert client.get(f"Things({t2})/Datastreams({d1})/Observations").status_code == 404
    assert client.get(f"Things({t2})/Datastreams({d1})/Sensor").status_code == 404


def test_collection_under_missing_entity_is_404(client: Client, city: Any) -> None:
    assert client.get("Things(424242)/Datastreams").status_code == 404


def test_property_value_and_null_property(client: Client, city: dict[str, Any]) -> None:
    t1, t2 = city["things"]
    assert client.ok("GET", f"Things({t1})/name") == {"name": "Station A"}
    raw = client.get(f"Things({t1})/name/$value")
    assert raw.status_code == 200
    assert raw.text == "Station A"
    assert raw.headers["content-type"].startswith("text/plain")
    assert client.ok("GET", f"Things({t1})/properties") == {"properties": {"owner": "city"}}
    props = client.get(f"Things({t1})/properties/$value")
    assert props.json() == {"owner": "city"}
    assert client.ok("GET", f"Things({t1})/properties/owner") == {"owner": "city"}
    assert client.get(f"Things({t2})/properties").status_code == 204
    assert client.get(f"Things({t2})/properties/$value").status_code == 204


def test_time_property_value(client: Client, city: dict[str, Any]) -> None:
    obs = city["observations"][city["datastreams"][0]][0]
    assert client.get(f"Observations({obs})/phenomenonTime/$value").text == ("2024-03-01T10:00:00Z")
    assert client.ok("GET", f"Observations({obs})/result") == {"result": 0}


def test_ref_on_collection_and_single_navigation(client: Client, city: dict[str, Any]) -> None:
    t1 = city["things"][0]
    d1, d2 = city["datastreams"]
    refs = client.ok("GET", f"Things({t1})/Datastreams/$ref")
    assert refs["value"] == [
        {"@iot.selfLink": f"{ROOT}/Datastreams({d1})"},
        {"@iot.selfLink": f"{ROOT}/Datastreams({d2})"},
    ]
    single = client.ok("GET", f"Datastreams({d1})/Thing/$ref")
    assert single == {"@iot.selfLink": f"{ROOT}/Things({t1})"}
    counted = client.ok("GET", f"Datastreams({d1})/Observations/$ref?$count=true&$top=2")
    assert counted["@iot.count"] == 5
    assert len(counted["value"]) == 2
    assert "@iot.nextLink" in counted


@pytest.mark.parametrize(
    "path",
    [
        "Thingz",
        "Things(1)/Foo",
        "Things(1)/name/extra",
        "Things/name",
        "Things(1)/Datastreams/name",
        "Datastreams(1)/Thing(2)",
        "Things(1)/$ref/x",
        "Things(1)/name/$ref",
    ],
)
def test_bad_paths_are_404_with_message(client: Client, city: Any, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 404, resp.text
    assert resp.json()["message"]


def test_head_answers_like_get_without_body(client: Client, city: Any) -> None:
    ok = client.head("Things")
    assert ok.status_code == 200
    assert ok.content == b""
    assert client.head("Things?$filter=name eq").status_code == 400
    assert client.head("Things(999999)").status_code == 404


# --- $select --------------------------------------------------------------------------------
def test_select_properties_only(client: Client, city: Any) -> None:
    things = client.values("Things?$select=name")
    assert things == [{"name": "Station A"}, {"name": "Station B"}]


def test_select_id_alias_and_navigation_link(client: Client, city: dict[str, Any]) -> None:
    t1, _t2 = city["things"]
    for alias in ("id", "@iot.id"):
        things = client.values(f"Things?$select={alias},Datastreams")
        assert things[0] == {
            "@iot.selfLink": f"{ROOT}/Things({t1})",
            "@iot.id": t1,
            "Datastreams@iot.navigationLink": f"{ROOT}/Things({t1})/Datastreams",
        }


def test_select_json_sub_property(client: Client, city: dict[str, Any]) -> None:
    t1 = city["things"][0]
    body = client.ok("GET", f"Things({t1})?$select=properties/owner,name")
    assert body == {"name": "Station A", "properties": {"owner": "city"}}


def test_select_unknown_property_is_400(client: Client, city: Any) -> None:
    resp = client.get("Things?$select=nmae")
    assert resp.status_code == 400
    assert "nmae" in resp.json()["message"]


# --- $expand --------------------------------------------------------------------------------
def test_expand_to_many_and_to_one(client: Client, city: dict[str, Any]) -> None:
    t1 = city["things"][0]
    d1 = city["datastreams"][0]
    body = client.ok("GET", f"Things({t1})?$expand=Datastreams,Locations")
    assert [d["@iot.id"] for d in body["Datastreams"]] == city["datastreams"]
    assert body["Locations"][0]["name"] == "Square"
    assert "Datastreams@iot.navigationLink" not in body
    assert "HistoricalLocations@iot.navigationLink" in body
    # expanded entities carry no navigation links of their own
    assert not any(k.endswith("@iot.navigationLink") for k in body["Datastreams"][0])
    obs = client.values(f"Datastreams({d1})/Observations?$expand=Datastream($select=name)")
    assert all(o["Datastream"] == {"name": "Temperature A"} for o in obs)


def test_expand_with_inner_options_count_and_next_link(
    client: Client, city: dict[str, Any]
) -> None:
    t1 = city["things"][0]
    _d1, _d2 = city["datastreams"]
    url = (
        f"Things({t1})/Datastreams?$expand=Observations("
        "$filter=result ge 1;$orderby=phenomenonTime desc;$top=2;$skip=1;$count=true;"
        "$select=result)"
    )
    body = client.ok("GET", url)
    for ds in body["value"]:
        assert ds["Observations@iot.count"] == 4
        assert ds["Observations"] == [{"result": 3}, {"result": 2}]
        rest = client.values(ds["Observations@iot.nextLink"])
        assert rest == [{"result": 1}]


def test_expand_without_count_or_more_items_has_no_annotations(
    client: Client, city: dict[str, Any]
) -> None:
    d1 = city["datastreams"][0]
    body = client.ok("GET", f"Datastreams({d1})?$expand=Observations($top=10)")
    assert len(body["Observations"]) == 5
    assert "Observations@iot.count" not in body
    assert "Observations@iot.nextLink" not in body


def test_nested_expand_and_path_form_are_equal(client: Client, city: dict[str, Any]) -> None:
    t1 = city["things"][0]
    a = client.ok("GET", f"Things({t1})?$expand=Datastreams/Observations/FeatureOfInterest")
    b = client.ok(
        "GET",
        f"Things({t1})?$expand=Datastreams($expand=Observations($expand=FeatureOfInterest))",
    )
    assert a == b
    foi = a["Datastreams"][0]["Observations"][0]["FeatureOfInterest"]
    assert foi["feature"] == location("Square", 8.06, 51.40)["location"]


def test_expand_latest_observation_of_each_datastream(client: Client, city: dict[str, Any]) -> None:
    url = "Datastreams?$expand=Observations($top=1;$orderby=phenomenonTime desc)"
    body = client.ok("GET", url)
    latest = {d["@iot.id"]: d["Observations"][0]["result"] for d in body["value"]}
    assert latest == {d: 4 for d in city["datastreams"]}


def test_expand_unknown_navigation_is_400(client: Client, city: Any) -> None:
    resp = client.get("Things?$expand=Sensors")
    assert resp.status_code == 400
    assert "Sensors" in resp.json()["message"]


def test_select_navigation_with_expand_returns_the_expansion(
    client: Client, city: dict[str, Any]
) -> None:
    t1 = city["things"][0]
    body = client.ok("GET", f"Things({t1})?$select=id,Locations&$expand=Locations")
    assert set(body) == {"@iot.id", "@iot.selfLink", "Locations"}
    assert body["Locations"][0]["name"] == "Square"


# --- $orderby, $top, $skip, $count and paging -----------------------------------------------
def test_orderby_several_keys(client: Client, city: dict[str, Any]) -> None:
    obs = client.values("Observations?$orderby=result desc,Datastream/name asc&$select=result")
    assert [o["result"] for o in obs] == [4, 4, 3, 3, 2, 2, 1, 1, 0, 0]


def test_top_skip_count(client: Client, city: Any) -> None:
    body = client.ok("GET", "Observations?$top=3&$skip=2&$count=true&$orderby=id")
    assert body["@iot.count"] == 10
    all_ids = client.ids("Observations?$orderby=id")
    assert [o["@iot.id"] for o in body["value"]] == all_ids[2:5]
    assert "@iot.nextLink" in body
    assert "@iot.count" not in client.ok("GET", "Observations?$count=false")


def test_no_next_link_on_the_last_page(client: Client, city: Any) -> None:
    body = client.ok("GET", "Observations?$top=4&$skip=6")
    assert len(body["value"]) == 4
    assert "@iot.nextLink" not in body


@pytest.mark.parametrize(
    "query",
    [
        "",
        "$orderby=phenomenonTime desc",
        "$orderby=result",
        "$orderby=Datastream/name desc,result",
        "$filter=result gt 0",
        "$skip=3",
    ],
)
def test_following_next_links_visits_each_entity_once_with_a_stable_count(
    tmp_path: Path, db_url: str, query: str
) -> None:
    c = make_client(tmp_path, db=db_url, default_page_size=2, max_page_size=100)
    try:
        tid = c.create("Things", thing("T", locations=[location()], datastreams=[datastream()]))
        did = c.ids(f"Things({tid})/Datastreams")[0]
        for i in range(9):
            c.create(
                f"Datastreams({did})/Observations",
                {"result": i % 4, "phenomenonTime": f"2024-01-0{i + 1}T00:00:00Z"},
            )
        url = "Observations?$count=true" + (f"&{query}" if query else "")
        everything = c.ok("GET", url + "&$top=100")
        expected = [o["@iot.id"] for o in everything["value"]]
        seen: list[int] = []
        counts = set()
        next_url: str | None = url
        while next_url:
            body = c.ok("GET", next_url)
            assert len(body["value"]) <= 2
            counts.add(body["@iot.count"])
            seen.extend(o["@iot.id"] for o in body["value"])
            next_url = body.get("@iot.nextLink")
            if next_url:
                assert next_url.startswith("http://testserver/v1.1/Observations?")
        assert seen == expected
        assert counts == {everything["@iot.count"]}
        assert len(expected) == everything["@iot.count"] - (3 if "skip" in query else 0)
    finally:
        c.close()


def test_top_above_maximum_is_capped_with_next_link(small_pages: Client) -> None:
    c = small_pages
    for i in range(7):
        c.create("Things", thing(f"T{i}"))
    body = c.ok("GET", "Things?$top=1000")
    assert len(body["value"]) == 5
    assert "$top=5" in body["@iot.nextLink"]
    rest = c.ok("GET", body["@iot.nextLink"])
    assert len(rest["value"]) == 2
    assert "@iot.nextLink" not in rest


def test_tampered_skiptoken_is_400(client: Client, city: Any) -> None:
    resp = client.get("Observations?$skiptoken=!!notatoken")
    assert resp.status_code == 400
    assert "skiptoken" in resp.json()["message"]


@pytest.mark.parametrize(
    ("query", "word"),
    [
        ("$top=-1", "$top"),
        ("$top=abc", "$top"),
        ("$skip=x", "$skip"),
        ("$count=yes", "$count"),
        ("$foo=1", "$foo"),
        ("$top=1&$top=2", "$top"),
        ("$orderby=name sideways", "$orderby"),
        ("$expand=Datastreams($top=x)", "$expand"),
    ],
)
def test_bad_query_options_are_400_naming_the_option(
    client: Client, city: Any, query: str, word: str
) -> None:
    resp = client.get(f"Things?{query}")
    assert resp.status_code == 400, resp.text
    assert word in resp.json()["message"]


def test_unsupported_result_format_is_refused_not_ignored(client: Client, city: Any) -> None:
    resp = client.get("Observations?$resultFormat=XLSX")
    assert resp.status_code == 400
    assert "$resultFormat=XLSX is not supported" in resp.json()["message"]
    assert "dataArray" in resp.json()["message"]  # the supported ones are named
    assert len(client.values("Things?$resultFormat=default")) == 2


def test_non_dollar_parameters_are_ignored(client: Client, city: Any) -> None:
    assert len(client.values("Things?foo=bar")) == 2


def test_v1_0_serves_the_same_data_with_its_own_links(client: Client, city: Any) -> None:
    a = client.ok("GET", "/v1.0/Things")
    b = client.ok("GET", "/v1.1/Things")
    assert [t["name"] for t in a["value"]] == [t["name"] for t in b["value"]]
    assert a["value"][0]["@iot.selfLink"].startswith("http://testserver/v1.0/Things(")


def test_health_and_root_redirect(client: Client, backend: str) -> None:
    health = client.ok("GET", "/health")
    assert health["status"] == "ok"
    assert health["database"] == backend
    resp = client.get("/")
    assert resp.status_code == 307
    assert resp.headers["location"] == "http://testserver/v1.1"
