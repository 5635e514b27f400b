"""Hidden entities leak through nothing: $expand, $filter, $count, nextLinks, navigation
paths, data arrays, exports; personal Observations never reach other organisations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.access.world import PERSONAL_RESULT, World, build
from tests.support import Client


@pytest.fixture(scope="module")
def world(new_client: Callable[..., Client]) -> World:
    return build(new_client)


def every(world: World, who: str, url: str) -> list[dict[str, Any]]:
    """All entities of a collection as ``who`` sees them, one per page, by nextLinks."""
    out: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        body = world.as_(who, "GET", next_url)
        out.extend(body["value"])
        next_url = body.get("@iot.nextLink")
    return out


def test_expand_shows_only_visible_entities(world: World) -> None:
    things = world.as_("anonymous", "GET", "Things?$expand=Datastreams($expand=Observations)")
    assert [t["name"] for t in things["value"]] == ["open-thing"]
    (open_thing,) = things["value"]
    assert [d["name"] for d in open_thing["Datastreams"]] == ["open-ds"]  # not the personal
    reader = world.as_("reader", "GET", f"Things({world.things['own']})?$expand=Datastreams")
    assert [d["name"] for d in reader["Datastreams"]] == ["city-ds"]
    obs = world.as_("anonymous", "GET", "Observations?$expand=Datastream($expand=Thing)")
    for o in obs["value"]:
        assert o["Datastream"]["name"] == "open-ds"
    # a stream marked open on a closed Thing: the Thing itself stays hidden
    ds = world.as_("utility", "GET", f"Datastreams({world.streams['other']})")
    world.as_(
        "utility", "PATCH", f"Datastreams({ds['@iot.id']})", {"properties": {"openData": True}}
    )
    try:
        seen = world.as_("anonymous", "GET", f"Datastreams({ds['@iot.id']})?$expand=Thing")
        assert "Thing" not in seen
        world.as_("anonymous", "GET", f"Datastreams({ds['@iot.id']})/Thing", status=404)
    finally:
        world.as_("utility", "PATCH", f"Datastreams({ds['@iot.id']})", {"properties": {}})


CITY_ONLY = (
    "Observations?$filter=Datastream/Thing/name eq 'city-thing'",
    "Observations?$filter=Datastream/name eq 'household-meter'",
    "Datastreams?$filter=Thing/name eq 'city-thing'",
    "Things?$filter=Datastreams/name eq 'household-meter'",
    "Locations?$filter=Things/name eq 'city-thing'",
    "Things?$filter=Datastreams/Observations/result eq 4242.5",
)
UTILITY_PERSONAL = (
    "Things?$filter=Datastreams/name eq 'open-household'",
    "Things?$filter=Datastreams/Observations/result eq 4343.5",
    "Things?$filter=Datastreams/name eq 'open-ds' and Datastreams/name eq 'open-household'",
    "Observations?$filter=Datastream/name eq 'open-household'",
)


@pytest.mark.parametrize(
    ("who", "url"),
    [("anonymous", u) for u in CITY_ONLY + UTILITY_PERSONAL]
    + [("utility", u) for u in CITY_ONLY]
    + [("reader", u) for u in UTILITY_PERSONAL],
)
def test_filter_through_relations_reveals_nothing(world: World, who: str, url: str) -> None:
    assert world.as_(who, "GET", url)["value"] == []


def test_filter_through_a_to_one_relation_sees_hidden_as_null(world: World) -> None:
    url = "Datastreams?$filter=Thing/name eq 'open-thing'&$select=name"
    assert [d["name"] for d in world.as_("anonymous", "GET", url)["value"]] == ["open-ds"]
    url = "Observations?$filter=Datastream/Thing/name ne 'x'&$count=true"
    assert world.as_("anonymous", "GET", url)["@iot.count"] == len(
        every(world, "anonymous", "Observations?$top=1")
    )


@pytest.mark.parametrize("who", ["anonymous", "reader", "utility", "operator", "admin"])
@pytest.mark.parametrize("collection", ["Things", "Datastreams", "Observations", "Locations"])
def test_counts_and_next_links_agree_with_what_is_visible(
    world: World, who: str, collection: str
) -> None:
    counted = world.as_(who, "GET", f"{collection}?$count=true&$top=1")
    ids = [e["@iot.id"] for e in every(world, who, f"{collection}?$top=1")]
    assert counted["@iot.count"] == len(ids) == len(set(ids))
    expanded = world.as_(who, "GET", "Things?$expand=Datastreams($count=true;$top=1)")
    for t in expanded["value"]:
        streams = every(world, who, f"Things({t['@iot.id']})/Datastreams?$top=1")
        assert t["Datastreams@iot.count"] == len(streams)


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("anonymous", "Things({own})/Datastreams"),
        ("anonymous", "Things({own})/Locations"),
        ("anonymous", "Datastreams({personal})/Observations"),
        ("anonymous", "Datastreams({open-personal})/Observations"),
        ("anonymous", "Observations({personal-obs})/Datastream"),
        ("anonymous", "Things({open})/Datastreams({open-personal})"),
        ("utility", "Datastreams({personal})/Thing"),
        ("utility", "Things({own})/TaskingCapabilities"),
        ("reader", "Datastreams({personal})"),
        ("reader", "Datastreams({personal})/Observations/$ref"),
        ("reader", "Datastreams({personal})/name/$value"),
        ("operator", "Things({other})/Datastreams"),
        ("anonymous", "Datastreams({personal})/Observations?$resultFormat=dataArray"),
        ("anonymous", "Datastreams({personal})/Observations?$resultFormat=csv"),
    ],
)
def test_navigation_to_a_hidden_entity_is_404(world: World, who: str, path: str) -> None:
    names = {
        "own": world.things["own"],
        "other": world.things["other"],
        "open": world.things["open"],
        "personal": world.streams["personal"],
        "open-personal": world.streams["open-personal"],
        "personal-obs": world.observations["personal"],
    }
    url = path
    for name, value in names.items():
        url = url.replace("{" + name + "}", str(value))
    resp = world.request(who, "GET", url)
    assert resp.status_code == 404, resp.text


HIDDEN_PERSONAL = {  # personal Datastreams each principal may not read
    "anonymous": ("personal", "open-personal"),
    "utility": ("personal",),  # the city's
    "reader": ("personal", "open-personal"),  # readers see no personal data, even their own
}


@pytest.mark.parametrize("who", sorted(HIDDEN_PERSONAL))
def test_personal_observations_never_reach_others(world: World, who: str) -> None:
    hidden = [str(PERSONAL_RESULT[o]) for o in HIDDEN_PERSONAL[who]]
    hidden += [
        {"personal": "household-meter", "open-personal": "open-household"}[o]
        for o in HIDDEN_PERSONAL[who]
    ]
    urls = [
        "Observations?$top=1000",
        "Observations?$filter=result eq 4242.5",
        "Datastreams?$expand=Observations",
        "Things?$expand=Datastreams($expand=Observations)",
        "FeaturesOfInterest?$expand=Observations",
        "Observations?$resultFormat=dataArray",
        "Datastreams?$expand=Observations&$resultFormat=dataArray",
        "Observations?$resultFormat=csv",
        f"Datastreams({world.streams['personal']})/Observations/$aggregate"
        "?interval=2000-01-01T00:00:00Z/2100-01-01T00:00:00Z&bucket=P365D&functions=max",
    ]
    for url in urls:
        resp = world.request(who, "GET", url)
        assert resp.status_code in (200, 404), (url, resp.text)
        for text in hidden:
            assert text not in resp.text, url
    batch = {
        "requests": [
            {"id": str(i), "method": "get", "url": url}
            for i, url in enumerate(["Observations?$top=1000", "Datastreams?$top=1000"])
        ]
    }
    resp = world.request(who, "POST", "$batch", batch)
    for text in hidden:
        assert text not in resp.text


def test_the_city_operator_reads_its_personal_data(world: World) -> None:
    url = f"Datastreams({world.streams['personal']})/Observations"
    results = [o["result"] for o in world.as_("operator", "GET", url)["value"]]
    assert PERSONAL_RESULT["personal"] in results


def test_only_the_owner_marks_a_thing_open(world: World) -> None:
    own = world.things["own"]
    resp = world.request("utility", "PATCH", f"Things({own})", {"properties": {"openData": True}})
    assert resp.status_code == 404
    world.as_("anonymous", "GET", f"Things({own})", status=404)
