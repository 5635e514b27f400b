"""Create (POST): status, Location header and body, navigation-collection POSTs, deep insert,
linking, atomicity and validation errors. OGC 18-088 section 10 and FROST behaviour."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conformance.cud_support import (
    SETS,
    World,
    assert_error,
    assert_recent,
    at,
    build_world,
    counts,
    foi,
    nav_id,
    obs,
    parse_instant,
    parse_period,
    snapshot,
)
from tests.support import (
    BASE,
    ROOT,
    Client,
    datastream,
    location,
    observed_property,
    point,
    sensor,
    thing,
)

NAV_LINKS = {
    "Things": {"Locations", "HistoricalLocations", "Datastreams"},
    "Locations": {"Things", "HistoricalLocations"},
    "HistoricalLocations": {"Thing", "Locations"},
    "Datastreams": {"Thing", "Sensor", "ObservedProperty", "Observations"},
    "Sensors": {"Datastreams"},
    "ObservedProperties": {"Datastreams"},
    "Observations": {"Datastream", "FeatureOfInterest"},
    "FeaturesOfInterest": {"Observations"},
}


def body_for(client: Client, entity_set: str, w: World) -> dict[str, Any]:
    """A valid creation body for the set, linking to the world's entities where needed."""
    return {
        "Things": thing("New thing", properties={"k": "v"}),
        "Locations": location("New location"),
        "HistoricalLocations": {
            "time": "2020-01-01T00:00:00Z",
            "Thing": {"@iot.id": w.thing},
            "Locations": [{"@iot.id": w.location}],
        },
        "Datastreams": datastream(
            "New datastream",
            new_related=False,
            Thing={"@iot.id": w.thing},
            Sensor={"@iot.id": w.sensor},
            ObservedProperty={"@iot.id": w.prop},
        ),
        "Sensors": sensor("New sensor"),
        "ObservedProperties": observed_property("New property"),
        "Observations": obs(
            5, Datastream={"@iot.id": w.datastream}, FeatureOfInterest={"@iot.id": w.foi}
        ),
        "FeaturesOfInterest": foi("New feature"),
    }[entity_set]


# --- status, Location header, body ---------------------------------------------------------


def test_post_thing_answers_201_with_location_header_and_entity(client: Client) -> None:
    resp = client.post("Things", thing("T1", properties={"a": 1}))
    assert resp.status_code == 201, resp.text
    assert resp.headers["location"] == f"{BASE}/v1.1/Things(1)"
    body = resp.json()
    assert body["@iot.id"] == 1
    assert body["@iot.selfLink"] == f"{BASE}/v1.1/Things(1)"
    assert body["name"] == "T1"
    assert body["description"] == "T1 description"
    assert body["properties"] == {"a": 1}
    for nav in NAV_LINKS["Things"]:
        assert body[f"{nav}@iot.navigationLink"] == f"{BASE}/v1.1/Things(1)/{nav}"
    assert body == client.ok("GET", "Things(1)")


@pytest.mark.parametrize("entity_set", SETS)
def test_post_each_set_body_equals_get(client: Client, entity_set: str) -> None:
    w = build_world(client)
    before = counts(client)
    resp = client.post(entity_set, body_for(client, entity_set, w))
    assert resp.status_code == 201, resp.text
    new_location = resp.headers["location"]
    assert new_location.startswith(f"{ROOT}/{entity_set}(")
    body = resp.json()
    assert body["@iot.selfLink"] == new_location
    assert new_location == f"{ROOT}/{entity_set}({body['@iot.id']})"
    assert body == client.ok("GET", new_location)
    for nav in NAV_LINKS[entity_set]:
        assert body[f"{nav}@iot.navigationLink"] == f"{new_location}/{nav}"
    after = counts(client)
    assert after[entity_set] == before[entity_set] + 1
    for other in SETS:
        if other not in (entity_set,):
            assert after[other] == before[other], (other, before, after)


def test_post_created_entity_keeps_given_values(client: Client) -> None:
    w = build_world(client)
    for entity_set in SETS:
        body = body_for(client, entity_set, w)
        created = client.ok("POST", entity_set, body, status=201)
        for key, value in body.items():
            if key[0].isupper():
                continue
            assert created[key] == value, (entity_set, key, created)


# --- navigation collections -----------------------------------------------------------------


def test_post_to_thing_datastreams_links_the_thing(client: Client) -> None:
    w = build_world(client)
    other = client.create("Things", thing("Other"))
    ds = client.create(f"Things({other})/Datastreams", datastream("Nested"))
    assert nav_id(client, f"Datastreams({ds})/Thing") == other
    assert ds in client.ids(f"Things({other})/Datastreams")
    assert ds not in client.ids(f"Things({w.thing})/Datastreams")


def test_post_to_datastream_observations_links_the_datastream(client: Client) -> None:
    w = build_world(client)
    oid = client.create(f"Datastreams({w.datastream})/Observations", obs(7))
    assert nav_id(client, f"Observations({oid})/Datastream") == w.datastream
    assert oid in client.ids(f"Datastreams({w.datastream})/Observations")


def test_post_to_thing_locations_links_the_thing(client: Client) -> None:
    tid = client.create("Things", thing("Lonely"))
    lid = client.create(f"Things({tid})/Locations", location("Here"))
    assert client.ids(f"Things({tid})/Locations") == [lid]
    assert client.ids(f"Locations({lid})/Things") == [tid]


def test_post_to_feature_observations_links_the_feature(client: Client) -> None:
    w = build_world(client)
    fid = client.create("FeaturesOfInterest", foi("Other feature"))
    oid = client.create(
        f"FeaturesOfInterest({fid})/Observations", obs(3, Datastream={"@iot.id": w.datastream})
    )
    assert nav_id(client, f"Observations({oid})/FeatureOfInterest") == fid
    assert nav_id(client, f"Observations({oid})/Datastream") == w.datastream
    assert client.ids(f"FeaturesOfInterest({fid})/Observations") == [oid]


def test_post_to_sensor_datastreams_links_the_sensor(client: Client) -> None:
    w = build_world(client)
    sid = client.create("Sensors", sensor("S2"))
    ds = client.create(
        f"Sensors({sid})/Datastreams",
        datastream(
            "Via sensor",
            new_related=False,
            Thing={"@iot.id": w.thing},
            ObservedProperty={"@iot.id": w.prop},
        ),
    )
    assert nav_id(client, f"Datastreams({ds})/Sensor") == sid
    assert nav_id(client, f"Datastreams({ds})/Thing") == w.thing


def test_post_to_two_level_navigation_collection(client: Client) -> None:
    w = build_world(client)
    oid = client.create(f"Things({w.thing})/Datastreams({w.datastream})/Observations", obs(9))
    assert nav_id(client, f"Observations({oid})/Datastream") == w.datastream


