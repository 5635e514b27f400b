"""Batch requests (SensorThings API 1.1 chapter 11; OData JSON batch and multipart batch).

Each request outside a change set is answered on its own and a failure does not stop the
others; a change set (atomicity group) stores everything or nothing, in one transaction,
on both backends; ``$id`` names an entity an earlier request created, in URLs and bodies;
malformed batches are refused whole with 400 and nothing of them runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from citytwin.bus import ChangeEvent
from citytwin.service import Request
from tests.conformance.batch_support import (
    ChangeSetAnswer,
    HttpAnswer,
    change_set,
    entity_id_of,
    post_json,
    post_multipart,
    read_multipart,
    request_part,
    responses,
)
from tests.conformance.cud_support import assert_error, counts, obs, snapshot
from tests.support import (
    BASE,
    ROOT,
    Client,
    count_writes,
    datastream,
    location,
    make_client,
    observed_property,
    sensor,
    thing,
)


@pytest.fixture
def world(client: Client) -> dict[str, int]:
    """A Thing at a Location with a Datastream, and an ObservedProperty."""
    tid = client.create("Things", thing("Home", locations=[location()], datastreams=[datastream()]))
    return {
        "thing": tid,
        "datastream": client.ids(f"Things({tid})/Datastreams")[0],
        "prop": client.create("ObservedProperties", observed_property("Humidity")),
    }


@pytest.fixture
def events(client: Client) -> Iterator[list[tuple[ChangeEvent, bool]]]:
    """Change events as published, each with whether its entity was readable (committed)
    by another connection at that moment."""
    service = client.app.state.service
    seen: list[tuple[ChangeEvent, bool]] = []

    async def listener(event: ChangeEvent) -> None:
        committed = True
        if event.kind == "created":
            set_name = service.registry.type(event.entity_type).set_name
            probe = Request("GET", "v1.1", f"{set_name}({event.entity_id})")
            committed = (await service.handle(probe)).status == 200
        seen.append((event, committed))

    unsubscribe = service.bus.subscribe(listener)
    yield seen
    unsubscribe()


def new_datastream(name: str, prop: int, **extra: Any) -> dict[str, Any]:
    return datastream(name, new_related=False, ObservedProperty={"@iot.id": prop}, **extra)


# --- JSON batch ---------------------------------------------------------------------------------
def test_json_batch_answers_each_request_in_order(client: Client, world: dict[str, int]) -> None:
    t = world["thing"]
    resp = post_json(
        client,
        [
            {"id": "read", "method": "get", "url": f"Things({t})?$select=name"},
            {"id": "new", "method": "post", "url": "Things", "body": thing("New")},
            {"id": "missing", "method": "get", "url": "Things(999)"},
            {"id": "rename", "method": "PATCH", "url": f"Things({t})", "body": {"name": "Old"}},
            {"id": "after", "method": "get", "url": f"Things({t})?$select=name"},
        ],
    )
    out = responses(resp)
    assert [e["id"] for e in resp.json()["responses"]] == [
        "read",
        "new",
        "missing",
        "rename",
        "after",
    ]
    assert out["read"] == {"id": "read", "status": 200, "body": {"name": "Home"}}
    assert out["new"]["status"] == 201
    location_url = out["new"]["headers"]["location"]
    assert out["new"]["body"] == client.ok("GET", location_url)
    assert out["new"]["body"]["name"] == "New"
    assert out["missing"]["status"] == 404
    assert out["missing"]["body"]["code"] == 404
    assert out["missing"]["body"]["message"]
    assert out["rename"]["status"] == 200
    assert out["rename"]["body"]["name"] == "Old"
    assert out["after"]["body"] == {"name": "Old"}  # later requests see earlier writes
    assert client.ok("GET", f"Things({t})")["name"] == "Old"


def test_json_get_parts_answer_as_plain_gets(client: Client, world: dict[str, int]) -> None:
    urls = [
        "Things?$filter=name eq 'Home'&$expand=Datastreams($select=name)",
        f"Datastreams({world['datastream']})/Thing/name",
        "Things?$top=1&$count=true",
        "",
    ]
    resp = post_json(
        client, [{"id": str(i), "method": "get", "url": u} for i, u in enumerate(urls)]
    )
    out = responses(resp)
    for i, url in enumerate(urls):
        assert out[str(i)]["status"] == 200
        assert out[str(i)]["body"] == client.ok("GET", f"{ROOT}/{url}")


def test_json_batch_accepts_absolute_urls_and_paths_and_v1_0(
    client: Client, world: dict[str, int]
) -> None:
    t = world["thing"]
    resp = post_json(
        client,
        [
            {"id": "a", "method": "get", "url": f"{ROOT}/Things({t})?$select=name"},
            {"id": "b", "method": "get", "url": f"/v1.1/Things({t})?$select=name"},
            {"id": "c", "method": "get", "url": f"Things({t})"},
        ],
        url="/v1.0/$batch",
    )
    out = responses(resp)
    assert out["a"]["body"] == out["b"]["body"] == {"name": "Home"}
    assert out["c"]["body"]["@iot.selfLink"] == f"{BASE}/v1.0/Things({t})"


def test_atomicity_group_stores_all_with_references_in_urls_and_bodies(
    client: Client, world: dict[str, int], events: list[tuple[ChangeEvent, bool]]
) -> None:
    """FROST's "referencing new entities in a change set", plus a reference in a URL."""
    before = counts(client)
    resp = post_json(
        client,
        [
            {
                "id": "s",
                "atomicityGroup": "g",
                "method": "post",
                "url": "Sensors",
                "body": sensor(),
            },
            {
                "id": "d",
                "atomicityGroup": "g",
                "method": "post",
                "url": f"Things({world['thing']})/Datastreams",
                "body": new_datastream("D2", world["prop"], Sensor={"@iot.id": "$s"}),
            },
            {
                "id": "o",
                "atomicityGroup": "g",
                "method": "post",
                "url": "$d/Observations",
                "body": obs(7, "2024-05-01T00:00:00Z"),
            },
            {"id": "check", "dependsOn": ["g"], "method": "get", "url": "$d?$expand=Sensor"},
        ],
    )
    out = responses(resp)
    for name in ("s", "d", "o"):
        assert out[name]["status"] == 201, out[name]
        assert out[name]["atomicityGroup"] == "g"
    sensor_id = entity_id_of(out["s"]["headers"]["location"])
    ds_id = entity_id_of(out["d"]["headers"]["location"])
    assert client.ok("GET", f"Datastreams({ds_id})/Sensor")["@iot.id"] == sensor_id
    assert (
        client.ok("GET", f"Observations({out['o']['body']['@iot.id']})/Datastream")["@iot.id"]
        == ds_id
    )
    assert out["check"]["status"] == 200
    assert out["check"]["body"]["Sensor"]["@iot.id"] == sensor_id
    after = counts(client)
    assert after["Sensors"] == before["Sensors"] + 1
    assert after["Datastreams"] == before["Datastreams"] + 1
    assert after["Observations"] == before["Observations"] + 1
    # the change events were published after the commit: each entity was readable then
    created = {(e.entity_type, e.entity_id) for e, _ in events if e.kind == "created"}
    assert {("Sensor", sensor_id), ("Datastream", ds_id)} <= created
    assert all(committed for _, committed in events)


