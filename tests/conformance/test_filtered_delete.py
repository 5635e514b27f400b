"""``DELETE /Observations?$filter=...``: retention and clean-up, behind the setting
``filtered_delete``.

Every matching Observation goes in one transaction; the answer says how many; a $filter is
required; the maintained Datastream summaries (counts, phenomenonTime and resultTime
extents, the latest Observation) stay what a scan would give.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from citytwin.bus import ChangeEvent
from tests.conformance.batch_support import post_json, responses
from tests.conformance.cud_support import assert_error, snapshot
from tests.conformance.test_summary import check as check_summary
from tests.support import Client, datastream, location, make_client, thing


@pytest.fixture
def purging(db_url: str, tmp_path: Path) -> Iterator[Client]:
    """The application with filtered DELETE switched on."""
    c = make_client(tmp_path, db=db_url, filtered_delete=True)
    try:
        yield c
    finally:
        c.close()


def _seed(c: Client) -> tuple[int, int]:
    """Datastreams A and B, each with Observations of results 0..9 at hours 0..9; the
    even ones have a resultTime an hour later."""
    tid = c.create("Things", thing("T", locations=[location()], datastreams=[datastream("A")]))
    a = c.ids(f"Things({tid})/Datastreams")[0]
    b = c.create(f"Things({tid})/Datastreams", datastream("B"))
    for ds in (a, b):
        for n in range(10):
            body = {"result": n, "phenomenonTime": f"2024-03-01T{n:02d}:00:00Z"}
            if n % 2 == 0:
                body["resultTime"] = f"2024-03-01T{n + 1:02d}:00:00Z"
            c.create(f"Datastreams({ds})/Observations", body)
    return a, b


def _results(c: Client, ds: int) -> list[int]:
    return sorted(o["result"] for o in c.values(f"Datastreams({ds})/Observations"))


def _check(c: Client) -> None:
    """The summaries answer as a scan would, resultTime included."""
    check_summary(c)
    for ds in c.ids("Datastreams"):
        times = [
            o["resultTime"]
            for o in c.values(f"Datastreams({ds})/Observations")
            if o["resultTime"] is not None
        ]
        entity = c.ok("GET", f"Datastreams({ds})")
        if times:
            assert entity["resultTime"] == f"{min(times)}/{max(times)}"
        else:
            assert entity.get("resultTime") is None


def test_switched_off_by_default_and_says_which_setting_allows_it(client: Client) -> None:
    a, _ = _seed(client)
    before = snapshot(client)
    resp = client.delete("Observations?$filter=result lt 5")
    assert_error(resp, 405, "filtered_delete")
    assert "DELETE" not in resp.headers["allow"]
    assert_error(
        client.delete(f"Datastreams({a})/Observations?$filter=true"), 405, "filtered_delete"
    )
    assert snapshot(client) == before


def test_deletes_every_match_and_says_how_many(purging: Client) -> None:
    a, b = _seed(purging)
    resp = purging.delete("Observations?$filter=result lt 3")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"deleted": 6}
    assert _results(purging, a) == _results(purging, b) == list(range(3, 10))
    assert purging.ok("DELETE", "Observations?$filter=result lt 3") == {"deleted": 0}
    _check(purging)


def test_under_a_datastream_only_its_observations_go(purging: Client) -> None:
    a, b = _seed(purging)
    other = purging.values(f"Datastreams({b})/Observations")
    assert purging.ok("DELETE", f"Datastreams({a})/Observations?$filter=result ge 5") == {
        "deleted": 5
    }
    assert _results(purging, a) == [0, 1, 2, 3, 4]
    assert purging.values(f"Datastreams({b})/Observations") == other
    _check(purging)


def test_filters_through_relations_and_by_time(purging: Client) -> None:
    a, b = _seed(purging)
    resp = purging.delete(
        "Observations?$filter=Datastream/name eq 'B' and phenomenonTime lt 2024-03-01T04:00:00Z"
    )
    assert resp.json() == {"deleted": 4}
    assert _results(purging, b) == list(range(4, 10))
    assert _results(purging, a) == list(range(10))
    _check(purging)


def test_summaries_follow_when_the_latest_and_the_extents_go(purging: Client) -> None:
    a, b = _seed(purging)
    _check(purging)
    # the latest Observations and the widest resultTime of A
    purging.ok("DELETE", f"Datastreams({a})/Observations?$filter=result ge 7 or result eq 0")
    latest = purging.ok(
        "GET", f"Datastreams({a})?$expand=Observations($top=1;$orderby=phenomenonTime desc)"
    )
    assert latest["Observations"][0]["result"] == 6
    assert latest["phenomenonTime"] == "2024-03-01T01:00:00Z/2024-03-01T06:00:00Z"
    assert latest["resultTime"] == "2024-03-01T03:00:00Z/2024-03-01T07:00:00Z"
    _check(purging)
    # all of B
    assert purging.ok("DELETE", f"Datastreams({b})/Observations?$filter=true") == {"deleted": 10}
    empty = purging.ok("GET", f"Datastreams({b})/Observations?$count=true&$top=0")
    assert empty["@iot.count"] == 0
    assert "phenomenonTime" not in purging.ok("GET", f"Datastreams({b})")
    _check(purging)


def test_needs_a_filter_and_takes_nothing_else(purging: Client) -> None:
    a, _ = _seed(purging)
    before = snapshot(purging)
    assert_error(purging.delete("Observations"), 400, "$filter")
    assert_error(purging.delete(f"Datastreams({a})/Observations"), 400, "$filter")
    assert_error(purging.delete("Observations?$filter=result gt 1&$top=2"), 400, "$top")
    assert_error(purging.delete("Observations?$filter=result gt"), 400, "$filter")
    assert_error(purging.delete("Observations?$filter=nosuch eq 1"), 400)
    assert snapshot(purging) == before


def test_other_collections_and_missing_parents_are_refused(purging: Client) -> None:
    _seed(purging)
    before = snapshot(purging)
    assert_error(purging.delete("Things?$filter=name eq 'T'"), 405, "Observations")
    assert_error(purging.delete("Datastreams?$filter=true"), 405, "Observations")
    assert_error(purging.delete("Datastreams(999)/Observations?$filter=true"), 404)
    assert_error(purging.delete("Observations/$ref?$filter=true"), 405)
    assert snapshot(purging) == before


def test_announces_each_deleted_observation(purging: Client) -> None:
    a, _ = _seed(purging)
    gone = set(purging.ids(f"Datastreams({a})/Observations?$filter=result lt 4"))
    seen: list[ChangeEvent] = []
    unsubscribe = purging.app.state.service.bus.subscribe(seen.append)
    try:
        purging.ok("DELETE", "/v1.0/Observations?$filter=Datastream/name eq 'A' and result lt 4")
    finally:
        unsubscribe()
    assert {(e.entity_type, e.kind) for e in seen} == {("Observation", "deleted")}
    assert {e.entity_id for e in seen} == gone


def test_inside_a_batch_change_set_it_is_undone_with_the_rest(purging: Client) -> None:
    a, _ = _seed(purging)
    before = snapshot(purging)
    out = responses(
        post_json(
            purging,
            [
                {
                    "id": "purge",
                    "atomicityGroup": "g",
                    "method": "delete",
                    "url": f"Datastreams({a})/Observations?$filter=result lt 5",
                },
                {
                    "id": "bad",
                    "atomicityGroup": "g",
                    "method": "post",
                    "url": "Things",
                    "body": {"name": "no description"},
                },
            ],
        )
    )
    assert out["bad"]["status"] == 400
    assert out["purge"]["status"] == 424
    assert snapshot(purging) == before
    out = responses(
        post_json(
            purging,
            [
                {
                    "id": "purge",
                    "atomicityGroup": "g",
                    "method": "delete",
                    "url": f"Datastreams({a})/Observations?$filter=result lt 5",
                },
                {
                    "id": "count",
                    "dependsOn": ["g"],
                    "method": "get",
                    "url": f"Datastreams({a})/Observations?$count=true&$top=0",
                },
            ],
        )
    )
    assert out["purge"] == {
        "id": "purge",
        "status": 200,
        "atomicityGroup": "g",
        "body": {"deleted": 5},
    }
    assert out["count"]["body"]["@iot.count"] == 5
    _check(purging)