@pytest.mark.parametrize(
    "path",
    [
        "Things(1)",
        "Things(1)/name",
        "Things(1)/properties",
        "Datastreams(1)/Thing",
        "Things(1)/Datastreams(1)",
        "Observations(1)/result/$value",
    ],
)
def test_post_to_entity_or_property_path_is_405(client: Client, path: str) -> None:
    build_world(client)
    before = snapshot(client)
    body: dict[str, Any] = thing("X") if path.startswith("Things") else obs(1)
    resp = client.post(path, body)
    assert_error(resp, 405)
    assert snapshot(client) == before


# --- wrong parent in a nested path ------------------------------------------------------------


def test_post_with_wrong_parent_in_path_is_404_and_creates_nothing(client: Client) -> None:
    a = build_world(client, "A")
    b = build_world(client, "B")
    before = counts(client)
    resp = client.post(f"Things({a.thing})/Datastreams({b.datastream})/Observations", obs(1))
    assert_error(resp, 404)
    assert counts(client) == before
    # the consistent path works
    client.create(f"Things({b.thing})/Datastreams({b.datastream})/Observations", obs(1))
    assert counts(client)["Observations"] == before["Observations"] + 1


def test_post_with_missing_parent_in_path_is_404(client: Client) -> None:
    build_world(client)
    before = counts(client)
    assert_error(client.post("Datastreams(99)/Observations", obs(1)), 404)
    assert_error(client.post("Things(99)/Datastreams", datastream("D")), 404)
    assert counts(client) == before


def test_read_and_write_with_wrong_parent_in_path_are_404(client: Client) -> None:
    a = build_world(client, "A")
    b = build_world(client, "B")
    wrong = f"Things({a.thing})/Datastreams({b.datastream})"
    assert_error(client.get(wrong), 404)
    assert_error(client.get(f"{wrong}/Observations"), 404)
    before = snapshot(client)
    assert_error(client.patch(wrong, {"name": "hijacked"}), 404)
    full = datastream("hijacked", new_related=False)
    assert_error(client.put(wrong, full), 404)
    assert_error(client.delete(wrong), 404)
    assert snapshot(client) == before
    assert (
        client.ok("GET", f"Things({b.thing})/Datastreams({b.datastream})")["@iot.id"]
        == b.datastream
    )


# --- deep insert ------------------------------------------------------------------------------


def test_deep_insert_thing_with_everything(client: Client) -> None:
    body = thing(
        "Deep",
        locations=[location("L1", 1.0, 2.0)],
        datastreams=[
            datastream(
                "D1",
                Observations=[
                    obs(1, "2024-01-01T00:00:00Z", FeatureOfInterest=foi("F1", 3.0, 4.0)),
                    obs(2, "2024-01-01T01:00:00Z"),
                ],
            ),
            datastream("D2", Observations=[obs(3, "2024-01-02T00:00:00Z")]),
        ],
    )
    resp = client.post("Things", body)
    assert resp.status_code == 201, resp.text
    tid = resp.json()["@iot.id"]
    assert counts(client) == {
        "Things": 1,
        "Locations": 1,
        "HistoricalLocations": 1,
        "Datastreams": 2,
        "Sensors": 2,
        "ObservedProperties": 2,
        "Observations": 3,
        "FeaturesOfInterest": 2,  # F1 plus one generated from L1
    }
    [loc] = client.values(f"Things({tid})/Locations")
    assert loc["name"] == "L1"
    assert loc["location"] == point(1.0, 2.0)
    dss = {d["name"]: d for d in client.values(f"Things({tid})/Datastreams")}
    assert set(dss) == {"D1", "D2"}
    for name, ds in dss.items():
        did = ds["@iot.id"]
        assert client.ok("GET", f"Datastreams({did})/Sensor")["name"] == f"{name} sensor"
        assert (
            client.ok("GET", f"Datastreams({did})/ObservedProperty")["name"] == f"{name} property"
        )
    d1_obs = client.values(
        f"Datastreams({dss['D1']['@iot.id']})/Observations?$orderby=phenomenonTime"
        "&$expand=FeatureOfInterest"
    )
    assert [o["result"] for o in d1_obs] == [1, 2]
    assert d1_obs[0]["FeatureOfInterest"]["name"] == "F1"
    assert d1_obs[0]["FeatureOfInterest"]["feature"] == point(3.0, 4.0)
    assert d1_obs[1]["FeatureOfInterest"]["feature"] == point(1.0, 2.0)
    assert d1_obs[1]["FeatureOfInterest"]["name"] == "L1"
    d2_obs = client.values(f"Datastreams({dss['D2']['@iot.id']})/Observations")
    assert [o["result"] for o in d2_obs] == [3]


def test_deep_insert_datastream_with_sensor_property_and_observations(client: Client) -> None:
    tid = client.create("Things", thing("T", locations=[location()]))
    did = client.create(
        "Datastreams",
        datastream(
            "D",
            Thing={"@iot.id": tid},
            Observations=[obs(i, f"2024-01-0{i}T00:00:00Z") for i in range(1, 4)],
        ),
    )
    assert client.ok("GET", f"Datastreams({did})/Sensor")["name"] == "D sensor"
    assert client.ok("GET", f"Datastreams({did})/ObservedProperty")["name"] == "D property"
    assert sorted(o["result"] for o in client.values(f"Datastreams({did})/Observations")) == [
        1,
        2,
        3,
    ]


def _many_observations(n: int) -> list[dict[str, Any]]:
    return [
        obs(i, f"2024-02-{1 + i // 1440:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00Z") for i in range(n)
    ]


def test_a_large_deep_insert_is_stored_whole_and_in_order(client: Client) -> None:
    """Large batches are written in chunks, the next prepared while the last is written;
    one Observation's own new FeatureOfInterest is created in the middle of that."""
    tid = client.create("Things", thing("T", locations=[location()]))
    observations = _many_observations(2500)
    observations[1500]["FeatureOfInterest"] = foi("own")
    did = client.create(
        "Datastreams", datastream("Big", Thing={"@iot.id": tid}, Observations=observations)
    )
    stored = client.values(
        f"Datastreams({did})/Observations?$orderby=phenomenonTime&$top=1000"
        "&$expand=FeatureOfInterest($select=name)"
    )
    assert [o["result"] for o in stored] == list(range(2500))
    ids = [o["@iot.id"] for o in stored]
    assert ids == sorted(ids)
    features = [o["FeatureOfInterest"]["name"] for o in stored]
    assert features[1500] == "own"
    assert features.count("own") == 1
    assert len(set(features)) == 2  # the rest share the one made from the Thing's Location


def test_a_large_deep_insert_failing_late_stores_nothing(client: Client) -> None:
    tid = client.create("Things", thing("T", locations=[location()]))
    before = counts(client)
    observations = _many_observations(2500)
    # found missing only when its row is made, after earlier chunks were written
    observations[2200]["FeatureOfInterest"] = {"@iot.id": 987654}
    resp = client.post(
        "Datastreams", datastream("Big", Thing={"@iot.id": tid}, Observations=observations)
    )
    assert_error(resp, 400, "987654")
    assert counts(client) == before


