"""The subscription index: a change looks only at the topics that can name it."""

from __future__ import annotations

from citytwin.mqtt.notify import Subscriptions
from citytwin.plugins.manager import build_registry, plugin_manager


def subscriptions() -> Subscriptions:
    return Subscriptions(build_registry(plugin_manager()), filter_=True)


def texts(topics: list) -> list[str]:  # type: ignore[type-arg]
    return [t.text for t in topics]


def test_an_observation_looks_only_at_its_datastreams_topics_and_the_general_ones() -> None:
    subs = subscriptions()
    for i in range(1, 1001):
        subs.add("map", f"v1.1/Datastreams({i})/Observations")
    subs.add("all", "v1.1/Observations")
    subs.add("filtered", "v1.1/Datastreams(7)/Observations?$filter=result gt 3")
    subs.add("thing", "v1.1/Things(7)")
    assert subs.foreign_keys("Observation") == ["datastream_id"]
    found = subs.candidates("Observation", 55, {"datastream_id": 7})
    assert texts(found) == [
        "v1.1/Datastreams(7)/Observations",
        "v1.1/Datastreams(7)/Observations?$filter=result gt 3",  # tested one by one
        "v1.1/Observations",
    ]
    assert texts(subs.candidates("Thing", 7, {})) == ["v1.1/Things(7)"]
    assert texts(subs.candidates("Thing", 8, {})) == []
    assert len(subs.for_type("Observation")) == 1002


def test_topics_leave_the_index_with_their_last_subscriber() -> None:
    subs = subscriptions()
    for client in ("a", "b"):
        subs.add(client, "v1.1/Datastreams(1)/Observations")
        subs.add(client, "v1.1/Things(2)/name")
    subs.remove_client("a")
    assert texts(subs.candidates("Observation", 1, {"datastream_id": 1})) == [
        "v1.1/Datastreams(1)/Observations"
    ]
    subs.remove("b", "v1.1/Datastreams(1)/Observations")
    assert subs.candidates("Observation", 1, {"datastream_id": 1}) == []
    assert subs.foreign_keys("Observation") == []
    assert texts(subs.candidates("Thing", 2, {})) == ["v1.1/Things(2)/name"]
    subs.remove_client("b")
    assert len(subs) == 0
    assert subs.candidates("Thing", 2, {}) == []
