"""The water KPIs through /api/v1 on a small hand-made data set (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from citytwin.domains.water import DOMAIN
from tests.domains.domain_data import add_observations, add_thing, kpi, kpi_error
from tests.support import Client

BERLIN = ZoneInfo("Europe/Berlin")
Q = timedelta(minutes=15)
NIGHTS = "2026-01-04T23:00:00Z/2026-01-09T11:00:00Z"  # 5 Jan 00:00 to 9 Jan 12:00 CET
JUNE = "2026-06-01T00:00:00Z/2026-06-11T00:00:00Z"  # ten days


def _flows(leak_from: datetime | None) -> list[tuple[datetime, float]]:
    """4 m3/h from 00:00 to 06:00 local, 12 m3/h otherwise; +3 m3/h from ``leak_from``."""
    first = datetime(2026, 1, 5, tzinfo=BERLIN).astimezone(UTC)
    rows = []
    for i in range(4 * 96 + 48):
        t = first + i * Q
        flow = 4.0 if t.astimezone(BERLIN).hour < 6 else 12.0
        rows.append((t, flow + (3.0 if leak_from and t >= leak_from else 0.0)))
    return rows


@pytest.fixture(scope="module")
def client(new_client: Callable[..., Client]) -> Client:
    c = new_client("water")
    a = add_thing(c, DOMAIN, "dma", "DMA A", "Altstadt", "Altstadt-Nord", dma="A")
    add_observations(c, a["flow"], _flows(None))
    add_observations(c, a["pressure"], [(datetime(2026, 1, 5, tzinfo=UTC), 5.1)])
    b = add_thing(c, DOMAIN, "dma", "DMA B", "Hafen", "Hafen-Süd", dma="B")
    add_observations(c, b["flow"], _flows(datetime(2026, 1, 8, 4, tzinfo=BERLIN)))
    cso1 = add_thing(
        c, DOMAIN, "cso", "CSO 1", "Hafen", "Hafen-Nord", crest_m=1.0, weir_width_m=2.0
    )
    t0 = datetime(2026, 6, 1, 10, tzinfo=UTC)
    levels = [0.8, 1.2, 1.09, 1.0, 0.9]
    add_observations(c, cso1["level"], [(t0 + i * Q, v) for i, v in enumerate(levels)])
    cso2 = add_thing(
        c, DOMAIN, "cso", "CSO 2", "Altstadt", "Altstadt-Süd",
        crest_m=2.0, weir_width_m=1.0, discharge_coefficient=0.5,
    )  # fmt: skip
    t2 = datetime(2026, 6, 2, 21, 45, tzinfo=UTC)
    add_observations(c, cso2["level"], [(t2, 2.0), (t2 + Q, 2.25), (t2 + 2 * Q, 2.0)])
    cso3 = add_thing(c, DOMAIN, "cso", "CSO 3", "Gartenstadt", "Gartenstadt-Nord")
    add_observations(c, cso3["level"], [(t0, 3.0)])
    tank1 = add_thing(c, DOMAIN, "tank", "Tank Nord", "Altstadt", "Altstadt-Nord", height_m=5.0)
    add_observations(c, tank1["level"], [(t0, 2.0), (t0 + 4 * Q, 3.5)])
    tank2 = add_thing(c, DOMAIN, "tank", "Tank Süd", "Hafen", "Hafen-Süd", height_m=4.0)
    add_observations(c, tank2["level"], [(t0 + timedelta(days=1), 1.0)])
    return c


def test_night_flow(client: Client) -> None:
    doc = kpi(client, "water/night_flow", interval=NIGHTS)
    assert doc["value"] == 1  # DMA B
    assert doc["values"] == {"dmas": 2, "suspected": 1, "tz": "Europe/Berlin"}
    items = {i["name"]: i for i in doc["items"]}
    a, b = items["DMA A"], items["DMA B"]
    assert [n["night"] for n in a["nights"]] == [f"2026-01-0{d}" for d in range(5, 10)]
    # A: every night 4 m3/h; the mean of the 24 h before 04:00 is (6*4 + 18*12)/24 = 10
    assert (a["value"], a["ratio"], a["leak_suspected"]) == (4.0, 0.4, False)
    # B: the leak runs from 04:00 on 8 Jan, so the night of 9 Jan is 4 + 3 = 7 m3/h, above
    # 1.5 x the median 4 of the four nights before, and 7 / 13 = 0.538 of the mean flow
    assert b["night"] == "2026-01-09"
    assert b["time"] == "2026-01-09T01:00:00Z"
    assert (b["value"], b["baseline"], b["mean_flow"]) == (7.0, 4.0, 13.0)
    assert b["leak_suspected"]
    assert b["reasons"] == ["rise", "ratio"]
    assert [n["leak_suspected"] for n in b["nights"]] == [False] * 4 + [True]
    assert doc["series"][-1] == {"time": "2026-01-09T01:00:00Z", "value": 11.0, "suspected": 1}


def test_the_last_night_is_judged_against_the_nights_before_the_interval(
    client: Client,
) -> None:
    # 8 Jan 13:00 to 9 Jan 12:00 CET holds one night window (9 Jan 02:00 = 01:00 UTC); its
    # baseline is the median of the nights of 5 to 8 Jan (all 4) and its mean flow the 24 h
    # before 04:00, both read from before the interval
    doc = kpi(client, "water/night_flow", interval="2026-01-08T12:00:00Z/2026-01-09T11:00:00Z")
    items = {i["name"]: i for i in doc["items"]}
    assert [n["night"] for n in items["DMA B"]["nights"]] == ["2026-01-09"]
    assert (items["DMA B"]["baseline"], items["DMA B"]["mean_flow"]) == (4.0, 13.0)
    assert items["DMA B"]["reasons"] == ["rise", "ratio"]
    assert (items["DMA A"]["ratio"], items["DMA A"]["leak_suspected"]) == (0.4, False)
    assert doc["value"] == 1
    # an interval that starts after 01:00 UTC on 9 Jan holds no night window
    late = kpi(client, "water/night_flow", interval="2026-01-09T01:15:00Z/2026-01-09T11:00:00Z")
    assert (late["value"], late["items"]) == (None, [])


def test_night_flow_by_area_and_options(client: Client) -> None:
    altstadt = kpi(client, "water/night_flow", interval=NIGHTS, area="district:Altstadt")
    assert altstadt["value"] == 0
    assert [i["name"] for i in altstadt["items"]] == ["DMA A"]
    hood = kpi(client, "water/night_flow", interval=NIGHTS, area="neighbourhood:Hafen-Süd")
    assert hood["value"] == 1
    assert [i["name"] for i in hood["items"]] == ["DMA B"]
    # 7 <= 2 * 4 and 7/13 <= 0.6: nobody is suspected under the stricter rule
    strict = kpi(client, "water/night_flow", interval=NIGHTS, leak_factor="2", leak_ratio="0.6")
    assert strict["value"] == 0
    empty = kpi(client, "water/night_flow", interval=NIGHTS, area="district:Neustadt")
    assert (empty["value"], empty["items"], empty["series"]) == (None, [], [])
    none = kpi(client, "water/night_flow", interval="2020-01-01T00:00:00Z/2020-01-02T00:00:00Z")
    assert (none["value"], none["items"]) == (None, [])


def test_cso_events(client: Client) -> None:
    doc = kpi(client, "water/cso_events", interval=JUNE)
    assert doc["value"] == 2
    first, second = doc["items"]
    # CSO 1: above the 1.0 m crest from 10:15 to 10:45; by hand 228.73393 m3 (see the
    # KPI unit tests): trapezoids of Q = 0.6*2/3*sqrt(19.62)*2*h^1.5 at h = 0.2, 0.09, 0
    assert (first["name"], first["start"], first["end"]) == (
        "CSO 1", "2026-06-01T10:15:00Z", "2026-06-01T10:45:00Z"
    )  # fmt: skip
    assert first["duration_s"] == 1800.0
    assert first["volume_m3"] == pytest.approx(228.734)
    # CSO 2, its own C_d 0.5, b 1 m, h 0.25 m at 22:00:
    # Q = 0.5 * 2/3 * 4.4294469 * 0.125 = 0.1845603 m3/s; (Q + 0) / 2 * 900 s = 83.052 m3
    assert (second["name"], second["start"], second["duration_s"]) == (
        "CSO 2", "2026-06-02T22:00:00Z", 900.0
    )  # fmt: skip
    assert second["volume_m3"] == pytest.approx(83.052)
    values = doc["values"]
    assert values["events"] == 2
    assert values["duration_s"] == 2700.0
    assert values["volume_m3"] == pytest.approx(311.786)
    # 22:00 UTC on 2 June is midnight CEST: overflow days 1 and 3 June; 2 * 365 / 10 = 73
    assert values["overflow_days"] == 2
    assert values["overflow_days_per_year"] == 73.0
    assert values["unconfigured"] == ["CSO 3"]
    assert values["structures"] == 2


def test_cso_events_options_and_areas(client: Client) -> None:
    # the option changes C_d where the structure has none of its own: CSO 1 halves
    doc = kpi(client, "water/cso_events", interval=JUNE, discharge_coefficient="0.3")
    volumes = {i["name"]: i["volume_m3"] for i in doc["items"]}
    assert volumes == {"CSO 1": pytest.approx(114.367), "CSO 2": pytest.approx(83.052)}
    hafen = kpi(client, "water/cso_events", interval=JUNE, area="district:Hafen")
    assert [i["name"] for i in hafen["items"]] == ["CSO 1"]
    assert hafen["value"] == 1
    # one day in ten: 36.5 days a year
    assert hafen["values"]["overflow_days_per_year"] == 36.5
    quiet = kpi(client, "water/cso_events", interval="2026-06-05T00:00:00Z/2026-06-06T00:00:00Z")
    assert quiet["value"] is None
    assert quiet["items"] == []


def test_tank_levels(client: Client) -> None:
    doc = kpi(client, "water/tank_levels", interval=JUNE)
    items = {i["name"]: i for i in doc["items"]}
    assert items["Tank Nord"]["level_m"] == 3.5
    assert items["Tank Nord"]["fill_ratio"] == 0.7
    assert items["Tank Nord"]["time"] == "2026-06-01T11:00:00Z"
    assert doc["value"] == 0.25  # Tank Süd: 1.0 / 4.0, read eight days before the end
    one = kpi(client, "water/tank_levels", interval=JUNE, area="district:Altstadt")
    assert one["value"] == 0.7
    # within the last day of the interval: Tank Süd (2 June) is not in it
    day = kpi(client, "water/tank_levels", interval="2026-06-01T00:00:00Z/2026-06-02T00:00:00Z")
    assert day["value"] == 0.7
    assert [i["name"] for i in day["items"]] == ["Tank Nord"]


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("water/night_flow", {"area": "town"}, "area must be"),
        ("water/night_flow", {"interval": "yesterday"}, "KPI interval"),
        ("water/night_flow", {"tz": "Mars/Olympus"}, "option tz"),
        ("water/night_flow", {"leak_factor": "abc"}, "option leak_factor"),
        ("water/night_flow", {"leak_factor": "0.5"}, "option leak_factor"),
        ("water/night_flow", {"leak_ratio": "-1"}, "option leak_ratio"),
        ("water/night_flow", {"colour": "red"}, "no option 'colour'"),
        ("water/cso_events", {"discharge_coefficient": "nan"}, "option discharge_coefficient"),
        ("water/tank_levels", {"tz": "UTC"}, "no option 'tz'"),
    ],
)
def test_bad_parameters(client: Client, path: str, params: dict[str, str], message: str) -> None:
    assert message in kpi_error(client, path, **params)


def test_the_domain_is_listed(client: Client) -> None:
    doc = client.ok("GET", "/api/v1/domains")
    water = next(d for d in doc["value"] if d["name"] == "water")
    assert [k["key"] for k in water["kpis"]] == ["night_flow", "cso_events", "tank_levels"]
    assert {t["key"] for t in water["thingKinds"]} == {"tank", "dma", "cso", "rain_gauge"}
