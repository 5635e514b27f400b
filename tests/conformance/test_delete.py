"""Delete: status and body, 404s, query options, integrity cascades, id reuse, v1.0."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.cud_support import (
    SETS,
    World,
    assert_error,
    build_world,
    counts,
    foi,
    obs,
    snapshot,
)
from tests.support import BASE, Client, datastream, location, make_client, sensor, thing

FIELD = {
    "Things": "thing",
    "Locations": "location",
    "HistoricalLocations": "hl",
    "Datastreams": "datastream",
    "Sensors": "sensor",
    "ObservedProperties": "prop",
    "Observations": "observation",
    "FeaturesOfInterest": "foi",
}


def all_ids(client: Client) -> dict[str, set[int]]:
    return {name: set(client.ids(name)) for name in SETS}


def world_ids(w: World) -> dict[str, int]:
    return {name: getattr(w, field) for name, field in FIELD.items()}


@pytest.mark.parametrize("entity_set", SETS)
def test_delete_answers_200_empty_and_entity_is_gone(client: Client, entity_set: str) -> None:
    w = build_world(client)
    eid = world_ids(w)[entity_set]
    resp = client.delete(f"{entity_set}({eid})")
    assert resp.status_code == 200, resp.text
    assert resp.content == b""
    assert_error(client.get(f"{entity_set}({eid})"), 404)
    assert eid not in client.ids(entity_set)


@pytest.mark.parametrize("entity_set", SETS)
def test_delete_missing_entity_is_404(client: Client, entity_set: str) -> None:
    build_world(client)
    before = snapshot(client)
    assert_error(client.delete(f"{entity_set}(999)"), 404)
    assert snapshot(client) == before


def test_delete_twice_is_404_the_second_time(client: Client) -> None:
    w = build_world(client)
    assert client.delete(f"Observations({w.observation})").status_code == 200
    assert_error(client.delete(f"Observations({w.observation})"), 404)


@pytest.mark.parametrize(
    "query",
    ["$filter=name eq 'W'", "$expand=Datastreams", "$top=1", "$select=name", "$count=true"],
)
def test_delete_with_query_options_is_400(client: Client, query: str) -> None:
    w = build_world(client)
    before = snapshot(client)
    assert_error(client.delete(f"Things({w.thing})?{query}"), 400)
    assert snapshot(client) == before


@pytest.mark.parametrize(
    "path", ["Things", "Things(1)/name", "Things(1)/Datastreams", "Datastreams(1)/Observations"]
)
def test_delete_on_collection_or_property_is_rejected(client: Client, path: str) -> None:
    build_world(client)
    before = snapshot(client)
    resp = client.delete(path)
    assert resp.status_code in (400, 405), resp.text
    assert_error(resp, resp.status_code)
    assert snapshot(client) == before


def test_delete_through_navigation_path(client: Client) -> None:
    w = build_world(client)
    resp = client.delete(f"Things({w.thing})/Datastreams({w.datastream})")
    assert resp.status_code == 200, resp.text
    assert_error(client.get(f"Datastreams({w.datastream})"), 404)
    assert client.ids(f"Things({w.thing})/Datastreams") == []
    assert client.ok("GET", f"Things({w.thing})")["@iot.id"] == w.thing


# --- cascades ---------------------------------------------------------------------------------

CASCADES = {
    "Things": {"Things", "HistoricalLocations", "Datastreams", "Observations"},
    "Locations": {"Locations", "HistoricalLocations"},
    "HistoricalLocations": {"HistoricalLocations"},
    "Datastreams": {"Datastreams", "Observations"},
    "Sensors": {"Sensors", "Datastreams", "Observations"},
    "ObservedProperties": {"ObservedProperties", "Datastreams", "Observations"},
    "FeaturesOfInterest": {"FeaturesOfInterest", "Observations"},
    "Observations": {"Observations"},
}


@pytest.mark.parametrize("entity_set", SETS)
def test_delete_cascade(client: Client, entity_set: str) -> None:
    a = build_world(client, "A")
    build_world(client, "B")  # an unrelated world that must stay intact
    a_ids = world_ids(a)
    before_ids = all_ids(client)
    before = snapshot(client)
    client.ok("DELETE", f"{entity_set}({a_ids[entity_set]})")
    expected = {
        name: ids - {a_ids[name]} if name in CASCADES[entity_set] else ids
        for name, ids in before_ids.items()
    }
    assert all_ids(client) == expected
    after = snapshot(client)
    for name in SETS:
        # world B is untouched, property by property
        assert [e for e in after[name] if e["@iot.id"] != a_ids[name]] == [
            e for e in before[name] if e["@iot.id"] != a_ids[name]
        ]


def test_delete_thing_removes_location_links_but_keeps_locations(client: Client) -> None:
    w = build_world(client)
    client.ok("DELETE", f"Things({w.thing})")
    assert client.ids(f"Locations({w.location})/Things") == []
    assert client.ids(f"Locations({w.location})/HistoricalLocations") == []
    assert client.ok("GET", f"Locations({w.location})")["name"] == "W location"
    assert client.ids(f"Sensors({w.sensor})/Datastreams") == []
    assert client.ids(f"FeaturesOfInterest({w.foi})/Observations") == []


def test_delete_location_keeps_thing_without_location(client: Client) -> None:
    w = build_world(client)
    client.ok("DELETE", f"Locations({w.location})")
    assert client.ids(f"Things({w.thing})/Locations") == []
    assert client.ids(f"Things({w.thing})/HistoricalLocations") == []
    assert client.ok("GET", f"Things({w.thing})")["name"] == "W"


def test_delete_location_keeps_history_that_has_another_location(client: Client) -> None:
    tid = client.create("Things", thing("T", locations=[location("A"), location("B", 1.0, 1.0)]))
    la, lb = sorted(client.ids(f"Things({tid})/Locations"))
    [hl] = client.ids(f"Things({tid})/HistoricalLocations")
    client.ok("DELETE", f"Locations({la})")
    assert client.ids(f"HistoricalLocations({hl})/Locations") == [lb]
    assert client.ids(f"Things({tid})/Locations") == [lb]
    assert client.ids(f"Things({tid})/HistoricalLocations") == [hl]


def test_delete_location_removes_only_histories_left_empty(client: Client) -> None:
    tid = client.create("Things", thing("T", locations=[location("A")]))
    [la] = client.ids(f"Things({tid})/Locations")
    lb = client.create(f"Things({tid})/Locations", location("B", 1.0, 1.0))
    hl_a, hl_b = sorted(client.ids(f"Things({tid})/HistoricalLocations"))
    client.ok("DELETE", f"Locations({la})")
    assert client.ids(f"Things({tid})/HistoricalLocations") == [hl_b]
    assert client.ids(f"HistoricalLocations({hl_b})/Locations") == [lb]
    assert_error(client.get(f"HistoricalLocations({hl_a})"), 404)
    assert client.ids(f"Things({tid})/Locations") == [lb]


def test_delete_thing_keeps_shared_location_history_of_other_thing(client: Client) -> None:
    t1 = client.create("Things", thing("T1", locations=[location("Shared")]))
    [lid] = client.ids(f"Things({t1})/Locations")
    t2 = client.create("Things", thing("T2", Locations=[{"@iot.id": lid}]))
    [hl2] = client.ids(f"Things({t2})/HistoricalLocations")
    client.ok("DELETE", f"Things({t1})")
    assert client.ids(f"Locations({lid})/Things") == [t2]
    assert client.ids("HistoricalLocations") == [hl2]
    assert client.ids(f"Locations({lid})/HistoricalLocations") == [hl2]


def test_delete_historical_location_keeps_thing_locations(client: Client) -> None:
    w = build_world(client)
    client.ok("DELETE", f"HistoricalLocations({w.hl})")
    assert client.ids(f"Things({w.thing})/Locations") == [w.location]
    assert client.ids(f"Locations({w.location})/HistoricalLocations") == []


def test_delete_sensor_removes_all_its_datastreams(client: Client) -> None:
    w = build_world(client)
    second = client.create(
        f"Things({w.thing})/Datastreams",
        datastream(
            "Second",
            new_related=False,
            Sensor={"@iot.id": w.sensor},
            ObservedProperty={"@iot.id": w.prop},
        ),
    )
    client.create(f"Datastreams({second})/Observations", obs(1))
    other = client.create(f"Things({w.thing})/Datastreams", datastream("Other"))
    kept = client.create(f"Datastreams({other})/Observations", obs(2))
    client.ok("DELETE", f"Sensors({w.sensor})")
    assert client.ids("Datastreams") == [other]
    assert client.ids("Observations") == [kept]


def test_delete_observed_property_removes_all_its_datastreams(client: Client) -> None:
    w = build_world(client)
    second = client.create(
        f"Things({w.thing})/Datastreams",
        datastream(
            "Second", new_related=False, Sensor=sensor("S2"), ObservedProperty={"@iot.id": w.prop}
        ),
    )
    client.create(f"Datastreams({second})/Observations", obs(1))
    client.ok("DELETE", f"ObservedProperties({w.prop})")
    assert client.ids("Datastreams") == []
    assert client.ids("Observations") == []
    assert len(client.ids("Sensors")) == 2


def test_delete_feature_removes_its_observations_only(client: Client) -> None:
    w = build_world(client)
    other_foi = client.create("FeaturesOfInterest", foi("Other"))
    kept = client.create(
        f"Datastreams({w.datastream})/Observations",
        obs(2, FeatureOfInterest={"@iot.id": other_foi}),
    )
    client.ok("DELETE", f"FeaturesOfInterest({w.foi})")
    assert client.ids("Observations") == [kept]
    assert client.ids(f"Datastreams({w.datastream})/Observations") == [kept]


def test_delete_generated_feature_clears_location_pointer(client: Client) -> None:
    tid = client.create(
        "Things", thing("T", locations=[location("Spot", 2.0, 3.0)], datastreams=[datastream("D")])
    )
    [did] = client.ids(f"Things({tid})/Datastreams")
    o1 = client.create(f"Datastreams({did})/Observations", obs(1))
    gen = client.ok("GET", f"Observations({o1})/FeatureOfInterest")["@iot.id"]
    client.ok("DELETE", f"FeaturesOfInterest({gen})")
    assert client.ids("Observations") == []
    o2 = client.create(f"Datastreams({did})/Observations", obs(2))
    regen = client.ok("GET", f"Observations({o2})/FeatureOfInterest")
    assert regen["@iot.id"] != gen
    assert regen["feature"] == {"type": "Point", "coordinates": [2.0, 3.0]}
    o3 = client.create(f"Datastreams({did})/Observations", obs(3))
    assert client.ok("GET", f"Observations({o3})/FeatureOfInterest")["@iot.id"] == regen["@iot.id"]


def test_delete_observation_changes_nothing_else(client: Client) -> None:
    w = build_world(client)
    before = counts(client)
    client.ok("DELETE", f"Observations({w.observation})")
    after = counts(client)
    assert after == before | {"Observations": before["Observations"] - 1}
    assert client.ids(f"FeaturesOfInterest({w.foi})/Observations") == []


def test_delete_everything_leaves_empty_store(client: Client) -> None:
    w = build_world(client)
    for name in ("Things", "Sensors", "ObservedProperties", "FeaturesOfInterest", "Locations"):
        client.ok("DELETE", f"{name}({world_ids(w)[name]})")
    assert counts(client) == dict.fromkeys(SETS, 0)


# --- ids are never reused ---------------------------------------------------------------------


@pytest.mark.parametrize("entity_set", SETS)
def test_ids_are_not_reused_after_delete(client: Client, entity_set: str) -> None:
    w = build_world(client)
    first = world_ids(w)[entity_set]
    client.ok("DELETE", f"{entity_set}({first})")
    w2 = build_world(client, "Again")
    second = world_ids(w2)[entity_set]
    assert second > first
    client.ok("DELETE", f"{entity_set}({second})")
    w3 = build_world(client, "Third")
    assert world_ids(w3)[entity_set] > second


def test_highest_id_is_not_reused(client: Client) -> None:
    ids = [client.create("Things", thing(f"T{i}")) for i in range(3)]
    client.ok("DELETE", f"Things({ids[-1]})")
    new = client.create("Things", thing("New"))
    assert new > ids[-1]
    client.ok("DELETE", f"Things({new})")
    for i in ids[:-1]:
        client.ok("DELETE", f"Things({i})")
    assert client.create("Things", thing("Newer")) > new


def test_ids_are_not_reused_after_restart(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "restart"
    data.mkdir()
    c = make_client(data, db=db_url)
    try:
        a = c.create("Things", thing("A"))
        b = c.create("Things", thing("B"))
        c.ok("DELETE", f"Things({b})")
    finally:
        c.close()
    c = make_client(data, db=db_url)
    try:
        assert c.ids("Things") == [a]
        assert c.create("Things", thing("C")) > b
    finally:
        c.close()


# --- v1.0 -------------------------------------------------------------------------------------


def test_v10_delete(client: Client) -> None:
    w = build_world(client)
    resp = client.delete(f"/v1.0/Things({w.thing})")
    assert resp.status_code == 200, resp.text
    assert resp.content == b""
    assert_error(client.get(f"/v1.0/Things({w.thing})"), 404)
    assert client.ids("Datastreams") == []
    assert_error(client.delete(f"/v1.0/Things({w.thing})"), 404)
    assert client.get(f"{BASE}/v1.0/Sensors({w.sensor})").status_code == 200
