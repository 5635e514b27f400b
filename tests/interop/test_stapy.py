"""stapy against a running citytwin server.

stapy keeps its service URL in a global config object. ``stapy.set_sta_url()`` would
write ``./.stapy.ini``; these tests set the URL in memory only (``config.set``) and
restore the previous values afterwards. Entities are created step by step with
``Post.*`` (each returns the integer id from the Location header) and read with
``Query(...).get_data_sets()``, which follows ``@iot.nextLink``.

stapy quirk: when a query yields at most one entity, each selected list collapses to
its single value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.servers import StaServer

from tests.interop.scenario import (
    COORDS,
    N_OBS,
    OM_MEASUREMENT,
    THING_NAME,
    UNIT,
    iso_z,
    obs_time,
    parse_time,
)

pytestmark = [
    pytest.mark.interop,
    # `import stapy` pulls in thefuzz, which warns without python-Levenshtein
    pytest.mark.filterwarnings(
        "ignore:Using slow pure-python SequenceMatcher:UserWarning:thefuzz.fuzz"
    ),
]


@dataclass
class Scenario:
    location_id: int
    thing_id: int
    sensor_id: int
    observed_property_id: int
    datastream_id: int
    observation_ids: list[int] = field(default_factory=list)


@pytest.fixture(scope="module")
def stapy(sta_server: StaServer) -> Iterator[ModuleType]:
    import stapy
    from stapy.common.config import config

    saved = {key: config.get(key) for key in ("STA_URL", "STA_USR", "STA_PWD")}
    config.set(STA_URL=sta_server.root + "/")  # in memory; stapy needs the trailing slash
    config.remove("STA_USR")  # no credentials from a stray ./.stapy.ini
    config.remove("STA_PWD")
    try:
        yield stapy
    finally:
        for key, value in saved.items():
            if value is None:
                config.remove(key)
            else:
                config.set(**{key: value})


@pytest.fixture(scope="module")
def scenario(stapy: ModuleType) -> Scenario:
    """Location, Thing linked to it, Sensor, ObservedProperty, Datastream, 250 Observations."""
    post = stapy.Post
    l_id = post.location(
        "Lab roof",
        "roof of the lab",
        "application/geo+json",
        {"type": "Point", "coordinates": COORDS},
    )
    t_id = post.thing(
        THING_NAME, "example station", properties={"owner": "example"}, location_id=l_id
    )
    s_id = post.sensor(
        "DHT22",
        "temperature/humidity sensor",
        "application/pdf",
        metadata="https://example.org/dht22.pdf",
    )
    o_id = post.observed_property(
        "Air temperature",
        "air temperature",
        "http://vocab.nerc.ac.uk/collection/P07/current/CFSN0023/",
    )
    d_id = post.datastream(
        "Temperature", "air temperature at station 1", UNIT, OM_MEASUREMENT, t_id, o_id, s_id
    )
    sc = Scenario(l_id, t_id, s_id, o_id, d_id)
    for i in range(N_OBS):
        sc.observation_ids.append(
            post.observation(iso_z(obs_time(i)), float(i), datastream_id=d_id)
        )
    return sc


def observations_query(stapy: ModuleType, datastream_id: int) -> Any:
    q = stapy.Query(stapy.Entity.Datastream).entity_id(datastream_id)
    return q.sub_entity(stapy.Entity.Observation)


# --- create ---------------------------------------------------------------------------------
def test_create_returns_ids(scenario: Scenario) -> None:
    ids = [
        scenario.location_id,
        scenario.thing_id,
        scenario.sensor_id,
        scenario.observed_property_id,
        scenario.datastream_id,
    ]
    # Post.* returns -1 when the server refuses the request
    assert all(isinstance(i, int) and i > 0 for i in ids), ids
    assert len(scenario.observation_ids) == N_OBS
    assert all(isinstance(i, int) and i > 0 for i in scenario.observation_ids)
    assert len(set(scenario.observation_ids)) == N_OBS


# --- read single entities -------------------------------------------------------------------
def test_read_thing(stapy: ModuleType, scenario: Scenario) -> None:
    q = stapy.Query(stapy.Entity.Thing).entity_id(scenario.thing_id)
    name, description, properties, iot_id = q.select(
        "name", "description", "properties", "@iot.id"
    ).get_data_sets()
    assert (name, description, properties, iot_id) == (
        THING_NAME,
        "example station",
        {"owner": "example"},
        scenario.thing_id,
    )


def test_read_location(stapy: ModuleType, scenario: Scenario) -> None:
    q = stapy.Query(stapy.Entity.Location).entity_id(scenario.location_id)
    name, description, encoding, kind, coords = q.select(
        "name", "description", "encodingType", "location.type", "location.coordinates"
    ).get_data_sets()
    assert (name, description, encoding, kind) == (
        "Lab roof",
        "roof of the lab",
        "application/geo+json",
        "Point",
    )
    assert coords == pytest.approx(COORDS)


def test_read_thing_location_via_navigation(stapy: ModuleType, scenario: Scenario) -> None:
    q = stapy.Query(stapy.Entity.Thing).entity_id(scenario.thing_id)
    q = q.sub_entity(stapy.Entity.Location).select("@iot.id", "name")
    assert q.get_data_sets() == (scenario.location_id, "Lab roof")


def test_read_sensor_and_observed_property(stapy: ModuleType, scenario: Scenario) -> None:
    sensor = stapy.Query(stapy.Entity.Sensor).entity_id(scenario.sensor_id)
    assert sensor.select("name", "description", "encodingType", "metadata").get_data_sets() == (
        "DHT22",
        "temperature/humidity sensor",
        "application/pdf",
        "https://example.org/dht22.pdf",
    )
    op = stapy.Query(stapy.Entity.ObservedProperty).entity_id(scenario.observed_property_id)
    assert op.select("name", "description", "definition").get_data_sets() == (
        "Air temperature",
        "air temperature",
        "http://vocab.nerc.ac.uk/collection/P07/current/CFSN0023/",
    )


def test_read_datastream(stapy: ModuleType, scenario: Scenario) -> None:
    q = stapy.Query(stapy.Entity.Datastream).entity_id(scenario.datastream_id)
    name, description, obs_type, unit, symbol = q.select(
        "name", "description", "observationType", "unitOfMeasurement", "unitOfMeasurement.symbol"
    ).get_data_sets()
    assert (name, description, obs_type) == (
        "Temperature",
        "air temperature at station 1",
        OM_MEASUREMENT,
    )
    assert unit == UNIT
    assert symbol == "degC"


# --- collections, paging --------------------------------------------------------------------
def test_read_all_observations_with_paging(stapy: ModuleType, scenario: Scenario) -> None:
    q = (
        observations_query(stapy, scenario.datastream_id)
        .select("@iot.id", "result", "phenomenonTime")
        .order("phenomenonTime", asc=True)
    )
    ids, results, times = q.get_data_sets()
    assert results == [float(i) for i in range(N_OBS)]
    assert ids == scenario.observation_ids
    assert [parse_time(t) for t in times] == [obs_time(i) for i in range(N_OBS)]


def test_read_all_observations_descending(stapy: ModuleType, scenario: Scenario) -> None:
    q = observations_query(stapy, scenario.datastream_id)
    results = q.select("result").order("result", asc=False).get_data_sets()
    assert results == [float(i) for i in reversed(range(N_OBS))]


def test_limit_and_offset(stapy: ModuleType, scenario: Scenario) -> None:
    q = observations_query(stapy, scenario.datastream_id)
    q = q.select("result").order("result").limit(10).offset(20)
    assert q.get_data_sets(count=10) == [float(i) for i in range(20, 30)]


# --- $filter --------------------------------------------------------------------------------
def test_filter_result_gt(stapy: ModuleType, scenario: Scenario) -> None:
    q = observations_query(stapy, scenario.datastream_id)
    results = q.select("result").filter("result gt 200").order("result").get_data_sets()
    assert len(results) == 49
    assert results == [float(i) for i in range(201, N_OBS)]


def test_filter_by_time_on_observations(stapy: ModuleType, scenario: Scenario) -> None:
    # unquoted datetime literal, raw ':' in the URL, spaces sent as %20
    q = stapy.Query(stapy.Entity.Observation).select("result").order("result")
    q = q.filter(
        f"Datastream/id eq {scenario.datastream_id} and phenomenonTime ge 2024-01-01T03:00:00Z"
    )
    assert q.get_data_sets() == [float(i) for i in range(180, N_OBS)]


def test_filter_by_name(stapy: ModuleType, scenario: Scenario) -> None:
    q = stapy.Query(stapy.Entity.Thing).filter(f"name eq '{THING_NAME}'")
    assert q.select("@iot.id", "name").get_data_sets() == (scenario.thing_id, THING_NAME)


# --- $expand --------------------------------------------------------------------------------
def test_expand_observation_datastream_with_select(stapy: ModuleType, scenario: Scenario) -> None:
    # $select names the navigation property that is also expanded
    q = (
        observations_query(stapy, scenario.datastream_id)
        .select("@iot.id", "result", "Datastream.name", "Datastream.unitOfMeasurement")
        .filter("result ge 0")
        .expand("Datastream($select=name,unitOfMeasurement)")
        .order("phenomenonTime", asc=True)
    )
    ids, results, ds_names, ds_units = q.get_data_sets()
    assert ids == scenario.observation_ids
    assert results == [float(i) for i in range(N_OBS)]
    assert ds_names == ["Temperature"] * N_OBS
    assert ds_units == [UNIT] * N_OBS


def test_expand_thing_locations(stapy: ModuleType, scenario: Scenario) -> None:
    q = (
        stapy.Query(stapy.Entity.Thing)
        .filter(f"name eq '{THING_NAME}'")
        .expand("Locations")
        .select("@iot.id", "name", "Locations")
    )
    thing_id, name, locations = q.get_data_sets()
    assert (thing_id, name) == (scenario.thing_id, THING_NAME)
    assert len(locations) == 1
    assert locations[0]["@iot.id"] == scenario.location_id
    assert locations[0]["name"] == "Lab roof"
    assert locations[0]["location"]["type"] == "Point"
    assert locations[0]["location"]["coordinates"] == pytest.approx(COORDS)


def test_expand_with_expand_builder(stapy: ModuleType, scenario: Scenario) -> None:
    from stapy.sta.query import Expand

    inner = (
        Expand(stapy.Entity.Observation)
        .select(["result"])
        .filter("result ge 100")
        .limit(3)
        .get_expand()
    )
    q = (
        stapy.Query(stapy.Entity.Datastream)
        .entity_id(scenario.datastream_id)
        .expand(inner)
        .select("name", "Observations")
    )
    name, observations = q.get_data_sets()
    assert name == "Temperature"
    assert sorted(o["result"] for o in observations) == [100.0, 101.0, 102.0]
    assert all(set(o) == {"result"} for o in observations), observations


# --- update, delete -------------------------------------------------------------------------
def test_patch(stapy: ModuleType, scenario: Scenario) -> None:
    t_id = stapy.Post.thing("Patch me", "before", location_id=scenario.location_id)
    assert t_id > 0
    assert stapy.Patch.thing(t_id, description="patched", properties={"k": 1}) == t_id
    q = stapy.Query(stapy.Entity.Thing).entity_id(t_id)
    assert q.select("name", "description", "properties").get_data_sets() == (
        "Patch me",
        "patched",
        {"k": 1},
    )
    s_id = stapy.Post.sensor("Patch sensor", "v1", "text/html", metadata="https://example.org/v1")
    assert s_id > 0
    assert stapy.Patch.sensor(s_id, metadata="https://example.org/v2") == s_id
    sq = stapy.Query(stapy.Entity.Sensor).entity_id(s_id)
    assert sq.select("name", "description", "metadata").get_data_sets() == (
        "Patch sensor",
        "v1",
        "https://example.org/v2",
    )


def test_delete(stapy: ModuleType, scenario: Scenario) -> None:
    d_id = stapy.Post.datastream(
        "Doomed stream",
        "to be deleted",
        UNIT,
        OM_MEASUREMENT,
        scenario.thing_id,
        scenario.observed_property_id,
        scenario.sensor_id,
    )
    obs_ids = [
        stapy.Post.observation(iso_z(obs_time(i)), float(i), datastream_id=d_id) for i in range(3)
    ]
    assert d_id > 0
    assert all(i > 0 for i in obs_ids), obs_ids

    stapy.Delete.entity(stapy.Entity.Observation, obs_ids[0])
    remaining = observations_query(stapy, d_id).select("@iot.id").order("id").get_data_sets()
    assert remaining == obs_ids[1:]

    # deleting a Datastream deletes its Observations; a missing entity reads as ""
    ds = stapy.Query(stapy.Entity.Datastream).entity_id(d_id).select("@iot.id")
    assert ds.get_data_sets() == d_id
    stapy.Delete.entity(stapy.Entity.Datastream, d_id)
    assert ds.get_data_sets() == ""
    for o_id in obs_ids[1:]:
        gone = stapy.Query(stapy.Entity.Observation).entity_id(o_id).select("@iot.id")
        assert gone.get_data_sets() == ""
    # the other Datastream is untouched
    kept = stapy.Query(stapy.Entity.Datastream).entity_id(scenario.datastream_id).select("name")
    assert kept.get_data_sets() == "Temperature"


def test_delete_query(stapy: ModuleType, scenario: Scenario) -> None:
    d_id = stapy.Post.datastream(
        "Pruned stream",
        "some Observations get deleted",
        UNIT,
        OM_MEASUREMENT,
        scenario.thing_id,
        scenario.observed_property_id,
        scenario.sensor_id,
    )
    values = [10.0, 20.0, 5000.0, 5001.0, 5002.0]
    o_ids = [
        stapy.Post.observation(iso_z(obs_time(i)), v, datastream_id=d_id)
        for i, v in enumerate(values)
    ]
    assert all(i > 0 for i in o_ids), o_ids
    # GET Datastreams(d)/Observations?$filter=... (following nextLinks), then DELETE each
    stapy.Delete.query(f"Datastreams({d_id})/Observations?$filter=result ge 5000")
    q = observations_query(stapy, d_id).select("@iot.id", "result").order("result")
    assert q.get_data_sets() == (o_ids[:2], [10.0, 20.0])
    for o_id in o_ids[2:]:
        gone = stapy.Query(stapy.Entity.Observation).entity_id(o_id).select("@iot.id")
        assert gone.get_data_sets() == ""


def test_no_config_file_written(stapy: ModuleType) -> None:
    from pathlib import Path

    from stapy.common.config import FILENAME

    assert not Path(FILENAME).exists(), f"{Path(FILENAME).resolve()} was written"
