"""Creates published in batches (the external broker's ingest), on SQLite and PostgreSQL:
plain Observations take the bulk path, everything else the POST path, and both answer
exactly as HTTP does."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from citytwin.access import ANONYMOUS
from citytwin.access.audit import Origin
from citytwin.bus import ChangeEvent
from citytwin.errors import Conflict
from citytwin.mqtt.ingest import Ingest
from citytwin.service.drafts import Draft
from citytwin.service.rules import Rules
from tests.support import Client, count_writes, datastream, location, thing

IGNORED = ("@iot.id", "@iot.selfLink")  # made by the server


@pytest.fixture
def city(client: Client) -> dict[str, int]:
    tid = client.create(
        "Things",
        thing("T", locations=[location()], datastreams=[datastream("A"), datastream("B")]),
    )
    a, b = client.ids(f"Things({tid})/Datastreams")
    first = client.create(f"Datastreams({a})/Observations", {"result": 0})
    foi = client.ok("GET", f"Observations({first})/FeatureOfInterest")["@iot.id"]
    return {"a": a, "b": b, "foi": foi}


class Reports:
    """What the ingest publishes on the error topic, by topic."""

    def __init__(self, ingest: Ingest) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

        async def publish(topic: str, payload: bytes, *sender: object) -> None:
            self.sent.append((topic, orjson.loads(payload)))

        ingest.publish = publish


def ingest_of(client: Client) -> Ingest:
    ingest: Ingest = client.app.state.mqtt.ingest
    return ingest


def take_in(client: Client, publishes: list[tuple[str, Any]]) -> None:
    raw = [(t, b if isinstance(b, bytes) else orjson.dumps(b), ANONYMOUS) for t, b in publishes]
    outcomes = client.call(ingest_of(client).handle_many(raw))
    assert outcomes == [None] * len(raw)


def count(client: Client) -> int:
    body = client.ok("GET", "Observations?$count=true&$top=0")
    return int(body["@iot.count"])


def invalid(city: dict[str, int]) -> list[tuple[str, Any]]:
    """One publish of each kind of fault: (topic, body)."""
    a = city["a"]
    on_a = f"v1.1/Datastreams({a})/Observations"
    return [
        (on_a, b"{not json"),
        (on_a, b""),
        (on_a, b"[1, 2]"),
        (on_a, {"result": 1, "colour": "red"}),
        (on_a, {"phenomenonTime": "2024-01-01T00:00:00Z"}),
        (on_a, {"result": 1, "phenomenonTime": "yesterday"}),
        (on_a, {"result": 1, "resultTime": "2024-01-01T00:00:00Z/2024-01-02T00:00:00Z"}),
        (on_a, {"result": 1, "validTime": "2024-01-01T00:00:00Z"}),
        (on_a, {"result": 1, "parameters": [1]}),
        (on_a, {"result": 1, "phenomenonTime": None}),
        (on_a, {"result": 1, "Datastream": {"@iot.id": city["b"]}}),
        (on_a, {"result": 1, "FeatureOfInterest": {"@iot.id": 424242}}),
        (on_a, {"result": 1, "FeatureOfInterest": {"name": "no encoding"}}),
        (on_a, {"result": 1, "MultiDatastream": {"@iot.id": 424242}}),
        ("v1.1/Datastreams(424242)/Observations", {"result": 1}),
        ("v1.1/Observations", {"result": 1}),
        ("v1.1/Observations", {"result": 1, "Datastream": {"@iot.id": 424242}}),
        ("v1.1/Observations", {"result": 1, "Datastream": {"@iot.id": "abc"}}),
        ("v1.1/Observations", {"result": 1, "Datastream": {"@iot.id": -1}}),
        ("v1.1/Observations", {"result": 1, "Datastream": 7}),
    ]


def http_answer(client: Client, topic: str, body: Any) -> tuple[int, str]:
    path = topic.partition("/")[2]
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    resp = client.post(path, content=content, headers={"Content-Type": "application/json"})
    return resp.status_code, resp.json()["message"]


def test_each_fault_is_reported_with_the_message_http_gives_and_stores_nothing(
    client: Client, city: dict[str, int]
) -> None:
    reports = Reports(ingest_of(client))
    bad = invalid(city)
    before = count(client)
    take_in(client, bad)
    assert count(client) == before
    got = [(r["topic"], r["code"], r["message"]) for _, r in reports.sent]
    expected = [(t, *http_answer(client, t, b)) for t, b in bad]
    assert got == expected
    assert count(client) == before  # nor did HTTP
    assert [t for t, _ in reports.sent] == [f"citytwin/errors/{t}" for t, _ in bad]


def test_faults_among_valid_publishes_cost_the_others_nothing(
    client: Client, city: dict[str, int]
) -> None:
    ingest = ingest_of(client)
    reports = Reports(ingest)
    bad = invalid(city)
    good = [(f"v1.1/Datastreams({city['a']})/Observations", {"result": i}) for i in range(len(bad))]
    mixed = [p for pair in zip(good, bad, strict=True) for p in pair]
    before = count(client)
    take_in(client, mixed)
    assert count(client) == before + len(good)
    stored = {o["result"] for o in client.values(f"Datastreams({city['a']})/Observations")}
    assert set(range(len(good))) <= stored
    assert len(reports.sent) == len(bad)
    metrics = ingest.metrics
    assert metrics["citytwin_mqtt_created_total"] == len(good)
    assert metrics["citytwin_mqtt_rejected_total"] == len(bad)
    assert metrics["citytwin_mqtt_received_total"] == len(mixed)


BODIES: list[dict[str, Any]] = [
    {"result": 21.5, "phenomenonTime": "2024-03-01T12:00:00Z"},
    {"result": "on", "phenomenonTime": "2024-03-01T12:00:00.123+02:00"},
    {"result": {"a": [1, 2]}, "phenomenonTime": "2024-03-01T12:00:00Z/2024-03-01T13:00:00Z"},
    {"result": True, "resultTime": "2024-03-01T12:00:01Z", "phenomenonTime": "2024-03-02"},
    {
        "result": 3,
        "phenomenonTime": "2024-03-01T12:00:00Z",
        "validTime": "2024-03-01T00:00:00Z/P1D",
        "resultQuality": ["good"],
        "parameters": {"gain": 2},
    },
    {"result": None, "phenomenonTime": "2024-03-01T12:00:00Z"},
    {"result": 7},  # phenomenonTime: the server's time
]


def comparable(entity: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The entity but what the server made; the server's time for a body without one."""
    skip = IGNORED if "phenomenonTime" in body else (*IGNORED, "phenomenonTime")
    return {k: v for k, v in entity.items() if k not in skip and "@iot.navigationLink" not in k}