def test_failed_atomicity_group_stores_nothing_and_publishes_nothing(
    client: Client, world: dict[str, int], events: list[tuple[ChangeEvent, bool]]
) -> None:
    ds = world["datastream"]
    before = snapshot(client)
    summary = client.ok("GET", f"Datastreams({ds})")
    resp = post_json(
        client,
        [
            {"id": "t", "atomicityGroup": "g", "method": "post", "url": "Things", "body": thing()},
            {
                "id": "o1",
                "atomicityGroup": "g",
                "method": "post",
                "url": f"Datastreams({ds})/Observations",
                "body": obs(1, "2024-02-01T00:00:00Z", resultTime="2024-02-01T00:00:00Z"),
            },
            {
                "id": "rename",
                "atomicityGroup": "g",
                "method": "patch",
                "url": f"Things({world['thing']})",
                "body": {"name": "Renamed"},
            },
            {
                "id": "del",
                "atomicityGroup": "g",
                "method": "delete",
                "url": f"ObservedProperties({world['prop']})",
            },
            {
                "id": "bad",
                "atomicityGroup": "g",
                "method": "post",
                "url": "Things",
                "body": {"name": "x"},
            },
            {
                "id": "late",
                "atomicityGroup": "g",
                "method": "post",
                "url": "Things",
                "body": thing(),
            },
            {"id": "next", "method": "post", "url": "Sensors", "body": sensor("Next")},
        ],
    )
    out = responses(resp)
    assert out["bad"]["status"] == 400
    message = out["bad"]["body"]["message"]
    assert "requests[4]" in message
    assert "nothing" in message
    assert "description" in message
    for name in ("t", "o1", "rename", "del", "late"):
        assert out[name]["status"] == 424, out[name]
        assert out[name]["atomicityGroup"] == "g"
        assert "requests[4]" in out[name]["body"]["message"]
    assert out["next"]["status"] == 201  # the failure does not stop what follows
    after = snapshot(client)
    assert len(after.pop("Sensors")) == len(before.pop("Sensors")) + 1
    assert after == before
    assert client.ok("GET", f"Datastreams({ds})") == summary
    assert [e.entity_type for e, _ in events] == ["Sensor"]  # only the request after it


