"""The environment KPIs through /api/v1 on a small hand-made data set (SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from citytwin.domains.environment import DOMAIN
from tests.domains.domain_data import add_observations, add_thing, kpi, kpi_error
from tests.support import Client

HOURS = "2026-07-01T09:30:00Z/2026-07-01T12:00:00Z"
DAYS = "2026-07-01T22:00:00Z/2026-07-03T22:00:00Z"  # 2 and 3 July, local time (CEST)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def client(new_client: Callable[..., Client]) -> Client:
    c = new_client("environment")
    markt = add_thing(
        c, DOMAIN, "air_quality_station", "AQ Markt", "Altstadt", "Altstadt-Nord",
        station_type="traffic",
    )  # fmt: skip
    # 09:45 is in the interval but before its first whole hour, so it is left out
    add_observations(c, markt["pm10"], [(at("2026-07-01T09:45"), 500.0)])
    add_observations(
        c, markt["pm10"],
        [(at("2026-07-01T10:00"), 20.0), (at("2026-07-01T10:30"), 36.0),
         (at("2026-07-01T11:00"), 27.0)],
    )  # fmt: skip
    add_observations(
        c, markt["no2"], [(at("2026-07-01T10:15"), 50.0), (at("2026-07-01T11:00"), 61.0)]
    )
    add_observations(c, markt["pm25"], [(at("2026-07-01T10:00"), 10.0)])
    hafen = add_thing(c, DOMAIN, "air_quality_station", "AQ Hafen", "Hafen", "Hafen-Süd")
    add_observations(c, hafen["o3"], [(at("2026-07-01T11:00"), 150.0)])
    add_observations(c, hafen["pm10"], [(at("2026-07-01T11:20"), 95.0)])
    w1 = add_thing(c, DOMAIN, "weather_station", "Weather Altstadt", "Altstadt", "Altstadt-Süd")
    add_observations(
        c, w1["air_temperature"],
        [(at("2026-07-02T04:00"), 20.0), (at("2026-07-02T13:00"), 31.0),
         (at("2026-07-02T21:45"), 22.0), (at("2026-07-02T22:30"), 19.0),
         (at("2026-07-03T12:00"), 26.0)],
    )  # fmt: skip
    w2 = add_thing(c, DOMAIN, "weather_station", "Weather Hafen", "Hafen", "Hafen-Nord")
    add_observations(
        c, w2["air_temperature"], [(at("2026-07-03T12:00"), 30.5), (at("2026-07-03T20:00"), 21.0)]
    )
    return c


def test_air_quality(client: Client) -> None:
    doc = kpi(client, "environment/air_quality", interval=HOURS)
    items = {i["name"]: i for i in doc["items"]}
    markt = items["AQ Markt"]
    # 10:00: PM10 mean (20 + 36) / 2 = 28 -> 3, NO2 50 -> 3, PM2.5 10 -> 2: class 3, a tie
    # of PM10 and NO2; 11:00: PM10 27 -> 2, NO2 61 -> 4: class 4 by NO2
    assert markt["series"] == [
        {"time": "2026-07-01T10:00:00Z", "value": 3},
        {"time": "2026-07-01T11:00:00Z", "value": 4},
    ]
    assert (markt["hour"], markt["value"], markt["label"], markt["pollutant"]) == (
        "2026-07-01T11:00:00Z", 4, "poor", "NO2"
    )  # fmt: skip
    assert markt["concentrations"] == {"pm10": 27.0, "no2": 61.0}
    hafen = items["AQ Hafen"]
    # 11:00: O3 150 -> 4, PM10 95 -> 5: class 5 "very poor" by PM10
    assert (hafen["value"], hafen["label"], hafen["pollutant"]) == (5, "very poor", "PM10")
    assert hafen["classes"] == {"PM10": 5, "O3": 4}
    assert doc["value"] == 5  # the worst in the latest hour, 11:00
    assert doc["values"]["hour"] == "2026-07-01T11:00:00Z"
    assert [(s["time"], s["value"], s["station"]) for s in doc["series"]] == [
        ("2026-07-01T10:00:00Z", 3, "AQ Markt"),
        ("2026-07-01T11:00:00Z", 5, "AQ Hafen"),
    ]
    assert doc["series"][0]["pollutants"] == ["PM10", "NO2"]


def test_air_quality_by_area(client: Client) -> None:
    doc = kpi(client, "environment/air_quality", interval=HOURS, area="district:Altstadt")
    assert doc["value"] == 4
    assert [i["name"] for i in doc["items"]] == ["AQ Markt"]
    empty = kpi(client, "environment/air_quality", interval=HOURS, area="district:Neustadt")
    assert (empty["value"], empty["items"], empty["series"]) == (None, [], [])


def test_heat_days(client: Client) -> None:
    doc = kpi(client, "environment/heat_days", interval=DAYS)
    items = {i["name"]: i for i in doc["items"]}
    # Altstadt, local days: 2 July max 31, min exactly 20.0 (22:30 UTC is already 3 July)
    # -> summer, hot, tropical; 3 July max 26, min 19 -> summer day only
    altstadt = items["Weather Altstadt"]
    counts = (altstadt["summer_days"], altstadt["hot_days"], altstadt["tropical_nights"])
    assert counts == (2, 1, 1)
    # Hafen, 3 July: max 30.5, min 21 -> all three
    assert items["Weather Hafen"]["hot_days"] == 1
    assert items["Weather Hafen"]["tropical_nights"] == 1
    # the area counts a day if some station reached the threshold: 2 July all three
    # (Altstadt); 3 July all three (Hafen 30.5 and 21)
    assert doc["values"]["summer_days"] == 2
    assert doc["values"]["hot_days"] == 2
    assert doc["values"]["tropical_nights"] == 2
    assert doc["value"] == 2
    assert [s["time"] for s in doc["series"]] == ["2026-07-01T22:00:00Z", "2026-07-02T22:00:00Z"]


def test_heat_days_in_another_time_zone(client: Client) -> None:
    # in UTC, 2 July of Altstadt has 19.0 (22:30) as its minimum: no tropical night; 3 July
    # Altstadt 26/26 and Hafen 30.5/21 -> summer, hot, tropical
    doc = kpi(client, "environment/heat_days", interval=DAYS, tz="UTC")
    assert (doc["values"]["summer_days"], doc["values"]["hot_days"]) == (2, 2)
    assert doc["values"]["tropical_nights"] == 1
    hafen = kpi(client, "environment/heat_days", interval=DAYS, area="neighbourhood:Hafen-Nord")
    assert [i["name"] for i in hafen["items"]] == ["Weather Hafen"]
    assert hafen["value"] == 1
    empty = kpi(
        client, "environment/heat_days", interval="2026-01-01T00:00:00Z/2026-01-02T00:00:00Z"
    )
    assert empty["value"] is None
    assert empty["values"]["hot_days"] is None
    assert empty["items"] == []


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("environment/air_quality", {"area": "district:"}, "area must be"),
        ("environment/air_quality", {"tz": "UTC"}, "no option 'tz'"),
        ("environment/heat_days", {"tz": "Nowhere/Else"}, "option tz"),
        (
            "environment/heat_days",
            {"interval": "2026-07-02T00:00:00Z/2026-07-01T00:00:00Z"},
            "KPI interval",
        ),
        ("environment/heat_days", {"bucket": "P1M"}, "KPI bucket"),
    ],
)
def test_bad_parameters(client: Client, path: str, params: dict[str, str], message: str) -> None:
    assert message in kpi_error(client, path, **params)
