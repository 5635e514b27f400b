"""Flat Observations (the MQTT create topics, bulk POSTs to a Datastream) are checked and
turned into rows by a short way of their own: it must take exactly what the general way
takes, and store exactly the rows it stores."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from citytwin.access import SYSTEM
from citytwin.access.audit import Origin
from citytwin.errors import InvalidEntity
from citytwin.plugins.manager import build_registry, plugin_manager
from citytwin.service.drafts import Draft, DraftParser, Mode
from citytwin.service.unit import Unit
from tests.support import Client, datastream, location, thing

REGISTRY = build_registry(plugin_manager())
OBSERVATION = REGISTRY.type("Observation")
PARSER = DraftParser(REGISTRY)
T0 = "2026-03-01T00:00:00Z"  # a first Observation of the month: its partition is made

TIMES = [
    "2026-03-01T12:00:00Z",
    "2026-03-01T12:00:00.125Z",
    "2026-03-01T13:00:00+01:00",
    "2026-03-01 12:00:00+0100",
    "2026-03-01T12:00:00",
    "2026-03-01",
    "2026-03-01T12:00:00Z/2026-03-01T13:00:00Z",
    "2026-03-01T12:00:00Z/PT1H",
    "PT1H/2026-03-01T13:00:00Z",
    "2026-03-01T13:00:00Z/2026-03-01T12:00:00Z",  # ends before it starts
    "yesterday",
    "",
    12,
    None,
    True,
    [],
]
RESULTS = [0, -3, 2**60, 1.5, float("-0.0"), True, False, "high", "", None, [1, 2], {"a": 1}]
OBJECTS = [{"k": "v"}, {}, None, "text", 3, [1], {"nested": {"x": [1, 2]}}]
REFS = [{"@iot.id": 1}, {"@iot.id": 0}, {"@iot.id": -1}, {"@iot.id": "1"}, {"@iot.id": 2**63},
        {"@iot.id": 1, "name": "x"}, {"id": 1}, {}, None, 1, []]  # fmt: skip

body_parts = st.fixed_dictionaries(
    {},
    optional={
        "result": st.sampled_from(RESULTS),
        "phenomenonTime": st.sampled_from(TIMES),
        "resultTime": st.sampled_from(TIMES),
        "validTime": st.sampled_from(TIMES),
        "resultQuality": st.sampled_from(OBJECTS + RESULTS),
        "parameters": st.sampled_from(OBJECTS),
        "Datastream": st.sampled_from(REFS),
        "FeatureOfInterest": st.sampled_from(REFS),
        "MultiDatastream": st.sampled_from(REFS),
        "@iot.id": st.just(5),
        "Datastreams": st.just([{"@iot.id": 1}]),
        "colour": st.just("red"),
    },
)


def general(data: Any) -> tuple[dict[str, Any], dict[str, int]] | None:
    """What the general way makes of a body, as (values, to-one ids); None where it is
    refused or is more than a flat body (a nested entity, an id of its own)."""
    try:
        draft = PARSER.parse(OBSERVATION, data, Mode.CREATE)
    except InvalidEntity:
        return None
    if draft.many or "@iot.id" in data:
        return None
    refs = {}
    for name, sub in draft.one.items():
        if sub.ref is None or data[name] != {"@iot.id": sub.ref}:
            return None
        refs[name] = sub.ref
    return draft.values, refs


@settings(max_examples=3000, deadline=None)
@given(body_parts)
def test_a_flat_body_is_taken_exactly_as_the_general_parser_takes_it(data: dict[str, Any]) -> None:
    assert PARSER.plain(OBSERVATION, data) == general(data)


def test_bodies_that_are_not_objects_are_not_flat() -> None:
    for data in ([], "x", 1, None, [{"result": 1}]):
        assert PARSER.plain(OBSERVATION, data) is None


# --- the rows ---------------------------------------------------------------------------


BODIES: list[dict[str, Any]] = [
    {"result": 21.5},
    {"result": 7, "phenomenonTime": "2026-03-01T12:00:00Z"},
    {"result": 2**60, "phenomenonTime": "2026-03-01T12:00:00Z/2026-03-01T13:00:00Z"},
    {"result": True, "resultTime": "2026-03-01T12:00:01+02:00"},
    {"result": "high", "validTime": "2026-03-01T00:00:00Z/P1D", "parameters": {"k": [1]}},
    {"result": [1, 2], "resultQuality": {"q": 0.5}, "phenomenonTime": "2026-03-01"},
    {"result": {"a": None}, "resultQuality": "good", "parameters": {}},
    {"result": None, "phenomenonTime": "2026-03-02T00:00:00Z"},
]


def flat(body: dict[str, Any]) -> Draft:
    taken = PARSER.plain(OBSERVATION, body)
    assert taken is not None, body
    return Draft(OBSERVATION, "Observation", values=taken[0])


def _rows(client: Client, ids: list[int]) -> list[dict[str, Any]]:
    storage = client.app.state.service.storage
    t = storage.tables.entity["Observation"]

    async def read() -> list[dict[str, Any]]:
        async with storage.writer() as w:
            found = await w.fetch(sa.select(t).where(t.c.id.in_(ids)).order_by(t.c.id))
        return [{k: v for k, v in dict(r).items() if k != "id"} for r in found]

    return client.call(read())


def test_flat_observations_are_stored_as_the_same_rows_as_one_by_one(client: Client) -> None:
    thing_id = client.create("Things", thing(locations=[location()], datastreams=[datastream("d")]))
    (stream,) = client.ids(f"Things({thing_id})/Datastreams")
    feature = client.create(
        "FeaturesOfInterest",
        {"name": "f", "description": "f", "encodingType": "application/geo+json",
         "feature": {"type": "Point", "coordinates": [7.0, 51.0]}},
    )  # fmt: skip
    service = client.app.state.service
    now = datetime(2026, 3, 5, 8, 30, tzinfo=UTC)
    client.create(f"Datastreams({stream})/Observations", {"result": 0, "phenomenonTime": T0})
    cases = [(body, {"Datastream": stream}) for body in BODIES]
    cases += [(body, {"Datastream": stream, "FeatureOfInterest": feature}) for body in BODIES]

    def drafts() -> list[Draft]:
        return [flat(body) for body, _ in cases]

    async def store() -> tuple[list[int], list[int], list[Any]]:
        async with service.transaction(Origin(SYSTEM, "mqtt"), now) as unit:
            one_by_one = [await unit.create(flat(body), i) for body, i in cases]
        async with service.transaction(Origin(SYSTEM, "mqtt"), now) as unit:
            together = await unit.create_many(drafts(), [i for _, i in cases])
            written = [unit.written[("Observation", i)] for i in together]
        return one_by_one, together, written

    one_by_one, together, written = client.call(store())
    assert len(together) == len(cases)
    assert _rows(client, together) == _rows(client, one_by_one)
    # the rows the unit keeps for the notifications are the ones stored
    assert [r["feature_id"] for r in written] == [r["feature_id"] for r in _rows(client, together)]
    stored = _rows(client, together)
    first = client.ok("GET", f"Observations({together[0]})")
    assert first["phenomenonTime"] == "2026-03-05T08:30:00Z"  # none given: the write's time
    assert {r["feature_id"] for r in stored[len(BODIES) :]} == {feature}
    assert feature not in {r["feature_id"] for r in stored[: len(BODIES)]}  # generated


def test_the_summary_of_a_datastream_counts_flat_observations_as_single_ones(
    client: Client,
) -> None:
    made = []
    for name in ("one", "many"):
        thing_id = client.create(
            "Things", thing(name, locations=[location()], datastreams=[datastream(name)])
        )
        made.append(client.ids(f"Things({thing_id})/Datastreams")[0])
    single, bulk = made
    service = client.app.state.service
    client.create(f"Datastreams({single})/Observations", {"result": 0, "phenomenonTime": T0})
    client.create(f"Datastreams({bulk})/Observations", {"result": 0, "phenomenonTime": T0})
    now = datetime(2026, 3, 5, 8, 30, tzinfo=UTC)
    bodies = BODIES

    async def store() -> None:
        for body in bodies:
            async with service.transaction(Origin(SYSTEM, "mqtt"), now) as unit:
                await unit.create(flat(body), {"Datastream": single})
        async with service.transaction(Origin(SYSTEM, "mqtt"), now) as unit:
            await unit.create_many([flat(b) for b in bodies], {"Datastream": bulk})

    client.call(store())
    keys = ("phenomenonTime", "resultTime")
    a, b = (client.ok("GET", f"Datastreams({i})?$select={','.join(keys)}") for i in made)
    assert {k: a.get(k) for k in keys} == {k: b.get(k) for k in keys}
    assert a.get("phenomenonTime") is not None
    newest = "Observations?$orderby=phenomenonTime desc,id&$top=1"
    latest = [client.values(f"Datastreams({i})/{newest}")[0]["result"] for i in made]
    assert latest[0] == latest[1]


@pytest.mark.parametrize("implied", [{"MultiDatastream": 1}, {}])
def test_observations_of_a_multidatastream_or_without_a_stream_go_the_general_way(
    client: Client, implied: dict[str, int]
) -> None:
    storage = client.app.state.service.storage
    drafts = [Draft(OBSERVATION, "o", values={"result": 1})]
    unit = Unit(REGISTRY, storage, None)  # type: ignore[arg-type]  # no writes: no writer
    assert unit._observation_columns(OBSERVATION, drafts, [implied]) is None
    assert unit._observation_columns(OBSERVATION, drafts, [{"Datastream": 1}]) is not None
