"""The simulator runner against the real application: set-up, history, going on after a
restart, live values, moves and layers (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from citytwin.simulate.base import Move, Reading
from citytwin.simulate.city import City
from citytwin.simulate.runner import Live, observation
from citytwin.simulate.session import Options, Session
from tests.simulate.fake import DOMAIN, FakeSim
from tests.support import Client

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def _session(client: Client, history: timedelta = timedelta(hours=2)) -> Session:
    options = Options(seed=7, history=history, domains=("fake",))
    return Session(
        "http://testserver",
        options,
        http=client.http,
        domains={"fake": DOMAIN},
        simulators={"fake": FakeSim},
    )


def _counts(client: Client, thing: str) -> list[tuple[str, int]]:
    ds = client.get(
        f"Things?$filter=properties/simKey eq '{thing}'"
        "&$expand=Datastreams($filter=properties/property eq 'count')"
    ).json()["value"][0]["Datastreams"][0]
    obs = client.get(
        f"Datastreams({ds['@iot.id']})/Observations?$orderby=phenomenonTime&$top=1000"
    ).json()["value"]
    return [(o["phenomenonTime"], o["result"]) for o in obs]


def test_set_up_creates_the_things_with_their_domain_conventions(client: Client) -> None:
    session = _session(client)
    sent = client.call(session.prepare(now=START))
    things = client.get(
        "Things?$orderby=name&$expand=Datastreams($orderby=id;$expand=ObservedProperty,Sensor),"
        "Locations,TaskingCapabilities($expand=Actuator)"
    ).json()["value"]
    assert [t["properties"]["simKey"] for t in things] == [
        "fake/cart/0",
        "fake/counter/0",
        "fake/counter/1",
    ]
    counter = things[2]
    hood = session.city.neighbourhoods[1]
    keys = ("domain", "kind", "district", "neighbourhood", "lanes")
    assert {k: counter["properties"][k] for k in keys} == {
        "domain": "fake",
        "kind": "counter",
        "district": hood.district,
        "neighbourhood": hood.name,
        "lanes": 2,
    }
    # counters are published as open data; the cart, with personal data, is not
    assert counter["properties"]["openData"] is True
    assert "openData" not in things[0]["properties"]
    streams = counter["Datastreams"]
    assert [d["properties"] for d in streams] == [
        {"domain": "fake", "property": "count", "personal": False},
        {"domain": "fake", "property": "level", "personal": False},
    ]
    assert streams[0]["unitOfMeasurement"]["symbol"] == "1"
    assert streams[1]["ObservedProperty"]["definition"] == "https://example.org/level"
    # one ObservedProperty per template and one Sensor per sensor template, shared
    assert len(client.get("ObservedProperties").json()["value"]) == 2
    assert len(client.get("Sensors").json()["value"]) == 1
    cart = things[0]
    assert cart["Datastreams"][0]["properties"]["personal"] is True
    cap = cart["TaskingCapabilities"][0]
    assert cap["properties"]["driver"] == {"name": "mqtt", "topic": "citytwin/sim/fake/cart/0/stop"}
    # two hours of history at 15 minutes: 8 steps, 2 counters x 1 + 1 level each
    assert sent == 8 * 3
    # the cart stands where its last move of the history put it
    assert cart["Locations"][0]["location"]["coordinates"] == [
        round(c, 7) for c in session.city.node(8 % 5, 0)
    ]


def test_history_keeps_phenomenon_times_whatever_the_delivery_order(client: Client) -> None:
    client.call(_session(client).prepare(now=START))
    got = _counts(client, "fake/counter/1")
    first = START - timedelta(hours=2)
    assert got == [
        ((first + i * timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ"), (i + 1) * 2)
        for i in range(8)
    ]


def test_a_second_run_goes_on_where_the_first_stopped(client: Client) -> None:
    client.call(_session(client).prepare(now=START))
    later = _session(client)  # a new process: the same seed, nothing in memory
    sent = client.call(later.prepare(now=START + timedelta(hours=1)))
    assert sent == 4 * 3  # only the hour since, nothing twice
    got = _counts(client, "fake/counter/0")
    assert [v for _, v in got] == list(range(1, 13))  # the counter went on counting
    assert len(client.get("Things").json()["value"]) == 3


def test_layers_of_the_city_are_served(client: Client) -> None:
    session = _session(client)
    client.call(session.prepare(now=START))
    names = [layer["name"] for layer in client.get("/api/v1/layers").json()["value"]]
    assert names == ["buildings", "districts", "neighbourhoods", "streets"]
    districts = client.get("/api/v1/layers/districts")
    assert districts.headers["content-type"] == "application/geo+json"
    features = districts.json()["features"]
    assert [f["properties"]["name"] for f in features] == [d.name for d in session.city.districts]
    buildings = client.get("/api/v1/layers/buildings").json()["features"]
    assert len(buildings) == len(session.city.buildings)


def test_live_values_arrive_when_the_sensor_delivers_them(client: Client) -> None:
    session = _session(client)
    client.call(session.prepare(now=START))
    live = Live(session.client, session.platform, session.sims, START)
    # the step at START counts 9 (arrives on time); the one at START+45 min counts 12 but
    # is delivered 20 minutes late
    client.call(live.step(START + timedelta(minutes=50)))
    values = [v for _, v in _counts(client, "fake/counter/0")]
    assert values == list(range(1, 12))  # 12 is still on its way
    client.call(live.step(START + timedelta(minutes=66)))
    values = [v for _, v in _counts(client, "fake/counter/0")]
    assert values == list(range(1, 14))
    cart = client.get("Things?$filter=name eq 'Cart'&$expand=Locations,HistoricalLocations").json()
    assert cart["value"][0]["Locations"][0]["location"]["coordinates"] == [
        round(c, 7) for c in session.city.node(13 % 5, 0)
    ]


def test_a_task_reaches_the_simulated_device_and_is_answered() -> None:
    sim = FakeSim(City(), 1, START)
    outcome = sim.task("fake/cart/0", "stop", {"reason": "test"}, START)
    assert (outcome.status, outcome.message) == ("done", "stopped: test")
    events = sim.advance(START + timedelta(hours=1))
    assert not [e for e in events if isinstance(e, Move)]


def test_observation_bodies_carry_parameters_only_when_given() -> None:
    plain = observation(Reading("a", "b", START, 1.5))
    assert plain == {"phenomenonTime": "2026-03-02T00:00:00Z", "result": 1.5}
    swapped = observation(Reading("a", "b", START, 0.2, parameters={"meter": "X2"}))
    assert swapped["parameters"] == {"meter": "X2"}


def test_a_long_history_is_stored_a_day_at_a_time_and_whole(client: Client) -> None:
    session = _session(client, history=timedelta(days=2, hours=3))
    sent = client.call(session.prepare(now=START))
    steps = (2 * 24 + 3) * 4
    assert sent == steps * 3
    got = _counts(client, "fake/counter/0")
    assert [v for _, v in got] == list(range(1, steps + 1))
    # values delivered late at a day's end are stored with the next day's, not lost
    assert len({t for t, _ in got}) == steps
