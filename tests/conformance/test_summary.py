"""The maintained Datastream summary answers exactly what a scan would.

"Latest value of every Datastream" and unfiltered Observation counts are read from a
summary kept current by every write. Each check asks the same question a second way that
the summary cannot answer (an extra ``id asc`` key, a filter that matches everything), so
the planner takes the general path, and compares.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.support import Client, datastream, location, thing

LATEST = "$expand=Observations($top=1;$orderby=phenomenonTime desc;$count=true)"
GENERAL = "$expand=Observations($top=1;$orderby=phenomenonTime desc,id asc;$count=true)"


def _latest(c: Client, expand: str) -> dict[int, tuple[Any, int, bool]]:
    out = {}
    for d in c.values(f"Datastreams?{expand}&$orderby=id"):
        obs = d["Observations"]
        out[d["@iot.id"]] = (
            obs[0]["@iot.id"] if obs else None,
            d["Observations@iot.count"],
            "Observations@iot.nextLink" in d,
        )
    return out


def check(c: Client) -> None:
    assert _latest(c, LATEST) == _latest(c, GENERAL)
    total = c.ok("GET", "Observations?$count=true&$top=0")["@iot.count"]
    general = c.ok("GET", "Observations?$count=true&$top=0&$filter=id ge 0")["@iot.count"]
    assert total == general
    for d in c.ids("Datastreams"):
        fast = c.ok("GET", f"Datastreams({d})/Observations?$count=true&$top=0")["@iot.count"]
        slow = c.ok("GET", f"Datastreams({d})/Observations?$count=true&$top=0&$filter=id ge 0")[
            "@iot.count"
        ]
        assert fast == slow
        ds = c.ok("GET", f"Datastreams({d})")
        times = [o["phenomenonTime"] for o in c.values(f"Datastreams({d})/Observations")]
        if not times:
            assert "phenomenonTime" not in ds
        else:
            starts = [t.split("/")[0] for t in times]
            ends = [t.split("/")[-1] for t in times]
            assert ds["phenomenonTime"] == f"{min(starts)}/{max(ends)}"


@pytest.fixture
def streams(client: Client) -> list[int]:
    tid = client.create(
        "Things",
        thing("T", locations=[location()], datastreams=[datastream(f"D{i}") for i in range(3)]),
    )
    return client.ids(f"Things({tid})/Datastreams")


def _time(h: int, m: int = 0) -> str:
    return f"2024-03-0{1 + h // 24}T{h % 24:02d}:{m:02d}:00Z"


def test_summary_follows_single_inserts_with_ties_and_intervals(
    client: Client, streams: list[int]
) -> None:
    d = streams[0]
    check(client)  # empty Datastreams: no latest, count 0
    client.create(f"Datastreams({d})/Observations", {"result": 1, "phenomenonTime": _time(5)})
    client.create(f"Datastreams({d})/Observations", {"result": 2, "phenomenonTime": _time(3)})
    check(client)
    # same start, later end: the interval is newer
    client.create(
        f"Datastreams({d})/Observations",
        {"result": 3, "phenomenonTime": f"{_time(5)}/{_time(6)}"},
    )
    check(client)
    # exact tie with the latest: the lower id stays latest
    client.create(
        f"Datastreams({d})/Observations",
        {"result": 4, "phenomenonTime": f"{_time(5)}/{_time(6)}"},
    )
    check(client)


def test_summary_follows_deep_inserted_batches(client: Client, streams: list[int]) -> None:
    rng = random.Random(7)
    observations = [
        {"result": i, "phenomenonTime": _time(rng.randrange(48), rng.randrange(60))}
        for i in range(300)
    ]
    tid = client.create(
        "Things",
        thing(
            "Batch",
            locations=[location()],
            datastreams=[datastream("Big", Observations=observations)],
        ),
    )
    [big] = client.ids(f"Things({tid})/Datastreams")
    assert (
        client.ok("GET", f"Datastreams({big})/Observations?$count=true&$top=0")["@iot.count"] == 300
    )
    check(client)


def test_summary_is_repaired_after_deletes_time_changes_and_moves(
    client: Client, streams: list[int]
) -> None:
    rng = random.Random(11)
    ids: list[int] = []
    for i in range(40):
        d = rng.choice(streams)
        ids.append(
            client.create(
                f"Datastreams({d})/Observations",
                {"result": i, "phenomenonTime": _time(rng.randrange(10), rng.choice([0, 30]))},
            )
        )
    check(client)
    for step in range(30):
        oid = rng.choice(ids)
        action = step % 3
        if action == 0:
            client.ok("DELETE", f"Observations({oid})")
            ids.remove(oid)
        elif action == 1:
            client.ok("PATCH", f"Observations({oid})", {"phenomenonTime": _time(rng.randrange(12))})
        else:
            client.ok(
                "PATCH", f"Observations({oid})", {"Datastream": {"@iot.id": rng.choice(streams)}}
            )
        check(client)
    # a deleted FeatureOfInterest takes Observations of several Datastreams with it
    foi = client.ok("GET", f"Observations({ids[0]})/FeatureOfInterest")["@iot.id"]
    client.ok("DELETE", f"FeaturesOfInterest({foi})")
    check(client)
    assert client.ok("GET", "Observations?$count=true&$top=0")["@iot.count"] == 0


def test_latest_expand_honours_select_and_nested_expand(client: Client, streams: list[int]) -> None:
    d = streams[1]
    client.create(f"Datastreams({d})/Observations", {"result": 7, "phenomenonTime": _time(1)})
    client.create(f"Datastreams({d})/Observations", {"result": 8, "phenomenonTime": _time(2)})
    body = client.ok(
        "GET",
        f"Datastreams({d})?$expand=Observations($top=1;$orderby=phenomenonTime desc;"
        "$select=result;$expand=FeatureOfInterest($select=name))",
    )
    assert body["Observations"] == [{"result": 8, "FeatureOfInterest": {"name": "Location"}}]
    assert body["Observations@iot.nextLink"].endswith("$top=1&$skip=1")
    rest = client.values(body["Observations@iot.nextLink"])
    assert [o["result"] for o in rest] == [7]


def test_filtered_count_is_exact_below_the_limit_and_estimated_above(
    tmp_path: Any, db_url: str, backend: str
) -> None:
    from tests.support import make_client

    c = make_client(tmp_path, db=db_url, count_exact_limit=10)
    try:
        tid = c.create("Things", thing("T", locations=[location()], datastreams=[datastream()]))
        [d] = c.ids(f"Things({tid})/Datastreams")
        c.create(
            f"Datastreams({d})/Observations", [{"result": i} for i in range(0)] or {"result": 0}
        )
        for i in range(1, 40):
            c.create(f"Datastreams({d})/Observations", {"result": i})
        few = c.ok("GET", "Observations?$count=true&$top=0&$filter=result lt 5")["@iot.count"]
        assert few == 5  # below the limit: exact
        many = c.ok("GET", "Observations?$count=true&$top=0&$filter=result ge 0")["@iot.count"]
        if backend == "sqlite":
            assert many == 40  # no estimates: always exact
        else:
            assert many >= 11  # above the limit: the estimate, never below what was counted
        unfiltered = c.ok("GET", "Observations?$count=true&$top=0")["@iot.count"]
        assert unfiltered == 40  # the summary is exact whatever the mode
    finally:
        c.close()