def test_deep_insert_observation_with_new_feature(client: Client) -> None:
    w = build_world(client)
    oid = client.create(
        "Observations", obs(1, Datastream={"@iot.id": w.datastream}, FeatureOfInterest=foi("NF"))
    )
    f = client.ok("GET", f"Observations({oid})/FeatureOfInterest")
    assert f["name"] == "NF"
    assert f["@iot.id"] != w.foi


def test_deep_insert_location_with_new_thing(client: Client) -> None:
    lid = client.create("Locations", location("L", Things=[thing("Inline")]))
    [t] = client.values(f"Locations({lid})/Things")
    assert t["name"] == "Inline"
    assert client.ids(f"Things({t['@iot.id']})/Locations") == [lid]


def test_link_datastream_to_existing_entities(client: Client) -> None:
    w = build_world(client)
    before = counts(client)
    did = client.create(
        "Datastreams",
        datastream(
            "Linked",
            new_related=False,
            Thing={"@iot.id": w.thing},
            Sensor={"@iot.id": w.sensor},
            ObservedProperty={"@iot.id": w.prop},
        ),
    )
    assert nav_id(client, f"Datastreams({did})/Thing") == w.thing
    assert nav_id(client, f"Datastreams({did})/Sensor") == w.sensor
    assert nav_id(client, f"Datastreams({did})/ObservedProperty") == w.prop
    after = counts(client)
    assert after["Datastreams"] == before["Datastreams"] + 1
    assert {k: v for k, v in after.items() if k != "Datastreams"} == {
        k: v for k, v in before.items() if k != "Datastreams"
    }


def test_link_with_extra_properties_ignores_them(client: Client) -> None:
    w = build_world(client)
    sensor_before = client.ok("GET", f"Sensors({w.sensor})")
    thing_before = client.ok("GET", f"Things({w.thing})")
    before = counts(client)
    did = client.create(
        "Datastreams",
        datastream(
            "Linked",
            new_related=False,
            Thing={"@iot.id": w.thing, "name": "other"},
            Sensor={"@iot.id": w.sensor, "name": "other", "description": "other"},
            ObservedProperty={"@iot.id": w.prop},
        ),
    )
    assert nav_id(client, f"Datastreams({did})/Sensor") == w.sensor
    assert nav_id(client, f"Datastreams({did})/Thing") == w.thing
    assert client.ok("GET", f"Sensors({w.sensor})") == sensor_before
    assert client.ok("GET", f"Things({w.thing})") == thing_before
    after = counts(client)
    assert after["Sensors"] == before["Sensors"]
    assert after["Things"] == before["Things"]


def test_mixing_new_and_linked_entities(client: Client) -> None:
    w = build_world(client)
    before = counts(client)
    tid = client.create(
        "Things",
        thing(
            "Mixed",
            Locations=[{"@iot.id": w.location}, location("Brand new", 9.0, 9.0)],
            Datastreams=[
                datastream(
                    "MixedDS",
                    new_related=False,
                    Sensor=sensor("New sensor"),
                    ObservedProperty={"@iot.id": w.prop},
                )
            ],
        ),
    )
    locs = {loc["name"] for loc in client.values(f"Things({tid})/Locations")}
    assert locs == {"W location", "Brand new"}
    [ds] = client.values(f"Things({tid})/Datastreams")
    assert nav_id(client, f"Datastreams({ds['@iot.id']})/ObservedProperty") == w.prop
    assert client.ok("GET", f"Datastreams({ds['@iot.id']})/Sensor")["name"] == "New sensor"
    after = counts(client)
    assert after["Sensors"] == before["Sensors"] + 1
    assert after["ObservedProperties"] == before["ObservedProperties"]
    assert after["Locations"] == before["Locations"] + 1


@pytest.mark.parametrize(
    ("entity_set", "make"),
    [
        (
            "Datastreams",
            lambda w: datastream(
                "D",
                new_related=False,
                Thing={"@iot.id": 99},
                Sensor={"@iot.id": w.sensor},
                ObservedProperty={"@iot.id": w.prop},
            ),
        ),
        (
            "Datastreams",
            lambda w: datastream(
                "D",
                new_related=False,
                Thing={"@iot.id": w.thing},
                Sensor={"@iot.id": 99},
                ObservedProperty={"@iot.id": w.prop},
            ),
        ),
        (
            "Datastreams",
            lambda w: datastream(
                "D",
                new_related=False,
                Thing={"@iot.id": w.thing},
                Sensor={"@iot.id": w.sensor},
                ObservedProperty={"@iot.id": 99},
            ),
        ),
        ("Things", lambda w: thing("T", Locations=[{"@iot.id": 99}])),
        (
            "Things",
            lambda w: thing(
                "T",
                Locations=[location("OK")],
                Datastreams=[datastream("D", Sensor={"@iot.id": 99})],
            ),
        ),
        ("Observations", lambda w: obs(1, Datastream={"@iot.id": 99})),
        (
            "Observations",
            lambda w: obs(
                1, Datastream={"@iot.id": w.datastream}, FeatureOfInterest={"@iot.id": 99}
            ),
        ),
        ("Locations", lambda w: location("L", Things=[{"@iot.id": 99}])),
        (
            "HistoricalLocations",
            lambda w: {"time": "2020-01-01T00:00:00Z", "Thing": {"@iot.id": 99}},
        ),
    ],
)
def test_link_to_missing_id_is_400_and_stores_nothing(
    client: Client, entity_set: str, make: Any
) -> None:
    w = build_world(client)
    before = snapshot(client)
    assert_error(client.post(entity_set, make(w)), 400, "99")
    assert snapshot(client) == before


# --- atomicity --------------------------------------------------------------------------------


def _bad_third_datastream() -> dict[str, Any]:
    bad = datastream("D3")
    del bad["unitOfMeasurement"]
    return thing(
        "T",
        locations=[location()],
        datastreams=[datastream("D1"), datastream("D2"), bad],
    )


ATOMIC_FAILURES = {
    "third datastream lacks unitOfMeasurement": _bad_third_datastream,
    "observation with unparseable phenomenonTime": lambda: thing(
        "T",
        locations=[location()],
        datastreams=[
            datastream("D1", Observations=[obs(1), obs(2, "not a time"), obs(3)]),
        ],
    ),
    "invalid GeoJSON location": lambda: thing(
        "T",
        locations=[location("Bad", 8.0, 200.0)],
        datastreams=[datastream("D1", Observations=[obs(1)])],
    ),
    "feature of interest lacks feature": lambda: thing(
        "T",
        locations=[location()],
        datastreams=[
            datastream(
                "D1",
                Observations=[
                    obs(1),
                    obs(2, FeatureOfInterest={k: v for k, v in foi().items() if k != "feature"}),
                ],
            )
        ],
    ),
    "second location lacks encodingType": lambda: thing(
        "T",
        locations=[
            location("A"),
            {k: v for k, v in location("B").items() if k != "encodingType"},
        ],
        datastreams=[datastream("D1")],
    ),
    "last datastream links a missing sensor": lambda: thing(
        "T",
        locations=[location()],
        datastreams=[datastream("D1"), datastream("D2", Sensor={"@iot.id": 77})],
    ),
    "observation without location to generate a feature": lambda: thing(
        "T", datastreams=[datastream("D1", Observations=[obs(1)])]
    ),
}


