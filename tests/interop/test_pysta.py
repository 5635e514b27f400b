"""pysta (import name ``sta``) against a running citytwin server.

pysta's ``Client.put_*`` first looks an entity up by name (``GET ...?$orderby=id asc
&$filter=name eq '...'``) and PATCHes the match instead of POSTing a duplicate; a POST
must answer exactly 201 with a ``Location`` header ``...(<digits>)``. Reads are
generators that follow ``@iot.nextLink``; on any non-200 answer they stop silently, so
the tests assert exact counts. pysta prints every POST request to stdout.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
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
    obs_time,
    parse_time,
)

pytestmark = [pytest.mark.interop]


def statime(t: dt.datetime) -> str:
    """The format of pysta's own sta.util.statime()."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def location_payload(name: str, description: str, coords: list[float]) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "encodingType": "application/geo+json",
        "location": {"type": "Point", "coordinates": coords},
    }


def datastream_payload(name: str, thing: Any, sensor: Any, op: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} description",
        "unitOfMeasurement": UNIT,
        "observationType": OM_MEASUREMENT,
        # pysta keeps ids as strings; its JSON schemas want numbers in links
        "Thing": {"@iot.id": int(thing.iotid)},
        "ObservedProperty": {"@iot.id": int(op.iotid)},
        "Sensor": {"@iot.id": int(sensor.iotid)},
    }


@dataclass
class Scenario:
    location: Any
    thing: Any
    sensor: Any
    observed_property: Any
    datastream: Any
    observations: list[Any] = field(default_factory=list)

    @property
    def ds_id(self) -> int:
        return int(self.datastream.iotid)


@pytest.fixture(scope="module")
def client(sta_server: StaServer) -> Any:
    from sta.client import Client

    # string credentials: pysta always sends Basic auth, and None would make requests warn
    return Client(base_url=sta_server.root, user="", pwd="")


@pytest.fixture(scope="module")
def scenario(client: Any) -> Scenario:
    """Location, Thing linked to it, Sensor, ObservedProperty, Datastream, 250 Observations."""
    loc = client.put_location(location_payload("Lab roof", "roof of the lab", COORDS))
    thing = client.put_thing(
        {
            "name": THING_NAME,
            "description": "example station",
            "properties": {"owner": "example"},
            "Locations": [{"@iot.id": int(loc.iotid)}],
        }
    )
    sensor = client.put_sensor(
        {
            "name": "DHT22",
            "description": "temperature/humidity sensor",
            "encodingType": "application/pdf",
            "metadata": "https://example.org/dht22.pdf",
        }
    )
    op = client.put_observed_property(
        {
            "name": "Air temperature",
            "description": "air temperature",
            "definition": "http://vocab.nerc.ac.uk/collection/P07/current/CFSN0023/",
        }
    )
    ds = client.put_datastream(datastream_payload("Temperature", thing, sensor, op))
    sc = Scenario(loc, thing, sensor, op, ds)
    for i in range(N_OBS):
        t = statime(obs_time(i))
        sc.observations.append(
            client.add_observation(
                {
                    "phenomenonTime": t,
                    "resultTime": t,
                    "result": float(i),
                    "Datastream": {"@iot.id": sc.ds_id},
                }
            )
        )
    return sc


# --- create ---------------------------------------------------------------------------------
def test_create_sets_ids(scenario: Scenario) -> None:
    ids = [
        scenario.location.iotid,
        scenario.thing.iotid,
        scenario.sensor.iotid,
        scenario.observed_property.iotid,
        scenario.datastream.iotid,
    ]
    # iotid stays None unless the POST answered 201 with a Location header
    assert all(isinstance(i, str) and i.isdigit() for i in ids), ids
    obs_ids = [o.iotid for o in scenario.observations]
    assert all(isinstance(i, str) and i.isdigit() for i in obs_ids), obs_ids
    assert len(set(obs_ids)) == N_OBS


