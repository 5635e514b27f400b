"""Who may do what over MQTT on the embedded broker (docs/security.md): clients connect
with API keys, publishes are stored as their sender, notifications reach a client only
where a GET of its principal would return them. Real paho clients, both backends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from citytwin.access import ANONYMOUS
from citytwin.access.keys import create_key, revoke_key
from citytwin.errors import Unavailable
from citytwin.mqtt.audiences import Audiences
from citytwin.mqtt.ingest import Ingest
from tests.access.test_matrix import OWNERSHIP, ROLES, expected
from tests.access.world import PERSONAL_RESULT, World, build
from tests.mqtt.support import MqttClient, free_port
from tests.support import Client
from tests.tasking_support import dim, heat_pump

ERRORS = "citytwin/errors"
STREAMS = (*OWNERSHIP, "open-personal")
# the Datastreams each principal may read (the city's operator and reader, the utility's
# operator: the utility owns "other", "open" and "open-personal")
READABLE = {
    "admin": set(STREAMS),
    "operator": {"own", "open", "personal"},
    "reader": {"own", "open"},
    "utility": {"other", "open", "open-personal"},
    "anonymous": {"open"},
}


@pytest.fixture(scope="module")
def port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def world(new_client: Callable[..., Client], port: int) -> World:
    return build(
        new_client,
        mqtt="embedded",
        mqtt_port=port,
        mqtt_ws_port=0,
        service_root_url="http://testserver",
    )


def connect(world: World, port: int, who: str, name: str | None = None) -> MqttClient:
    """A client of ``who``: the key as password (the reader's: as user name alone)."""
    key = world.keys[who]
    name = name or f"{who}-{free_port()}"
    if key is None:
        return MqttClient(port, name)
    if who == "reader":
        return MqttClient(port, name, username=key)
    return MqttClient(port, name, username=f"{who} dashboard", password=key)


@pytest.fixture
def clients(world: World, port: int) -> Iterator[dict[str, MqttClient]]:
    with ExitStack() as stack:
        made = {}
        for who in READABLE:
            made[who] = connect(world, port, who)
            stack.callback(made[who].close)
        yield made


def stored(world: World, result: float) -> int:
    found = world.as_("admin", "GET", f"Observations?$filter=result eq {result}&$count=true")
    return int(found["@iot.count"])


def errors(client: MqttClient) -> list[dict[str, Any]]:
    return [m.json() for m in list(client.received) if m.topic.startswith(ERRORS + "/")]


def test_a_bad_key_is_refused_at_connect(world: World, port: int) -> None:
    bad = MqttClient(port, "intruder", username="x", password="not-a-key")
    try:
        assert bad.refusal is not None
        assert "authori" in str(bad.refusal).lower()
    finally:
        bad.close()
    alone = MqttClient(port, "key-as-name", username="not-a-key")  # the key as user name
    try:
        assert alone.refusal is not None
    finally:
        alone.close()
    for who in READABLE:
        good = connect(world, port, who)
        try:
            assert good.refusal is None, who
        finally:
            good.close()


@pytest.mark.parametrize("ownership", OWNERSHIP)
@pytest.mark.parametrize("role", ROLES)
def test_publish_is_stored_as_its_sender(
    world: World, port: int, role: str, ownership: str
) -> None:
    """The same answer as an HTTP POST (tests/access/test_matrix.py), on the error topic."""
    result = 1000 + ROLES.index(role) * 10 + OWNERSHIP.index(ownership) + 0.5
    topic = f"v1.1/Datastreams({world.streams[ownership]})/Observations"
    status = expected(role, "create", ownership)
    client = connect(world, port, role)
    try:
        client.subscribe(f"{ERRORS}/{topic}")
        client.publish(topic, {"result": result})
        if status == 201:
            assert stored(world, result) == 1
            assert client.quiet(f"{ERRORS}/{topic}", 0.3) == []
            return
        [report] = client.wait(f"{ERRORS}/{topic}")
    finally:
        client.close()
    body = report.json()
    assert body["code"] == status, body
    assert stored(world, result) == 0
    if status == 403:
        why = "operator or admin role" if role in ("reader", "anonymous") else "organisation"
        assert why in body["message"]
        if role == "anonymous":
            assert "anonymous" in body["message"]
    else:  # hidden from the sender: as if it did not exist, as over HTTP
        assert body["message"] == "no such Datastream"


def test_a_refusal_is_reported_to_the_senders_organisation_only(
    world: World, port: int, clients: dict[str, MqttClient]
) -> None:
    spy = connect(world, port, "anonymous")
    try:
        spy.subscribe("#")
        for c in clients.values():
            c.subscribe(f"{ERRORS}/#")
        topic = f"v1.1/Datastreams({world.streams['open']})/Observations"
        clients["operator"].publish(topic, {"result": 555.5})
        [mine] = clients["operator"].wait(f"{ERRORS}/{topic}")
        assert "another organisation" in mine.json()["message"]
        clients["admin"].wait(f"{ERRORS}/{topic}")
        for who in ("reader", "utility", "anonymous"):
            assert clients[who].quiet(f"{ERRORS}/{topic}", 0.2) == [], who
        assert not [m for m in spy.received if b"555.5" in m.payload]
    finally:
        spy.close()


def test_notifications_reach_only_who_may_read_them(
    world: World, port: int, clients: dict[str, MqttClient]
) -> None:
    spy = connect(world, port, "anonymous")  # everything, by wildcard
    try:
        spy.subscribe("#")
        topics = {o: f"v1.1/Datastreams({world.streams[o]})/Observations" for o in STREAMS}
        for c in clients.values():
            c.subscribe("v1.1/Observations", *topics.values())
        results = {o: 7000 + i + 0.25 for i, o in enumerate(STREAMS)}
        created = {o: world.observation(o, results[o]) for o in STREAMS}
        for who, c in clients.items():
            readable = READABLE[who]
            got = c.wait("v1.1/Observations", len(readable))
            assert {m.json()["result"] for m in got} == {results[o] for o in readable}, who
            for ownership, topic in topics.items():
                notes = c.wait(topic) if ownership in readable else c.quiet(topic, 0.05)
                assert len(notes) == (ownership in readable), (who, ownership)
                if notes:  # exactly what a GET of the client's principal returns
                    url = f"Observations({created[ownership]})"
                    assert notes[0].json() == world.as_(who, "GET", url)
            assert c.quiet("v1.1/Observations", 0.1) == got  # nothing more arrived
        secret = [results[o] for o in STREAMS if o != "open"] + list(PERSONAL_RESULT.values())
        leaked = [m for m in spy.received if any(str(r).encode() in m.payload for r in secret)]
        assert leaked == []
    finally:
        spy.close()


def test_personal_streams_reach_their_own_operators_only(
    world: World, port: int, clients: dict[str, MqttClient]
) -> None:
    for c in clients.values():
        c.subscribe("v1.1/Observations?$select=result")
    for ownership in ("personal", "open-personal"):
        world.observation(ownership, PERSONAL_RESULT[ownership])
    expected_by = {
        "admin": set(PERSONAL_RESULT.values()),
        "operator": {PERSONAL_RESULT["personal"]},
        "utility": {PERSONAL_RESULT["open-personal"]},
    }
    for who, c in clients.items():
        want = expected_by.get(who, set())
        topic = "v1.1/Observations?$select=result"
        got = c.wait(topic, len(want)) if want else c.quiet(topic, 0.5)
        assert {m.json()["result"] for m in c.quiet(topic, 0.2)} == want, who
        assert len(got) == len(want)


def test_bulk_publishes_are_checked_per_sender(world: World, port: int) -> None:
    """The path of an external broker's batches (Ingest.handle_many): each message as
    its own sender's principal, several senders in one batch."""
    service = world.client.app.state.service
    ingest: Ingest = world.client.app.state.mqtt.ingest
    principals = {
        who: world.client.call(service.authenticate(key))
        for who, key in world.keys.items()
        if key is not None
    }
    principals["anonymous"] = ANONYMOUS
    admin = connect(world, port, "admin")
    try:
        admin.subscribe(f"{ERRORS}/#")
        batch: list[tuple[str, bytes, Any]] = []
        cases = []
        for i, (role, ownership) in enumerate(
            (r, o) for r in ("admin", "operator", "reader", "anonymous") for o in OWNERSHIP
        ):
            result = 3000 + i + 0.5
            ds = world.streams[ownership]
            body = {"result": result}
            if i % 2:  # the other create topic: the Datastream in the body
                topic, body = "v1.1/Observations", {**body, "Datastream": {"@iot.id": ds}}
            else:
                topic = f"v1.1/Datastreams({ds})/Observations"
            batch.append((topic, orjson.dumps(body), principals[role]))
            cases.append((role, ownership, result))
        outcomes = world.client.call(ingest.handle_many(batch))
        assert outcomes == [None] * len(batch)
        want = {}
        for (topic, _, _), (role, ownership, result) in zip(batch, cases, strict=True):
            status = expected(role, "create", ownership)
            if status == 404 and topic == "v1.1/Observations":
                status = 400  # a hidden Datastream named in the body, as over HTTP
            if status != 201:
                want[result] = status
        deadline = time.monotonic() + 10
        while len(errors(admin)) < len(want) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        got = {orjson.loads(r["payload"])["result"]: r["code"] for r in errors(admin)}
        assert got == want
    finally:
        admin.close()
    for role, ownership, result in cases:
        want = 1 if expected(role, "create", ownership) == 201 else 0
        assert stored(world, result) == want, (role, ownership)


def test_a_persistent_session_gets_what_it_missed_and_only_that(world: World, port: int) -> None:
    """Notifications for an operator whose session is kept while it is away wait for it;
    an anonymous kept session does not get them."""
    topic = f"v1.1/Datastreams({world.streams['own']})/Observations"
    key = world.keys["operator"]
    for who in ("operator", "anonymous"):
        creds = {"username": "op", "password": key} if who == "operator" else {}
        first = MqttClient(port, f"kept-{who}", clean=False, **creds)
        first.subscribe(topic)
        first.close()
    world.observation("own", 4444.5)
    time.sleep(0.5)
    back = MqttClient(port, "kept-operator", clean=False, username="op", password=key)
    stranger = MqttClient(port, "kept-anonymous", clean=False)
    try:
        [note] = back.wait(topic)
        assert note.json()["result"] == 4444.5
        assert stranger.quiet(topic, 0.5) == []
    finally:
        back.close()
        stranger.close()


def test_a_kept_session_holds_the_newest_notifications_up_to_its_limit(
    world: World, port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that is away and never returns must not fill the server's memory: its
    kept session holds mqtt_session_queue messages, the newest, and the dropped ones are
    counted."""
    broker = world.client.app.state.mqtt.transport.broker
    monkeypatch.setattr(broker, "session_queue", 3)
    metrics = world.client.app.state.mqtt.metrics
    before = metrics["citytwin_mqtt_session_dropped_total"]
    topic = f"v1.1/Datastreams({world.streams['own']})/Observations"
    key = world.keys["operator"]
    first = MqttClient(port, "kept-limited", clean=False, username="op", password=key)
    first.subscribe(topic)
    first.close()
    results = [5050.5 + i for i in range(5)]
    for result in results:
        world.observation("own", result)
    time.sleep(0.5)
    # at least this session's two (other tests' kept sessions may be away too)
    assert metrics["citytwin_mqtt_session_dropped_total"] - before >= 2
    back = MqttClient(port, "kept-limited", clean=False, username="op", password=key)
    try:
        back.wait(topic, 3)
        notes = back.quiet(topic, 0.5)  # and nothing more: the two oldest were dropped
        assert [n.json()["result"] for n in notes] == results[2:]
    finally:
        back.close()
    # the count, exactly, on a session of its own
    away = SimpleNamespace(client_id="away", retained_messages=asyncio.Queue())
    before = metrics["citytwin_mqtt_session_dropped_total"]

    async def keep(n: int) -> None:
        for i in range(n):
            message = {"session": None, "topic": "t", "data": str(i).encode()}
            await broker._retain_broadcast_message(message, 1, away)

    world.client.call(keep(7))
    assert metrics["citytwin_mqtt_session_dropped_total"] - before == 4
    kept = [away.retained_messages.get_nowait().data for _ in range(3)]
    assert kept == [b"4", b"5", b"6"]
    assert away.retained_messages.empty()


def test_a_client_whose_key_is_revoked_is_disconnected_and_kept_out(
    world: World, port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revoking a key (`citytwin keys revoke`, another process) ends what its connected
    clients may do within mqtt_key_recheck_seconds, not only at their next CONNECT."""
    storage = world.client.app.state.service.storage
    broker = world.client.app.state.mqtt.transport.broker
    metrics = world.client.app.state.mqtt.metrics
    new = world.client.call(create_key(storage, "operator", "city", "to be revoked"))
    topic = f"v1.1/Datastreams({world.streams['own']})/Observations"
    client = MqttClient(port, f"revoked-{free_port()}", username="op", password=new.key)
    staying = connect(world, port, "operator")
    try:
        for c in (client, staying):
            c.subscribe(topic)
        world.observation("own", 7070.5)
        client.wait(topic)
        assert world.client.call(broker.recheck_keys()) == 0  # valid keys: nobody goes
        before = metrics["citytwin_mqtt_clients_disconnected_total"]
        monkeypatch.setattr(broker, "recheck_seconds", 0.2)
        world.client.call(_start_rechecking(broker))
        world.client.call(revoke_key(storage, new.id))
        deadline = time.monotonic() + 10
        while client.refusal is None and time.monotonic() < deadline:
            time.sleep(0.1)  # disconnected, and its reconnect refused
        assert client.refusal is not None
        assert metrics["citytwin_mqtt_clients_disconnected_total"] - before == 1
        world.observation("own", 7071.5)
        staying.wait(topic, 2)  # the other operator's key still works
        assert [m.json()["result"] for m in client.quiet(topic, 0.3)] == [7070.5]
    finally:  # the checks go back to the usual period after their next one
        client.close()
        staying.close()


async def _start_rechecking(broker: Any) -> None:
    broker.start_rechecking()


def test_a_notification_is_computed_once_per_audience(
    world: World, port: int, clients: dict[str, MqttClient]
) -> None:
    """Clients of one role and organisation share one GET; each still gets its copy."""
    notifier = world.client.app.state.mqtt.notifier
    asked: list[tuple[str, Any]] = []
    payload = notifier._payload

    async def counted(topic: Any, set_name: str, entity_id: int, principal: Any) -> Any:
        asked.append((topic.text, Audiences.key(principal)))
        return await payload(topic, set_name, entity_id, principal)

    topic = f"v1.1/Datastreams({world.streams['open']})/Observations"
    second = connect(world, port, "operator")
    try:
        for c in (*clients.values(), second):
            c.subscribe(topic)
        notifier._payload = counted
        try:
            world.observation("open", 6060.5)
            for c in (*clients.values(), second):
                [note] = c.wait(topic)
                assert note.json()["result"] == 6060.5
        finally:
            del notifier._payload
    finally:
        second.close()
    assert set(asked) == {(topic, Audiences.key(p)) for p in audiences(world)}
    assert len(asked) == len(READABLE)  # not one per client


def audiences(world: World) -> list[Any]:
    service = world.client.app.state.service
    keys = [k for who, k in world.keys.items() if who in READABLE and k is not None]
    return [world.client.call(service.authenticate(k)) for k in keys] + [ANONYMOUS]


def test_nobody_publishes_as_citytwin(world: World, port: int) -> None:
    """A client's publish on a notification or error topic would pass for citytwin's:
    the broker drops it (creates on create topics are taken in as always)."""
    listener = connect(world, port, "admin")
    faker = connect(world, port, "operator")
    thing_topic = f"v1.1/Things({world.things['own']})"
    error_topic = f"{ERRORS}/v1.1/Datastreams({world.streams['own']})/Observations"
    try:
        listener.subscribe(thing_topic, error_topic)
        faker.publish(thing_topic, {"name": "fake"})
        faker.publish(error_topic, {"code": 400, "message": "fake"})
        assert listener.quiet(thing_topic, 0.3) == []
        assert listener.quiet(error_topic, 0.1) == []
        world.as_("admin", "PATCH", thing_topic.removeprefix("v1.1/"), {"description": "real"})
        [note] = listener.wait(thing_topic)
        assert note.json()["description"] == "real"
    finally:
        listener.close()
        faker.close()


def test_households_receive_their_own_meter_only(world: World, port: int) -> None:
    """Household keys share role and organisation but not their Thing: each is an
    audience of its own."""
    storage = world.client.app.state.service.storage
    topic = "v1.1/Observations?$select=result"
    homes = {}
    try:
        for ownership in ("own", "other"):
            key = world.client.call(
                create_key(storage, "household", thing=world.things[ownership])
            ).key
            homes[ownership] = MqttClient(port, f"home-{ownership}", username="home", password=key)
            homes[ownership].subscribe(topic)
        world.observation("personal", 5151.5)  # the city's household meter, on Thing "own"
        world.observation("other", 5252.5)
        world.observation("open", 5353.5)
        for ownership, mine in (("own", 5151.5), ("other", 5252.5)):
            homes[ownership].wait(topic, 2)
            got = {m.json()["result"] for m in homes[ownership].quiet(topic, 0.3)}
            assert got == {mine, 5353.5}, ownership
    finally:
        for c in homes.values():
            c.close()


def test_a_browser_sessions_mqtt_credentials_receive_its_principals_data(
    world: World, port: int
) -> None:
    """The page connects MQTT with what /api/v1/session gives a signed-in browser."""
    doc = world.as_("operator", "GET", "/api/v1/session")
    creds = doc["mqtt"]
    topic = f"v1.1/Datastreams({world.streams['personal']})/Observations"
    page = MqttClient(
        port, "citytwin-ui-test", username=creds["username"], password=creds["password"]
    )
    try:
        assert page.refusal is None
        page.subscribe(topic)
        world.observation("personal", 5454.5)
        [note] = page.wait(topic)
        assert note.json()["result"] == 5454.5
    finally:
        page.close()


def test_only_who_may_change_a_task_answers_it(world: World, port: int) -> None:
    """A device's answer changes its Task: it is kept only from a sender that may change
    the Task (an operator of its Thing's organisation, an admin); the others are told on
    the error topic, in the same words whether the Task exists or not."""
    task = world.create("admin", f"TaskingCapabilities({world.capabilities['own']})/Tasks", dim())
    topic = f"citytwin/tasks/{task}/answer"

    def status() -> tuple[str, str | None]:
        found = world.as_("admin", "GET", f"Tasks({task})")
        return found["status"], found.get("statusMessage")

    before = status()
    for who in ("anonymous", "reader", "utility"):
        client = connect(world, port, who)
        try:
            client.subscribe(f"{ERRORS}/{topic}")
            client.publish(topic, {"status": "done", "message": f"by {who}"})
            [report] = client.wait(f"{ERRORS}/{topic}")
        finally:
            client.close()
        assert report.json()["code"] == 403
        assert f"no Task {task} that" in report.json()["message"]
        assert status() == before, who
    for who, answer in (("operator", "accepted"), ("admin", "done")):
        client = connect(world, port, who)
        try:
            client.subscribe(f"{ERRORS}/{topic}")
            client.publish(topic, {"status": answer, "message": f"by {who}"})
            deadline = time.monotonic() + 10
            while status() != (answer, f"by {who}") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert client.quiet(f"{ERRORS}/{topic}", 0.3) == []
        finally:
            client.close()
        assert status() == (answer, f"by {who}")
    # a Task that does not exist is refused in the same words
    client = connect(world, port, "utility")
    try:
        client.subscribe(f"{ERRORS}/citytwin/tasks/999999/answer")
        client.publish("citytwin/tasks/999999/answer", {"status": "done"})
        [report] = client.wait(f"{ERRORS}/citytwin/tasks/999999/answer")
    finally:
        client.close()
    assert report.json()["message"] == "there is no Task 999999 that the sender may answer"


def test_a_tasks_command_reaches_only_clients_that_may_read_the_task(
    world: World, port: int
) -> None:
    """The mqtt driver's command repeats the Task (its parameters, its Thing): on the
    embedded broker it goes to subscribers of the device topic that may read the Task,
    not to whoever subscribes."""
    commands = f"devices/command-test-{free_port()}/commands"
    driver = {"driver": {"name": "mqtt", "topic": commands}}
    thing_id = world.create("operator", "Things", heat_pump(properties=driver))
    capability = world.as_("operator", "GET", f"Things({thing_id})/TaskingCapabilities")
    cap = capability["value"][0]["@iot.id"]
    listeners = {who: connect(world, port, who) for who in READABLE}
    try:
        for client in listeners.values():
            client.subscribe(commands)
        time.sleep(0.2)
        task = world.create("operator", f"TaskingCapabilities({cap})/Tasks", dim(5.0))
        for who in ("operator", "reader", "admin"):
            [command] = listeners[who].wait(commands)
            assert command.json()["task"] == task, who
        for who in ("utility", "anonymous"):
            assert listeners[who].quiet(commands, 0.5) == [], who
    finally:
        for client in listeners.values():
            client.close()


@pytest.mark.parametrize("clean", [True, False])
def test_a_refused_connect_leaves_the_connected_client_of_its_id_alone(
    world: World, port: int, clean: bool
) -> None:
    """A CONNECT with a bad key that names the client id of a connected client is
    refused before it touches that client's connection, session or principal."""
    name = f"meter-gateway-{free_port()}"
    key = world.keys["operator"]
    victim = MqttClient(port, name, username="gateway", password=key, clean=clean)
    try:
        own = f"v1.1/Datastreams({world.streams['personal']})/Observations"
        victim.subscribe(own)
        time.sleep(0.2)
        intruder = MqttClient(port, name, username="x", password="not-a-key", clean=clean)
        try:
            assert intruder.refusal is not None
        finally:
            intruder.close()
        # still connected, with its subscription and as its own principal: a personal
        # Observation only its organisation's operators may read still reaches it
        result = 4242.5 if clean else 4243.5
        world.observation("personal", result)
        [note] = victim.wait(own)
        assert note.json()["result"] == result
        assert victim.refusal is None
    finally:
        victim.close()


def test_while_keys_cannot_be_read_a_connect_is_told_to_come_again(world: World, port: int) -> None:
    """A database outage is not a bad key: the client hears "server unavailable" (and
    retries), not "not authorised" (after which clients give up)."""
    broker = world.client.app.state.mqtt.transport.broker
    checks = broker.sta_authenticate

    async def out_of_reach(key: str) -> Any:
        raise Unavailable("the database cannot be reached")

    broker.sta_authenticate = out_of_reach
    try:
        client = connect(world, port, "operator")
        try:
            assert client.refusal is not None
            assert "unavailable" in str(client.refusal).lower()
        finally:
            client.close()
    finally:
        broker.sta_authenticate = checks
    again = connect(world, port, "operator")
    try:
        assert again.refusal is None
    finally:
        again.close()