def test_failing_request_inside_group_at_the_database_rolls_back(
    client: Client, world: dict[str, int]
) -> None:
    """The failure is found only by the store (a missing related entity), after several
    rows of the same transaction were written."""
    before = snapshot(client)
    resp = post_json(
        client,
        [
            {
                "id": "a",
                "atomicityGroup": "g",
                "method": "post",
                "url": "Things",
                "body": thing("A", locations=[location("LA")], datastreams=[datastream("DA")]),
            },
            {
                "id": "b",
                "atomicityGroup": "g",
                "method": "post",
                "url": "$a/Datastreams",
                "body": new_datastream("DB", 999_999, Sensor=sensor("SB")),
            },
        ],
    )
    out = responses(resp)
    assert out["b"]["status"] in (400, 404, 409), out["b"]
    assert "requests[1]" in out["b"]["body"]["message"]
    assert out["a"]["status"] == 424
    assert snapshot(client) == before


def test_group_needing_a_new_partition_midway_is_stored_once(
    client: Client, world: dict[str, int]
) -> None:
    """On PostgreSQL an Observation of a month without partition, after other writes of
    its transaction, makes the store set up first and run the whole change set again."""
    ds = world["datastream"]
    before = counts(client)
    resp = post_json(
        client,
        [
            {
                "id": "t",
                "atomicityGroup": "g",
                "method": "post",
                "url": "Things",
                "body": thing("P"),
            },
            {
                "id": "o",
                "atomicityGroup": "g",
                "method": "post",
                "url": f"Datastreams({ds})/Observations",
                "body": obs(1, "2031-05-17T00:00:00Z"),
            },
            {
                "id": "o2",
                "atomicityGroup": "g",
                "method": "post",
                "url": f"Datastreams({ds})/Observations",
                "body": obs(2, "2032-07-17T00:00:00Z"),
            },
        ],
    )
    out = responses(resp)
    assert [out[k]["status"] for k in ("t", "o", "o2")] == [201, 201, 201]
    after = counts(client)
    assert after["Things"] == before["Things"] + 1
    assert after["Observations"] == before["Observations"] + 2
    assert client.ids("Things?$filter=name eq 'P'") == [
        entity_id_of(out["t"]["headers"]["location"])
    ]


def test_references_that_name_nothing_or_the_wrong_type_are_refused(
    client: Client, world: dict[str, int]
) -> None:
    before = snapshot(client)
    resp = post_json(
        client,
        [
            {"id": "u", "method": "post", "url": "$nope/Observations", "body": obs()},
            {
                "id": "b",
                "method": "post",
                "url": "Observations",
                "body": obs(Datastream={"@iot.id": "$ghost"}),
            },
            {"id": "t", "method": "post", "url": "Things", "body": thing("T2")},
            {
                "id": "w",
                "method": "post",
                "url": "Observations",
                "body": obs(Datastream={"@iot.id": "$t"}),
            },
            {"id": "x", "method": "post", "url": "Things", "body": {"name": "no description"}},
            {"id": "y", "method": "post", "url": "$x/Datastreams", "body": datastream()},
            {"id": "z", "dependsOn": ["x"], "method": "get", "url": "Things"},
        ],
    )
    out = responses(resp)
    assert out["u"]["status"] == 400
    assert "$nope" in out["u"]["body"]["message"]
    assert out["b"]["status"] == 400
    assert "$ghost" in out["b"]["body"]["message"]
    assert out["t"]["status"] == 201
    assert out["w"]["status"] == 400
    assert "Things(" in out["w"]["body"]["message"]
    assert "Datastreams" in out["w"]["body"]["message"]
    assert out["x"]["status"] == 400
    assert out["y"]["status"] == 424
    assert "$x" in out["y"]["body"]["message"]
    assert out["z"]["status"] == 424
    after = snapshot(client)
    assert len(after.pop("Things")) == len(before.pop("Things")) + 1
    assert after == before