@pytest.mark.parametrize("by_path", [True, False], ids=["Datastreams(x)", "Observations"])
def test_stored_observations_and_their_notifications_are_those_of_http(
    client: Client, city: dict[str, int], by_path: bool
) -> None:
    a, b = city["a"], city["b"]
    named = {"result": 8, "phenomenonTime": "2024-03-03T00:00:00Z"}
    bodies = [*BODIES, {**named, "FeatureOfInterest": {"@iot.id": city["foi"]}}]
    for body in bodies:
        client.create(f"Datastreams({a})/Observations", body)
    if by_path:
        publishes = [(f"v1.1/Datastreams({b})/Observations", body) for body in bodies]
    else:
        publishes = [
            ("v1.1/Observations", {**body, "Datastream": {"@iot.id": b}}) for body in bodies
        ]
    events: list[ChangeEvent] = []
    service = client.app.state.service
    remove = service.bus.subscribe(events.append)
    opened = count_writes(client)
    general = service.handle_many
    service.handle_many = None  # plain Observations never take the POST path
    try:
        take_in(client, publishes)
    finally:
        remove()
        service.handle_many = general
    assert opened == [1]  # all in one transaction
    order = "$orderby=id asc&$expand=FeatureOfInterest($select=id)"
    over_http = client.values(f"Datastreams({a})/Observations?{order}")[1:]  # city's first
    over_mqtt = client.values(f"Datastreams({b})/Observations?{order}")
    assert [comparable(o, body) for o, body in zip(over_mqtt, bodies, strict=True)] == [
        comparable(o, body) for o, body in zip(over_http, bodies, strict=True)
    ]
    # one creation event per Observation, so each subscriber hears of each once
    assert events == [ChangeEvent("Observation", o["@iot.id"], "created") for o in over_mqtt]
    mqtt = client.app.state.mqtt
    sent: list[tuple[str, bytes]] = []

    async def publish(topic: str, payload: bytes, receives: object) -> None:
        assert receives is None  # access control off: one notification for all
        sent.append((topic, payload))

    mqtt.notifier.publish = publish
    topic = f"v1.1/Datastreams({b})/Observations"
    mqtt.subscriptions.add("dashboard", topic)
    for event in events:
        client.call(mqtt.notifier.notify(event))
    root = mqtt.notifier.base_url.encode()  # notifications link to the configured root
    gets = [client.get(f"Observations({o['@iot.id']})").content for o in over_mqtt]
    assert sent == [(topic, g.replace(b"http://testserver", root)) for g in gets]
    # the Datastream's summary: extents and latest Observation as over HTTP
    summary = "phenomenonTime,resultTime"
    latest = "$expand=Observations($top=1;$orderby=phenomenonTime desc;$select=result)"
    ds_http = client.ok("GET", f"Datastreams({a})?$select={summary}&{latest}")
    ds_mqtt = client.ok("GET", f"Datastreams({b})?$select={summary}&{latest}")
    assert ds_mqtt["Observations"] == ds_http["Observations"]
    assert ds_mqtt["resultTime"] == ds_http["resultTime"]