@pytest.mark.parametrize("make", ATOMIC_FAILURES.values(), ids=list(ATOMIC_FAILURES))
def test_failed_deep_insert_on_empty_store_leaves_everything_empty(
    client: Client, make: Any
) -> None:
    resp = client.post("Things", make())
    assert_error(resp, 400)
    assert counts(client) == dict.fromkeys(SETS, 0)


@pytest.mark.parametrize("make", ATOMIC_FAILURES.values(), ids=list(ATOMIC_FAILURES))
def test_failed_deep_insert_leaves_existing_data_unchanged(client: Client, make: Any) -> None:
    build_world(client)
    before = snapshot(client)
    before_counts = counts(client)
    assert_error(client.post("Things", make()), 400)
    assert counts(client) == before_counts
    assert snapshot(client) == before
    # the ids the failed request might have used are not visible either
    client.create("Things", thing("After"))
    assert counts(client)["Things"] == before_counts["Things"] + 1


def test_failed_deep_insert_datastream_is_atomic(client: Client) -> None:
    w = build_world(client)
    before = counts(client)
    resp = client.post(
        "Datastreams",
        datastream(
            "D",
            Thing={"@iot.id": w.thing},
            Observations=[obs(1), obs(2), obs(3, "2024-13-45T00:00:00Z")],
        ),
    )
    assert_error(resp, 400)
    assert counts(client) == before


# --- validation -------------------------------------------------------------------------------


def _drop(body: dict[str, Any], key: str) -> dict[str, Any]:
    out = dict(body)
    del out[key]
    return out


def _mandatory_cases() -> list[tuple[str, str, Any]]:
    ds_links = {
        "Thing": {"@iot.id": 1},
        "Sensor": {"@iot.id": 1},
        "ObservedProperty": {"@iot.id": 1},
    }
    cases: list[tuple[str, str, Any]] = []
    for key in ("name", "description"):
        cases.append(("Things", key, _drop(thing("T"), key)))
    for key in ("name", "description", "encodingType", "location"):
        cases.append(("Locations", key, _drop(location("L"), key)))
    full_ds = datastream("D", new_related=False, **ds_links)
    for key in (
        "name",
        "description",
        "unitOfMeasurement",
        "observationType",
        "Thing",
        "Sensor",
        "ObservedProperty",
    ):
        cases.append(("Datastreams", key, _drop(full_ds, key)))
    for key in ("name", "description", "encodingType", "metadata"):
        cases.append(("Sensors", key, _drop(sensor("S"), key)))
    for key in ("name", "definition", "description"):
        cases.append(("ObservedProperties", key, _drop(observed_property("P"), key)))
    full_obs = obs(1, Datastream={"@iot.id": 1})
    for key in ("result", "Datastream"):
        cases.append(("Observations", key, _drop(full_obs, key)))
    for key in ("name", "description", "encodingType", "feature"):
        cases.append(("FeaturesOfInterest", key, _drop(foi("F"), key)))
    full_hl = {
        "time": "2020-01-01T00:00:00Z",
        "Thing": {"@iot.id": 1},
        "Locations": [{"@iot.id": 1}],
    }
    for key in ("time", "Thing"):
        cases.append(("HistoricalLocations", key, _drop(full_hl, key)))
    return cases


MANDATORY = _mandatory_cases()


@pytest.mark.parametrize(
    ("entity_set", "missing", "body"),
    MANDATORY,
    ids=[f"{s}-{k}" for s, k, _ in MANDATORY],
)
def test_missing_mandatory_property_is_400_naming_it(
    client: Client, entity_set: str, missing: str, body: dict[str, Any]
) -> None:
    build_world(client)
    before = counts(client)
    assert_error(client.post(entity_set, body), 400, missing)
    assert counts(client) == before


def test_observation_result_null_is_allowed(client: Client) -> None:
    w = build_world(client)
    created = client.ok(
        "POST", "Observations", obs(None, Datastream={"@iot.id": w.datastream}), status=201
    )
    assert "result" in created
    assert created["result"] is None
    got = client.ok("GET", f"Observations({created['@iot.id']})")
    assert "result" in got
    assert got["result"] is None


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        (
            thing("T", datastreams=[_drop(datastream("D"), "unitOfMeasurement")]),
            ("Datastreams[0]", "unitOfMeasurement"),
        ),
        (
            thing("T", datastreams=[datastream("A"), _drop(datastream("B"), "observationType")]),
            ("Datastreams[1]", "observationType"),
        ),
        (thing("T", locations=[_drop(location("L"), "location")]), ("Locations[0]", "location")),
        (
            thing("T", datastreams=[datastream("D", Sensor=_drop(sensor("S"), "metadata"))]),
            ("Datastreams[0]", "Sensor", "metadata"),
        ),
        (
            thing(
                "T",
                datastreams=[
                    datastream("D", ObservedProperty=_drop(observed_property(), "definition"))
                ],
            ),
            ("Datastreams[0]", "ObservedProperty", "definition"),
        ),
        (
            thing(
                "T",
                locations=[location()],
                datastreams=[datastream("D", Observations=[obs(1), _drop(obs(2), "result")])],
            ),
            ("Datastreams[0]", "Observations[1]", "result"),
        ),
    ],
    ids=["ds-uom", "ds1-obstype", "loc-location", "sensor-metadata", "op-definition", "obs-result"],
)
def test_nested_validation_error_names_property_and_position(
    client: Client, body: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    assert_error(client.post("Things", body), 400, *fragments)
    assert counts(client) == dict.fromkeys(SETS, 0)


@pytest.mark.parametrize(
    ("entity_set", "body", "prop"),
    [
        ("Things", {"name": 42, "description": "d"}, "name"),
        ("Things", {"name": "n", "description": ["d"]}, "description"),
        ("Things", thing("T", properties=[1, 2]), "properties"),
        ("Things", thing("T", properties="text"), "properties"),
        ("Sensors", sensor("S", properties=[1]), "properties"),
        ("Locations", location("L") | {"name": True}, "name"),
        ("Locations", location("L", properties=["x"]), "properties"),
        ("ObservedProperties", observed_property("P", definition=5), "definition"),
        ("FeaturesOfInterest", foi("F", properties=3), "properties"),
        ("Things", thing("T", Locations={"@iot.id": 1}), "Locations"),
        ("Things", thing("T", Datastreams="none"), "Datastreams"),
        ("Things", thing("T", colour="red"), "colour"),
        ("Sensors", sensor("S", Observations=[]), "Observations"),
        (
            "Observations",
            obs(1, Datastream={"@iot.id": 1}, unknownTime="2020-01-01T00:00:00Z"),
            "unknownTime",
        ),
        ("Things", thing("T", datastreams=[datastream("D", foo=1)]), "foo"),
    ],
)
def test_wrong_or_unknown_property_is_400_naming_it(
    client: Client, entity_set: str, body: dict[str, Any], prop: str
) -> None:
    build_world(client)
    before = counts(client)
    assert_error(client.post(entity_set, body), 400, prop)
    assert counts(client) == before


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "T", "description": ',
        b"{'name': 'T', 'description': 'd'}",
        b"",
        b"   ",
        b'[{"name": "T", "description": "d"}]',
        b'"just a string"',
        b"null",
        b"42",
    ],
    ids=["truncated", "single-quotes", "empty", "blank", "array", "string", "null", "number"],
)
def test_unusable_body_is_400(client: Client, raw: bytes) -> None:
    resp = client.post("Things", content=raw, headers={"content-type": "application/json"})
    assert_error(resp, 400)
    assert counts(client) == dict.fromkeys(SETS, 0)