def test_continue_on_error_false_stops_at_the_first_failure(
    client: Client, world: dict[str, int]
) -> None:
    requests = [
        {"id": "1", "method": "post", "url": "Sensors", "body": sensor("One")},
        {"id": "2", "method": "get", "url": "Things(999)"},
        {"id": "3", "method": "post", "url": "Sensors", "body": sensor("Three")},
    ]
    resp = post_json(client, requests, headers={"prefer": "odata.continue-on-error=false"})
    assert [(e["id"], e["status"]) for e in resp.json()["responses"]] == [("1", 201), ("2", 404)]
    assert client.ids("Sensors?$filter=name eq 'Three'") == []
    resp = post_json(client, requests, headers={"prefer": "continue-on-error"})
    assert [e["status"] for e in resp.json()["responses"]] == [201, 404, 201]
    assert resp.headers["preference-applied"] == "continue-on-error=true"


def test_observation_posts_outside_change_sets_share_a_transaction(
    client: Client, world: dict[str, int]
) -> None:
    ds = world["datastream"]
    opened = count_writes(client)

    def posts(first: int) -> list[dict[str, Any]]:
        return [
            {
                "id": str(n),
                "method": "post",
                "url": f"Datastreams({ds})/Observations",
                "body": obs(n, None),  # server time: a month with its partition
            }
            for n in range(first, first + 20)
        ]

    out = responses(post_json(client, posts(0)))
    assert opened[0] == 1  # twenty POSTs, one commit
    # one bad POST among them costs the others nothing; each is answered on its own
    requests = posts(20)
    requests[7]["url"] = "Datastreams(999)/Observations"
    out |= responses(post_json(client, requests))
    assert out["27"]["status"] == 404
    for n in set(range(40)) - {27}:
        assert out[str(n)]["status"] == 201
        assert out[str(n)]["body"]["result"] == n
        assert client.ok("GET", out[str(n)]["headers"]["location"]) == out[str(n)]["body"]


def test_observations_of_a_change_set_are_stored_together_and_answered_alone(
    client: Client, world: dict[str, int]
) -> None:
    ds = world["datastream"]
    other = client.create(f"Things({world['thing']})/Datastreams", datastream("Other"))
    opened = count_writes(client)
    requests = [
        {
            "id": str(n),
            "atomicityGroup": "g",
            "method": "post",
            "url": f"Datastreams({ds if n % 2 else other})/Observations",
            "body": obs(n, None, resultTime=f"2024-01-01T00:00:{n:02d}Z"),
        }
        for n in range(30)
    ]
    out = responses(post_json(client, requests))
    assert opened[0] == 1
    for n in range(30):
        assert out[str(n)]["status"] == 201
        assert out[str(n)]["body"]["result"] == n
        assert client.ok("GET", out[str(n)]["headers"]["location"]) == out[str(n)]["body"]
    counted_ds = client.ok("GET", f"Datastreams({ds})/Observations?$count=true&$top=0")
    assert counted_ds["@iot.count"] == 15


@pytest.mark.parametrize(
    ("bad", "status", "fragment"),
    [
        ({"url": "Datastreams(999)/Observations"}, 404, "Datastream"),
        ({"body": {"result": 1, "phenomenonTime": "not a time"}}, 400, "phenomenonTime"),
        (
            {"url": "Observations", "body": {"result": 1, "Datastream": {"@iot.id": 999}}},
            400,
            "999",
        ),
    ],
)
def test_a_bad_observation_among_many_in_a_change_set_is_named(
    client: Client, world: dict[str, int], bad: dict[str, Any], status: int, fragment: str
) -> None:
    ds = world["datastream"]
    before = snapshot(client)
    requests = [
        {
            "id": str(n),
            "atomicityGroup": "g",
            "method": "post",
            "url": f"Datastreams({ds})/Observations",
            "body": obs(n, None),
        }
        for n in range(6)
    ]
    requests[4] |= bad
    out = responses(post_json(client, requests))
    assert out["4"]["status"] == status
    assert "requests[4]" in out["4"]["body"]["message"]
    assert fragment in out["4"]["body"]["message"]
    assert [out[str(n)]["status"] for n in (0, 1, 2, 3, 5)] == [424] * 5
    assert snapshot(client) == before


