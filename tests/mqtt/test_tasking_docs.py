"""The §14a EnWG walk-through in docs/tasking.md works as written."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from tests.mqtt.support import mqtt_client
from tests.support import Client

DOC = Path(__file__).parents[2] / "docs" / "tasking.md"
CURL = re.compile(r"curl -s -X POST http://localhost:8080/v1\.1/(\S+) [^\n]*-d '(.*?)'\n", re.S)
JSON_BLOCK = re.compile(r"```json\n(.*?)```", re.S)


def test_the_heat_pump_walk_through(embedded: Client, broker_port: int) -> None:
    text = DOC.read_text("utf-8")
    (setup, dim, too_low) = CURL.findall(text)
    command, refusal = (orjson.loads(b) for b in JSON_BLOCK.findall(text))
    with mqtt_client(broker_port, "heatpump-7") as device:
        device.subscribe("devices/heatpump-7/commands")
        embedded.create(setup[0], orjson.loads(setup[1]))
        created = embedded.ok("POST", dim[0], orjson.loads(dim[1]), 201)
        assert created["status"] == "created"
        (got,) = device.wait("devices/heatpump-7/commands")
        order = got.json()
        expected = {k: v for k, v in command.items() if k not in ("selfLink", "creationTime")}
        assert {k: v for k, v in order.items() if k in expected} == expected
        assert order["selfLink"] == "http://testserver/v1.1/Tasks(1)"
        answer = re.search(r"mosquitto_pub -h localhost -t (\S+) -m '(.*?)'", text)
        assert answer is not None
        device.publish(answer[1], orjson.loads(answer[2]))
    task = embedded.ok("GET", "Tasks(1)")
    assert task["status"] == "done"
    assert task["statusMessage"] == "limited to 4.2 kW until 19:45"
    resp = embedded.post(too_low[0], orjson.loads(too_low[1]))
    assert resp.status_code == 400
    assert resp.json() == refusal
