"""The domain API (/api/v1) with a test domain: describing domains, areas, computing a
KPI from stored data through DomainData, refusing bad parameters, and layers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from citytwin.http import app as app_module
from citytwin.simulate.session import Options, Session
from tests.simulate.fake import DOMAIN, FakeSim
from tests.support import Client, make_client

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
HOUR = "2026-03-01T22:00:00Z/2026-03-02T00:00:00Z"


@pytest.fixture
def city(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """A platform with the test domain, fed two hours of the test simulator."""
    monkeypatch.setattr(app_module, "domains", lambda pm: [DOMAIN])
    client = make_client(tmp_path, db=db_url)
    session = Session(
        "http://testserver",
        Options(seed=3, history=timedelta(hours=2), domains=("fake",)),
        http=client.http,
        domains={"fake": DOMAIN},
        simulators={"fake": FakeSim},
    )
    client.call(session.prepare(now=START))
    try:
        yield client
    finally:
        client.close()


def test_domains_describe_templates_and_kpis(city: Client) -> None:
    (fake,) = city.get("/api/v1/domains").json()["value"]
    assert fake["name"] == "fake"
    assert fake["version"] == "1.2.0"
    assert fake["kpis"] == [
        {"key": "total", "title": "Total count", "unit": "1", "description": "Sum of all counts"}
    ]
    assert [k["key"] for k in fake["thingKinds"]] == ["counter", "cart"]
    assert fake["observedProperties"][1] == {
        "key": "level",
        "name": "Level",
        "definition": "https://example.org/level",
        "unit": "m",
    }


def test_areas_are_the_districts_and_neighbourhoods_of_the_things(city: Client) -> None:
    areas = city.get("/api/v1/areas").json()["value"]
    assert areas == [
        {"id": "city", "name": "City", "level": "city"},
        {"id": "district:Altstadt", "name": "Altstadt", "level": "district"},
        {
            "id": "neighbourhood:Altstadt-Nord",
            "name": "Altstadt-Nord",
            "level": "neighbourhood",
            "parent": "district:Altstadt",
        },
        {
            "id": "neighbourhood:Altstadt-Süd",
            "name": "Altstadt-Süd",
            "level": "neighbourhood",
            "parent": "district:Altstadt",
        },
    ]


def test_kpi_over_the_whole_city(city: Client) -> None:
    doc = city.get(f"/api/v1/kpis/fake/total?interval={HOUR}").json()
    # counter 0 counted 1..8, counter 1 counted 2, 4, .., 16 over the two hours
    assert doc["value"] == sum(range(1, 9)) + 2 * sum(range(1, 9))
    assert [i["value"] for i in doc["items"]] == [36, 72]
    # hourly sums from the database: the first hour holds steps 1-4, the second 5-8
    assert doc["series"] == [
        {"time": "2026-03-01T22:00:00Z", "value": 3 * (1 + 2 + 3 + 4)},
        {"time": "2026-03-01T23:00:00Z", "value": 3 * (5 + 6 + 7 + 8)},
    ]
    assert doc["area"] == "city"
    assert doc["interval"] == HOUR
    assert (doc["domain"], doc["kpi"], doc["unit"]) == ("fake", "total", "1")


def test_kpi_of_one_neighbourhood_counts_only_its_things(city: Client) -> None:
    doc = city.get(
        f"/api/v1/kpis/fake/total?area=neighbourhood:Altstadt-Nord&interval={HOUR}"
    ).json()
    assert doc["value"] == 72  # counter 1 stands in the second neighbourhood
    assert [i["name"] for i in doc["items"]] == ["Counter 1"]
    empty = city.get(f"/api/v1/kpis/fake/total?area=district:Hafen&interval={HOUR}").json()
    assert (empty["value"], empty["items"], empty["series"]) == (None, [], [])


def test_a_part_of_the_period_reads_only_its_observations(city: Client) -> None:
    doc = city.get(
        "/api/v1/kpis/fake/total?interval=2026-03-01T23:30:00Z/2026-03-02T00:00:00Z"
    ).json()
    assert doc["value"] == 3 * (7 + 8)


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("/api/v1/kpis/nothing/total", 404, "no domain named 'nothing'; installed: fake"),
        ("/api/v1/kpis/fake/nothing", 404, "domain fake has no KPI 'nothing'; it has total"),
        ("/api/v1/kpis/fake/total?area=street:x", 400, "area must be 'city'"),
        ("/api/v1/kpis/fake/total?area=district:", 400, "area must be 'city'"),
        ("/api/v1/kpis/fake/total?interval=yesterday", 400, "KPI interval:"),
        (
            f"/api/v1/kpis/fake/total?interval={HOUR.split('/')[1]}/{HOUR.split('/')[0]}",
            400,
            "ends before it starts",
        ),
        ("/api/v1/kpis/fake/total?bucket=P1M", 400, "fixed length"),
        ("/api/v1/kpis/fake/total?bucket=PT1S", 400, "at least one minute"),
        (
            "/api/v1/kpis/fake/total?interval=2020-01-01T00:00:00Z/P1Y&bucket=PT1M",
            400,
            "more than",
        ),
        ("/api/v1/kpis/fake/total?area=city&area=city", 400, "more than once"),
        ("/api/v1/layers/nothing", 404, "no layer named 'nothing'"),
        ("/api/v1/layers/..%2Fsecret", 404, "no "),  # never a path outside the layers
    ],
)
def test_bad_requests_name_the_problem(city: Client, query: str, status: int, message: str) -> None:
    resp = city.get(query)
    assert resp.status_code == status
    assert message in resp.json()["message"]


def test_layers_are_replaced_whole_and_checked(city: Client) -> None:
    layer = {"type": "FeatureCollection", "features": []}
    assert city.request("PUT", "/api/v1/layers/parks", json=layer).status_code == 201
    assert city.request("PUT", "/api/v1/layers/parks", json=layer).status_code == 204
    assert city.get("/api/v1/layers/parks").json() == layer
    bad = [
        ("Parks", layer, "a layer name"),
        ("parks", {"type": "Feature"}, "FeatureCollection"),
        ("parks", {"type": "FeatureCollection", "features": {}}, "must be an array"),
        ("parks", {"type": "FeatureCollection", "features": [{"type": "Point"}]}, "features[0]"),
        (
            "parks",
            {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": 1}]},
            "features[0].geometry",
        ),
    ]
    for name, body, message in bad:
        resp = city.request("PUT", f"/api/v1/layers/{name}", json=body)
        assert resp.status_code == 400, name
        assert message in resp.json()["message"]
    not_json = city.request("PUT", "/api/v1/layers/parks", content=b"{")
    assert not_json.status_code == 400
    assert city.get("/api/v1/layers/parks").json() == layer  # the refused ones changed nothing
