"""MultiDatastreams and data arrays over MQTT, with the embedded broker and paho clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance.test_multidatastream import multi
from tests.mqtt.support import MqttClient, mqtt_client
from tests.support import Client, datastream, location, thing


@pytest.fixture
def streams(embedded: Client) -> dict[str, int]:
    tid = embedded.create(
        "Things", thing("T", locations=[location()], datastreams=[datastream("A")])
    )
    (ds,) = embedded.ids(f"Things({tid})/Datastreams")
    md = embedded.create("MultiDatastreams", multi(Thing={"@iot.id": tid}))
    other = embedded.create("MultiDatastreams", multi("Other", Thing={"@iot.id": tid}))
    return {"ds": ds, "md": md, "other": other}


@pytest.fixture
def sub(broker_port: int) -> Iterator[MqttClient]:
    with mqtt_client(broker_port, "subscriber") as c:
        yield c


def test_multidatastream_observation_topics_are_notified(
    embedded: Client, streams: dict[str, int], sub: MqttClient
) -> None:
    md, other = streams["md"], streams["other"]
    sub.subscribe(
        f"v1.1/MultiDatastreams({md})/Observations",
        f"v1.1/MultiDatastreams({other})/Observations",
    )
    oid = embedded.create(f"MultiDatastreams({md})/Observations", {"result": [20.5, 41]})
    expected = embedded.get(f"Observations({oid})").content
    [msg] = sub.wait(f"v1.1/MultiDatastreams({md})/Observations")
    assert msg.payload == expected
    assert msg.json()["result"] == [20.5, 41]
    assert sub.quiet(f"v1.1/MultiDatastreams({other})/Observations") == []


def test_publishing_to_a_multidatastream_creates_an_observation(
    embedded: Client, streams: dict[str, int], broker_port: int, sub: MqttClient
) -> None:
    md = streams["md"]
    sub.subscribe(f"v1.1/MultiDatastreams({md})/Observations")
    with mqtt_client(broker_port, "sensor") as pub:
        pub.publish(f"v1.1/MultiDatastreams({md})/Observations", {"result": [1, 2]})
        [msg] = sub.wait(f"v1.1/MultiDatastreams({md})/Observations")
    assert msg.json()["result"] == [1, 2]
    stored = embedded.values(f"MultiDatastreams({md})/Observations")
    assert [o["result"] for o in stored] == [[1, 2]]


def test_create_observations_notifies_each_row(
    embedded: Client, streams: dict[str, int], sub: MqttClient
) -> None:
    ds, md = streams["ds"], streams["md"]
    sub.subscribe(
        f"v1.1/Datastreams({ds})/Observations", f"v1.1/MultiDatastreams({md})/Observations"
    )
    body = [
        {"Datastream": {"@iot.id": ds}, "components": ["result"], "dataArray": [[1], [2]]},
        {"MultiDatastream": {"@iot.id": md}, "components": ["result"], "dataArray": [[[3, 4]]]},
    ]
    resp = embedded.post("CreateObservations", body)
    assert resp.status_code == 201, resp.text
    got = sub.wait(f"v1.1/Datastreams({ds})/Observations", count=2)
    assert sorted(m.json()["result"] for m in got) == [1, 2]
    [multi_msg] = sub.wait(f"v1.1/MultiDatastreams({md})/Observations")
    assert multi_msg.json()["result"] == [3, 4]
