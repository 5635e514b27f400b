"""Whatever a client sends to the tasking sets, the answer is never a server error:
half-valid SWE Common records for capabilities, and values of every kind for Tasks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.test_no_5xx import check
from tests.support import Client
from tests.tasking_support import heat_pump

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "x", "kW", "2026-01-01T00:00:00Z", "tomorrow", "[a-z]+", "(", "dim"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
TYPES = ["Quantity", "Count", "Boolean", "Category", "Text", "Time", "DataRecord", 3]
KEYS = ["type", "value", "interval", "pattern"]


def constraints() -> st.SearchStrategy[Any]:
    return st.one_of(
        values,
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["AllowedValues", "AllowedTokens", "AllowedTimes", 1]),
                "value": st.lists(scalars, max_size=3) | values,
                "interval": st.lists(st.lists(scalars, max_size=3), max_size=2) | values,
                "pattern": scalars,
            },
        ),
    )


fields = st.fixed_dictionaries(
    {"name": st.sampled_from(["p", "q", "", "1x", 5]), "type": st.sampled_from(TYPES)},
    optional={
        "uom": st.sampled_from([{"code": "kW"}, {"href": "http://x"}, {}, "kW"]),
        "constraint": constraints(),
        "optional": st.sampled_from([True, False, "yes"]),
    },
)
records = st.one_of(
    values,
    st.fixed_dictionaries(
        {"type": st.sampled_from(["DataRecord", "DataArray"])},
        optional={"field": st.lists(fields, max_size=3) | values, "fields": st.lists(fields)},
    ),
)


@pytest.fixture(scope="module")
def seeded(new_client: Callable[..., Client]) -> Iterator[Client]:
    c = new_client("fuzz-tasking")
    c.create("Things", heat_pump())
    yield c
    c.close()


@SETTINGS
@given(record=records, params=values)
def test_random_records_and_their_tasks(seeded: Client, record: Any, params: Any) -> None:
    body = {
        "name": "c",
        "description": "d",
        "taskingParameters": record,
        "Thing": {"@iot.id": 1},
        "Actuator": {"@iot.id": 1},
    }
    resp = seeded.post("TaskingCapabilities", body)
    check(resp)
    if resp.status_code == 201:
        cap = resp.json()["@iot.id"]
        check(seeded.post(f"TaskingCapabilities({cap})/Tasks", {"taskingParameters": params}))
        check(seeded.patch(f"TaskingCapabilities({cap})", {"taskingParameters": params}))


@SETTINGS
@given(
    params=values | st.dictionaries(st.sampled_from(["powerLimit", "duration", "mode"]), values),
    properties=values,
)
def test_random_tasks_and_capability_properties(
    seeded: Client, params: Any, properties: Any
) -> None:
    check(seeded.post("TaskingCapabilities(1)/Tasks", {"taskingParameters": params}))
    check(seeded.patch("TaskingCapabilities(1)", {"properties": {"driver": properties}}))
    check(seeded.patch("TaskingCapabilities(1)", {"properties": properties}))
