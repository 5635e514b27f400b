"""Whatever a batch holds, neither the batch nor any request in it is answered 5xx.

Hypothesis builds JSON batches from half-valid requests (unknown methods, references to
nothing, atomicity groups out of order, random bodies) and multipart batches that are
cut, spliced and mixed with random bytes; they run against a seeded store of each backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conformance.batch_support import (
    ChangeSetAnswer,
    change_set,
    multipart,
    read_multipart,
    request_part,
)
from tests.fuzz.test_no_5xx import SETTINGS, check, json_values
from tests.support import Client, datastream, location, thing


@pytest.fixture(scope="module")
def seeded(new_client: Callable[..., Client]) -> Iterator[Client]:
    c = new_client("batchfuzz", filtered_delete=True, max_batch_requests=20)
    c.create("Things", thing("T", locations=[location()], datastreams=[datastream("A")]))
    yield c
    c.close()


IDS = ["1", "2", "a", "g", "$1"]
URLS = [
    "Things",
    "Things(1)",
    "Datastreams(1)/Observations",
    "Observations?$filter=result gt 100",
    "$1",
    "$1/Datastreams",
    "$a/Observations",
    "$g",
    "$batch",
    "/v1.1/Things",
    "/v1.0/Things(1)?$select=name",
    "/v2/Things",
    "http://elsewhere/v1.1/Sensors",
    "",
    "%zz",
    "Things('x')",
    "Nowhere(1)",
]
json_requests = st.fixed_dictionaries(
    {
        "id": st.sampled_from([*IDS, 7]),
        "method": st.sampled_from(["get", "POST", "patch", "put", "delete", "head", 5]),
        "url": st.sampled_from(URLS) | st.text(max_size=8),
    },
    optional={
        "body": json_values,
        "atomicityGroup": st.sampled_from(["g", "h", "1"]),
        "dependsOn": st.lists(st.sampled_from([*IDS, "h"]), max_size=2),
        "headers": st.dictionaries(
            st.sampled_from(["content-type", "prefer"]),
            st.sampled_from(["application/json", "text/plain", "return=minimal", "x"]),
        ),
    },
)


def _check_answers(resp: Any) -> None:
    check(resp)
    if resp.status_code != 200:
        return
    if resp.headers["content-type"].startswith("application/json"):
        statuses = [r["status"] for r in resp.json()["responses"]]
    else:
        statuses = []
        for answer in read_multipart(resp):
            inner = answer.answers if isinstance(answer, ChangeSetAnswer) else [answer]
            statuses += [a.status for a in inner]
    assert all(s < 500 for s in statuses), resp.text


@SETTINGS
@given(
    requests=st.lists(json_requests, max_size=6),
    prefer=st.sampled_from(["", "odata.continue-on-error=false"]),
)
def test_random_json_batches(seeded: Client, requests: list[dict[str, Any]], prefer: str) -> None:
    headers = {"prefer": prefer} if prefer else {}
    _check_answers(
        seeded.request("POST", "/v1.1/$batch", json={"requests": requests}, headers=headers)
    )


@SETTINGS
@given(body=json_values)
def test_random_json_documents(seeded: Client, body: Any) -> None:
    _check_answers(seeded.request("POST", "/v1.1/$batch", json=body))


simple_parts = st.builds(
    lambda method, url, body, cid: request_part(method, url, body, content_id=cid),
    st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS"]),
    st.sampled_from(URLS),
    st.none() | json_values,
    st.none() | st.sampled_from(IDS),
)
parts = st.one_of(
    simple_parts,
    st.builds(change_set, st.lists(simple_parts, max_size=3)),
    st.text(max_size=20),
)


@SETTINGS
@given(
    items=st.lists(parts, max_size=5),
    cut=st.none() | st.integers(0, 2000),
    noise=st.binary(max_size=8),
    boundary=st.sampled_from(["batch_1", "b", "x y", ""]),
)
def test_random_multipart_batches(
    seeded: Client, items: list[str], cut: int | None, noise: bytes, boundary: str
) -> None:
    body = multipart(items, boundary or "batch_1")
    if cut is not None:
        body = body[:cut] + noise + body[cut:]
    headers = {"content-type": f'multipart/mixed; boundary="{boundary}"'}
    _check_answers(seeded.request("POST", "/v1.1/$batch", content=body, headers=headers))
