"""The audit log: each write, through each transport, leaves exactly its row with the
writer's identity, in the write's transaction; a refused or failed write leaves none."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from citytwin.access import ANONYMOUS, audit
from citytwin.access.keys import authenticate
from citytwin.bus import ChangeEvent
from citytwin.cli import main
from citytwin.service.intake import Intake
from tests.access.world import World, build
from tests.mqtt.support import free_port, mqtt_client
from tests.support import Client, datastream, location, make_client, thing
from tests.tasking_support import dim

T0 = "2026-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def world(new_client: Callable[..., Client]) -> World:
    return build(new_client)


class Log:
    """The rows written since it was made."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.storage = world.client.app.state.service.storage
        rows = self.all()
        self.start = max((r["id"] for r in rows), default=0)

    def all(self) -> list[dict[str, Any]]:
        return self.world.client.call(audit.entries(self.storage, limit=100_000))

    def new(self, identity: str | None = None) -> list[dict[str, Any]]:
        """The new rows (of ``identity``; the platform's own Task dispatching aside),
        oldest first."""
        rows = [r for r in self.all() if r["id"] > self.start]
        rows = [r for r in rows if r["identity"] == identity or identity is None]
        return sorted(rows, key=lambda r: r["id"])

    def what(self, identity: str | None = None) -> list[tuple[Any, ...]]:
        return [
            (r["transport"], r["operation"], r["entity"], r["count"], r["ids"], r["detail"])
            for r in self.new(identity)
        ]


@pytest.fixture
def log(world: World) -> Log:
    return Log(world)


def who(world: World, name: str) -> str:
    key = world.keys[name]
    assert key is not None
    storage = world.client.app.state.service.storage
    return world.client.call(authenticate(storage, key)).identity


def test_an_http_create_update_and_delete_each_leave_their_row(world: World, log: Log) -> None:
    new = world.create("operator", "Things", {"name": "audited", "description": "d"})
    world.as_("operator", "PATCH", f"Things({new})", {"description": "changed"})
    world.as_("operator", "DELETE", f"Things({new})")
    operator = who(world, "operator")
    assert log.what() == [
        ("http", "create", "Thing", 1, [new], None),
        ("http", "update", "Thing", 1, [new], None),
        ("http", "delete", "Thing", 1, [new], None),
    ]
    row = log.new()[0]
    assert (row["identity"], row["organisation"], row["role"]) == (operator, "city", "operator")
    assert row["organisationId"] is not None
    assert datetime.fromisoformat(row["time"]) > datetime.now(UTC) - timedelta(minutes=5)


def test_an_observation_names_its_datastream(world: World, log: Log) -> None:
    ds = world.streams["own"]
    made = world.create("operator", f"Datastreams({ds})/Observations", {"result": 3.5})
    assert log.what() == [("http", "create", "Observation", 1, [made], {"Datastreams": [ds]})]


def test_a_task_records_who_asked_for_it(world: World, log: Log) -> None:
    cap = world.capabilities["own"]
    task = world.create("operator", f"TaskingCapabilities({cap})/Tasks", dim())
    rows = log.what(who(world, "operator"))
    assert rows == [("http", "create", "Task", 1, [task], None)]


def test_a_change_set_is_recorded_as_a_batch(world: World, log: Log) -> None:
    ds = world.streams["own"]
    requests = [
        {
            "id": str(i),
            "atomicityGroup": "g",
            "method": "post",
            "url": f"Datastreams({ds})/Observations",
            "body": {"result": float(i)},
        }
        for i in range(3)
    ]
    resp = world.request("operator", "POST", "$batch", {"requests": requests})
    assert [a["status"] for a in resp.json()["responses"]] == [201, 201, 201]
    (row,) = log.new()
    assert (row["transport"], row["operation"], row["entity"], row["count"]) == (
        "batch",
        "create",
        "Observation",
        3,
    )
    assert row["identity"] == who(world, "operator")
    assert row["detail"] == {"Datastreams": [ds]}


def test_a_bulk_insert_is_one_row_with_its_count(world: World, log: Log) -> None:
    ds = world.streams["own"]
    rows = [[f"2026-01-01T00:{m:02d}:00Z", float(m)] for m in range(50)]
    body = [
        {
            "Datastream": {"@iot.id": ds},
            "components": ["phenomenonTime", "result"],
            "dataArray": rows,
        }
    ]
    answer = world.as_("operator", "POST", "CreateObservations", body, status=201)
    assert len(answer) == 50
    (row,) = log.new()
    assert (row["transport"], row["entity"], row["count"]) == ("http", "Observation", 50)
    assert row["detail"] == {"Datastreams": [ds]}
    assert row["identity"] == who(world, "operator")


