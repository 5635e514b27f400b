"""The MQTT extension with the embedded broker, through real paho clients."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from citytwin.errors import Unavailable
from tests.mqtt.support import MqttClient, mqtt_client
from tests.support import REQUIRE_ENV, Client, datastream, location, make_client, thing


@pytest.fixture
def city(embedded: Client) -> dict[str, int]:
    tid = embedded.create(
        "Things",
        thing("T", locations=[location()], datastreams=[datastream("A"), datastream("B")]),
    )
    a, b = embedded.ids(f"Things({tid})/Datastreams")
    return {"thing": tid, "a": a, "b": b}


@pytest.fixture
def sub(broker_port: int) -> Iterator[MqttClient]:
    with mqtt_client(broker_port, "subscriber") as c:
        yield c


@pytest.fixture
def pub(broker_port: int) -> Iterator[MqttClient]:
    with mqtt_client(broker_port, "sensor") as c:
        yield c


def get_body(client: Client, url: str) -> bytes:
    resp = client.get(url)
    assert resp.status_code == 200, resp.text
    return resp.content


MQTT_CLASSES = (
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-mqtt/"
    "observations-creation",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates",
)


def test_the_landing_page_announces_the_mqtt_classes_with_their_endpoint(
    embedded: Client, broker_port: int, tmp_path: Path
) -> None:
    settings = embedded.ok("GET", "/v1.1")["serverSettings"]
    for uri in MQTT_CLASSES:
        assert uri in settings["conformance"]
        assert settings[uri] == {"endpoints": [f"mqtt://127.0.0.1:{broker_port}"]}
    off = make_client(tmp_path / "off", mqtt="off")
    try:
        settings = off.ok("GET", "/v1.1")["serverSettings"]
        assert not set(MQTT_CLASSES) & set(settings["conformance"])
        assert not set(MQTT_CLASSES) & set(settings)
    finally:
        off.close()


def test_collection_topics_receive_creates_with_the_payload_of_a_get(
    embedded: Client, city: dict[str, int], sub: MqttClient
) -> None:
    a, b = city["a"], city["b"]
    sub.subscribe(
        "v1.1/Observations",
        f"v1.1/Datastreams({a})/Observations",
        f"v1.1/Datastreams({b})/Observations",
    )
    oid = embedded.create(f"Datastreams({a})/Observations", {"result": 1.5})
    expected = get_body(embedded, f"Observations({oid})")
    assert [m.payload for m in sub.wait("v1.1/Observations")] == [expected]
    assert [m.payload for m in sub.wait(f"v1.1/Datastreams({a})/Observations")] == [expected]
    assert sub.quiet(f"v1.1/Datastreams({b})/Observations") == []


def test_feature_of_interest_collection_topic(
    embedded: Client, city: dict[str, int], sub: MqttClient
) -> None:
    first = embedded.create(f"Datastreams({city['a']})/Observations", {"result": 1})
    foi = embedded.ok("GET", f"Observations({first})/FeatureOfInterest")["@iot.id"]
    sub.subscribe(f"v1.1/FeaturesOfInterest({foi})/Observations")
    second = embedded.create(f"Datastreams({city['b']})/Observations", {"result": 2})
    [msg] = sub.wait(f"v1.1/FeaturesOfInterest({foi})/Observations")
    assert msg.json()["@iot.id"] == second


def test_entity_and_property_topics_receive_updates(
    embedded: Client, city: dict[str, int], sub: MqttClient
) -> None:
    tid = city["thing"]
    sub.subscribe(
        f"v1.1/Things({tid})", f"v1.1/Things({tid})/name", f"v1.1/Things({tid})/description"
    )
    embedded.ok("PATCH", f"Things({tid})", {"name": "Renamed"})
    [entity] = sub.wait(f"v1.1/Things({tid})")
    assert entity.payload == get_body(embedded, f"Things({tid})")
    [name] = sub.wait(f"v1.1/Things({tid})/name")
    assert name.json() == {"name": "Renamed"}
    assert sub.quiet(f"v1.1/Things({tid})/description") == []  # not changed


def test_select_topic_gets_the_selected_properties(
    embedded: Client, city: dict[str, int], sub: MqttClient
) -> None:
    topic = "v1.1/Observations?$select=result,phenomenonTime"
    sub.subscribe(topic)
    oid = embedded.create(f"Datastreams({city['a']})/Observations", {"result": 3})
    [msg] = sub.wait(topic)
    assert msg.payload == get_body(embedded, f"Observations({oid})?$select=result,phenomenonTime")
    assert set(msg.json()) == {"result", "phenomenonTime"}


def test_v1_0_topics_carry_v1_0_links(
    embedded: Client, city: dict[str, int], sub: MqttClient
) -> None:
    sub.subscribe("v1.0/Observations")
    oid = embedded.create(f"Datastreams({city['a']})/Observations", {"result": 3})
    [msg] = sub.wait("v1.0/Observations")
    assert msg.json()["@iot.selfLink"] == f"http://testserver/v1.0/Observations({oid})"


@pytest.mark.parametrize(
    "path",
    [
        "v1.1/Observations",
        "v1.1/Datastreams({a})/Observations",
        "v1.1/FeaturesOfInterest({foi})/Observations",
    ],
)
def test_publishing_creates_an_observation_before_it_is_acknowledged(
    embedded: Client, city: dict[str, int], sub: MqttClient, pub: MqttClient, path: str
) -> None:
    first = embedded.create(f"Datastreams({city['a']})/Observations", {"result": 0})
    foi = embedded.ok("GET", f"Observations({first})/FeatureOfInterest")["@iot.id"]
    topic = path.format(a=city["a"], foi=foi)
    sub.subscribe(topic)
    body: dict[str, Any] = {"result": 42, "phenomenonTime": "2024-01-01T00:00:00Z"}
    if "Datastreams(" not in topic:
        body["Datastream"] = {"@iot.id": city["a"]}
    pub.publish(topic, body, qos=1)
    # acknowledged means stored: no waiting needed
    found = embedded.ok("GET", "Observations?$filter=result eq 42")["value"]
    assert len(found) == 1
    # subscribers get the created entity, not the raw publish
    [msg] = sub.wait(topic)
    assert msg.json()["@iot.id"] == found[0]["@iot.id"]
    assert sub.quiet(topic) == [msg]


def test_an_invalid_publish_is_reported_on_the_error_topic_and_stores_nothing(
    embedded: Client, city: dict[str, int], sub: MqttClient, pub: MqttClient
) -> None:
    sub.subscribe("citytwin/errors/#")
    before = embedded.ok("GET", "Observations?$count=true&$top=0")["@iot.count"]
    topic = f"v1.1/Datastreams({city['a']})/Observations"
    pub.publish(topic, b"{not json", qos=1)
    pub.publish(topic, {"result": 1, "phenomenonTime": "yesterday"}, qos=1)
    pub.publish("v1.1/Datastreams(424242)/Observations", {"result": 1}, qos=1)
    errors = sub.wait(f"citytwin/errors/{topic}", count=2)
    assert "not valid JSON" in errors[0].json()["message"]
    assert "yesterday" in errors[1].json()["message"]
    assert errors[1].json()["sender"] == "sensor"
    missing = sub.wait("citytwin/errors/v1.1/Datastreams(424242)/Observations")
    assert missing[0].json()["code"] == 404
    assert embedded.ok("GET", "Observations?$count=true&$top=0")["@iot.count"] == before
    # the broker and the sender's connection keep working
    pub.publish(topic, {"result": 5}, qos=1)
    assert embedded.ok("GET", "Observations?$count=true&$top=0")["@iot.count"] == before + 1
    metrics = embedded.get("/metrics").text
    assert "citytwin_mqtt_rejected_total 3" in metrics
    assert "citytwin_mqtt_created_total 1" in metrics


def test_qos_0_publishes_are_stored_too(
    embedded: Client, city: dict[str, int], sub: MqttClient, pub: MqttClient
) -> None:
    topic = f"v1.1/Datastreams({city['a']})/Observations"
    sub.subscribe(topic)
    pub.publish(topic, {"result": 9}, qos=0)
    [msg] = sub.wait(topic)
    assert msg.json()["result"] == 9


def test_deep_inserts_announce_every_created_observation(
    embedded: Client, city: dict[str, int], sub: MqttClient
) -> None:
    sub.subscribe("v1.1/Observations?$select=result")
    embedded.create(
        "Things",
        thing(
            "Batch",
            locations=[location()],
            datastreams=[datastream("D", Observations=[{"result": i} for i in range(5)])],
        ),
    )
    got = sub.wait("v1.1/Observations?$select=result", count=5)
    assert sorted(m.json()["result"] for m in got) == [0, 1, 2, 3, 4]


def test_unknown_and_disabled_topic_forms_get_nothing_and_break_nothing(
    embedded: Client, city: dict[str, int], sub: MqttClient
) -> None:
    sub.subscribe(
        "v1.1/Nowhere",
        "v1.1/Observations?$expand=Datastream",
        "v1.1/Observations?$filter=result gt 1",
        "plain/topic",
    )
    embedded.create(f"Datastreams({city['a']})/Observations", {"result": 2})
    for topic in ("v1.1/Observations?$expand=Datastream", "v1.1/Observations?$filter=result gt 1"):
        assert sub.quiet(topic, 0.3) == []


def test_expand_and_filter_topics_when_enabled(
    db_url: str, tmp_path: Path, broker_port: int
) -> None:
    c = make_client(
        tmp_path,
        db=db_url,
        mqtt="embedded",
        mqtt_port=broker_port,
        mqtt_ws_port=0,
        mqtt_expand_topics=True,
        mqtt_filter_topics=True,
        service_root_url="http://testserver",
    )
    try:
        tid = c.create("Things", thing("T", locations=[location()], datastreams=[datastream()]))
        [d] = c.ids(f"Things({tid})/Datastreams")
        with mqtt_client(broker_port, "sub") as sub:
            expand = "v1.1/Observations?$expand=Datastream($select=name)"
            big = "v1.1/Observations?$filter=result gt 10"
            sub.subscribe(expand, big)
            small = c.create(f"Datastreams({d})/Observations", {"result": 1})
            large = c.create(f"Datastreams({d})/Observations", {"result": 50})
            got = sub.wait(expand, count=2)
            assert [m.json()["Datastream"] for m in got] == [{"name": "Datastream"}] * 2
            [only] = sub.wait(big)
            assert only.json()["@iot.id"] == large != small
            assert sub.quiet(big) == [only]
    finally:
        c.close()


def test_a_publish_is_not_acknowledged_while_the_database_is_unavailable(
    embedded: Client, city: dict[str, int], broker_port: int
) -> None:
    """The sender gets no PUBACK, reconnects and sends again; then it is stored once."""
    service = embedded.app.state.service
    real_writer = service.storage.writer
    failures = {"left": 2}

    def flaky() -> Any:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise Unavailable("simulated outage")
        return real_writer()

    service.storage.writer = flaky
    try:
        with mqtt_client(broker_port, "persistent-sensor", clean=False) as pub:
            pub.publish(f"v1.1/Datastreams({city['a']})/Observations", {"result": 77}, qos=1)
    finally:
        service.storage.writer = real_writer
    assert failures["left"] == 0  # it came twice before the database was back
    found = embedded.ok("GET", "Observations?$filter=result eq 77")["value"]
    assert len(found) == 1


def test_notifications_wait_for_a_briefly_unavailable_database(
    embedded: Client, city: dict[str, int], sub: MqttClient
) -> None:
    service = embedded.app.state.service
    real_reader = service.storage.reader
    failures = {"left": 3}

    def flaky() -> Any:
        # only the notifier meets the outage; the PATCH itself is answered
        task = asyncio.current_task()
        if failures["left"] > 0 and task and task.get_name() == "citytwin-mqtt-notifier":
            failures["left"] -= 1
            raise Unavailable("simulated outage")
        return real_reader()

    sub.subscribe("v1.1/Things(1)/name")
    service.storage.reader = flaky
    try:
        embedded.ok("PATCH", "Things(1)", {"name": "Later"})
        [msg] = sub.wait("v1.1/Things(1)/name", timeout=10)
    finally:
        service.storage.reader = real_reader
    assert msg.json() == {"name": "Later"}
    assert failures["left"] == 0


def test_a_taken_mqtt_port_leaves_http_serving_and_says_why(
    db_url: str, tmp_path: Path, broker_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", broker_port))
        taken.listen()
        c = make_client(tmp_path, db=db_url, mqtt="embedded", mqtt_port=broker_port, mqtt_ws_port=0)
        try:
            health = c.ok("GET", "/health")
            assert health["mqtt"].startswith("off: the embedded broker could not listen")
            assert c.create("Things", thing("Still serving")) == 1
        finally:
            c.close()
    # said once, by citytwin, with what to do; not as the broker library's traceback
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.name for r in errors] == ["citytwin.mqtt"]
    assert "set mqtt_port" in errors[0].getMessage()
    assert errors[0].exc_info is None


def test_qos_2_publishes_are_stored_exactly_once(
    embedded: Client, city: dict[str, int], pub: MqttClient
) -> None:
    pub.publish(f"v1.1/Datastreams({city['a']})/Observations", {"result": 222}, qos=2)
    assert len(embedded.ok("GET", "Observations?$filter=result eq 222")["value"]) == 1


def test_a_qos_0_publish_during_an_outage_is_reported_not_stored(
    embedded: Client, city: dict[str, int], sub: MqttClient, pub: MqttClient
) -> None:
    service = embedded.app.state.service
    real_writer = service.storage.writer

    def down() -> Any:
        raise Unavailable("simulated outage")

    topic = f"v1.1/Datastreams({city['a']})/Observations"
    sub.subscribe(f"citytwin/errors/{topic}")
    service.storage.writer = down
    try:
        pub.publish(topic, {"result": 1}, qos=0)
        [report] = sub.wait(f"citytwin/errors/{topic}")
    finally:
        service.storage.writer = real_writer
    assert report.json()["code"] == 503
    assert embedded.ok("GET", "Observations?$count=true&$top=0")["@iot.count"] == 0


def test_a_rolled_back_write_announces_nothing(
    embedded: Client, city: dict[str, int], sub: MqttClient
) -> None:
    sub.subscribe("v1.1/Things", "v1.1/Observations")
    bad = thing(
        "Half",
        locations=[location()],
        datastreams=[
            datastream("D", Observations=[{"result": 1}, {"result": 2, "phenomenonTime": "nope"}])
        ],
    )
    assert embedded.post("Things", bad).status_code == 400
    assert sub.quiet("v1.1/Things") == []
    assert sub.quiet("v1.1/Observations", 0.1) == []


def test_browsers_subscribe_over_websocket(db_url: str, tmp_path: Path, broker_port: int) -> None:
    from tests.mqtt.support import free_port

    ws_port = free_port()
    c = make_client(
        tmp_path,
        db=db_url,
        mqtt="embedded",
        mqtt_port=broker_port,
        mqtt_ws_port=ws_port,
        service_root_url="http://testserver",
    )
    try:
        with mqtt_client(ws_port, "browser", websocket=True) as browser:
            browser.subscribe("v1.1/Things?$select=name")
            c.create("Things", thing("Seen in the browser"))
            [msg] = browser.wait("v1.1/Things?$select=name")
            assert msg.json() == {"name": "Seen in the browser"}
    finally:
        c.close()


def test_other_topics_pass_through_whole_when_the_publisher_leaves_at_once(
    embedded: Client,
    broker_port: int,
    sub: MqttClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # mosquitto_pub publishes a file and disconnects as soon as the broker acknowledged
    # the last line; amqtt acknowledges before passing a publish on, and would end the
    # session with publishes still waiting. A busy broker (here: slowed down) has many.
    from amqtt.broker import Broker

    publisher = shutil.which("mosquitto_pub")
    if publisher is None:
        message = "mosquitto_pub is missing; apt-get install mosquitto-clients"
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(message)
        pytest.skip(message)
    deliver = Broker._handle_message_delivery

    async def busy(self: Any, *args: Any) -> Any:
        await asyncio.sleep(0.0005)
        return await deliver(self, *args)

    monkeypatch.setattr(Broker, "_handle_message_delivery", busy)
    sub.subscribe("plant/#")
    n = 1000
    lines = tmp_path / "lines.txt"
    lines.write_text("".join(f"{i}\n" for i in range(n)))
    for qos in (0, 1):
        topic = f"plant/qos{qos}"
        with lines.open("rb") as stdin:
            subprocess.run(
                [publisher, "-p", str(broker_port), "-q", str(qos), "-t", topic, "-l"],
                stdin=stdin,
                check=True,
                timeout=60,
            )
        got = sub.wait(topic, count=n, timeout=30)
        assert sorted(int(m.payload) for m in got) == list(range(n))
