"""The map's sensor feed (/api/v1/sensors) shows each principal exactly the Things and
Datastreams the SensorThings API shows it: nothing of another organisation, and no
personal Datastream to anyone but its owners (and its household)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from citytwin.access.keys import create_key
from tests.access.world import PERSONAL_RESULT, World, build
from tests.support import Client


@pytest.fixture(scope="module")
def world(new_client: Callable[..., Client]) -> World:
    w = build(new_client)
    storage = w.client.app.state.service.storage
    made = w.client.call(create_key(storage, "household", thing=w.things["own"]))
    w.keys["household"] = made.key
    return w


ROLES = ["admin", "operator", "reader", "utility", "household", "anonymous"]


@pytest.mark.parametrize("who", ROLES)
def test_the_feed_shows_what_the_sta_shows(world: World, who: str) -> None:
    feed = world.as_(who, "GET", "/api/v1/sensors")
    things = world.as_(who, "GET", "Things?$select=id&$top=1000")["value"]
    streams = world.as_(who, "GET", "Datastreams?$select=id&$top=1000")["value"]
    assert sorted(feed["things"]["id"]) == sorted(t["@iot.id"] for t in things)
    assert sorted(feed["datastreams"]["id"]) == sorted(d["@iot.id"] for d in streams)
    personal = {world.streams["personal"], world.streams["open-personal"]}
    shown = personal & set(feed["datastreams"]["id"])
    expected = {
        "admin": personal,
        "operator": {world.streams["personal"]},
        "household": {world.streams["personal"]},
        "utility": {world.streams["open-personal"]},
    }.get(who, set())
    assert shown == expected
    for ownership, value in PERSONAL_RESULT.items():
        if world.streams[ownership] not in shown:
            assert value not in feed["datastreams"]["result"]


def test_anonymous_visitors_see_the_open_thing_only(world: World) -> None:
    feed = world.as_("anonymous", "GET", "/api/v1/sensors")
    assert feed["things"]["name"] == ["open-thing"]
    assert feed["datastreams"]["id"] == [world.streams["open"]]