def test_mqtt_observations_are_recorded_with_the_principal_the_adapter_passes(
    world: World, log: Log
) -> None:
    service = world.client.app.state.service
    key = world.keys["operator"]
    assert key is not None
    operator = world.client.call(authenticate(service.storage, key))
    ds = world.streams["own"]
    intake = Intake(service, "http://localhost")
    messages = [
        (f"v1.1/Datastreams({ds})/Observations", orjson.dumps({"result": float(i)}), operator)
        for i in range(4)
    ]
    assert world.client.call(intake.create(messages)) == [None] * 4
    (row,) = log.new()
    assert (row["transport"], row["entity"], row["count"], row["identity"]) == (
        "mqtt",
        "Observation",
        4,
        operator.identity,
    )
    assert row["detail"] == {"Datastreams": [ds]}
    # without an identity an MQTT publish is anonymous: refused, stored nowhere, no row
    anonymous = [(topic, payload, ANONYMOUS) for topic, payload, _ in messages[:1]]
    answers = world.client.call(intake.create(anonymous))
    assert answers[0] is not None
    assert answers[0].status == 403
    assert len(log.new()) == 1


def test_a_layer_upload_is_recorded(world: World, log: Log) -> None:
    layer = {"type": "FeatureCollection", "features": []}
    resp = world.request("operator", "PUT", "/api/v1/layers/audited", layer)
    assert resp.status_code in (201, 204)
    (row,) = log.new()
    assert (row["transport"], row["entity"], row["detail"]) == (
        "http",
        "layer",
        {"name": "audited"},
    )
    assert row["identity"] == who(world, "operator")


def test_refused_and_failed_writes_leave_no_row(world: World, log: Log) -> None:
    ds = world.streams["own"]
    world.as_("reader", "POST", "Things", {"name": "x", "description": "y"}, status=403)
    world.as_("anonymous", "POST", f"Datastreams({ds})/Observations", {"result": 1}, status=403)
    world.as_("utility", "PATCH", f"Datastreams({ds})", {"name": "mine"}, status=404)
    world.as_("operator", "POST", "Things", {"name": "no description"}, status=400)
    world.as_("operator", "PATCH", "Things(999999)", {"name": "x"}, status=404)
    bad = [
        {"id": "1", "atomicityGroup": "g", "method": "post", "url": "Things", "body": {}},
        {
            "id": "2",
            "atomicityGroup": "g",
            "method": "post",
            "url": "Things",
            "body": {"name": "a", "description": "b"},
        },
    ]
    resp = world.request("operator", "POST", "$batch", {"requests": bad})
    assert {a["status"] for a in resp.json()["responses"]} != {201}
    layer = {"type": "FeatureCollection", "features": []}
    world.as_("reader", "PUT", "/api/v1/layers/refused", layer, status=403)
    assert log.new() == []


def test_a_write_whose_audit_row_fails_is_not_stored(
    world: World, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any) -> None:
        raise RuntimeError("the audit log cannot be written")

    monkeypatch.setattr(audit, "record", broken)
    resp = world.request("admin", "POST", "Things", {"name": "unaudited", "description": "d"})
    assert resp.status_code == 500
    monkeypatch.undo()
    found = world.as_("admin", "GET", "Things?$filter=name eq 'unaudited'")
    assert found["value"] == []
    assert log.new() == []


@pytest.fixture
def cli(world: World) -> Callable[..., Any]:
    """``citytwin audit`` on the world's database."""
    url = world.client.app.state.settings.database_url

    def run(*args: str, ok: bool = True) -> Any:
        result = CliRunner().invoke(main, ["audit", "--db", url, *args])
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def test_the_cli_filters_by_identity_entity_time_and_count(
    world: World, cli: Callable[..., Any]
) -> None:
    start = datetime.now(UTC)
    new = world.create("utility", "Things", {"name": "for the cli", "description": "d"})
    utility = who(world, "utility")
    lines = cli("--who", utility, "--json", "--since", start.isoformat()).output.splitlines()
    rows = [orjson.loads(line) for line in lines]
    assert [(r["operation"], r["entity"], r["ids"]) for r in rows] == [("create", "Thing", [new])]
    by_org = [orjson.loads(x) for x in cli("--who", "utility", "--json").output.splitlines()]
    assert by_org
    assert {r["organisation"] for r in by_org} == {"utility"}
    things = [orjson.loads(x) for x in cli("--entity", "thing", "--json").output.splitlines()]
    assert things
    assert {r["entity"] for r in things} == {"Thing"}
    assert len(cli("--limit", "2", "--json").output.splitlines()) == 2
    before = cli("--until", start.isoformat(), "--who", utility, "--json").output.splitlines()
    assert before
    assert all(orjson.loads(x)["ids"] != [new] for x in before)
    assert cli("--since", "1h", "--who", "nobody", "--json").output == ""
    table = cli("--who", utility, "--limit", "1").output.splitlines()
    assert table[0].split() == list(audit_columns())
    assert table[1].split()[1:8] == [utility, "utility", "operator", "http", "create", "Thing", "1"]
    bad = cli("--since", "yesterday", ok=False)
    assert bad.exit_code == 2
    assert "ISO 8601" in bad.output


