"""``Prefer: return=minimal`` (RFC 7240): writes answer 204 without the entity.

Sensors that post thousands of Observations do not read the entity back; OData, on
which SensorThings builds, answers such a POST with 204 and the new entity's address.
"""

from __future__ import annotations

import asyncio

import httpx

from tests.support import Client, datastream, location, thing

MINIMAL = {"Prefer": "return=minimal"}


def _stream(client: Client) -> int:
    tid = client.create("Things", thing("T", locations=[location()], datastreams=[datastream("D")]))
    return int(client.ok("GET", f"Things({tid})/Datastreams")["value"][0]["@iot.id"])


def test_a_minimal_post_answers_204_with_the_location_and_stores_the_entity(
    client: Client,
) -> None:
    resp = client.post("Things", {"name": "N", "description": "d"}, headers=MINIMAL)
    assert resp.status_code == 204
    assert resp.content == b""
    assert resp.headers["preference-applied"] == "return=minimal"
    stored = client.ok("GET", resp.headers["location"])
    assert stored["name"] == "N"


def test_minimal_observation_posts_sharing_a_transaction_answer_204_each(client: Client) -> None:
    ds = _stream(client)

    async def post_all() -> list[httpx.Response]:
        return await asyncio.gather(
            *(
                client.http.post(
                    f"/v1.1/Datastreams({ds})/Observations", json={"result": n}, headers=MINIMAL
                )
                for n in range(10)
            )
        )

    responses = client.call(post_all())
    assert {r.status_code for r in responses} == {204}
    locations = {r.headers["location"] for r in responses}
    assert len(locations) == 10
    results = sorted(client.ok("GET", loc)["result"] for loc in locations)
    assert results == list(range(10))


def test_a_minimal_patch_answers_204_and_changes_the_entity(client: Client) -> None:
    tid = client.create("Things", {"name": "N", "description": "d"})
    resp = client.patch(f"Things({tid})", {"name": "M"}, headers=MINIMAL)
    assert resp.status_code == 204
    assert resp.content == b""
    assert client.ok("GET", f"Things({tid})")["name"] == "M"


def test_without_the_preference_the_entity_comes_back(client: Client) -> None:
    resp = client.post("Things", {"name": "N", "description": "d"}, headers={"Prefer": "x=y"})
    assert resp.status_code == 201
    assert resp.json()["name"] == "N"


def test_a_refused_minimal_post_still_says_why(client: Client) -> None:
    resp = client.post("Things", {"description": "no name"}, headers=MINIMAL)
    assert resp.status_code == 400
    assert "name" in resp.json()["message"]