def test_put_existing_entity_patches_it(client: Any, scenario: Scenario) -> None:
    # same name: pysta finds the Sensor and PATCHes the full payload (expects 200)
    again = client.put_sensor(
        {
            "name": "Upsert sensor",
            "description": "first",
            "encodingType": "text/html",
            "metadata": "https://example.org/first",
        }
    )
    first_id = again.iotid
    assert first_id is not None
    second = client.put_sensor(
        {
            "name": "Upsert sensor",
            "description": "second",
            "encodingType": "text/html",
            "metadata": "https://example.org/second",
        }
    )
    assert second.iotid == int(first_id)  # from the lookup's @iot.id, an int
    sensors = list(client.get_sensors(name="Upsert sensor"))
    assert len(sensors) == 1
    assert sensors[0]["@iot.id"] == int(first_id)
    assert sensors[0]["description"] == "second"
    assert sensors[0]["metadata"] == "https://example.org/second"


def test_put_existing_datastream_and_thing_are_found(client: Any, scenario: Scenario) -> None:
    # the lookups go through Things(id)/Datastreams and Locations(id)/Things
    ds = client.put_datastream(
        datastream_payload(
            "Temperature", scenario.thing, scenario.sensor, scenario.observed_property
        )
    )
    assert ds.iotid == scenario.ds_id
    thing = client.put_thing(
        {
            "name": THING_NAME,
            "description": "example station",
            "properties": {"owner": "example"},
            "Locations": [{"@iot.id": int(scenario.location.iotid)}],
        }
    )
    assert thing.iotid == int(scenario.thing.iotid)
    assert len(list(client.get_things(f"name eq '{THING_NAME}'"))) == 1
    assert len(list(client.get_datastreams("name eq 'Temperature'"))) == 1


# --- read single entities -------------------------------------------------------------------
def test_get_thing_by_name_and_location(client: Any, scenario: Scenario) -> None:
    thing = client.get_thing(name=THING_NAME, location=int(scenario.location.iotid))
    assert thing["@iot.id"] == int(scenario.thing.iotid)
    assert thing["name"] == THING_NAME
    assert thing["description"] == "example station"
    assert thing["properties"] == {"owner": "example"}


def test_get_location(client: Any, scenario: Scenario) -> None:
    loc = client.get_location(name="Lab roof")
    assert loc["@iot.id"] == int(scenario.location.iotid)
    assert loc["description"] == "roof of the lab"
    assert loc["encodingType"] == "application/geo+json"
    assert loc["location"]["type"] == "Point"
    assert loc["location"]["coordinates"] == pytest.approx(COORDS)


def test_get_sensor_and_observed_property(client: Any, scenario: Scenario) -> None:
    sensors = list(client.get_sensors(name="DHT22"))
    assert [s["@iot.id"] for s in sensors] == [int(scenario.sensor.iotid)]
    assert sensors[0]["description"] == "temperature/humidity sensor"
    assert sensors[0]["encodingType"] == "application/pdf"
    assert sensors[0]["metadata"] == "https://example.org/dht22.pdf"
    ops = list(client.get_observed_properties(name="Air temperature"))
    assert [o["@iot.id"] for o in ops] == [int(scenario.observed_property.iotid)]
    assert ops[0]["definition"] == "http://vocab.nerc.ac.uk/collection/P07/current/CFSN0023/"


def test_get_datastream_of_thing(client: Any, scenario: Scenario) -> None:
    ds = client.get_datastream(name="Temperature", thing=int(scenario.thing.iotid))
    assert ds["@iot.id"] == scenario.ds_id
    assert ds["description"] == "Temperature description"
    assert ds["observationType"] == OM_MEASUREMENT
    assert ds["unitOfMeasurement"] == UNIT


def test_get_observation_by_time_and_result(client: Any, scenario: Scenario) -> None:
    # $filter=phenomenonTime eq 2024-01-01T02:03:00.000Z and result eq 123.0
    obs = client.get_observation(statime(obs_time(123)), 123.0)
    assert obs is not None
    assert obs["@iot.id"] == int(scenario.observations[123].iotid)
    assert obs["result"] == 123.0
    assert parse_time(obs["phenomenonTime"]) == obs_time(123)
    assert parse_time(obs["resultTime"]) == obs_time(123)