def test_a_batch_spanning_new_months_is_stored_whole(client: Client, city: dict[str, int]) -> None:
    """On PostgreSQL each month is a partition made when first needed, also when the
    bulk insert has already written rows of an earlier month in its transaction."""
    topic = f"v1.1/Datastreams({city['a']})/Observations"
    months = ["2031-05", "2031-06", "2032-07"]
    n = 1500  # past the first chunk of the bulk insert, which is written while the next is made
    publishes = [
        (topic, {"result": i, "phenomenonTime": f"{months[i * 3 // n]}-01T00:00:{i % 60:02d}Z"})
        for i in range(n)
    ]
    before = count(client)
    take_in(client, publishes)
    assert count(client) == before + n
    later = "$filter=phenomenonTime ge 2031-01-01T00:00:00Z&$top=2000"
    results = [o["result"] for o in client.values(f"{topic[5:]}?{later}")]
    assert sorted(results) == list(range(n))  # each once
    span = client.ok("GET", f"Datastreams({city['a']})?$select=phenomenonTime")
    assert span["phenomenonTime"].endswith("2032-07-01T00:00:59Z")


def test_the_summaries_of_many_datastreams_in_one_batch_are_kept(
    client: Client, city: dict[str, int]
) -> None:
    """Each Datastream's extents, count and latest Observation (read through the
    maintained summary) agree with its Observations (read by scanning them)."""
    a, b = city["a"], city["b"]
    publishes: list[tuple[str, Any]] = []
    for i in range(40):
        day = f"2024-05-{1 + (i * 7) % 28:02d}T00:00:00Z"
        if i % 2:
            publishes.append(
                (f"v1.1/Datastreams({a})/Observations", {"result": i, "phenomenonTime": day})
            )
        else:
            body = {
                "result": i,
                "phenomenonTime": day,
                "resultTime": day,
                "Datastream": {"@iot.id": b},
            }
            publishes.append(("v1.1/Observations", body))
    service = client.app.state.service
    opened = count_writes(client)
    general = service.handle_many
    service.handle_many = None  # each batch is stored whole, in one shared write
    try:
        for _ in range(2):  # the second batch moves nothing back
            take_in(client, publishes)
    finally:
        service.handle_many = general
    assert opened == [2]
    latest = "$expand=Observations($top=1;$orderby=phenomenonTime desc;$count=true)"
    for ds in (a, b):
        summary = client.ok("GET", f"Datastreams({ds})?$select=phenomenonTime,resultTime&{latest}")
        scan = f"Datastreams({ds})/Observations?$orderby=phenomenonTime desc,id asc&$count=true"
        body = client.ok("GET", f"{scan}&$top=1000")
        newest = body["value"][0]
        assert summary["Observations@iot.count"] == body["@iot.count"]
        assert summary["Observations"][0]["@iot.id"] == newest["@iot.id"]
        times = sorted(o["phenomenonTime"] for o in body["value"])
        assert summary["phenomenonTime"] == f"{times[0]}/{times[-1]}"
        results = sorted(o["resultTime"] for o in body["value"] if o["resultTime"])
        expected = f"{results[0]}/{results[-1]}" if results else None
        assert summary.get("resultTime") == expected