def test_minimal_answers_inside_a_batch(client: Client, world: dict[str, int]) -> None:
    out = responses(
        post_json(
            client,
            [
                {
                    "id": "m",
                    "method": "post",
                    "url": "Things",
                    "body": thing(),
                    "headers": {"prefer": "return=minimal"},
                }
            ],
        )
    )
    assert out["m"]["status"] == 204
    assert "body" not in out["m"]
    assert client.ok("GET", out["m"]["headers"]["location"])["name"] == "Thing"


def test_a_batch_cannot_hold_a_batch(client: Client) -> None:
    out = responses(
        post_json(
            client, [{"id": "n", "method": "post", "url": "$batch", "body": {"requests": []}}]
        )
    )
    assert out["n"]["status"] == 400
    assert "$batch" in out["n"]["body"]["message"]


# --- multipart batch --------------------------------------------------------------------------
def test_multipart_batch_of_the_sensorthings_example(client: Client, world: dict[str, int]) -> None:
    t = world["thing"]
    resp = post_multipart(
        client,
        [
            request_part("GET", f"/v1.1/Things({t})?$select=name"),
            change_set(
                [
                    request_part("POST", "/v1.1/Things", thing("New"), content_id="1"),
                    request_part("PATCH", "$1", {"name": "Patched"}, content_id="2"),
                ]
            ),
            request_part("GET", "/v1.1/Things(999)"),
        ],
    )
    first, cs, last = read_multipart(resp)
    assert isinstance(first, HttpAnswer)
    assert first.status == 200
    assert first.json() == {"name": "Home"}
    assert isinstance(cs, ChangeSetAnswer)
    created, patched = cs.answers
    assert (created.content_id, created.status) == ("1", 201)
    new_id = entity_id_of(created.headers["location"])
    assert created.headers["location"] == f"{ROOT}/Things({new_id})"
    assert (patched.content_id, patched.status) == ("2", 200)
    assert patched.json()["@iot.id"] == new_id
    assert client.ok("GET", f"Things({new_id})")["name"] == "Patched"
    assert isinstance(last, HttpAnswer)
    assert last.status == 404
    assert last.json()["code"] == 404


def test_multipart_change_set_references_in_body_frost_example(
    client: Client, world: dict[str, int]
) -> None:
    resp = post_multipart(
        client,
        [
            change_set(
                [
                    request_part("POST", "/v1.1/Sensors", sensor("DS18B20"), content_id="sensor1"),
                    request_part(
                        "POST",
                        f"/v1.1/Things({world['thing']})/Datastreams",
                        new_datastream("T5", world["prop"], Sensor={"@iot.id": "$sensor1"}),
                        content_id="any",
                    ),
                ]
            )
        ],
    )
    (cs,) = read_multipart(resp)
    assert isinstance(cs, ChangeSetAnswer)
    assert [(a.content_id, a.status) for a in cs.answers] == [("sensor1", 201), ("any", 201)]
    sensor_id = entity_id_of(cs.answers[0].headers["location"])
    ds_id = entity_id_of(cs.answers[1].headers["location"])
    assert client.ok("GET", f"Datastreams({ds_id})/Sensor")["@iot.id"] == sensor_id


def test_multipart_failed_change_set_is_one_error_part_and_stores_nothing(
    client: Client, world: dict[str, int]
) -> None:
    before = snapshot(client)
    resp = post_multipart(
        client,
        [
            change_set(
                [
                    request_part("POST", "Things", thing("Gone"), content_id="1"),
                    request_part("POST", "$1/Locations", location(), content_id="2"),
                    request_part("DELETE", f"Things({world['thing']})", content_id="3"),
                    request_part("PATCH", "Things(999)", {"name": "x"}, content_id="4"),
                ]
            ),
            request_part("GET", f"Things({world['thing']})?$select=name"),
        ],
    )
    failed, after_it = read_multipart(resp)
    assert isinstance(failed, HttpAnswer)  # not a nested multipart
    assert failed.status == 404
    assert failed.headers["content-type"] == "application/json"
    assert "part 1.4" in failed.json()["message"]
    assert "nothing" in failed.json()["message"]
    assert isinstance(after_it, HttpAnswer)
    assert after_it.json() == {"name": "Home"}
    assert snapshot(client) == before


