"""Tasking over MQTT with the embedded broker: the MQTT task driver with a real paho
client acting as the device, and Tasks created by publishing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mqtt.support import MqttClient, mqtt_client
from tests.support import Client, make_client
from tests.tasking_support import dim, heat_pump

COMMANDS = "devices/heatpump-7/commands"


@pytest.fixture
def device(broker_port: int) -> Iterator[MqttClient]:
    with mqtt_client(broker_port, "heatpump-7") as c:
        c.subscribe(COMMANDS)
        yield c


@pytest.fixture
def operator(broker_port: int) -> Iterator[MqttClient]:
    with mqtt_client(broker_port, "grid-operator") as c:
        yield c


def mqtt_capability(client: Client, **driver: Any) -> int:
    config = {"name": "mqtt", "topic": COMMANDS, **driver}
    thing_id = client.create("Things", heat_pump(properties={"driver": config}))
    (cap,) = client.ids(f"Things({thing_id})/TaskingCapabilities")
    return cap


def task_of(client: Client, task_id: int) -> dict[str, Any]:
    client.call(client.app.state.tasks.idle())
    task: dict[str, Any] = client.ok("GET", f"Tasks({task_id})")
    return task


def test_the_device_receives_the_task_and_answers_on_its_topic(
    embedded: Client, device: MqttClient, operator: MqttClient
) -> None:
    cap = mqtt_capability(embedded)
    task_id = embedded.create(f"TaskingCapabilities({cap})/Tasks", dim())
    operator.subscribe(f"v1.1/Tasks({task_id})")
    (command,) = device.wait(COMMANDS)
    order = command.json()
    assert order["task"] == task_id
    assert order["selfLink"] == f"http://testserver/v1.1/Tasks({task_id})"
    assert order["taskingParameters"] == {"powerLimit": 4.2, "duration": 120}
    assert order["taskingCapability"] == {"id": cap, "name": "Dim"}
    assert order["answerTopic"] == f"citytwin/tasks/{task_id}/answer"
    assert task_of(embedded, task_id)["status"] == "sent"

    device.publish(order["answerTopic"], {"status": "accepted", "message": "ramping down"})
    device.publish(order["answerTopic"], {"status": "done", "message": "4.2 kW", "kw": 4.2})
    task = embedded.ok("GET", f"Tasks({task_id})")
    assert task["status"] == "done"
    assert task["statusMessage"] == "4.2 kW"
    assert task["answer"] == {"status": "done", "message": "4.2 kW", "kw": 4.2}
    # subscribers see each change of status as an update of the Task
    # ("sent" too, if it came after the subscription)
    updates = operator.wait(f"v1.1/Tasks({task_id})", count=2)
    if updates[0].json()["status"] == "sent":
        updates = operator.wait(f"v1.1/Tasks({task_id})", count=3)[1:]
    assert [u.json()["status"] for u in updates] == ["accepted", "done"]
    assert updates[-1].json()["answer"]["kw"] == 4.2


def test_answers_that_are_not_understood_fail_the_task(
    embedded: Client, device: MqttClient
) -> None:
    cap = mqtt_capability(embedded)
    task_id = embedded.create(f"TaskingCapabilities({cap})/Tasks", dim())
    device.wait(COMMANDS)
    task_of(embedded, task_id)
    device.publish(f"citytwin/tasks/{task_id}/answer", b"ok!")
    task = embedded.ok("GET", f"Tasks({task_id})")
    assert task["status"] == "failed"
    assert task["answer"] == "ok!"
    assert "not a JSON object" in task["statusMessage"]
    # answers to Tasks that do not exist, and on malformed topics, change nothing
    device.publish("citytwin/tasks/424242/answer", {"status": "done"})
    device.publish(f"citytwin/tasks/{task_id}/nonsense", {"status": "done"})
    assert embedded.ok("GET", f"Tasks({task_id})")["status"] == "failed"


def test_a_task_published_to_a_capability_is_created_and_handed_on(
    embedded: Client, device: MqttClient, operator: MqttClient
) -> None:
    cap = mqtt_capability(embedded)
    operator.publish(f"v1.1/TaskingCapabilities({cap})/Tasks", dim(5.0))
    operator.publish("v1.1/Tasks", dim(6.0, TaskingCapability={"@iot.id": cap}))
    commands = device.wait(COMMANDS, count=2)
    assert sorted(c.json()["taskingParameters"]["powerLimit"] for c in commands) == [5.0, 6.0]
    stored = embedded.values(f"TaskingCapabilities({cap})/Tasks")
    assert sorted(t["taskingParameters"]["powerLimit"] for t in stored) == [5.0, 6.0]


def test_an_invalid_published_task_is_reported_on_the_error_topic(
    embedded: Client, device: MqttClient, operator: MqttClient
) -> None:
    cap = mqtt_capability(embedded)
    operator.subscribe("citytwin/errors/#")
    topic = f"v1.1/TaskingCapabilities({cap})/Tasks"
    operator.publish(topic, dim(3.0))
    operator.publish("v1.1/Tasks", dim())
    (low,) = operator.wait(f"citytwin/errors/{topic}")
    assert low.json()["code"] == 400
    assert "powerLimit" in low.json()["message"]
    assert "4.2" in low.json()["message"]
    (orphan,) = operator.wait("citytwin/errors/v1.1/Tasks")
    assert "TaskingCapability" in orphan.json()["message"]
    assert embedded.ok("GET", "Tasks?$count=true")["@iot.count"] == 0
    assert device.quiet(COMMANDS, 0.3) == []


def test_with_mqtt_off_the_mqtt_driver_fails_the_task(db_url: str, tmp_path: Path) -> None:
    c = make_client(tmp_path, db=db_url)
    try:
        cap = mqtt_capability(c)
        task = task_of(c, c.create(f"TaskingCapabilities({cap})/Tasks", dim()))
        assert task["status"] == "failed"
        assert "MQTT is off" in task["statusMessage"]
    finally:
        c.close()


def test_tasking_through_an_external_broker(
    db_url: str, tmp_path: Path, mosquitto_port: int
) -> None:
    c = make_client(
        tmp_path,
        db=db_url,
        mqtt=f"mqtt://127.0.0.1:{mosquitto_port}",
        service_root_url="http://testserver",
    )
    try:
        with mqtt_client(mosquitto_port, "heatpump-7") as device:
            device.subscribe(COMMANDS)
            cap = mqtt_capability(c)
            device.publish(f"v1.1/TaskingCapabilities({cap})/Tasks", dim(4.5))
            (command,) = device.wait(COMMANDS, timeout=10)
            order = command.json()
            assert order["taskingParameters"]["powerLimit"] == 4.5
            device.publish(order["answerTopic"], {"status": "done"})
            deadline = time.monotonic() + 10
            while c.ok("GET", f"Tasks({order['task']})")["status"] != "done":
                assert time.monotonic() < deadline, "the answer was not recorded"
                time.sleep(0.05)
    finally:
        c.close()
