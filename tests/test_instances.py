"""Several citytwin instances on one PostgreSQL database serve one consistent city."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.servers import StaServer, running_server
from tests.support import REQUIRE_ENV, Databases, datastream, location, thing


@pytest.fixture
def two_instances(databases: Databases, tmp_path: Path) -> Iterator[tuple[StaServer, StaServer]]:
    if not databases.postgres_ready():
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(str(databases.problem))
        pytest.skip(str(databases.problem))
    db = databases.create("postgresql", tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    try:
        with running_server(tmp_path / "a", db) as a, running_server(tmp_path / "b", db) as b:
            yield a, b
    finally:
        databases.drop(db)


def test_a_write_through_one_instance_is_read_through_the_other_at_once(
    two_instances: tuple[StaServer, StaServer],
) -> None:
    a, b = two_instances
    with httpx.Client() as http:
        created = http.post(
            f"{a.root}/Things",
            json=thing("Shared", locations=[location()], datastreams=[datastream("D")]),
        )
        assert created.status_code == 201
        tid = created.json()["@iot.id"]
        seen = http.get(f"{b.root}/Things({tid})?$expand=Datastreams")
        assert seen.status_code == 200
        assert seen.json()["name"] == "Shared"
        did = seen.json()["Datastreams"][0]["@iot.id"]

        obs = http.post(f"{b.root}/Datastreams({did})/Observations", json={"result": 1.5})
        assert obs.status_code == 201
        latest = http.get(
            f"{a.root}/Datastreams({did})?$expand=Observations($top=1;$orderby=phenomenonTime desc)"
        ).json()
        assert latest["Observations"][0]["@iot.id"] == obs.json()["@iot.id"]

        assert http.patch(f"{a.root}/Things({tid})", json={"name": "Renamed"}).status_code == 200
        assert http.get(f"{b.root}/Things({tid})/name").json() == {"name": "Renamed"}
        assert http.delete(f"{b.root}/Things({tid})").status_code == 200
        assert http.get(f"{a.root}/Things({tid})").status_code == 404


def test_concurrent_writes_through_both_instances_are_all_kept(
    two_instances: tuple[StaServer, StaServer],
) -> None:
    a, b = two_instances
    with httpx.Client() as http:
        body = thing("T", locations=[location()], datastreams=[datastream("X"), datastream("Y")])
        tid = http.post(f"{a.root}/Things", json=body).json()["@iot.id"]
        dids = [
            d["@iot.id"] for d in http.get(f"{a.root}/Things({tid})/Datastreams").json()["value"]
        ]

    def post(i: int) -> int:
        server = (a, b)[i % 2]
        did = dids[(i // 2) % 2]
        with httpx.Client() as c:
            resp = c.post(
                f"{server.root}/Datastreams({did})/Observations",
                json={"result": i, "phenomenonTime": f"2024-06-01T00:{i % 60:02d}:00Z"},
            )
            assert resp.status_code == 201, resp.text
            return int(resp.json()["@iot.id"])

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(post, range(200)))
    assert len(set(ids)) == 200
    with httpx.Client() as http:
        for server in (a, b):
            total = http.get(f"{server.root}/Observations?$count=true&$top=0").json()
            assert total["@iot.count"] == 200
            per_ds = [
                http.get(f"{server.root}/Datastreams({d})/Observations?$count=true&$top=0").json()[
                    "@iot.count"
                ]
                for d in dids
            ]
            assert per_ds == [100, 100]


@pytest.fixture
def two_instances_with_mosquitto(
    databases: Databases, tmp_path: Path
) -> Iterator[tuple[StaServer, StaServer, int]]:
    from tests.mqtt.support import mosquitto

    if not databases.postgres_ready():
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(str(databases.problem))
        pytest.skip(str(databases.problem))
    db = databases.create("postgresql", tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    try:
        with mosquitto(tmp_path) as port:
            url = f"mqtt://127.0.0.1:{port}"
            with (
                running_server(tmp_path / "a", db, "--mqtt", url) as a,
                running_server(tmp_path / "b", db, "--mqtt", url) as b,
            ):
                yield a, b, port
    finally:
        databases.drop(db)


def test_each_change_reaches_a_subscriber_exactly_once_whichever_instance_makes_it(
    two_instances_with_mosquitto: tuple[StaServer, StaServer, int],
) -> None:
    from tests.mqtt.support import mqtt_client

    a, b, port = two_instances_with_mosquitto
    with httpx.Client() as http:
        body = thing("T", locations=[location()], datastreams=[datastream("D")])
        tid = http.post(f"{a.root}/Things", json=body).json()["@iot.id"]
        did = http.get(f"{b.root}/Things({tid})/Datastreams").json()["value"][0]["@iot.id"]
        topic = f"v1.1/Datastreams({did})/Observations?$select=result"
        with mqtt_client(port, "dashboard") as sub, mqtt_client(port, "sensor") as sensor:
            sub.subscribe(topic)
            time.sleep(0.5)  # both instances learn the subscription
            http.post(f"{a.root}/Datastreams({did})/Observations", json={"result": 1})
            sensor.publish(f"v1.1/Datastreams({did})/Observations", {"result": 2}, qos=1)
            http.post(f"{b.root}/Datastreams({did})/Observations", json={"result": 3})
            sub.wait(topic, count=3)
            got = sorted(m.json()["result"] for m in sub.quiet(topic, 1.0))
            assert got == [1, 2, 3]  # each exactly once
        count = http.get(f"{a.root}/Datastreams({did})/Observations?$count=true&$top=0").json()
        assert count["@iot.count"] == 3  # the MQTT publish was stored by one instance only
        remote = {
            s.root: int(
                next(
                    line.split()[1]
                    for line in http.get(f"{s.base_url}/metrics").text.splitlines()
                    if line.startswith("citytwin_bus_remote_events_total")
                )
            )
            for s in (a, b)
        }
    assert all(n > 0 for n in remote.values()), remote  # events travelled between instances


def test_worker_processes_of_one_server_share_the_mqtt_load_under_ids_of_their_own(
    databases: Databases, tmp_path: Path
) -> None:
    import fcntl

    from tests.mqtt.support import mosquitto, mqtt_client

    if not databases.postgres_ready():
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(str(databases.problem))
        pytest.skip(str(databases.problem))
    db = databases.create("postgresql", tmp_path)
    try:
        with (
            mosquitto(tmp_path) as port,
            running_server(
                tmp_path, db, "--workers", "2", "--mqtt", f"mqtt://127.0.0.1:{port}"
            ) as s,
            httpx.Client() as http,
        ):
            body = thing("T", locations=[location()], datastreams=[datastream("D")])
            tid = http.post(f"{s.root}/Things", json=body).json()["@iot.id"]
            did = http.get(f"{s.root}/Things({tid})/Datastreams").json()["value"][0]["@iot.id"]
            # each worker holds a slot of its own: the locks of slots 0 and 1 are taken
            locks = sorted(s.data_dir.glob("mqtt-*-worker-*.lock"))
            assert [p.name[-7:] for p in locks] == ["-0.lock", "-1.lock"]
            for path in locks:
                with path.open("rb") as f, pytest.raises(BlockingIOError):
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            topic = f"v1.1/Datastreams({did})/Observations?$select=result"
            with mqtt_client(port, "dashboard") as sub, mqtt_client(port, "sensor") as sensor:
                sub.subscribe(topic)
                time.sleep(0.5)
                for i in range(100):
                    sensor.client.publish(
                        f"v1.1/Datastreams({did})/Observations",
                        f'{{"result": {i}}}'.encode(),
                        qos=1,
                    )
                sub.wait(topic, count=100, timeout=30)
                got = sorted(m.json()["result"] for m in sub.quiet(topic, 1.0))
            assert got == list(range(100))  # each stored and announced exactly once
            count = http.get(f"{s.root}/Datastreams({did})/Observations?$count=true&$top=0")
            assert count.json()["@iot.count"] == 100
    finally:
        databases.drop(db)