def test_the_datastreams_of_a_batch_are_found_with_their_generated_features(
    client: Client, city: dict[str, int]
) -> None:
    """One query says which Datastreams exist and which FeatureOfInterest their
    Observations get when they name none: the one HTTP gave the city's first."""
    thingless = client.create("Things", thing("No place", datastreams=[datastream("C")]))
    (c,) = client.ids(f"Things({thingless})/Datastreams")
    service = client.app.state.service

    async def claim() -> tuple[set[int], dict[tuple[str, int], int]]:
        async with service.transaction(Origin(ANONYMOUS, "mqtt")) as unit:
            found = await unit.existing_streams([city["a"], city["b"], c, c + 1000])
            return found, dict(unit.rules.features)

    found, features = client.call(claim())
    assert found == {city["a"], city["b"], c}
    # the Thing of C has no Location: nothing to generate a feature from
    assert features == {
        ("Datastream", city["a"]): city["foi"],
        ("Datastream", city["b"]): city["foi"],
    }


def test_a_bulk_insert_claims_the_datastreams_it_names_with_their_features_once(
    client: Client, city: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Observations inserted together claim their Datastreams, by the path or by the
    body, in the same one query as the intake (no look-up of a generated feature each);
    a later insert in the transaction claims only what it adds."""
    service = client.app.state.service
    registry = service.registry
    claims: list[set[int]] = []
    real_claim = Rules.claim_streams

    async def claim(self: Rules, ids: Any, hidden: Any = ()) -> set[int]:
        claims.append(set(ids))
        return await real_claim(self, ids, hidden)

    async def no_lookup(self: Rules, stream: Any, where: str) -> int:
        raise AssertionError(f"looked up the generated feature of {stream} alone")

    monkeypatch.setattr(Rules, "claim_streams", claim)
    monkeypatch.setattr(Rules, "generated_feature", no_lookup)
    obs, ds = registry.type("Observation"), registry.type("Datastream")

    def flat(result: float) -> Draft:
        return Draft(obs, "Observation", None, {"result": result}, {}, {})

    def naming(stream: int) -> Draft:
        return Draft(
            obs, "Observation", None, {"result": 3.0}, {"Datastream": Draft(ds, "", stream)}, {}
        )

    async def insert() -> tuple[set[int], dict[tuple[str, int], int]]:
        async with service.transaction(Origin(ANONYMOUS, "http")) as unit:
            await unit.create_many([flat(1.0), flat(2.0)], [{"Datastream": city["a"]}] * 2)
            await unit.create_many([naming(city["a"]), naming(city["b"])], {})
            return set(unit.rules.claimed), dict(unit.rules.features)

    claimed, features = client.call(insert())
    assert claims == [{city["a"]}, {city["b"]}]
    assert claimed == {city["a"], city["b"]}
    assert features == {("Datastream", s): city["foi"] for s in (city["a"], city["b"])}
    for stream, n in ((city["a"], 4), (city["b"], 1)):
        assert (
            client.ok("GET", f"Datastreams({stream})/Observations?$count=true")["@iot.count"] == n
        )
        for o in client.ok("GET", f"Datastreams({stream})/Observations?$expand=FeatureOfInterest")[
            "value"
        ]:
            assert o["FeatureOfInterest"]["@iot.id"] == city["foi"]


@pytest.mark.parametrize(
    ("fault", "level"),
    [
        (RuntimeError("a statement the database cannot run"), "ERROR"),
        (Conflict("the change contradicts stored data"), "DEBUG"),  # some message's fault
    ],
)
def test_a_shared_write_failing_for_no_fault_of_the_messages_is_logged_as_an_error(
    client: Client,
    city: dict[str, int],
    caplog: pytest.LogCaptureFixture,
    fault: Exception,
    level: str,
) -> None:
    """Each publish is then stored alone, which is slower: such a failure must not pass
    unseen, while a fault of one message is what going alone is for."""
    intake = ingest_of(client).intake
    together = intake._together

    async def failing(plain: Any) -> list[int]:
        raise fault

    intake._together = failing  # type: ignore[method-assign]
    before = count(client)
    metrics = ingest_of(client).metrics
    failures = metrics["citytwin_mqtt_shared_write_failures_total"]
    try:
        with caplog.at_level("DEBUG", logger="citytwin.service"):
            take_in(client, [(f"v1.1/Datastreams({city['a']})/Observations", {"result": 1})])
    finally:
        intake._together = together  # type: ignore[method-assign]
    assert count(client) == before + 1  # stored all the same
    (record,) = [r for r in caplog.records if "shared write" in r.getMessage()]
    assert record.levelname == level
    # counted, so that an operator can be alerted, where a fault of a message is not
    counted = metrics["citytwin_mqtt_shared_write_failures_total"] - failures
    assert counted == (1 if level == "ERROR" else 0)
    if level == "ERROR":
        assert record.exc_info is not None
        assert record.exc_info[1] is fault
