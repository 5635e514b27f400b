"""Tasking with two citytwin instances sharing PostgreSQL and a Mosquitto broker: each
Task reaches its device exactly once, whichever instance (or MQTT) created it."""

from __future__ import annotations

import time

import httpx

from tests.mqtt.support import mqtt_client
from tests.servers import StaServer
from tests.tasking_support import dim, heat_pump
from tests.test_instances import two_instances_with_mosquitto  # noqa: F401 (a fixture)

COMMANDS = "devices/heatpump-7/commands"


def test_each_task_is_handed_over_once_and_answered_through_either_instance(
    two_instances_with_mosquitto: tuple[StaServer, StaServer, int],  # noqa: F811
) -> None:
    a, b, port = two_instances_with_mosquitto
    with httpx.Client() as http, mqtt_client(port, "heatpump-7") as device:
        device.subscribe(COMMANDS)
        body = heat_pump(properties={"driver": {"name": "mqtt", "topic": COMMANDS}})
        tid = http.post(f"{a.root}/Things", json=body).json()["@iot.id"]
        cap = http.get(f"{b.root}/Things({tid})/TaskingCapabilities").json()["value"][0]
        tasks = f"TaskingCapabilities({cap['@iot.id']})/Tasks"
        assert http.post(f"{a.root}/{tasks}", json=dim(5.0)).status_code == 201
        assert http.post(f"{b.root}/{tasks}", json=dim(6.0)).status_code == 201
        device.publish(f"v1.1/{tasks}", dim(7.0))
        device.wait(COMMANDS, count=3, timeout=10)
        orders = [m.json() for m in device.quiet(COMMANDS, 1.0)]
        assert sorted(o["taskingParameters"]["powerLimit"] for o in orders) == [5.0, 6.0, 7.0]
        for order in orders:
            device.publish(order["answerTopic"], {"status": "done"})
        deadline = time.monotonic() + 10
        while True:
            done = http.get(f"{a.root}/Tasks?$filter=status eq 'done'&$count=true").json()
            if done["@iot.count"] == 3:
                break
            assert time.monotonic() < deadline, done
            time.sleep(0.1)