def audit_columns() -> tuple[str, ...]:
    from citytwin.access.cli import AUDIT_COLUMNS

    return AUDIT_COLUMNS


def test_retention_deletes_old_rows_and_records_that_it_did(world: World, log: Log) -> None:
    storage = world.client.app.state.service.storage
    t = audit.audit_table(storage.dialect.column_types)
    old = datetime.now(UTC) - timedelta(days=40)

    async def age_one() -> int:
        async with storage.writer() as w:
            first = await w.scalar(sa.select(sa.func.min(t.c.id)))
            await w.execute(
                sa.update(t).where(t.c.id == first).values(at=storage.dialect.time_param(old))
            )
        return int(first)

    aged = world.client.call(age_one())
    origin = audit.Origin(audit.cli_origin().principal, "cli")
    assert world.client.call(audit.prune(storage, 0, origin)) == 0  # 0 keeps everything
    assert world.client.call(audit.prune(storage, 30, origin)) == 1
    assert aged not in {r["id"] for r in log.all()}
    assert log.what() == [("cli", "prune", "audit_log", 1, [], {"olderThanDays": 30})]
    assert world.client.call(audit.prune(storage, 30, origin)) == 0


def test_a_real_mqtt_publish_is_recorded_as_mqtt(db_url: str, tmp_path: Path) -> None:
    """Over the embedded broker (access control off: the publish is anonymous)."""
    port = free_port()
    client = make_client(tmp_path, db=db_url, mqtt="embedded", mqtt_port=port, mqtt_ws_port=0)
    try:
        tid = client.create(
            "Things", thing("T", locations=[location()], datastreams=[datastream("A")])
        )
        (ds,) = client.ids(f"Things({tid})/Datastreams")
        storage = client.app.state.service.storage
        before = client.call(audit.entries(storage))
        topic = f"v1.1/Datastreams({ds})/Observations"
        with mqtt_client(port, "audited") as sensor, mqtt_client(port, "watch") as watch:
            watch.subscribe(topic)
            sensor.publish(topic, {"result": 7.5})
            watch.wait(topic)  # stored: its notification went out after the commit
        rows = [r for r in client.call(audit.entries(storage)) if r["id"] > before[0]["id"]]
        # the first Observation of the Thing's Location also made its FeatureOfInterest
        assert sorted((r["transport"], r["identity"], r["entity"], r["count"]) for r in rows) == [
            ("mqtt", "anonymous", "FeatureOfInterest", 1),
            ("mqtt", "anonymous", "Observation", 1),
        ]
        assert [r["detail"] for r in rows if r["entity"] == "Observation"] == [
            {"Datastreams": [ds]}
        ]
    finally:
        client.close()


def test_a_transactions_events_become_one_row_per_type_and_operation() -> None:
    """Runs of events of one type and operation, interleaved with others, add up to one
    row each: the count exact, the first ids kept up to the limit across runs."""

    def run(entity: str, kind: Any, ids: range) -> list[ChangeEvent]:
        return [ChangeEvent(entity, i, kind) for i in ids]

    events = [
        *run("Observation", "created", range(1, 61)),
        *run("Task", "created", range(7, 8)),
        *run("Observation", "created", range(61, 131)),
        *run("Observation", "deleted", range(3, 5)),
    ]
    extra = audit.Action("install", "package", count=1)
    rows = audit.actions(events, {"create": {5, 2}}, [extra])
    assert [(r.operation, r.entity, r.count) for r in rows] == [
        ("create", "Observation", 130),
        ("create", "Task", 1),
        ("delete", "Observation", 2),
        ("install", "package", 1),
    ]
    assert rows[0].ids == list(range(1, audit.MAX_IDS + 1))
    assert rows[0].detail == {"Datastreams": [2, 5]}
    assert (rows[1].ids, rows[2].ids, rows[2].detail) == ([7], [3, 4], None)
