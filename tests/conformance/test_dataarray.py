"""Conformance class data arrays (OGC 18-088 section 14.3/14.4, annex A.6), on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.cud_support import assert_error
from tests.conformance.test_multidatastream import multi
from tests.support import ROOT, Client, datastream, location, thing

ALL = ["id", "phenomenonTime", "resultTime", "result", "resultQuality", "validTime", "parameters"]


@pytest.fixture
def streams(client: Client) -> dict[str, Any]:
    """Two Datastreams with three Observations each, one MultiDatastream with two."""
    tid = client.create(
        "Things", thing("T", locations=[location()], datastreams=[datastream("A"), datastream("B")])
    )
    ds = client.ids(f"Things({tid})/Datastreams")
    obs: dict[int, list[int]] = {}
    for d in ds:
        obs[d] = [
            client.create(
                f"Datastreams({d})/Observations",
                {"result": d * 10 + i, "phenomenonTime": f"2024-03-01T1{i}:00:00Z"},
            )
            for i in range(3)
        ]
    md = client.create("MultiDatastreams", multi(Thing={"@iot.id": tid}))
    mobs = [
        client.create(
            f"MultiDatastreams({md})/Observations",
            {"result": [i, i + 0.5], "phenomenonTime": f"2024-03-02T1{i}:00:00Z"},
        )
        for i in range(2)
    ]
    return {"thing": tid, "ds": ds, "obs": obs, "md": md, "mobs": mobs}


def test_observations_of_a_datastream_as_a_data_array(
    client: Client, streams: dict[str, Any]
) -> None:
    d = streams["ds"][0]
    body = client.ok(
        "GET",
        f"Datastreams({d})/Observations?$resultFormat=dataArray"
        "&$select=id,phenomenonTime,result&$orderby=phenomenonTime&$count=true",
    )
    assert body["@iot.count"] == 3
    (group,) = body["value"]
    assert group["Datastream@iot.navigationLink"] == f"{ROOT}/Datastreams({d})"
    assert group["components"] == ["id", "phenomenonTime", "result"]
    assert group["dataArray@iot.count"] == 3
    assert group["dataArray"] == [
        [oid, f"2024-03-01T1{i}:00:00Z", d * 10 + i] for i, oid in enumerate(streams["obs"][d])
    ]


def test_all_observations_grouped_by_stream_with_default_components(
    client: Client, streams: dict[str, Any]
) -> None:
    body = client.ok("GET", "Observations?$resultFormat=dataArray&$orderby=id")
    links = [
        g.get("Datastream@iot.navigationLink") or g["MultiDatastream@iot.navigationLink"]
        for g in body["value"]
    ]
    assert links == [
        *(f"{ROOT}/Datastreams({d})" for d in streams["ds"]),
        f"{ROOT}/MultiDatastreams({streams['md']})",
    ]
    for group in body["value"]:
        assert group["components"] == ALL
        assert group["dataArray@iot.count"] == len(group["dataArray"])
    md_rows = body["value"][-1]["dataArray"]
    assert [r[0] for r in md_rows] == streams["mobs"]
    assert [r[3] for r in md_rows] == [[0, 0.5], [1, 1.5]]
    assert md_rows[0][2] is None  # resultTime, not given


def test_multidatastream_observations_as_a_data_array(
    client: Client, streams: dict[str, Any]
) -> None:
    md = streams["md"]
    body = client.ok(
        "GET", f"MultiDatastreams({md})/Observations?$resultFormat=dataArray&$select=result"
    )
    (group,) = body["value"]
    assert group["MultiDatastream@iot.navigationLink"] == f"{ROOT}/MultiDatastreams({md})"
    assert group["dataArray"] == [[[0, 0.5]], [[1, 1.5]]]


def test_paging_follows_next_links(small_pages: Client) -> None:
    c = small_pages
    tid = c.create("Things", thing("P", locations=[location()], datastreams=[datastream("P")]))
    (d,) = c.ids(f"Things({tid})/Datastreams")
    made = [c.create(f"Datastreams({d})/Observations", {"result": i}) for i in range(5)]
    url: str | None = f"Datastreams({d})/Observations?$resultFormat=dataArray&$select=id,result"
    seen: list[list[Any]] = []
    pages = 0
    while url:
        body = c.ok("GET", url)
        pages += 1
        for group in body["value"]:
            assert group["components"] == ["id", "result"]
            seen.extend(group["dataArray"])
        url = body.get("@iot.nextLink")
        assert url is None or "resultFormat=dataArray" in url
    assert pages == 3
    assert seen == [[oid, i] for i, oid in enumerate(made)]


def test_datastreams_with_expanded_observations(client: Client, streams: dict[str, Any]) -> None:
    body = client.ok(
        "GET",
        "Datastreams?$resultFormat=dataArray&$orderby=id"
        "&$expand=Observations($select=result;$orderby=phenomenonTime desc;$top=2)",
    )
    assert [g["Datastream@iot.navigationLink"] for g in body["value"]] == [
        f"{ROOT}/Datastreams({d})" for d in streams["ds"]
    ]
    for d, group in zip(streams["ds"], body["value"], strict=True):
        assert group["components"] == ["result"]
        assert group["dataArray"] == [[d * 10 + 2], [d * 10 + 1]]
        assert group["dataArray@iot.count"] == 2
    single = client.ok(
        "GET", f"MultiDatastreams({streams['md']})?$resultFormat=dataArray&$expand=Observations"
    )
    assert single["value"][0]["dataArray@iot.count"] == 2


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("Things?$resultFormat=dataArray", "dataArray applies to Observations"),
        ("Observations(1)?$resultFormat=dataArray", "collections of Observations"),
        ("Datastreams?$resultFormat=dataArray", "$expand=Observations"),
        ("Observations?$resultFormat=dataArray&$select=properties", "no property properties"),
        ("Observations?$resultFormat=dataArray&$expand=Datastream", "no $expand"),
        ("Observations?$resultFormat=nonsense", "nonsense"),
    ],
)
def test_unsupported_data_array_requests_are_refused(
    client: Client, streams: dict[str, Any], url: str, fragment: str
) -> None:
    assert_error(client.get(url), 400, fragment)


# --- POST /CreateObservations ---------------------------------------------------------------
def test_create_observations_for_datastreams_and_multidatastreams(
    client: Client, streams: dict[str, Any]
) -> None:
    d1, d2 = streams["ds"]
    md = streams["md"]
    foi = client.ok("GET", f"Observations({streams['obs'][d1][0]})/FeatureOfInterest")["@iot.id"]
    before = client.ok("GET", "Observations?$count=true&$top=0")["@iot.count"]
    body = [
        {
            "Datastream": {"@iot.id": d1},
            "components": ["phenomenonTime", "result", "FeatureOfInterest/id"],
            "dataArray": [
                ["2024-04-01T10:00:00Z", 1.5, foi],
                ["2024-04-01T11:00:00Z", 2.5, foi],
            ],
        },
        {
            "Datastream": {"@iot.id": d2},
            "components": ["result", "resultTime", "parameters"],
            "dataArray": [[7, "2024-04-01T12:00:00Z", {"k": "v"}]],
        },
        {
            "MultiDatastream": {"@iot.id": md},
            "components": ["phenomenonTime", "result"],
            "dataArray": [["2024-04-02T10:00:00Z", [3, 4]]],
        },
    ]
    resp = client.post("CreateObservations", body)
    assert resp.status_code == 201, resp.text
    links = resp.json()
    assert len(links) == 4
    assert all(link.startswith(f"{ROOT}/Observations(") for link in links)
    assert client.ok("GET", "Observations?$count=true&$top=0")["@iot.count"] == before + 4
    first = client.ok("GET", f"{links[0]}?$expand=Datastream($select=id),FeatureOfInterest")
    assert first["result"] == 1.5
    assert first["Datastream"]["@iot.id"] == d1
    assert first["FeatureOfInterest"]["@iot.id"] == foi
    third = client.ok("GET", links[2])
    assert third["parameters"] == {"k": "v"}
    assert third["resultTime"] == "2024-04-01T12:00:00Z"
    fourth = client.ok("GET", f"{links[3]}/MultiDatastream")
    assert fourth["@iot.id"] == md
    assert client.ok("GET", links[3])["result"] == [3, 4]
    # the maintained times follow the new Observations
    assert client.ok("GET", f"Datastreams({d1})")["phenomenonTime"].endswith("2024-04-01T11:00:00Z")


def test_bad_rows_get_an_error_and_the_others_are_stored(
    client: Client, streams: dict[str, Any]
) -> None:
    d1 = streams["ds"][0]
    md = streams["md"]
    before = client.ok("GET", "Observations?$count=true&$top=0")["@iot.count"]
    body = [
        {
            "Datastream": {"@iot.id": d1},
            "components": ["phenomenonTime", "result"],
            "dataArray": [
                ["2024-05-01T10:00:00Z", 1],
                ["not a time", 2],
                ["2024-05-01T12:00:00Z"],
                ["2024-05-01T13:00:00Z", 4],
            ],
        },
        {"Datastream": {"@iot.id": 999999}, "components": ["result"], "dataArray": [[5]]},
        {
            "MultiDatastream": {"@iot.id": md},
            "components": ["result"],
            "dataArray": [[[1, 2]], [[1, 2, 3]]],
        },
        {
            "Datastream": {"@iot.id": d1},
            "components": ["result", "FeatureOfInterest/id"],
            "dataArray": [[6, 999999]],
        },
    ]
    resp = client.post("CreateObservations", body)
    assert resp.status_code == 201, resp.text
    links = resp.json()
    errors = [i for i, link in enumerate(links) if link == "error"]
    assert errors == [1, 2, 4, 6, 7]
    stored = [link for link in links if link != "error"]
    assert len(stored) == 3
    assert client.ok("GET", "Observations?$count=true&$top=0")["@iot.count"] == before + 3
    assert [client.ok("GET", link)["result"] for link in stored] == [1, 4, [1, 2]]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"Datastream": {"@iot.id": 1}}, "JSON array"),
        ([{"components": ["result"], "dataArray": [[1]]}], "exactly one of Datastream"),
        ([{"Datastream": {"@iot.id": 1}, "dataArray": [[1]]}], "components"),
        ([{"Datastream": {"@iot.id": 1}, "components": ["name"], "dataArray": []}], "name"),
        ([{"Datastream": {"@iot.id": 1}, "components": ["result"], "dataArray": 3}], "dataArray"),
        ([{"Datastream": 1, "components": ["result"], "dataArray": []}], "@iot.id"),
    ],
)
def test_malformed_requests_are_refused_whole(
    client: Client, streams: dict[str, Any], body: Any, fragment: str
) -> None:
    before = client.ok("GET", "Observations?$count=true&$top=0")["@iot.count"]
    assert_error(client.post("CreateObservations", body), 400, fragment)
    assert client.ok("GET", "Observations?$count=true&$top=0")["@iot.count"] == before


def test_create_observations_takes_only_post(client: Client) -> None:
    assert client.get("CreateObservations").status_code == 405
