"""``Datastreams(id)/Observations/$aggregate``: time buckets computed by the database,
checked against the same figures computed here from the same Observations."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support import Client, datastream, location, thing

START = datetime(2024, 3, 30, 22, 0, tzinfo=UTC)
# (minutes after START, result): three hours with data, one empty hour, ties in time,
# integers, and results that are not numbers
OBSERVATIONS: list[tuple[int, Any]] = [
    (0, 10.5),
    (5, 12),
    (5, 11.25),
    (59, -3.5),
    (60, 7),
    (75, "broken"),
    (100, True),
    (119, 8.0),
    (180, {"v": 1}),
    (181, 100.125),
    (240, 55.0),  # outside the interval asked for below
]
ALL = ("avg", "min", "max", "sum", "count", "first", "last")


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def store(new_client: Callable[..., Client]) -> dict[str, Any]:
    c = new_client(aggregate_max_buckets=1000)
    tid = c.create(
        "Things",
        thing(
            "Meter",
            locations=[location("Cellar")],
            datastreams=[datastream("Power"), datastream("Other")],
        ),
    )
    ds, other = c.ids(f"Things({tid})/Datastreams?$orderby=name desc")
    for minutes, result in OBSERVATIONS:
        t = _iso(START + timedelta(minutes=minutes))
        c.create(f"Datastreams({ds})/Observations", {"phenomenonTime": t, "result": result})
    c.create(f"Datastreams({other})/Observations", {"phenomenonTime": _iso(START), "result": 1e6})
    return {"client": c, "ds": ds}


def expected(start: datetime, end: datetime, size: timedelta) -> list[dict[str, Any]]:
    """The buckets computed in Python: numeric results only, first/last by time."""
    buckets: dict[int, list[float]] = {}
    for minutes, result in OBSERVATIONS:  # listed in time order, ties as created
        t = START + timedelta(minutes=minutes)
        numeric = isinstance(result, int | float) and not isinstance(result, bool)
        if numeric and start <= t < end:
            buckets.setdefault((t - start) // size, []).append(float(result))
    out = []
    for k in sorted(buckets):
        values = buckets[k]
        b_start = start + k * size
        b_end = min(b_start + size, end)
        out.append(
            {
                "phenomenonTime": f"{_iso(b_start)}/{_iso(b_end)}",
                "avg": statistics.fmean(values),
                "min": min(values),
                "max": max(values),
                "sum": sum(values),
                "count": len(values),
                "first": values[0],
                "last": values[-1],
            }
        )
    return out


def agg(c: Client, ds: int, **params: str) -> Any:
    return c.get(f"Datastreams({ds})/Observations/$aggregate", params=params)


def test_hourly_buckets_match_python(store: dict[str, Any]) -> None:
    c, ds = store["client"], store["ds"]
    end = START + timedelta(hours=4)
    resp = agg(c, ds, interval=f"{_iso(START)}/{_iso(end)}", bucket="PT1H", functions=",".join(ALL))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["bucket"] == "PT1H"
    assert body["functions"] == list(ALL)
    assert body["interval"] == f"{_iso(START)}/{_iso(end)}"
    want = expected(START, end, timedelta(hours=1))
    assert [b["phenomenonTime"] for b in body["value"]] == [w["phenomenonTime"] for w in want]
    assert len(want) == 3  # the hour without numbers has no bucket
    for got, w in zip(body["value"], want, strict=True):
        for name in ALL:
            assert got[name] == pytest.approx(w[name]), (got["phenomenonTime"], name)


def test_default_function_is_avg_and_bucket_edges_follow_the_interval_start(
    store: dict[str, Any],
) -> None:
    c, ds = store["client"], store["ds"]
    start = START + timedelta(minutes=30)
    end = start + timedelta(minutes=155)
    body = agg(c, ds, interval=f"{_iso(start)}/{_iso(end)}", bucket="PT45M").json()
    want = expected(start, end, timedelta(minutes=45))
    assert body["functions"] == ["avg"]
    assert [set(b) for b in body["value"]] == [{"phenomenonTime", "avg"}] * len(want)
    assert [(b["phenomenonTime"], pytest.approx(b["avg"])) for b in body["value"]] == [
        (w["phenomenonTime"], w["avg"]) for w in want
    ]
    assert body["value"][-1]["phenomenonTime"].endswith(_iso(end))  # clipped to the end


def test_day_buckets_with_a_duration_interval_and_an_offset_start(store: dict[str, Any]) -> None:
    c, ds = store["client"], store["ds"]
    # local midnight in UTC+02:00 is 22:00 UTC: one day bucket holds everything
    body = agg(
        c, ds, interval="2024-03-31T00:00:00+02:00/P1D", bucket="P1D", functions="count,sum"
    ).json()
    want = expected(START, START + timedelta(days=1), timedelta(days=1))
    assert body["value"] == [
        {
            "phenomenonTime": want[0]["phenomenonTime"],
            "count": 8,
            "sum": pytest.approx(want[0]["sum"]),
        }
    ]


def test_an_interval_without_observations_has_no_buckets(store: dict[str, Any]) -> None:
    c, ds = store["client"], store["ds"]
    body = agg(c, ds, interval="2020-01-01T00:00:00Z/2020-01-02T00:00:00Z", bucket="PT1H").json()
    assert body["value"] == []


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"bucket": "PT1H"}, "needs the parameter interval"),
        ({"interval": "2024-01-01T00:00:00Z/P1D"}, "needs the parameter bucket"),
        ({"interval": "2024-01-01T00:00:00Z/P1D", "bucket": "1 hour"}, "ISO 8601 duration"),
        ({"interval": "2024-01-01T00:00:00Z/P1D", "bucket": "PT0S"}, "longer than zero"),
        ({"interval": "2024-01-01T00:00:00Z/P1D", "bucket": "-PT1H"}, "longer than zero"),
        ({"interval": "2024-01-01T00:00:00Z/P1Y", "bucket": "P1M"}, "months"),
        ({"interval": "2024-01-01T00:00:00Z/P1Y", "bucket": "PT1M"}, "at most 1,000"),
        ({"interval": "yesterday", "bucket": "PT1H"}, "interval"),
        ({"interval": "2024-01-01T00:00:00Z", "bucket": "PT1H"}, "interval"),
        ({"interval": "2024-01-02T00:00:00Z/2024-01-01T00:00:00Z", "bucket": "PT1H"}, "ends"),
        (
            {"interval": "2024-01-01T00:00:00Z/P1D", "bucket": "PT1H", "functions": "avg,median"},
            "'median'",
        ),
        (
            {"interval": "2024-01-01T00:00:00Z/P1D", "bucket": "PT1H", "functions": "avg,avg"},
            "more than once",
        ),
        ({"interval": "2024-01-01T00:00:00Z/P1D", "bucket": "PT1H", "$top": "3"}, "$top"),
    ],
)
def test_bad_requests_name_the_problem(
    store: dict[str, Any], params: dict[str, str], fragment: str
) -> None:
    resp = agg(store["client"], store["ds"], **params)
    assert resp.status_code == 400, resp.text
    assert fragment in resp.json()["message"]


@pytest.mark.parametrize(
    "path",
    ["Observations/$aggregate", "Things(1)/Datastreams/$aggregate", "Datastreams/$aggregate"],
)
def test_only_a_datastreams_observations_aggregate(store: dict[str, Any], path: str) -> None:
    resp = store["client"].get(
        path, params={"interval": "2024-01-01T00:00:00Z/P1D", "bucket": "PT1H"}
    )
    assert resp.status_code in (400, 404), resp.text
    assert resp.status_code == 404 or "one Datastream" in resp.json()["message"]


def test_a_missing_datastream_is_not_found(store: dict[str, Any]) -> None:
    resp = agg(store["client"], 999_999, interval="2024-01-01T00:00:00Z/P1D", bucket="PT1H")
    assert resp.status_code == 404
    assert "999999" in resp.json()["message"]


def test_aggregates_are_read_only(store: dict[str, Any]) -> None:
    resp = store["client"].post(f"Datastreams({store['ds']})/Observations/$aggregate", json={})
    assert resp.status_code == 405