@pytest.mark.parametrize("nl", ["\r\n", "\n"])
def test_multipart_relative_and_absolute_urls_encoded_queries_and_line_ends(
    client: Client, world: dict[str, int], nl: str
) -> None:
    relative = request_part("GET", "Things?$filter=name%20eq%20%27Home%27&$select=name", nl=nl)
    absolute = request_part("GET", f"{ROOT}/Things?$select=name", nl=nl)
    body = f"--b{nl}{relative}{nl}--b{nl}{absolute}{nl}--b--{nl}".encode()
    a, b = read_multipart(post_multipart(client, body, boundary="b"))
    assert isinstance(a, HttpAnswer)
    assert isinstance(b, HttpAnswer)
    assert a.json() == b.json() == {"value": [{"name": "Home"}]}


def test_multipart_quoted_boundary_and_minimal_answer(client: Client) -> None:
    body = (
        "--x:y\r\n"
        + request_part("POST", "Things", thing(), headers={"Prefer": "return=minimal"})
        + "\r\n--x:y--"
    ).encode()
    resp = client.request(
        "POST", "$batch", content=body, headers={"content-type": 'multipart/mixed; boundary="x:y"'}
    )
    (answer,) = read_multipart(resp)
    assert isinstance(answer, HttpAnswer)
    assert answer.status == 204
    assert answer.body == b""
    assert client.ok("GET", answer.headers["location"])["name"] == "Thing"


# --- malformed batches --------------------------------------------------------------------------
GOOD = {"id": "ok", "method": "post", "url": "Things", "body": {"name": "T", "description": "d"}}

MALFORMED_JSON: list[tuple[Any, str]] = [
    (b"{not json", "not valid JSON"),
    ({"requests": "x"}, "requests"),
    ({"requests": [GOOD], "extra": 1}, "extra"),
    ({"requests": [GOOD, 5]}, "requests[1]"),
    ({"requests": [GOOD, {"method": "get", "url": "Things"}]}, "requests[1]: a request needs id"),
    ({"requests": [GOOD, {"id": "x", "method": "fetch", "url": "Things"}]}, "fetch"),
    ({"requests": [GOOD, {"id": "x", "method": "head", "url": "Things"}]}, "head"),
    ({"requests": [GOOD, {"id": "x", "method": "get"}]}, "url"),
    ({"requests": [GOOD, {**GOOD}]}, "used twice"),
    ({"requests": [GOOD, {"id": "x", "method": "get", "url": "Things", "if": "true"}]}, "if"),
    ({"requests": [GOOD, {"id": "x", "method": "get", "url": "Things", "body": {}}]}, "no body"),
    (
        {"requests": [GOOD, {"id": "x", "method": "get", "url": "Things", "dependsOn": ["y"]}]},
        "dependsOn",
    ),
    (
        {
            "requests": [
                {**GOOD, "atomicityGroup": "g"},
                {"id": "x", "method": "get", "url": "Things"},
                {**GOOD, "id": "y", "atomicityGroup": "g"},
            ]
        },
        "adjacent",
    ),
    (
        {
            "requests": [
                {**GOOD, "atomicityGroup": "g"},
                {"id": "x", "method": "get", "url": "Things", "atomicityGroup": "g"},
            ]
        },
        "GET cannot be part of a change set",
    ),
    ({"requests": [{**GOOD, "atomicityGroup": "ok"}]}, "atomicityGroup"),
    ({"requests": [{**GOOD, "headers": {"content-type": 5}}]}, "headers"),
]


@pytest.mark.parametrize(("body", "fragment"), MALFORMED_JSON)
def test_malformed_json_batch_is_400_and_runs_nothing(
    client: Client, body: Any, fragment: str
) -> None:
    before = counts(client)
    if isinstance(body, bytes):
        resp = client.request(
            "POST", "$batch", content=body, headers={"content-type": "application/json"}
        )
    else:
        resp = client.post("$batch", body)
    assert_error(resp, 400, fragment)
    assert counts(client) == before


