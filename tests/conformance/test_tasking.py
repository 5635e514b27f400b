"""Tasking Core (OGC 17-079r1): Actuators, TaskingCapabilities and Tasks over HTTP, on
both backends: the data model, navigation, queries, validation and cascading deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conformance.cud_support import assert_error, parse_instant
from tests.support import ENTITY_SETS, ROOT, Client
from tests.tasking_support import (
    TASKING_SETS,
    actuator,
    capability,
    dim,
    dimming_record,
    heat_pump,
)


def counts(client: Client) -> dict[str, int]:
    return {
        name: client.ok("GET", f"{name}?$count=true&$top=0")["@iot.count"]
        for name in ("Things", *TASKING_SETS)
    }


@pytest.fixture
def pump(client: Client) -> dict[str, int]:
    """A heat pump made by one deep insert, with one Task."""
    thing_id = client.create("Things", heat_pump())
    (cap,) = client.ids(f"Things({thing_id})/TaskingCapabilities")
    act = client.ok("GET", f"TaskingCapabilities({cap})/Actuator")["@iot.id"]
    task = client.create(f"TaskingCapabilities({cap})/Tasks", dim())
    return {"thing": thing_id, "capability": cap, "actuator": act, "task": task}


# --- data model -------------------------------------------------------------------------------
def test_landing_page_lists_the_tasking_sets_and_conformance(client: Client) -> None:
    body = client.ok("GET", "/v1.1")
    assert [v["name"] for v in body["value"]] == [*ENTITY_SETS, "MultiDatastreams", *TASKING_SETS]
    conformance = body["serverSettings"]["conformance"]
    for name in ("tasking-capability", "task", "actuator", "create-tasks"):
        assert f"http://www.opengis.net/spec/iot_tasking/1.0/req/{name}" in conformance


def test_entities_carry_their_properties_and_navigation_links(
    client: Client, pump: dict[str, int]
) -> None:
    thing = client.ok("GET", f"Things({pump['thing']})")
    assert thing["TaskingCapabilities@iot.navigationLink"] == (
        f"{ROOT}/Things({pump['thing']})/TaskingCapabilities"
    )
    cap = client.ok("GET", f"TaskingCapabilities({pump['capability']})")
    assert cap["taskingParameters"] == dimming_record()
    assert cap["@iot.selfLink"] == f"{ROOT}/TaskingCapabilities({pump['capability']})"
    for nav in ("Thing", "Actuator", "Tasks"):
        assert cap[f"{nav}@iot.navigationLink"] == f"{cap['@iot.selfLink']}/{nav}"
    act = client.ok("GET", f"Actuators({pump['actuator']})")
    assert act["encodingType"] == "application/pdf"
    assert act["metadata"] == "https://example.org/heatpump.pdf"
    assert act["TaskingCapabilities@iot.navigationLink"].endswith("/TaskingCapabilities")
    task = client.ok("GET", f"Tasks({pump['task']})")
    assert task["taskingParameters"] == {"powerLimit": 4.2, "duration": 120}
    assert task["status"] == "created"  # no driver: nobody has taken it yet
    assert task["TaskingCapability@iot.navigationLink"].endswith("/TaskingCapability")


def test_creation_time_is_the_server_time_whatever_the_client_says(client: Client) -> None:
    thing_id = client.create("Things", heat_pump())
    (cap,) = client.ids(f"Things({thing_id})/TaskingCapabilities")
    before = datetime.now(UTC) - timedelta(seconds=1)
    task = client.ok(
        "POST",
        f"TaskingCapabilities({cap})/Tasks",
        dim(creationTime="2001-01-01T00:00:00Z", status="done"),
        201,
    )
    created = parse_instant(task["creationTime"])
    assert before <= created <= datetime.now(UTC) + timedelta(seconds=1)
    assert task["status"] == "created"


@pytest.mark.parametrize(
    ("entity_set", "body", "missing"),
    [
        ("Actuators", {"name": "a", "description": "d", "encodingType": "text/html"}, "metadata"),
        ("Actuators", {"name": "a", "description": "d", "metadata": "m"}, "encodingType"),
        ("TaskingCapabilities", {"name": "c", "description": "d"}, "taskingParameters"),
        ("Tasks", {}, "taskingParameters"),
    ],
)
def test_mandatory_properties_are_required(
    client: Client, entity_set: str, body: dict[str, Any], missing: str
) -> None:
    assert_error(client.post(entity_set, body), 400, missing)
    assert client.ok("GET", f"{entity_set}?$count=true")["@iot.count"] == 0


def test_a_capability_needs_a_thing_and_an_actuator(client: Client) -> None:
    thing_id = client.create("Things", {"name": "T", "description": "d"})
    act = client.create("Actuators", actuator())
    no_actuator = capability(Thing={"@iot.id": thing_id})
    assert_error(client.post("TaskingCapabilities", no_actuator), 400, "Actuator")
    no_thing = capability(Actuator={"@iot.id": act})
    assert_error(client.post("TaskingCapabilities", no_thing), 400, "Thing")
    both = capability(Thing={"@iot.id": thing_id}, Actuator={"@iot.id": act})
    cap = client.create("TaskingCapabilities", both)
    assert client.ok("GET", f"TaskingCapabilities({cap})/Thing")["@iot.id"] == thing_id


def test_a_task_needs_an_existing_capability(client: Client) -> None:
    assert_error(client.post("Tasks", dim()), 400, "TaskingCapability")
    resp = client.post("Tasks", dim(TaskingCapability={"@iot.id": 999}))
    assert_error(resp, 400, "TaskingCapability", "999")
    assert_error(client.post("TaskingCapabilities(999)/Tasks", dim()), 404)
    assert client.ok("GET", "Tasks?$count=true")["@iot.count"] == 0


# --- navigation and queries -----------------------------------------------------------------
def test_navigation_both_ways(client: Client, pump: dict[str, int]) -> None:
    t, c, a, k = pump["thing"], pump["capability"], pump["actuator"], pump["task"]
    assert client.ids(f"Things({t})/TaskingCapabilities") == [c]
    assert client.ids(f"Actuators({a})/TaskingCapabilities") == [c]
    assert client.ids(f"TaskingCapabilities({c})/Tasks") == [k]
    assert client.ok("GET", f"TaskingCapabilities({c})/Thing")["@iot.id"] == t
    assert client.ok("GET", f"TaskingCapabilities({c})/Actuator")["@iot.id"] == a
    assert client.ok("GET", f"Tasks({k})/TaskingCapability")["@iot.id"] == c
    assert client.ok("GET", f"Tasks({k})/TaskingCapability/Thing")["@iot.id"] == t
    assert client.ids(f"Things({t})/TaskingCapabilities({c})/Tasks") == [k]
    assert client.ok("GET", f"Tasks({k})/taskingParameters")["taskingParameters"] == {
        "powerLimit": 4.2,
        "duration": 120,
    }
    refs = client.ok("GET", f"Things({t})/TaskingCapabilities/$ref")["value"]
    assert refs == [{"@iot.selfLink": f"{ROOT}/TaskingCapabilities({c})"}]


def test_filter_expand_select_and_orderby(client: Client, pump: dict[str, int]) -> None:
    cap = pump["capability"]
    client.create(f"TaskingCapabilities({cap})/Tasks", dim(7.5))
    other = client.create("Things", heat_pump("Wallbox"))
    high = client.ids("Tasks?$filter=taskingParameters/powerLimit gt 5")
    assert len(high) == 1
    assert client.ids("Tasks?$orderby=taskingParameters/powerLimit desc")[0] == high[0]
    by_thing = client.ids("TaskingCapabilities?$filter=Thing/name eq 'Wallbox'")
    assert by_thing == client.ids(f"Things({other})/TaskingCapabilities")
    tasks = client.ids("Tasks?$filter=TaskingCapability/Thing/name eq 'Heat pump'")
    assert len(tasks) == 2
    assert client.ids("Tasks?$filter=status eq 'created'") == sorted(tasks)
    assert client.ids("Things?$filter=TaskingCapabilities/name eq 'Dim'") == sorted(
        [pump["thing"], other]
    )
    body = client.ok(
        "GET",
        f"Things({pump['thing']})?$select=name&$expand=TaskingCapabilities($select=name;"
        "$expand=Actuator($select=name),Tasks($select=taskingParameters;$orderby=id))",
    )
    (c,) = body["TaskingCapabilities"]
    assert c == {
        "name": "Dim",
        "Actuator": {"name": "Heat pump controller"},
        "Tasks": [
            {"taskingParameters": {"powerLimit": 4.2, "duration": 120}},
            {"taskingParameters": {"powerLimit": 7.5, "duration": 120}},
        ],
    }
    assert set(body) == {"name", "TaskingCapabilities"}
    selected = client.ok("GET", f"Tasks({pump['task']})?$select=creationTime,status")
    assert set(selected) == {"creationTime", "status"}


# --- deep insert and updates ----------------------------------------------------------------
def test_deep_insert_of_a_thing_with_capability_actuator_and_task(client: Client) -> None:
    body = heat_pump(Tasks=[dim(5.0), dim(6.0)])  # several: stored in one batch
    thing_id = client.create("Things", body)
    (cap,) = client.ids(f"Things({thing_id})/TaskingCapabilities")
    tasks = client.values(f"TaskingCapabilities({cap})/Tasks?$orderby=id")
    assert [t["taskingParameters"]["powerLimit"] for t in tasks] == [5.0, 6.0]
    assert {t["status"] for t in tasks} == {"created"}
    assert client.ok("GET", f"TaskingCapabilities({cap})/Actuator")["name"] == (
        "Heat pump controller"
    )


def test_an_actuator_with_capabilities_links_existing_things(client: Client) -> None:
    thing_id = client.create("Things", {"name": "T", "description": "d"})
    act = client.create(
        "Actuators",
        actuator(TaskingCapabilities=[capability(Thing={"@iot.id": thing_id})]),
    )
    assert client.ids(f"Things({thing_id})/TaskingCapabilities") == client.ids(
        f"Actuators({act})/TaskingCapabilities"
    )


def test_an_invalid_deep_insert_stores_nothing(client: Client) -> None:
    before = counts(client)
    bad_record = heat_pump()
    bad_record["TaskingCapabilities"][0]["taskingParameters"] = {"type": "Vector"}
    assert_error(client.post("Things", bad_record), 400, "TaskingCapabilities[0]", "DataRecord")
    bad_task = heat_pump(Tasks=[dim(5.0), dim(1.0)])
    assert_error(client.post("Things", bad_task), 400, "powerLimit", "4.2")
    assert counts(client) == before


def test_patch_and_put_keep_the_rules(client: Client, pump: dict[str, int]) -> None:
    task, cap = f"Tasks({pump['task']})", f"TaskingCapabilities({pump['capability']})"
    assert_error(client.patch(task, {"taskingParameters": {"powerLimit": 99}}), 400, "99")
    changed = client.ok("PATCH", task, {"taskingParameters": {"powerLimit": 6}})
    assert changed["taskingParameters"] == {"powerLimit": 6}
    assert changed["status"] == "created"
    assert client.ok("PATCH", task, {"status": "done"})["status"] == "created"  # server's
    assert_error(client.patch(cap, {"taskingParameters": {"type": "DataRecord"}}), 400, "field")
    renamed = client.ok("PATCH", cap, {"name": "Dimmen"})
    assert renamed["taskingParameters"] == dimming_record()
    put = client.ok("PUT", f"Actuators({pump['actuator']})", actuator("Wallbox controller"))
    assert put["name"] == "Wallbox controller"


def test_moving_a_task_to_another_capability_checks_it_against_that_one(
    client: Client, pump: dict[str, int]
) -> None:
    switch = {
        "type": "DataRecord",
        "field": [{"name": "on", "type": "Boolean"}],
    }
    other = client.create(
        "TaskingCapabilities",
        capability(
            "Switch",
            record=switch,
            Thing={"@iot.id": pump["thing"]},
            Actuator={"@iot.id": pump["actuator"]},
        ),
    )
    moved = client.patch(f"Tasks({pump['task']})", {"TaskingCapability": {"@iot.id": other}})
    assert_error(moved, 400, f"TaskingCapability {other}", "unknown parameter")
    both = {"TaskingCapability": {"@iot.id": other}, "taskingParameters": {"on": True}}
    client.ok("PATCH", f"Tasks({pump['task']})", both)
    assert client.ids(f"TaskingCapabilities({other})/Tasks") == [pump["task"]]


# --- validation of taskingParameters ----------------------------------------------------------
def _field(**kw: Any) -> dict[str, Any]:
    return {"type": "DataRecord", "field": [{"name": "x", **kw}]}


@pytest.mark.parametrize(
    ("record", "fragments"),
    [
        ("on/off", ("JSON object",)),
        ({"type": "DataArray", "field": []}, ("DataRecord",)),
        ({"type": "DataRecord"}, ("field",)),
        ({"type": "DataRecord", "field": []}, ("field", "non-empty")),
        ({"type": "DataRecord", "field": ["x"]}, ("field[0]",)),
        ({"type": "DataRecord", "field": [{"type": "Boolean"}]}, ("field[0]", "name")),
        (_field(type="Vector"), ("field[0]", "Quantity")),
        (_field(type="Quantity"), ("uom",)),
        (_field(type="Boolean", optional="no"), ("optional",)),
        (
            {
                "type": "DataRecord",
                "field": [{"name": "a", "type": "Text"}, {"name": "a", "type": "Text"}],
            },
            ("field[1]", "twice"),
        ),
        (_field(type="Boolean", constraint={"value": [True]}), ("Boolean", "no constraint")),
        (
            _field(type="Count", constraint={"type": "AllowedTokens", "value": ["a"]}),
            ("AllowedValues",),
        ),
        (_field(type="Count", constraint={"interval": [[5, 1]]}), ("empty",)),
        (_field(type="Count", constraint={"interval": [[1.5, 3]]}), ("integer",)),
        (_field(type="Quantity", uom={"code": "kW"}, constraint={}), ("allows nothing",)),
        (_field(type="Category", constraint={"value": [1, 2]}), ("string",)),
        (_field(type="Text", constraint={"pattern": "("}), ("regular expression",)),
        (_field(type="Time", constraint={"interval": [["soon", "later"]]}), ("ISO 8601",)),
    ],
)
def test_a_capability_with_an_invalid_record_is_refused(
    client: Client, record: Any, fragments: tuple[str, ...]
) -> None:
    thing_id = client.create("Things", {"name": "T", "description": "d"})
    body = capability(record=record, Thing={"@iot.id": thing_id}, Actuator=actuator())
    assert_error(client.post("TaskingCapabilities", body), 400, "taskingParameters", *fragments)
    assert counts(client)["TaskingCapabilities"] == 0
    assert counts(client)["Actuators"] == 0


EVERY_TYPE = {
    "type": "DataRecord",
    "field": [
        {
            "name": "power",
            "type": "Quantity",
            "uom": {"code": "kW"},
            "constraint": {"type": "AllowedValues", "interval": [[4.2, 11]], "value": [0]},
        },
        {"name": "steps", "type": "Count", "constraint": {"value": [1, 2, 3]}, "optional": True},
        {"name": "on", "type": "Boolean", "optional": True},
        {
            "name": "mode",
            "type": "Category",
            "constraint": {"type": "AllowedTokens", "value": ["eco", "boost"]},
            "optional": True,
        },
        {
            "name": "note",
            "type": "Text",
            "constraint": {"pattern": "[a-z ]{1,20}"},
            "optional": True,
        },
        {
            "name": "until",
            "type": "Time",
            "constraint": {
                "type": "AllowedTimes",
                "interval": [["2026-01-01T00:00:00Z", "2030-01-01T00:00:00Z"]],
            },
            "optional": True,
        },
    ],
}


@pytest.mark.parametrize(
    ("params", "fragments"),
    [
        ([4.2], ("JSON object",)),
        ({"steps": 1}, ("'power'", "required")),
        ({"power": 5, "speed": 3}, ("unknown", "'speed'")),
        ({"power": "5"}, ("'power'", "number")),
        ({"power": True}, ("'power'", "number")),
        ({"power": 4.1}, ("'power'", "4.1", "[4.2, 11]", "0")),
        ({"power": 12}, ("'power'", "[4.2, 11]")),
        ({"power": 5, "steps": 2.5}, ("'steps'", "integer")),
        ({"power": 5, "steps": 4}, ("'steps'", "one of")),
        ({"power": 5, "on": "yes"}, ("'on'", "true or false")),
        ({"power": 5, "mode": "turbo"}, ("'mode'", "'eco'", "'boost'")),
        ({"power": 5, "mode": 1}, ("'mode'", "string")),
        ({"power": 5, "note": "NO CAPITALS"}, ("'note'", "matching")),
        ({"power": 5, "until": "tomorrow"}, ("'until'", "ISO 8601")),
        ({"power": 5, "until": "2031-01-01T00:00:00Z"}, ("'until'", "within")),
    ],
)
def test_a_task_that_does_not_fit_its_capability_is_refused(
    client: Client, params: Any, fragments: tuple[str, ...]
) -> None:
    thing_id = client.create("Things", heat_pump())
    (cap,) = client.ids(f"Things({thing_id})/TaskingCapabilities")
    client.ok("PATCH", f"TaskingCapabilities({cap})", {"taskingParameters": EVERY_TYPE})
    resp = client.post(f"TaskingCapabilities({cap})/Tasks", {"taskingParameters": params})
    assert_error(resp, 400, "taskingParameters", *fragments)
    assert counts(client)["Tasks"] == 0


def test_a_task_that_fits_is_stored_as_given(client: Client) -> None:
    thing_id = client.create("Things", heat_pump())
    (cap,) = client.ids(f"Things({thing_id})/TaskingCapabilities")
    client.ok("PATCH", f"TaskingCapabilities({cap})", {"taskingParameters": EVERY_TYPE})
    params = {
        "power": 0,
        "steps": 3,
        "on": False,
        "mode": "eco",
        "note": "grid alert",
        "until": "2027-05-01T12:00:00+02:00",
    }
    task = client.ok(
        "POST", f"TaskingCapabilities({cap})/Tasks", {"taskingParameters": params}, 201
    )
    assert task["taskingParameters"] == params


@pytest.mark.parametrize(
    ("driver", "fragments"),
    [
        ("mqtt", ("driver", "object")),
        ({"topic": "x"}, ("unknown driver", "mqtt", "webhook")),
        ({"name": "carrier-pigeon"}, ("unknown driver", "carrier-pigeon")),
        ({"name": "mqtt"}, ("topic",)),
        ({"name": "mqtt", "topic": "devices/+/cmd"}, ("wildcards",)),
        ({"name": "mqtt", "topic": "v1.1/Things"}, ("reserved",)),
        ({"name": "webhook"}, ("url",)),
        ({"name": "webhook", "url": "ftp://x"}, ("http",)),
        ({"name": "webhook", "url": "http://x", "headers": {"a": 1}}, ("headers",)),
    ],
)
def test_a_capability_with_a_bad_driver_configuration_is_refused(
    client: Client, driver: Any, fragments: tuple[str, ...]
) -> None:
    body = heat_pump(properties={"driver": driver})
    assert_error(client.post("Things", body), 400, "properties.driver", *fragments)
    assert counts(client)["Things"] == 0


# --- deletes ------------------------------------------------------------------------------
def test_deleting_a_thing_deletes_its_capabilities_and_their_tasks(
    client: Client, pump: dict[str, int]
) -> None:
    client.ok("DELETE", f"Things({pump['thing']})")
    assert counts(client) == {"Things": 0, "Actuators": 1, "TaskingCapabilities": 0, "Tasks": 0}
    assert client.get(f"Tasks({pump['task']})").status_code == 404


def test_deleting_an_actuator_deletes_its_capabilities_and_their_tasks(
    client: Client, pump: dict[str, int]
) -> None:
    client.ok("DELETE", f"Actuators({pump['actuator']})")
    assert counts(client) == {"Things": 1, "Actuators": 0, "TaskingCapabilities": 0, "Tasks": 0}


def test_deleting_a_capability_deletes_its_tasks_only(client: Client, pump: dict[str, int]) -> None:
    client.ok("DELETE", f"TaskingCapabilities({pump['capability']})")
    assert counts(client) == {"Things": 1, "Actuators": 1, "TaskingCapabilities": 0, "Tasks": 0}


def test_deleting_a_task_leaves_the_rest(client: Client, pump: dict[str, int]) -> None:
    client.ok("DELETE", f"Tasks({pump['task']})")
    assert counts(client) == {"Things": 1, "Actuators": 1, "TaskingCapabilities": 1, "Tasks": 0}
