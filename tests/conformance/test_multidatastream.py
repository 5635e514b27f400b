"""Conformance class MultiDatastream (OGC 18-088 section 9, annex A.5), on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.cud_support import assert_error
from tests.support import ROOT, Client, location, observed_property, sensor, thing

OM_COMPLEX = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation"
OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
CELSIUS = {"name": "degree Celsius", "symbol": "Cel", "definition": "ucum:Cel"}
PERCENT = {"name": "percent", "symbol": "%", "definition": "ucum:%"}


def multi(name: str = "Weather", props: list[dict[str, Any]] | None = None, **extra: Any) -> Any:
    """A MultiDatastream body with new Sensor and ObservedProperties (temperature, humidity)."""
    props = props if props is not None else [observed_property("T"), observed_property("RH")]
    body: dict[str, Any] = {
        "name": name,
        "description": f"{name} description",
        "observationType": OM_COMPLEX,
        "unitOfMeasurements": [CELSIUS, PERCENT][: len(props)],
        "multiObservationDataTypes": [OM_MEASUREMENT] * len(props),
        "Sensor": sensor(f"{name} sensor"),
        "ObservedProperties": props,
    }
    body.update(extra)
    return body


@pytest.fixture
def md(client: Client) -> dict[str, int]:
    """A Thing with a Location and one MultiDatastream of two ObservedProperties."""
    tid = client.create("Things", thing("Station", locations=[location()]))
    mid = client.create("MultiDatastreams", multi(Thing={"@iot.id": tid}))
    return {"thing": tid, "md": mid}


def test_create_keeps_properties_and_the_order_of_observed_properties(
    client: Client, md: dict[str, int]
) -> None:
    body = client.ok("GET", f"MultiDatastreams({md['md']})")
    assert body["observationType"] == OM_COMPLEX
    assert body["unitOfMeasurements"] == [CELSIUS, PERCENT]
    assert body["multiObservationDataTypes"] == [OM_MEASUREMENT, OM_MEASUREMENT]
    for nav in ("Thing", "Sensor", "ObservedProperties", "Observations"):
        link = body[f"{nav}@iot.navigationLink"]
        assert link == f"{ROOT}/MultiDatastreams({md['md']})/{nav}"
    names = [o["name"] for o in client.values(f"MultiDatastreams({md['md']})/ObservedProperties")]
    assert names == ["T", "RH"]
    expanded = client.ok("GET", f"MultiDatastreams({md['md']})?$expand=ObservedProperties")
    assert [o["name"] for o in expanded["ObservedProperties"]] == ["T", "RH"]


def test_order_is_the_given_order_not_the_id_order(client: Client) -> None:
    tid = client.create("Things", thing("S", locations=[location()]))
    first = client.create("ObservedProperties", observed_property("first"))
    second = client.create("ObservedProperties", observed_property("second"))
    body = multi(
        "Reversed",
        props=[{"@iot.id": second}, {"@iot.id": first}],
        Thing={"@iot.id": tid},
    )
    mid = client.create("MultiDatastreams", body)
    ids = client.ids(f"MultiDatastreams({mid})/ObservedProperties")
    assert ids == [second, first]
    nested = client.ok("GET", f"Things({tid})?$expand=MultiDatastreams($expand=ObservedProperties)")
    assert [o["@iot.id"] for o in nested["MultiDatastreams"][0]["ObservedProperties"]] == [
        second,
        first,
    ]


def test_deep_insert_through_a_thing(client: Client) -> None:
    tid = client.create("Things", thing("Deep", locations=[location()], MultiDatastreams=[multi()]))
    mds = client.values(f"Things({tid})/MultiDatastreams")
    assert [m["name"] for m in mds] == ["Weather"]
    ops = client.values(f"MultiDatastreams({mds[0]['@iot.id']})/ObservedProperties")
    assert [o["name"] for o in ops] == ["T", "RH"]
    sensor_id = client.ok("GET", f"MultiDatastreams({mds[0]['@iot.id']})/Sensor")["@iot.id"]
    assert client.ids(f"Sensors({sensor_id})/MultiDatastreams") == [mds[0]["@iot.id"]]
    assert client.ids(f"ObservedProperties({ops[0]['@iot.id']})/MultiDatastreams") == [
        mds[0]["@iot.id"]
    ]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"unitOfMeasurements": [CELSIUS]}, "equally long"),
        ({"multiObservationDataTypes": [OM_MEASUREMENT] * 3}, "equally long"),
        ({"ObservedProperties": [observed_property("only")]}, "equally long"),
        ({"ObservedProperties": []}, "at least one ObservedProperty"),
        ({"observationType": OM_MEASUREMENT}, "OM_ComplexObservation"),
        ({"unitOfMeasurements": CELSIUS}, "unitOfMeasurements must be an array"),
        ({"multiObservationDataTypes": [1, 2]}, "multiObservationDataTypes must be an array"),
    ],
)
def test_create_with_mismatched_arrays_is_refused_and_stores_nothing(
    client: Client, md: dict[str, int], change: dict[str, Any], fragment: str
) -> None:
    before = client.ok("GET", "ObservedProperties?$count=true&$top=0")["@iot.count"]
    resp = client.post("MultiDatastreams", multi("Bad", Thing={"@iot.id": md["thing"]}, **change))
    assert_error(resp, 400, fragment)
    assert client.ids("MultiDatastreams") == [md["md"]]
    assert client.ok("GET", "ObservedProperties?$count=true&$top=0")["@iot.count"] == before


def test_patch_keeps_the_lengths_matching(client: Client, md: dict[str, int]) -> None:
    url = f"MultiDatastreams({md['md']})"
    assert_error(client.patch(url, {"unitOfMeasurements": [CELSIUS]}), 400, "equally long")
    assert client.ok("GET", url)["unitOfMeasurements"] == [CELSIUS, PERCENT]
    # replacing the ObservedProperties with a list of another length is refused ...
    extra = client.create("ObservedProperties", observed_property("wind"))
    ops = client.ids(f"{url}/ObservedProperties")
    resp = client.patch(url, {"ObservedProperties": [{"@iot.id": i} for i in [*ops, extra]]})
    assert_error(resp, 400, "equally long")
    # ... and accepted together with arrays of the new length, in the new order
    client.ok(
        "PATCH",
        url,
        {
            "unitOfMeasurements": [PERCENT, CELSIUS, CELSIUS],
            "multiObservationDataTypes": [OM_MEASUREMENT] * 3,
            "ObservedProperties": [{"@iot.id": i} for i in [extra, *reversed(ops)]],
        },
    )
    assert client.ids(f"{url}/ObservedProperties") == [extra, *reversed(ops)]


def test_linking_an_observed_property_from_its_side_is_checked(
    client: Client, md: dict[str, int]
) -> None:
    resp = client.post(
        "ObservedProperties",
        observed_property("linked", MultiDatastreams=[{"@iot.id": md["md"]}]),
    )
    assert_error(resp, 400, "equally long")
    assert_error(
        client.post(f"MultiDatastreams({md['md']})/ObservedProperties", observed_property("x")),
        400,
        "equally long",
    )
    assert len(client.ids(f"MultiDatastreams({md['md']})/ObservedProperties")) == 2


def test_observations_have_array_results_of_the_right_length(
    client: Client, md: dict[str, int]
) -> None:
    url = f"MultiDatastreams({md['md']})/Observations"
    oid = client.create(url, {"result": [21.5, 40], "phenomenonTime": "2024-03-01T10:00:00Z"})
    obs = client.ok("GET", f"Observations({oid})?$expand=MultiDatastream($select=id)")
    assert obs["result"] == [21.5, 40]
    assert obs["MultiDatastream"]["@iot.id"] == md["md"]
    assert obs["Datastream@iot.navigationLink"].endswith(f"Observations({oid})/Datastream")
    assert client.get(f"Observations({oid})/Datastream").status_code == 404
    assert_error(client.post(url, {"result": [1]}), 400, "array of 2 values")
    assert_error(client.post(url, {"result": 5}), 400, "array of 2 values")
    assert_error(client.patch(f"Observations({oid})", {"result": [1, 2, 3]}), 400, "array of 2")
    # through Observations with the MultiDatastream named in the body
    other = client.create(
        "Observations", {"result": [1, 2], "MultiDatastream": {"@iot.id": md["md"]}}
    )
    assert client.ids(url) == [oid, other]
    assert client.ok("GET", f"{url}?$count=true&$top=0")["@iot.count"] == 2
    assert client.ok("GET", "Observations?$count=true&$top=0")["@iot.count"] == 2


def test_an_observation_belongs_to_exactly_one_stream(client: Client, md: dict[str, int]) -> None:
    ds = client.create(
        f"Things({md['thing']})/Datastreams",
        {
            "name": "D",
            "description": "d",
            "observationType": OM_MEASUREMENT,
            "unitOfMeasurement": CELSIUS,
            "Sensor": sensor(),
            "ObservedProperty": observed_property(),
        },
    )
    both = {
        "result": [1, 2],
        "Datastream": {"@iot.id": ds},
        "MultiDatastream": {"@iot.id": md["md"]},
    }
    assert_error(client.post("Observations", both), 400, "not both")
    assert_error(client.post("Observations", {"result": 1}), 400, "Datastream or a MultiDatastream")
    oid = client.create(f"Datastreams({ds})/Observations", {"result": 3})
    resp = client.patch(f"Observations({oid})", {"MultiDatastream": {"@iot.id": md["md"]}})
    assert_error(resp, 400, "not both")
    moved = client.patch(f"MultiDatastreams({md['md']})", {"Observations": [{"@iot.id": oid}]})
    assert_error(moved, 400, "not both")
    assert client.ok("GET", f"Observations({oid})/Datastream")["@iot.id"] == ds
    assert client.ok("GET", "Observations?$count=true")["@iot.count"] == 1


def test_filter_select_and_expand_across_multidatastreams(
    client: Client, md: dict[str, int]
) -> None:
    url = f"MultiDatastreams({md['md']})/Observations"
    client.create(url, {"result": [1, 2], "phenomenonTime": "2024-03-01T10:00:00Z"})
    client.create(url, {"result": [3, 4], "phenomenonTime": "2024-03-01T11:00:00Z"})
    found = client.values("MultiDatastreams?$filter=ObservedProperties/name eq 'RH'")
    assert [m["@iot.id"] for m in found] == [md["md"]]
    assert client.values("MultiDatastreams?$filter=ObservedProperties/name eq 'none'") == []
    obs = client.values(f"Observations?$filter=MultiDatastream/id eq {md['md']}&$select=result")
    assert [o["result"] for o in obs] == [[1, 2], [3, 4]]
    things = client.values(
        "Things?$filter=MultiDatastreams/Sensor/name eq 'Weather sensor'"
        "&$expand=MultiDatastreams($select=name;"
        "$expand=Observations($orderby=phenomenonTime desc;$top=1))"
    )
    assert len(things) == 1
    latest = things[0]["MultiDatastreams"][0]["Observations"]
    assert [o["result"] for o in latest] == [[3, 4]]
    md_body = client.ok("GET", f"MultiDatastreams({md['md']})")
    assert md_body["phenomenonTime"] == "2024-03-01T10:00:00Z/2024-03-01T11:00:00Z"


def test_deletes_cascade(client: Client, md: dict[str, int]) -> None:
    url = f"MultiDatastreams({md['md']})"
    oid = client.create(f"{url}/Observations", {"result": [1, 2]})
    client.ok("DELETE", url)
    assert client.get(f"Observations({oid})").status_code == 404
    # an ObservedProperty delete takes the MultiDatastreams that use it
    second = client.create("MultiDatastreams", multi("B", Thing={"@iot.id": md["thing"]}))
    op = client.ids(f"MultiDatastreams({second})/ObservedProperties")[1]
    client.ok("DELETE", f"ObservedProperties({op})")
    assert client.get(f"MultiDatastreams({second})").status_code == 404
    # a Thing delete takes its MultiDatastreams and their Observations
    third = client.create("MultiDatastreams", multi("C", Thing={"@iot.id": md["thing"]}))
    obs = client.create(f"MultiDatastreams({third})/Observations", {"result": [1, 2]})
    client.ok("DELETE", f"Things({md['thing']})")
    assert client.get(f"MultiDatastreams({third})").status_code == 404
    assert client.get(f"Observations({obs})").status_code == 404


def test_sensor_delete_takes_its_multidatastreams(client: Client, md: dict[str, int]) -> None:
    sensor_id = client.ok("GET", f"MultiDatastreams({md['md']})/Sensor")["@iot.id"]
    client.ok("DELETE", f"Sensors({sensor_id})")
    assert client.ids("MultiDatastreams") == []


def test_the_summary_follows_deletes_and_updates(client: Client, md: dict[str, int]) -> None:
    url = f"MultiDatastreams({md['md']})"
    made = [
        client.create(
            f"{url}/Observations",
            {"result": [i, i], "phenomenonTime": f"2024-03-0{i + 1}T00:00:00Z"},
        )
        for i in range(3)
    ]
    assert client.ok("GET", url)["phenomenonTime"] == "2024-03-01T00:00:00Z/2024-03-03T00:00:00Z"
    client.ok("DELETE", f"Observations({made[2]})")
    client.ok("PATCH", f"Observations({made[0]})", {"phenomenonTime": "2024-02-01T00:00:00Z"})
    assert client.ok("GET", url)["phenomenonTime"] == "2024-02-01T00:00:00Z/2024-03-02T00:00:00Z"
    fast = client.ok("GET", f"{url}/Observations?$count=true&$top=0")["@iot.count"]
    slow = client.ok("GET", f"{url}/Observations?$count=true&$top=0&$filter=id ge 0")
    assert fast == slow["@iot.count"] == 2
    latest = client.ok(
        "GET", f"{url}?$expand=Observations($top=1;$orderby=phenomenonTime desc;$count=true)"
    )
    assert [o["@iot.id"] for o in latest["Observations"]] == [made[1]]
    assert latest["Observations@iot.count"] == 2