# --- collections, paging --------------------------------------------------------------------
def test_get_observations_follows_next_links(client: Any, scenario: Scenario) -> None:
    observations = list(client.get_observations({"@iot.id": scenario.ds_id}))
    assert [o["result"] for o in observations] == [float(i) for i in range(N_OBS)]
    assert [str(o["@iot.id"]) for o in observations] == [o.iotid for o in scenario.observations]
    assert [parse_time(o["phenomenonTime"]) for o in observations] == [
        obs_time(i) for i in range(N_OBS)
    ]


def test_limit_and_pages(client: Any, scenario: Scenario) -> None:
    first5 = list(client.get_observations(scenario.ds_id, limit=5))
    assert [o["result"] for o in first5] == [0.0, 1.0, 2.0, 3.0, 4.0]
    # pages=-1: one page in $orderby=id desc, of the server's default size 100
    last_page = list(client.get_observations(scenario.ds_id, pages=-1))
    assert [o["result"] for o in last_page] == [float(i) for i in range(249, 149, -1)]


def test_orderby(client: Any, scenario: Scenario) -> None:
    observations = list(
        client.get_datastreams(
            None, entity=f"Datastreams({scenario.ds_id})/Observations", orderby="result desc"
        )
    )
    assert [o["result"] for o in observations] == [float(i) for i in reversed(range(N_OBS))]


# --- $filter --------------------------------------------------------------------------------
def test_filter_result_gt(client: Any, scenario: Scenario) -> None:
    observations = list(
        client.get_datastreams(
            "result gt 200",
            entity=f"Datastreams({scenario.ds_id})/Observations",
            orderby="phenomenonTime asc",
        )
    )
    assert len(observations) == 49
    assert [o["result"] for o in observations] == [float(i) for i in range(201, N_OBS)]


def test_filter_by_time(client: Any, scenario: Scenario) -> None:
    observations = list(
        client.get_datastreams(
            f"Datastream/id eq {scenario.ds_id} and phenomenonTime ge 2024-01-01T03:00:00.000Z",
            entity="Observations",
        )
    )
    assert [o["result"] for o in observations] == [float(i) for i in range(180, N_OBS)]


# --- $expand --------------------------------------------------------------------------------
def test_expand_thing_locations(client: Any, scenario: Scenario) -> None:
    things = list(client.get_things(f"name eq '{THING_NAME}'", expand="Locations"))
    assert len(things) == 1
    locations = things[0]["Locations"]
    assert [loc["@iot.id"] for loc in locations] == [int(scenario.location.iotid)]
    assert locations[0]["name"] == "Lab roof"
    assert locations[0]["location"]["coordinates"] == pytest.approx(COORDS)


def test_expand_observation_datastream(client: Any, scenario: Scenario) -> None:
    observations = list(
        client.get_datastreams(
            "result ge 0",
            entity=f"Datastreams({scenario.ds_id})/Observations",
            expand="Datastream",
            orderby="phenomenonTime asc",
        )
    )
    assert len(observations) == N_OBS
    assert [o["result"] for o in observations] == [float(i) for i in range(N_OBS)]
    assert {o["Datastream"]["@iot.id"] for o in observations} == {scenario.ds_id}
    assert {o["Datastream"]["name"] for o in observations} == {"Temperature"}


def test_expand_datastream_nested(client: Any, scenario: Scenario) -> None:
    datastreams = list(
        client.get_datastreams(
            "name eq 'Temperature'",
            expand="Observations($orderby=result desc;$top=3),Thing,Sensor,ObservedProperty",
        )
    )
    assert len(datastreams) == 1
    ds = datastreams[0]
    assert [o["result"] for o in ds["Observations"]] == [249.0, 248.0, 247.0]
    assert ds["Thing"]["name"] == THING_NAME
    assert ds["Sensor"]["name"] == "DHT22"
    assert ds["ObservedProperty"]["name"] == "Air temperature"


# --- update ---------------------------------------------------------------------------------
def test_patch_location(client: Any) -> None:
    loc = client.put_location(location_payload("Moving", "before", [7.0, 50.0]))
    assert loc.iotid is not None
    client.patch_location(int(loc.iotid), location_payload("Moving", "after", [7.5, 50.5]))
    found = client.get_location(name="Moving")
    assert found["@iot.id"] == int(loc.iotid)
    assert found["description"] == "after"
    assert found["location"] == {"type": "Point", "coordinates": [7.5, 50.5]}
