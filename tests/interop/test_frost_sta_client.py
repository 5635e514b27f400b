"""frost-sta-client (Fraunhofer IOSB's Python client) against a running citytwin server.

The client is used as its README shows: a ``SensorThingsService`` on the versioned root,
model objects, ``service.create/update/patch/delete``, DAO ``find`` and ``query()...list()``
whose ``EntityList`` follows ``@iot.nextLink`` while iterating.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.servers import StaServer

from tests.interop.scenario import COORDS, N_OBS, OM_MEASUREMENT, THING_NAME, iso_z, obs_time

pytestmark = [
    pytest.mark.interop,
    # every query().list() goes through furl's deprecated .pathstr
    pytest.mark.filterwarnings("ignore:furl.pathstr is deprecated:DeprecationWarning:furl.furl"),
]


def parse_time(value: str) -> dt.datetime:
    from dateutil.parser import isoparse

    return isoparse(value)


@dataclass
class Scenario:
    thing: Any
    sensor: Any
    observed_property: Any
    datastream: Any
    observations: list[Any] = field(default_factory=list)


@pytest.fixture(scope="module")
def fsc() -> ModuleType:
    import frost_sta_client

    return frost_sta_client


@pytest.fixture(scope="module")
def service(sta_server: StaServer, fsc: ModuleType) -> Any:
    return fsc.SensorThingsService(sta_server.root)


def _unit(fsc: ModuleType) -> Any:
    return fsc.UnitOfMeasurement(
        name="degree Celsius", symbol="degC", definition="http://www.qudt.org/vocab/unit/DEG_C"
    )


def _make_datastream(fsc: ModuleType, name: str, thing: Any, sensor: Any, op: Any) -> Any:
    # bare references, as the client's README recommends for linking existing entities
    return fsc.Datastream(
        name=name,
        description=f"{name} description",
        observation_type=OM_MEASUREMENT,
        unit_of_measurement=_unit(fsc),
        thing=fsc.Thing(id=thing.id),
        sensor=fsc.Sensor(id=sensor.id),
        observed_property=fsc.ObservedProperty(id=op.id),
    )


@pytest.fixture(scope="module")
def scenario(service: Any, fsc: ModuleType) -> Scenario:
    """Thing (deep-inserted Location), Sensor, ObservedProperty, Datastream, 250 Observations."""
    from geojson import Point

    location = fsc.Location(
        name="Lab roof",
        description="roof of the lab",
        encoding_type="application/geo+json",
        location=Point(tuple(COORDS)),
    )
    thing = fsc.Thing(
        name=THING_NAME,
        description="example station",
        properties={"owner": "example", "floors": 3},
        locations=[location],
    )
    service.create(thing)
    sensor = fsc.Sensor(
        name="DHT22",
        description="temperature/humidity sensor",
        encoding_type="application/pdf",
        metadata="https://example.org/dht22.pdf",
    )
    service.create(sensor)
    op = fsc.ObservedProperty(
        name="Air temperature",
        description="air temperature",
        definition="http://vocab.nerc.ac.uk/collection/P07/current/CFSN0023/",
    )
    service.create(op)
    ds = _make_datastream(fsc, "Temperature", thing, sensor, op)
    service.create(ds)
    sc = Scenario(thing=thing, sensor=sensor, observed_property=op, datastream=ds)
    ds_ref = fsc.Datastream(id=ds.id)
    for i in range(N_OBS):
        obs = fsc.Observation(
            result=float(i), phenomenon_time=iso_z(obs_time(i)), datastream=ds_ref
        )
        service.create(obs)
        sc.observations.append(obs)
    return sc


# --- create ---------------------------------------------------------------------------------
def test_create_assigns_integer_ids_from_location_header(scenario: Scenario) -> None:
    ids = [
        scenario.thing.id,
        scenario.sensor.id,
        scenario.observed_property.id,
        scenario.datastream.id,
    ]
    assert all(isinstance(i, int) for i in ids), ids
    obs_ids = [o.id for o in scenario.observations]
    assert len(obs_ids) == N_OBS
    assert all(isinstance(i, int) for i in obs_ids)
    assert len(set(obs_ids)) == N_OBS


# --- read single entities -------------------------------------------------------------------
def test_find_thing(service: Any, scenario: Scenario) -> None:
    thing = service.things().find(scenario.thing.id)
    assert thing.id == scenario.thing.id
    assert thing.name == THING_NAME
    assert thing.description == "example station"
    assert thing.properties == {"owner": "example", "floors": 3}
    assert thing.self_link.endswith(f"/Things({scenario.thing.id})")
    assert thing.self_link.startswith("http://127.0.0.1:")


def test_find_sensor_and_observed_property(service: Any, scenario: Scenario) -> None:
    sensor = service.sensors().find(scenario.sensor.id)
    assert (sensor.name, sensor.description, sensor.encoding_type, sensor.metadata) == (
        "DHT22",
        "temperature/humidity sensor",
        "application/pdf",
        "https://example.org/dht22.pdf",
    )
    op = service.observed_properties().find(scenario.observed_property.id)
    assert (op.name, op.description, op.definition) == (
        "Air temperature",
        "air temperature",
        "http://vocab.nerc.ac.uk/collection/P07/current/CFSN0023/",
    )


def test_find_datastream(service: Any, scenario: Scenario) -> None:
    ds = service.datastreams().find(scenario.datastream.id)
    assert ds.name == "Temperature"
    assert ds.description == "Temperature description"
    assert ds.observation_type == OM_MEASUREMENT
    uom = ds.unit_of_measurement
    assert (uom.name, uom.symbol, uom.definition) == (
        "degree Celsius",
        "degC",
        "http://www.qudt.org/vocab/unit/DEG_C",
    )


def test_find_observation(service: Any, scenario: Scenario) -> None:
    created = scenario.observations[123]
    obs = service.observations().find(created.id)
    assert obs.id == created.id
    assert obs.result == 123.0
    assert parse_time(obs.phenomenon_time) == obs_time(123)


def test_thing_location_via_navigation(service: Any, scenario: Scenario) -> None:
    # GET Things(id)/Locations, then GET Locations(id)
    locations = list(scenario.thing.get_locations().query().list())
    assert len(locations) == 1
    loc = service.locations().find(locations[0].id)
    assert loc.name == "Lab roof"
    assert loc.description == "roof of the lab"
    assert loc.encoding_type == "application/geo+json"
    assert loc.location["type"] == "Point"
    assert loc.location["coordinates"] == pytest.approx(COORDS)


# --- collections, paging --------------------------------------------------------------------
def test_list_observations_follows_next_links(
    sta_server: StaServer, service: Any, scenario: Scenario
) -> None:
    lst = (
        service.datastreams()
        .find(scenario.datastream.id)
        .get_observations()
        .query()
        .orderby("phenomenonTime", "asc")
        .count()
        .list()
    )
    assert lst.count == N_OBS
    assert len(lst.entities) == 100  # the server's default page size
    assert lst.next_link is not None
    assert lst.next_link.startswith(sta_server.root + "/")
    observations = list(lst)  # iterating fetches the remaining pages
    assert [o.result for o in observations] == [float(i) for i in range(N_OBS)]
    assert [o.id for o in observations] == [o.id for o in scenario.observations]
    assert [parse_time(o.phenomenon_time) for o in observations] == [
        obs_time(i) for i in range(N_OBS)
    ]


def test_list_with_default_descending_order(service: Any, scenario: Scenario) -> None:
    # orderby() defaults to the upper-case keyword: $orderby=phenomenonTime DESC
    lst = scenario.datastream.get_observations().query().orderby("phenomenonTime").list()
    assert [o.result for o in lst] == [float(i) for i in reversed(range(N_OBS))]


def test_top_and_skip(service: Any, scenario: Scenario) -> None:
    lst = (
        scenario.datastream.get_observations()
        .query()
        .orderby("result", "asc")
        .top(10)
        .skip(20)
        .list()
    )
    assert [o.result for o in lst.entities] == [float(i) for i in range(20, 30)]


# --- $filter --------------------------------------------------------------------------------
def test_filter_result_gt(service: Any, scenario: Scenario) -> None:
    lst = (
        scenario.datastream.get_observations()
        .query()
        .filter("result gt 200")
        .orderby("result", "asc")
        .count()
        .list()
    )
    assert lst.count == 49
    assert [o.result for o in lst] == [float(i) for i in range(201, N_OBS)]


def test_filter_on_observations_collection_and_time(service: Any, scenario: Scenario) -> None:
    # spaces become '+', ':' stays, the datetime literal is unquoted
    lst = (
        service.observations()
        .query()
        .filter("phenomenonTime ge 2024-01-01T03:00:00Z and result lt 200")
        .orderby("phenomenonTime", "asc")
        .count()
        .list()
    )
    assert lst.count == 20
    assert [o.result for o in lst] == [float(i) for i in range(180, 200)]


def test_filter_by_name_with_string_literal(service: Any, scenario: Scenario) -> None:
    things = list(service.things().query().filter(f"name eq '{THING_NAME}'").list())
    assert [t.id for t in things] == [scenario.thing.id]
    none = list(service.things().query().filter("name eq 'no such thing'").list())
    assert none == []


# --- $expand --------------------------------------------------------------------------------
def test_expand_thing_locations_and_datastreams(service: Any, scenario: Scenario) -> None:
    lst = (
        service.things()
        .query()
        .filter(f"name eq '{THING_NAME}'")
        .expand("Locations,Datastreams")
        .list()
    )
    things = list(lst)
    assert len(things) == 1
    thing = things[0]
    assert thing.id == scenario.thing.id
    assert thing.locations is not None
    assert len(thing.locations.entities) == 1
    loc = thing.locations.get(0)
    assert loc.name == "Lab roof"
    assert loc.location["coordinates"] == pytest.approx(COORDS)
    assert thing.datastreams is not None
    assert [d.id for d in thing.datastreams.entities] == [scenario.datastream.id]
    assert thing.datastreams.get(0).unit_of_measurement.symbol == "degC"


def test_expand_observation_datastream(service: Any, scenario: Scenario) -> None:
    lst = (
        scenario.datastream.get_observations()
        .query()
        .filter("result ge 0")
        .expand("Datastream")
        .orderby("phenomenonTime", "asc")
        .count()
        .list()
    )
    observations = list(lst)
    assert lst.count == N_OBS
    assert len(observations) == N_OBS
    assert {o.datastream.id for o in observations} == {scenario.datastream.id}
    assert {o.datastream.name for o in observations} == {"Temperature"}


def test_expand_datastream_with_nested_options(service: Any, scenario: Scenario) -> None:
    lst = (
        service.datastreams()
        .query()
        .filter("name eq 'Temperature'")
        .expand("Observations($orderby=result desc;$top=5),Thing,Sensor,ObservedProperty")
        .list()
    )
    datastreams = list(lst)
    assert len(datastreams) == 1
    ds = datastreams[0]
    assert [o.result for o in ds.observations.entities] == [249.0, 248.0, 247.0, 246.0, 245.0]
    assert ds.thing.name == THING_NAME
    assert ds.sensor.name == "DHT22"
    assert ds.observed_property.name == "Air temperature"


def test_expanded_collection_is_complete(service: Any, scenario: Scenario) -> None:
    """All 250 expanded Observations are reachable: inline, or via Observations@iot.nextLink."""
    lst = (
        service.datastreams()
        .query()
        .filter("name eq 'Temperature'")
        .expand("Observations($orderby=phenomenonTime asc)")
        .list()
    )
    ds = next(iter(lst))
    assert [o.result for o in ds.observations] == [float(i) for i in range(N_OBS)]


def test_select(service: Any, scenario: Scenario) -> None:
    lst = (
        scenario.datastream.get_observations()
        .query()
        .select("id", "result")
        .orderby("result", "asc")
        .top(3)
        .list()
    )
    got = [(o.id, o.result, o.phenomenon_time) for o in lst.entities]
    assert got == [(o.id, float(i), None) for i, o in enumerate(scenario.observations[:3])]


# --- data arrays ----------------------------------------------------------------------------
def test_create_observations_with_a_data_array(
    service: Any, fsc: ModuleType, scenario: Scenario
) -> None:
    ds = _make_datastream(fsc, "Bulk", scenario.thing, scenario.sensor, scenario.observed_property)
    service.create(ds)
    dav = fsc.DataArrayValue()
    dav.datastream = fsc.Datastream(id=ds.id)
    prop = fsc.DataArrayValue.Property
    dav.components = {prop.PHENOMENON_TIME, prop.RESULT, prop.PARAMETERS}
    times = [obs_time(1000 + i) for i in range(5)]
    for i, t in enumerate(times):
        # a datetime, which the client writes with isoformat(), and a string
        phenomenon = t if i % 2 else iso_z(t)
        dav.add_observation(
            fsc.Observation(result=i * 1.5, phenomenon_time=phenomenon, parameters={"i": i})
        )
    doc = fsc.DataArrayDocument()
    doc.add_data_array_value(dav)
    created = service.observations().create(doc)
    links = [o.self_link for o in created]
    assert len(links) == 5
    assert all("/Observations(" in link for link in links)
    stored = list(ds.get_observations().query().orderby("phenomenonTime", "asc").list())
    assert [o.result for o in stored] == [i * 1.5 for i in range(5)]
    assert [parse_time(o.phenomenon_time) for o in stored] == times
    assert [o.parameters for o in stored] == [{"i": i} for i in range(5)]
    assert sorted(int(link[link.rindex("(") + 1 : -1]) for link in links) == sorted(
        o.id for o in stored
    )


# --- update (PUT), patch (JSON Patch), delete ------------------------------------------------
def test_patch_sends_json_patch(service: Any, fsc: ModuleType) -> None:
    sensor = fsc.Sensor(
        name="Patch me",
        description="before",
        encoding_type="text/html",
        metadata="https://example.org/before",
    )
    service.create(sensor)
    service.patch(
        sensor,
        [
            {"op": "replace", "path": "/description", "value": "patched"},
            {"op": "add", "path": "/properties", "value": {"calibrated": True}},
        ],
    )
    found = service.sensors().find(sensor.id)
    assert found.description == "patched"
    assert found.properties == {"calibrated": True}
    assert found.name == "Patch me"
    assert found.metadata == "https://example.org/before"


def test_update_sends_put(service: Any, fsc: ModuleType) -> None:
    sensor = fsc.Sensor(
        name="Put me",
        description="before",
        encoding_type="text/html",
        metadata="https://example.org/before",
    )
    service.create(sensor)
    found = service.sensors().find(sensor.id)
    found.description = "updated via PUT"
    found.metadata = "https://example.org/after"
    service.update(found)
    again = service.sensors().find(sensor.id)
    assert (again.id, again.name, again.description, again.encoding_type, again.metadata) == (
        sensor.id,
        "Put me",
        "updated via PUT",
        "text/html",
        "https://example.org/after",
    )


def test_update_location_coordinates(service: Any, fsc: ModuleType) -> None:
    from geojson import Point

    loc = fsc.Location(
        name="Moving",
        description="a location that moves",
        encoding_type="application/geo+json",
        location=Point((7.0, 50.0)),
    )
    service.create(loc)
    found = service.locations().find(loc.id)
    found.location = {"type": "Point", "coordinates": [7.5, 50.5]}
    service.update(found)
    again = service.locations().find(loc.id)
    assert again.name == "Moving"
    assert again.location == {"type": "Point", "coordinates": [7.5, 50.5]}


def test_delete(service: Any, fsc: ModuleType, scenario: Scenario) -> None:
    import requests

    # the Location lets the server generate the Observations' FeatureOfInterest
    place = fsc.Location(
        name="Doomed place",
        description="where the doomed thing stands",
        encoding_type="application/geo+json",
        location={"type": "Point", "coordinates": [9.0, 48.0]},
    )
    thing = fsc.Thing(name="Doomed thing", description="to be deleted", locations=[place])
    service.create(thing)
    ds = _make_datastream(fsc, "Doomed stream", thing, scenario.sensor, scenario.observed_property)
    service.create(ds)
    observations = []
    for i in range(3):
        obs = fsc.Observation(
            result=float(i), phenomenon_time=iso_z(obs_time(i)), datastream=fsc.Datastream(id=ds.id)
        )
        service.create(obs)
        observations.append(obs)

    service.delete(observations[0])
    with pytest.raises(requests.HTTPError) as excinfo:
        service.observations().find(observations[0].id)
    assert excinfo.value.response.status_code == 404
    remaining = ds.get_observations().query().count().list()
    assert remaining.count == 2
    assert sorted(o.id for o in remaining) == sorted(o.id for o in observations[1:])

    # deleting the Thing deletes its Datastreams and their Observations
    service.delete(thing)
    for dao, entity in [
        (service.things(), thing),
        (service.datastreams(), ds),
        (service.observations(), observations[1]),
    ]:
        with pytest.raises(requests.HTTPError) as excinfo:
            dao.find(entity.id)
        assert excinfo.value.response.status_code == 404
    # the shared entities are untouched
    assert service.sensors().find(scenario.sensor.id).name == "DHT22"
    assert service.things().find(scenario.thing.id).name == THING_NAME
