"""Change events as they travel between instances (citytwin/events/<instance>)."""

from __future__ import annotations

import orjson
import pytest

from citytwin.bus import ChangeEvent, events_to_json


def test_a_batch_goes_as_runs_of_ids_and_comes_back_in_its_order() -> None:
    events = [
        ChangeEvent("Thing", 1, "created"),
        *(ChangeEvent("Observation", i, "created") for i in range(10, 15)),
        ChangeEvent("Datastream", 3, "updated", frozenset({"name", "unitOfMeasurement"})),
        ChangeEvent("Datastream", 4, "updated", frozenset({"name", "unitOfMeasurement"})),
        ChangeEvent("Datastream", 5, "updated", frozenset({"name"})),
        ChangeEvent("Observation", 15, "created"),
        ChangeEvent("Observation", 10, "deleted"),
    ]
    records = orjson.loads(orjson.dumps(events_to_json(events)))
    assert [(r["entityType"], r["kind"], r["ids"]) for r in records] == [
        ("Thing", "created", [1]),
        ("Observation", "created", [10, 11, 12, 13, 14]),
        ("Datastream", "updated", [3, 4]),
        ("Datastream", "updated", [5]),
        ("Observation", "created", [15]),
        ("Observation", "deleted", [10]),
    ]
    assert records[2]["changed"] == ["name", "unitOfMeasurement"]
    back = [e for r in records for e in ChangeEvent.from_json(r, "b")]
    assert back == [e._replace(origin="b") for e in events]


def test_records_of_one_event_each_are_still_understood() -> None:
    record = {"entityType": "Observation", "id": 7, "kind": "updated", "changed": ["result"]}
    assert ChangeEvent.from_json(record, "a") == [
        ChangeEvent("Observation", 7, "updated", frozenset({"result"}), "a")
    ]


@pytest.mark.parametrize(
    "record",
    [
        [],
        {"entityType": "Observation", "kind": "created"},  # no id
        {"entityType": "Observation", "kind": "made", "ids": [1]},
        {"entityType": "Observation", "kind": "created", "ids": [1, "2"]},
        {"entityType": "Observation", "kind": "created", "ids": 1},
        {"entityType": "Observation", "kind": "created", "ids": [True]},
        {"entityType": "Observation", "kind": "updated", "ids": [1], "changed": "result"},
    ],
)
def test_malformed_records_are_refused(record: object) -> None:
    with pytest.raises(ValueError, match="change event"):
        ChangeEvent.from_json(record, "a")
