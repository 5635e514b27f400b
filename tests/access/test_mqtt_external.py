"""Access control through an external broker (a private Mosquitto), both backends: a
publish acts as the API key in its MQTT 5 user property ``api-key`` (anonymous without
one), and notifications carry open data only, since any client of the broker may
subscribe (docs/security.md)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from tests.access.test_matrix import OWNERSHIP, ROLES, expected
from tests.access.world import World, build
from tests.mqtt.support import MqttClient, mosquitto
from tests.support import REQUIRE_ENV, Client

ERRORS = "citytwin/errors"
STREAMS = (*OWNERSHIP, "open-personal")


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        message = "mosquitto is not installed; apt-get install mosquitto to run these tests"
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(message)
        pytest.skip(message)
    with mosquitto(tmp_path_factory.mktemp("mosquitto")) as found:
        yield found


@pytest.fixture(scope="module")
def world(new_client: Callable[..., Client], port: int) -> World:
    return build(new_client, mqtt=f"mqtt://127.0.0.1:{port}", service_root_url="http://testserver")


@pytest.fixture
def watcher(port: int) -> Iterator[MqttClient]:
    c = MqttClient(port, f"watcher-{time.monotonic_ns()}", version=paho.MQTTv5)
    try:
        yield c
    finally:
        c.close()


def stored(world: World, result: float) -> int:
    found = world.as_("admin", "GET", f"Observations?$filter=result eq {result}&$count=true")
    return int(found["@iot.count"])


def reports(watcher: MqttClient, topic: str, result: float) -> list[dict[str, object]]:
    deadline = time.monotonic() + 10
    while True:
        found = [
            m.json() for m in watcher.on(f"{ERRORS}/{topic}") if str(result).encode() in m.payload
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.mark.parametrize("ownership", OWNERSHIP)
@pytest.mark.parametrize("role", ROLES)
def test_a_publish_acts_as_the_key_in_its_user_property(
    world: World, port: int, watcher: MqttClient, role: str, ownership: str
) -> None:
    result = 2000 + ROLES.index(role) * 10 + OWNERSHIP.index(ownership) + 0.5
    topic = f"v1.1/Datastreams({world.streams[ownership]})/Observations"
    watcher.subscribe(f"{ERRORS}/#")
    key = world.keys[role]
    sensor = MqttClient(port, f"sensor-{role}-{ownership}", version=paho.MQTTv5)
    try:
        sensor.publish(topic, {"result": result}, user_properties=[("api-key", key)] if key else [])
    finally:
        sensor.close()
    status = expected(role, "create", ownership)
    if status == 201:
        deadline = time.monotonic() + 10
        while stored(world, result) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stored(world, result) == 1
        assert [r for r in watcher.quiet(f"{ERRORS}/{topic}", 0.2)] == []
        return
    [report] = reports(watcher, topic, result)
    assert report["code"] == status, report
    if status == 403:
        why = "operator or admin role" if role in ("reader", "anonymous") else "organisation"
        assert why in str(report["message"])
    assert stored(world, result) == 0


def test_a_bad_key_is_refused(world: World, port: int, watcher: MqttClient) -> None:
    topic = f"v1.1/Datastreams({world.streams['own']})/Observations"
    watcher.subscribe(f"{ERRORS}/#")
    sensor = MqttClient(port, "sensor-bad-key", version=paho.MQTTv5)
    try:
        sensor.publish(topic, {"result": 2999.5}, user_properties=[("api-key", "nonsense")])
    finally:
        sensor.close()
    [report] = reports(watcher, topic, 2999.5)
    assert report["code"] == 401
    assert "not valid" in str(report["message"])
    assert stored(world, 2999.5) == 0


def test_notifications_carry_open_data_only(world: World, watcher: MqttClient) -> None:
    topics = {o: f"v1.1/Datastreams({world.streams[o]})/Observations" for o in STREAMS}
    watcher.subscribe("v1.1/Observations", *topics.values())
    results = {o: 8000 + i + 0.25 for i, o in enumerate(STREAMS)}
    for ownership in STREAMS:
        world.observation(ownership, results[ownership])
    deadline = time.monotonic() + 10
    while not watcher.on(topics["open"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # anything else would have come by now
    for ownership, topic in topics.items():
        got = [m.json()["result"] for m in watcher.on(topic)]
        assert got == ([results[ownership]] if ownership == "open" else []), ownership
    assert [m.json()["result"] for m in watcher.on("v1.1/Observations")] == [results["open"]]
