"""Observations POSTed at the same time share a transaction, and are answered alone.

Sixteen sensors posting at once should not cost sixteen commits; but each POST must
still get its own answer, exactly as if it had come alone, and one bad POST among them
must not take the others with it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.support import Client, count_writes, datastream, location, thing


@pytest.fixture
def streams(client: Client) -> list[int]:
    tid = client.create(
        "Things",
        thing("T", locations=[location()], datastreams=[datastream(f"D{i}") for i in range(3)]),
    )
    return [d["@iot.id"] for d in client.values(f"Things({tid})/Datastreams?$orderby=id")]


def _together(client: Client, posts: list[tuple[str, Any]]) -> list[httpx.Response]:
    async def all_at_once() -> list[httpx.Response]:
        return await asyncio.gather(*(client.http.post(f"/v1.1/{u}", json=b) for u, b in posts))

    return client.call(all_at_once())


def _obs(n: int, **more: Any) -> dict[str, Any]:
    return {"result": n, "phenomenonTime": f"2026-01-01T00:00:{n:02d}Z", **more}


def test_concurrent_posts_share_transactions_and_each_gets_its_own_answer(
    client: Client, streams: list[int]
) -> None:
    opened = count_writes(client)
    posts = [(f"Datastreams({streams[n % 3]})/Observations", _obs(n)) for n in range(30)]
    responses = _together(client, posts)
    assert [r.status_code for r in responses] == [201] * 30
    assert opened[0] < 30  # some shared a commit
    for n, resp in enumerate(responses):
        body = resp.json()
        assert body["result"] == n
        assert resp.headers["location"] == body["@iot.selfLink"]
        # the answer is what a GET returns
        assert client.ok("GET", body["@iot.selfLink"]) == body
        ds = client.ok("GET", f"Observations({body['@iot.id']})/Datastream")
        assert ds["@iot.id"] == streams[n % 3]
    ids = [r.json()["@iot.id"] for r in responses]
    assert len(set(ids)) == 30


def test_one_bad_post_does_not_cost_the_others_their_write(
    client: Client, streams: list[int]
) -> None:
    posts: list[tuple[str, Any]] = [
        (f"Datastreams({streams[0]})/Observations", _obs(n)) for n in range(10)
    ]
    posts[3] = ("Datastreams(999999)/Observations", _obs(3))  # no such Datastream
    posts[5] = ("Observations", _obs(5, Datastream={"@iot.id": 999999}))  # ... named in the body
    posts[7] = (f"Datastreams({streams[0]})/Observations", {"result": 7, "phenomenonTime": "x"})
    responses = _together(client, posts)
    assert [r.status_code for r in responses] == [
        201,
        201,
        201,
        404,
        201,
        400,
        201,
        400,
        201,
        201,
    ]
    assert "999999" in responses[5].json()["message"]
    assert "phenomenonTime" in responses[7].json()["message"]
    stored = client.values(f"Datastreams({streams[0]})/Observations?$orderby=result")
    assert [o["result"] for o in stored] == [0, 1, 2, 4, 6, 8, 9]
    # the summary counted each stored Observation once
    ds = client.ok("GET", f"Datastreams({streams[0]})/Observations?$count=true&$top=0")
    assert ds["@iot.count"] == 7


def test_a_shared_write_keeps_the_summary_of_every_datastream(
    client: Client, streams: list[int]
) -> None:
    posts = [(f"Datastreams({streams[n % 3]})/Observations", _obs(n)) for n in range(24)]
    posts += [("Observations", _obs(40 + n, Datastream={"@iot.id": streams[n]})) for n in range(3)]
    assert {r.status_code for r in _together(client, posts)} == {201}
    expand = "$expand=Observations($top=1;$orderby=phenomenonTime desc;$count=true)"
    for d in client.values(f"Datastreams?{expand}"):
        index = streams.index(d["@iot.id"])
        assert d["Observations@iot.count"] == 9
        assert d["Observations"][0]["result"] == 40 + index
        assert d["phenomenonTime"] == (
            f"2026-01-01T00:00:{index:02d}Z/2026-01-01T00:00:{40 + index:02d}Z"
        )


def test_concurrent_observations_share_their_generated_feature(
    client: Client, streams: list[int]
) -> None:
    posts = [(f"Datastreams({streams[n % 3]})/Observations", _obs(n)) for n in range(12)]
    assert {r.status_code for r in _together(client, posts)} == {201}
    features = {
        client.ok("GET", f"Observations({o['@iot.id']})/FeatureOfInterest")["@iot.id"]
        for o in client.values("Observations")
    }
    # all three Datastreams belong to one Thing at one Location: one generated feature
    assert len(features) == 1
    assert len(client.values("FeaturesOfInterest")) == 1


def test_posts_that_cannot_share_are_stored_alone(client: Client, streams: list[int]) -> None:
    select = f"Datastreams({streams[0]})/Observations?$select=result"
    posts: list[tuple[str, Any]] = [(select, _obs(n)) for n in range(4)]
    posts += [(f"Datastreams({streams[1]})/Observations", _obs(n)) for n in range(4, 8)]
    responses = _together(client, posts)
    assert [r.status_code for r in responses] == [201] * 8
    assert [set(r.json()) for r in responses[:4]] == [{"result"}] * 4
    assert all("@iot.selfLink" in r.json() for r in responses[4:])