def test_text_plain_content_type_is_415(client: Client) -> None:
    raw = json.dumps(thing("T")).encode()
    resp = client.post("Things", content=raw, headers={"content-type": "text/plain"})
    assert_error(resp, 415)
    assert counts(client)["Things"] == 0


def test_json_content_type_with_charset_is_accepted(client: Client) -> None:
    raw = json.dumps(thing("T")).encode()
    resp = client.post(
        "Things", content=raw, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert resp.status_code == 201, resp.text


INVALID_GEOMETRIES = {
    "string coordinates": {"type": "Point", "coordinates": ["a", "b"]},
    "one coordinate": {"type": "Point", "coordinates": [8.0]},
    "latitude 100": {"type": "Point", "coordinates": [8.0, 100.0]},
    "longitude 200": {"type": "Point", "coordinates": [200.0, 50.0]},
    "self-intersecting polygon": {
        "type": "Polygon",
        "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]],
    },
    "unclosed polygon": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]},
    "unknown type": {"type": "Blob", "coordinates": [1, 2]},
    "no coordinates": {"type": "Point"},
    "not an object": "POINT (8 50)",
}


@pytest.mark.parametrize("geometry", INVALID_GEOMETRIES.values(), ids=list(INVALID_GEOMETRIES))
def test_invalid_geojson_location_is_400(client: Client, geometry: Any) -> None:
    resp = client.post("Locations", location("L") | {"location": geometry})
    assert_error(resp, 400, "location")
    assert counts(client)["Locations"] == 0


@pytest.mark.parametrize("geometry", INVALID_GEOMETRIES.values(), ids=list(INVALID_GEOMETRIES))
def test_invalid_geojson_feature_is_400(client: Client, geometry: Any) -> None:
    resp = client.post("FeaturesOfInterest", foi("F") | {"feature": geometry})
    assert_error(resp, 400, "feature")
    assert counts(client)["FeaturesOfInterest"] == 0


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]},
        {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
        {"type": "MultiPoint", "coordinates": [[0, 0], [1, 1]]},
        {"type": "Point", "coordinates": [8.0, 50.0, 120.5]},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}},
    ],
    ids=["polygon", "linestring", "multipoint", "3d-point", "feature"],
)
def test_valid_geojson_round_trips(client: Client, geometry: Any) -> None:
    lid = client.create("Locations", location("L") | {"location": geometry})
    assert client.ok("GET", f"Locations({lid})")["location"] == geometry


@pytest.mark.parametrize(
    ("body_key", "value"),
    [
        ("phenomenonTime", "yesterday"),
        ("phenomenonTime", "2024-02-30T00:00:00Z"),
        ("phenomenonTime", "2024-01-02T00:00:00Z/2024-01-01T00:00:00Z"),
        ("phenomenonTime", 1704067200),
        ("resultTime", "yesterday"),
        ("validTime", "2024-01-01T00:00:00Z"),
        ("validTime", "2024-01-02T00:00:00Z/2024-01-01T00:00:00Z"),
        ("validTime", "nonsense/2024-01-01T00:00:00Z"),
    ],
    ids=[
        "phenomenon-yesterday",
        "phenomenon-feb-30",
        "phenomenon-reversed-interval",
        "phenomenon-number",
        "result-yesterday",
        "valid-instant",
        "valid-reversed-interval",
        "valid-bad-start",
    ],
)
def test_bad_observation_time_is_400(client: Client, body_key: str, value: Any) -> None:
    w = build_world(client)
    before = counts(client)
    body = obs(1, Datastream={"@iot.id": w.datastream}) | {body_key: value}
    assert_error(client.post("Observations", body), 400, body_key)
    assert counts(client) == before


@pytest.mark.parametrize("value", ["yesterday", "2020-01-01T00:00:00Z/2020-01-02T00:00:00Z", 5])
def test_bad_historical_location_time_is_400(client: Client, value: Any) -> None:
    w = build_world(client)
    before = counts(client)
    resp = client.post(
        "HistoricalLocations",
        {"time": value, "Thing": {"@iot.id": w.thing}, "Locations": [{"@iot.id": w.location}]},
    )
    assert_error(resp, 400, "time")
    assert counts(client) == before


def test_valid_time_interval_round_trips(client: Client) -> None:
    w = build_world(client)
    valid = "2024-01-01T00:00:00Z/2024-12-31T00:00:00Z"
    oid = client.create(
        "Observations", obs(1, Datastream={"@iot.id": w.datastream}, validTime=valid)
    )
    assert client.ok("GET", f"Observations({oid})")["validTime"] == valid


# --- v1.0 -------------------------------------------------------------------------------------