POST_PART = request_part("POST", "Things", {"name": "T", "description": "d"})
MALFORMED_MULTIPART: list[tuple[bytes, str, str]] = [
    (b"--b\r\n" + POST_PART.encode() + b"\r\n--b--", "multipart/mixed", "boundary"),
    (b"--b\r\n" + POST_PART.encode() + b"\r\n", "multipart/mixed; boundary=b", "closing delimiter"),
    (b"no parts at all", "multipart/mixed; boundary=b", "delimiter --b"),
    (
        b"--b\r\nContent-Type: text/plain\r\n\r\nGET Things HTTP/1.1\r\n\r\n\r\n--b--",
        "multipart/mixed; boundary=b",
        "application/http",
    ),
    (
        b"--b\r\nContent-Type: application/http\r\n\r\nthis is no request\r\n\r\n\r\n--b--",
        "multipart/mixed; boundary=b",
        "request line",
    ),
    (
        b"--b\r\nContent-Type: application/http\r\n\r\nBREW Things HTTP/1.1\r\n\r\n\r\n--b--",
        "multipart/mixed; boundary=b",
        "BREW",
    ),
    (
        b"--b\r\nContent-Type: application/http\r\n\r\n"
        b"GET Things HTTP/1.1\r\nno header\r\n\r\n\r\n--b--",
        "multipart/mixed; boundary=b",
        "header line",
    ),
    (
        b"--b\r\n" + change_set([change_set([POST_PART], "inner")]).encode() + b"\r\n--b--",
        "multipart/mixed; boundary=b",
        "nested",
    ),
    (
        b"--b\r\n" + change_set([request_part("GET", "Things")]).encode() + b"\r\n--b--",
        "multipart/mixed; boundary=b",
        "GET cannot be part of a change set",
    ),
    (
        b"--b\r\nContent-Type: multipart/mixed\r\n\r\n--c\r\n"
        + POST_PART.encode()
        + b"\r\n--c--\r\n--b--",
        "multipart/mixed; boundary=b",
        "boundary",
    ),
    (
        b"--b\r\n"
        + POST_PART.encode()
        + b"\r\n--b\r\n"
        + request_part("POST", "Things", {"name": "T", "description": "d"}, content_id="1").encode()
        + b"\r\n--b\r\n"
        + request_part("GET", "Things", content_id="1").encode()
        + b"\r\n--b--",
        "multipart/mixed; boundary=b",
        "used twice",
    ),
]


@pytest.mark.parametrize(("body", "content_type", "fragment"), MALFORMED_MULTIPART)
def test_malformed_multipart_batch_is_400_and_runs_nothing(
    client: Client, body: bytes, content_type: str, fragment: str
) -> None:
    before = counts(client)
    resp = client.request("POST", "$batch", content=body, headers={"content-type": content_type})
    assert_error(resp, 400, fragment)
    assert counts(client) == before


def test_batch_needs_post_and_a_batch_content_type(client: Client) -> None:
    assert_error(client.get("$batch"), 405)
    assert client.get("$batch").headers["allow"] == "POST"
    resp = client.request("POST", "$batch", content=b"x", headers={"content-type": "text/plain"})
    assert_error(resp, 415, "multipart/mixed", "application/json")
    assert_error(client.request("POST", "$batch", content=b"{}"), 415)
    assert_error(client.post("$batch?$top=1", {"requests": []}), 400, "query")


def test_too_many_requests_are_refused_before_any_runs(tmp_path: Path, db_url: str) -> None:
    c = make_client(tmp_path, db=db_url, max_batch_requests=3)
    try:
        before = counts(c)
        four = [{**GOOD, "id": str(i)} for i in range(4)]
        assert_error(c.post("$batch", {"requests": four}), 413, "3", "max_batch_requests")
        parts = [POST_PART, change_set([POST_PART, POST_PART, POST_PART])]
        assert_error(post_multipart(c, parts), 413, "max_batch_requests")
        assert counts(c) == before
        assert [
            e["status"] for e in c.post("$batch", {"requests": four[:3]}).json()["responses"]
        ] == [
            201,
            201,
            201,
        ]
    finally:
        c.close()