def test_v10_create_uses_v10_links(client: Client) -> None:
    resp = client.post(
        "/v1.0/Things",
        thing("Old", locations=[location()], datastreams=[datastream("D")]),
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["location"] == f"{BASE}/v1.0/Things(1)"
    body = resp.json()
    assert body["@iot.selfLink"] == f"{BASE}/v1.0/Things(1)"
    assert body["Datastreams@iot.navigationLink"] == f"{BASE}/v1.0/Things(1)/Datastreams"
    assert body == client.ok("GET", "/v1.0/Things(1)")
    oid = client.create("/v1.0/Datastreams(1)/Observations", obs(1))
    got = client.ok("GET", f"/v1.0/Observations({oid})")
    assert got["@iot.selfLink"] == f"{BASE}/v1.0/Observations({oid})"
    assert nav_id(client, f"Observations({oid})/Datastream") == 1


def test_v10_accepts_vnd_geo_json_location(client: Client) -> None:
    loc = location("Old style") | {"encodingType": "application/vnd.geo+json"}
    tid = client.create("/v1.0/Things", thing("T", locations=[loc], datastreams=[datastream("D")]))
    [ds] = client.ids(f"/v1.0/Things({tid})/Datastreams")
    oid = client.create(f"/v1.0/Datastreams({ds})/Observations", obs(1))
    f = client.ok("GET", f"/v1.0/Observations({oid})/FeatureOfInterest")
    assert f["feature"] == loc["location"]


def test_v10_validation_errors(client: Client) -> None:
    assert_error(client.post("/v1.0/Things", {"description": "d"}), 400, "name")
    assert_error(client.post("/v1.0/Things(1)", thing("T")), 405)
    assert counts(client)["Things"] == 0


# --- Observation defaults and values ------------------------------------------------------


def test_observation_phenomenon_time_defaults_to_now(client: Client) -> None:
    w = build_world(client)
    created = client.ok("POST", f"Datastreams({w.datastream})/Observations", {"result": 1}, 201)
    assert_recent(created["phenomenonTime"])
    got = client.ok("GET", f"Observations({created['@iot.id']})")
    assert got["phenomenonTime"] == created["phenomenonTime"]
    assert_recent(got["phenomenonTime"])


def test_observation_result_time_is_null_when_omitted(client: Client) -> None:
    w = build_world(client)
    oid = client.create(f"Datastreams({w.datastream})/Observations", obs(1))
    got = client.ok("GET", f"Observations({oid})")
    assert "resultTime" in got
    assert got["resultTime"] is None


def test_observation_result_time_round_trips(client: Client) -> None:
    w = build_world(client)
    oid = client.create(
        f"Datastreams({w.datastream})/Observations",
        obs(1, resultTime="2024-03-04T05:06:07Z"),
    )
    assert client.ok("GET", f"Observations({oid})")["resultTime"] == "2024-03-04T05:06:07Z"


RESULTS = {
    "int 1": 1,
    "decimal 1.23": 1.23,
    "decimal 1.0": 1.0,
    "zero": 0,
    "negative": -7.5,
    "string": "seven",
    "numeric string": "1.0",
    "true": True,
    "false": False,
    "object": {"a": [1, 2.5, "x"], "b": {"c": None}},
    "array": [1, "two", 3.0, None, {"x": True}],
    "empty object": {},
    "null": None,
    "big integer": 12345678901234567,
}


def _same_json(a: Any, b: Any) -> bool:
    """Equal, and of the same JSON types all the way down (1 is not 1.0, True is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize("result", RESULTS.values(), ids=list(RESULTS))
def test_observation_result_round_trips_exactly(client: Client, result: Any) -> None:
    w = build_world(client)
    resp = client.post(f"Datastreams({w.datastream})/Observations", obs(result))
    assert resp.status_code == 201, resp.text
    assert _same_json(resp.json()["result"], result), resp.text
    got = client.get(f"Observations({resp.json()['@iot.id']})")
    assert "result" in got.json()
    assert _same_json(got.json()["result"], result), got.text
    if result == 1.0 and isinstance(result, float):
        assert '"result":1.0' in got.text.replace(" ", "")


def test_observation_interval_phenomenon_time_round_trips(client: Client) -> None:
    w = build_world(client)
    interval = "2024-01-01T00:00:00Z/2024-01-01T01:30:00Z"
    oid = client.create(f"Datastreams({w.datastream})/Observations", obs(1, interval))
    assert client.ok("GET", f"Observations({oid})")["phenomenonTime"] == interval


def test_observation_fractional_seconds_round_trip(client: Client) -> None:
    w = build_world(client)
    oid = client.create(
        f"Datastreams({w.datastream})/Observations", obs(1, "2024-01-01T00:00:00.123Z")
    )
    got = client.ok("GET", f"Observations({oid})")["phenomenonTime"]
    assert parse_instant(got) == at("2024-01-01T00:00:00.123Z")


@pytest.mark.parametrize(
    "written",
    [
        "2024-05-01T13:00:00+01:00",
        "2024-05-01T13:00:00+0100",
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00",
        "2024-05-01T08:00:00-04:00",
        "2024-05-01T12:00:00.000Z",
    ],
)
def test_time_zones_are_normalised_to_utc(client: Client, written: str) -> None:
    w = build_world(client)
    oid = client.create(
        f"Datastreams({w.datastream})/Observations", obs(1, written, resultTime=written)
    )
    got = client.ok("GET", f"Observations({oid})")
    for key in ("phenomenonTime", "resultTime"):
        assert got[key].endswith("Z"), got
        assert parse_instant(got[key]) == at("2024-05-01T12:00:00Z"), got
    found = client.ids(
        f"Datastreams({w.datastream})/Observations?$filter=phenomenonTime eq 2024-05-01T12:00:00Z"
    )
    assert found == [oid]


def test_different_zone_spellings_store_the_same_instant(client: Client) -> None:
    w = build_world(client)
    spellings = [
        "2024-05-01T13:00:00+01:00",
        "2024-05-01T13:00:00+0100",
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00",
    ]
    ids = [
        client.create(f"Datastreams({w.datastream})/Observations", obs(i, t))
        for i, t in enumerate(spellings)
    ]
    texts = {client.ok("GET", f"Observations({i})")["phenomenonTime"] for i in ids}
    assert len(texts) == 1, texts
    found = client.ids("Observations?$filter=phenomenonTime eq 2024-05-01T12:00:00Z&$orderby=id")
    assert found == ids


# --- automatic FeatureOfInterest --------------------------------------------------------------


def _thing_with_ds(client: Client, locations: list[dict[str, Any]] | None) -> tuple[int, int]:
    tid = client.create("Things", thing("T", locations=locations, datastreams=[datastream("D")]))
    [did] = client.ids(f"Things({tid})/Datastreams")
    return tid, did


def _foi_of(client: Client, oid: int) -> dict[str, Any]:
    body: dict[str, Any] = client.ok("GET", f"Observations({oid})/FeatureOfInterest")
    return body


def test_generated_feature_copies_the_location(client: Client) -> None:
    loc = location("Spot", 5.5, 45.5, properties={"floor": 2})
    _tid, did = _thing_with_ds(client, [loc])
    oid = client.create(f"Datastreams({did})/Observations", obs(1))
    f = _foi_of(client, oid)
    assert f["feature"] == loc["location"]
    assert f["name"] == loc["name"]
    assert f["description"] == loc["description"]
    assert f["encodingType"] == loc["encodingType"]
    assert counts(client)["FeaturesOfInterest"] == 1


def test_generated_feature_copies_a_polygon_exactly(client: Client) -> None:
    poly = {
        "type": "Polygon",
        "coordinates": [[[8.1, 51.1], [8.2, 51.1], [8.2, 51.25], [8.1, 51.25], [8.1, 51.1]]],
    }
    _tid, did = _thing_with_ds(client, [location("Area") | {"location": poly}])
    oid = client.create(f"Datastreams({did})/Observations", obs(1))
    assert _foi_of(client, oid)["feature"] == poly


def test_second_observation_reuses_generated_feature(client: Client) -> None:
    _tid, did = _thing_with_ds(client, [location()])
    first = client.create(f"Datastreams({did})/Observations", obs(1))
    second = client.create(f"Datastreams({did})/Observations", obs(2))
    assert _foi_of(client, first)["@iot.id"] == _foi_of(client, second)["@iot.id"]
    assert counts(client)["FeaturesOfInterest"] == 1


def test_second_thing_at_same_location_reuses_generated_feature(client: Client) -> None:
    tid, did = _thing_with_ds(client, [location()])
    [lid] = client.ids(f"Things({tid})/Locations")
    first = client.create(f"Datastreams({did})/Observations", obs(1))
    _, did2 = _thing_with_ds(client, [{"@iot.id": lid}])
    second = client.create(f"Datastreams({did2})/Observations", obs(2))
    assert _foi_of(client, first)["@iot.id"] == _foi_of(client, second)["@iot.id"]
    assert counts(client)["FeaturesOfInterest"] == 1


def test_thing_moving_gets_a_new_generated_feature(client: Client) -> None:
    tid, did = _thing_with_ds(client, [location("Old", 1.0, 1.0)])
    first = client.create(f"Datastreams({did})/Observations", obs(1))
    old_foi = _foi_of(client, first)
    l2 = client.create("Locations", location("New", 2.0, 2.0))
    client.ok("PATCH", f"Things({tid})", {"Locations": [{"@iot.id": l2}]})
    second = client.create(f"Datastreams({did})/Observations", obs(2))
    new_foi = _foi_of(client, second)
    assert new_foi["@iot.id"] != old_foi["@iot.id"]
    assert new_foi["feature"] == point(2.0, 2.0)
    assert new_foi["name"] == "New"
    assert _foi_of(client, first) == old_foi
    assert counts(client)["FeaturesOfInterest"] == 2


def test_deleted_generated_feature_is_generated_again(client: Client) -> None:
    loc = location("Spot", 3.0, 4.0)
    _tid, did = _thing_with_ds(client, [loc])
    first = client.create(f"Datastreams({did})/Observations", obs(1))
    old_id = _foi_of(client, first)["@iot.id"]
    assert client.delete(f"FeaturesOfInterest({old_id})").status_code == 200
    second = client.create(f"Datastreams({did})/Observations", obs(2))
    new_foi = _foi_of(client, second)
    assert new_foi["@iot.id"] != old_id
    assert new_foi["feature"] == loc["location"]
    assert client.ids("FeaturesOfInterest") == [new_foi["@iot.id"]]


def test_feature_generated_from_the_only_geojson_location(client: Client) -> None:
    text_a = location("Text A") | {"encodingType": "text/plain", "location": "Room 101"}
    text_b = location("Text B") | {"encodingType": "text/plain", "location": "Second floor"}
    geo = location("Geo", 6.0, 7.0)
    tid, did = _thing_with_ds(client, [text_a, geo, text_b])
    assert len(client.ids(f"Things({tid})/Locations")) == 3
    oid = client.create(f"Datastreams({did})/Observations", obs(1))
    f = _foi_of(client, oid)
    assert f["feature"] == geo["location"]
    assert f["name"] == "Geo"


def test_text_location_round_trips(client: Client) -> None:
    body = location("Text") | {"encodingType": "text/plain", "location": "Room 101"}
    lid = client.create("Locations", body)
    assert client.ok("GET", f"Locations({lid})")["location"] == "Room 101"


def test_observation_without_any_location_is_400(client: Client) -> None:
    _tid, did = _thing_with_ds(client, None)
    before = counts(client)
    assert_error(client.post(f"Datastreams({did})/Observations", obs(1)), 400)
    assert counts(client) == before
    assert client.ids(f"Datastreams({did})/Observations") == []


def test_observation_with_only_text_locations_is_400(client: Client) -> None:
    text = location("Text") | {"encodingType": "text/plain", "location": "Room 101"}
    _tid, did = _thing_with_ds(client, [text])
    before = counts(client)
    assert_error(client.post(f"Datastreams({did})/Observations", obs(1)), 400)
    assert counts(client) == before


def test_explicit_feature_generates_nothing(client: Client) -> None:
    _tid, did = _thing_with_ds(client, [location()])
    fid = client.create("FeaturesOfInterest", foi("Given"))
    oid = client.create(
        f"Datastreams({did})/Observations", obs(1, FeatureOfInterest={"@iot.id": fid})
    )
    assert _foi_of(client, oid)["@iot.id"] == fid
    assert counts(client)["FeaturesOfInterest"] == 1


# --- HistoricalLocations created by the server --------------------------------------------------


def _hls(client: Client, tid: int) -> list[dict[str, Any]]:
    return client.values(
        f"Things({tid})/HistoricalLocations?$expand=Locations($orderby=id),Thing&$orderby=id"
    )


def test_thing_with_locations_gets_one_historical_location(client: Client) -> None:
    tid = client.create("Things", thing("T", locations=[location("A"), location("B", 1.0, 1.0)]))
    lids = sorted(client.ids(f"Things({tid})/Locations"))
    [hl] = _hls(client, tid)
    assert_recent(hl["time"])
    assert hl["Thing"]["@iot.id"] == tid
    assert [loc["@iot.id"] for loc in hl["Locations"]] == lids
    assert counts(client)["HistoricalLocations"] == 1
    for lid in lids:
        assert client.ids(f"Locations({lid})/HistoricalLocations") == [hl["@iot.id"]]


def test_thing_with_linked_location_gets_historical_location(client: Client) -> None:
    lid = client.create("Locations", location())
    assert counts(client)["HistoricalLocations"] == 0
    tid = client.create("Things", thing("T", Locations=[{"@iot.id": lid}]))
    [hl] = _hls(client, tid)
    assert [loc["@iot.id"] for loc in hl["Locations"]] == [lid]


def test_thing_without_locations_gets_no_historical_location(client: Client) -> None:
    client.create("Things", thing("T"))
    assert counts(client)["HistoricalLocations"] == 0


def test_post_location_to_thing_replaces_its_locations(client: Client) -> None:
    tid = client.create("Things", thing("T", locations=[location("Old")]))
    [old] = client.ids(f"Things({tid})/Locations")
    new = client.create(f"Things({tid})/Locations", location("New", 3.0, 3.0))
    assert client.ids(f"Things({tid})/Locations") == [new]
    assert client.ids(f"Locations({old})/Things") == []
    assert client.ok("GET", f"Locations({old})")["name"] == "Old"
    hls = _hls(client, tid)
    assert len(hls) == 2
    newest = max(hls, key=lambda h: h["@iot.id"])
    assert [loc["@iot.id"] for loc in newest["Locations"]] == [new]
    assert_recent(newest["time"])
    assert parse_instant(newest["time"]) >= parse_instant(hls[0]["time"])


def test_location_created_with_things_moves_each_thing(client: Client) -> None:
    t1 = client.create("Things", thing("T1", locations=[location("L1")]))
    t2 = client.create("Things", thing("T2"))
    hl_before = counts(client)["HistoricalLocations"]
    lid = client.create(
        "Locations", location("Shared", 4.0, 4.0, Things=[{"@iot.id": t1}, {"@iot.id": t2}])
    )
    for tid in (t1, t2):
        assert client.ids(f"Things({tid})/Locations") == [lid]
        newest = _hls(client, tid)[-1]
        assert [loc["@iot.id"] for loc in newest["Locations"]] == [lid]
        assert newest["Thing"]["@iot.id"] == tid
        assert_recent(newest["time"])
    assert counts(client)["HistoricalLocations"] == hl_before + 2
    assert sorted(client.ids(f"Locations({lid})/Things")) == [t1, t2]


def test_direct_historical_location_moves_thing_only_when_newest(client: Client) -> None:
    tid = client.create("Things", thing("T", locations=[location("Start")]))
    [start] = client.ids(f"Things({tid})/Locations")
    later_loc = client.create("Locations", location("Later", 5.0, 5.0))
    earlier_loc = client.create("Locations", location("Earlier", 6.0, 6.0))
    later = client.create(
        "HistoricalLocations",
        {
            "time": "2100-01-01T00:00:00Z",
            "Thing": {"@iot.id": tid},
            "Locations": [{"@iot.id": later_loc}],
        },
    )
    assert client.ids(f"Things({tid})/Locations") == [later_loc]
    assert client.ids(f"Locations({start})/Things") == []
    earlier = client.create(
        "HistoricalLocations",
        {
            "time": "2000-01-01T00:00:00Z",
            "Thing": {"@iot.id": tid},
            "Locations": [{"@iot.id": earlier_loc}],
        },
    )
    assert client.ids(f"Things({tid})/Locations") == [later_loc]
    hl_ids = {h["@iot.id"] for h in _hls(client, tid)}
    assert {later, earlier} <= hl_ids
    assert len(hl_ids) == 3
    got = client.ok("GET", f"HistoricalLocations({earlier})?$expand=Locations,Thing")
    assert got["time"] == "2000-01-01T00:00:00Z"
    assert [loc["@iot.id"] for loc in got["Locations"]] == [earlier_loc]
    assert got["Thing"]["@iot.id"] == tid


# --- more navigation and edge cases -----------------------------------------------------------


def test_post_historical_location_to_thing_links_the_thing(client: Client) -> None:
    tid = client.create("Things", thing("T", locations=[location("Start")]))
    new_loc = client.create("Locations", location("Next", 1.0, 1.0))
    hl = client.create(
        f"Things({tid})/HistoricalLocations",
        {"time": "2100-06-01T00:00:00Z", "Locations": [{"@iot.id": new_loc}]},
    )
    assert nav_id(client, f"HistoricalLocations({hl})/Thing") == tid
    assert client.ids(f"Things({tid})/Locations") == [new_loc]


def test_post_thing_to_location_links_and_records_history(client: Client) -> None:
    lid = client.create("Locations", location("Base"))
    tid = client.create(f"Locations({lid})/Things", thing("Via location"))
    assert client.ids(f"Things({tid})/Locations") == [lid]
    hls = client.values(f"Things({tid})/HistoricalLocations?$expand=Locations")
    assert len(hls) == 1
    assert [loc["@iot.id"] for loc in hls[0]["Locations"]] == [lid]


def test_deep_inserted_location_with_thing_records_history(client: Client) -> None:
    lid = client.create("Locations", location("L", Things=[thing("Inline")]))
    [tid] = client.ids(f"Locations({lid})/Things")
    hls = client.values(f"Things({tid})/HistoricalLocations?$expand=Locations")
    assert len(hls) == 1
    assert [loc["@iot.id"] for loc in hls[0]["Locations"]] == [lid]


def test_deep_insert_observation_with_feature_needs_no_location(client: Client) -> None:
    tid = client.create(
        "Things",
        thing(
            "No location",
            datastreams=[datastream("D", Observations=[obs(1, FeatureOfInterest=foi("Given"))])],
        ),
    )
    [did] = client.ids(f"Things({tid})/Datastreams")
    [o] = client.values(f"Datastreams({did})/Observations?$expand=FeatureOfInterest")
    assert o["FeatureOfInterest"]["name"] == "Given"
    assert counts(client)["FeaturesOfInterest"] == 1


def test_deep_inserted_observations_set_datastream_times(client: Client) -> None:
    tid = client.create(
        "Things",
        thing(
            "T",
            locations=[location()],
            datastreams=[
                datastream(
                    "D",
                    Observations=[
                        obs(1, "2024-01-01T00:00:00Z", resultTime="2024-01-10T00:00:00Z"),
                        obs(2, "2024-01-03T00:00:00Z/2024-01-04T00:00:00Z"),
                    ],
                )
            ],
        ),
    )
    [ds] = client.values(f"Things({tid})/Datastreams")
    assert parse_period(ds["phenomenonTime"]) == (
        at("2024-01-01T00:00:00Z"),
        at("2024-01-04T00:00:00Z"),
    )
    assert parse_period(ds["resultTime"]) == (
        at("2024-01-10T00:00:00Z"),
        at("2024-01-10T00:00:00Z"),
    )


def test_interval_with_offsets_is_normalised(client: Client) -> None:
    w = build_world(client)
    oid = client.create(
        f"Datastreams({w.datastream})/Observations",
        obs(1, "2024-01-01T01:00:00+01:00/2024-01-01T02:30:00+01:00"),
    )
    got = client.ok("GET", f"Observations({oid})")["phenomenonTime"]
    assert parse_period(got) == (at("2024-01-01T00:00:00Z"), at("2024-01-01T01:30:00Z"))


def test_historical_location_time_with_offset_is_normalised(client: Client) -> None:
    w = build_world(client)
    hl = client.create(
        "HistoricalLocations",
        {
            "time": "2020-01-01T02:00:00+02:00",
            "Thing": {"@iot.id": w.thing},
            "Locations": [{"@iot.id": w.location}],
        },
    )
    got = client.ok("GET", f"HistoricalLocations({hl})")["time"]
    assert parse_instant(got) == at("2020-01-01T00:00:00Z")


def test_unicode_text_round_trips(client: Client) -> None:
    body = thing("Zürich 東京 🌡", properties={"note": "naïve \u2013 \u201cquoted\u201d"})
    tid = client.create("Things", body)
    got = client.ok("GET", f"Things({tid})")
    assert got["name"] == body["name"]
    assert got["properties"] == body["properties"]


@pytest.mark.parametrize(
    "ref",
    [{"@iot.id": "abc"}, {"@iot.id": None}, {"@iot.id": [1]}, {}, "1", 1],
    ids=["string-id", "null-id", "array-id", "empty-object", "string", "number"],
)
def test_invalid_reference_is_400(client: Client, ref: Any) -> None:
    build_world(client)
    before = snapshot(client)
    assert_error(client.post("Observations", obs(1, Datastream=ref)), 400, "Datastream")
    assert snapshot(client) == before
