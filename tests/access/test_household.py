"""A household key reads its own meter, personal data included, and otherwise only open
data; it writes nothing and leaks nothing of its neighbours."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from citytwin.access.keys import create_key
from citytwin.cli import main
from citytwin.errors import BadRequest, NotFound
from tests.access.world import PERSONAL_RESULT, World, build
from tests.support import Client


@pytest.fixture(scope="module")
def world(new_client: Callable[..., Client]) -> World:
    w = build(new_client)
    storage = w.client.app.state.service.storage
    for who, ownership in (("household", "own"), ("neighbour", "other")):
        made = w.client.call(create_key(storage, "household", thing=w.things[ownership]))
        w.keys[who] = made.key
    return w


def names(world: World, who: str, url: str) -> list[str]:
    return sorted(e["name"] for e in world.as_(who, "GET", url)["value"])


def test_a_household_reads_its_own_meter_with_its_personal_data(world: World) -> None:
    assert names(world, "household", "Things") == ["city-thing", "open-thing"]
    assert names(world, "household", f"Things({world.things['own']})/Datastreams") == [
        "city-ds",
        "household-meter",
    ]
    personal = world.as_("household", "GET", f"Datastreams({world.streams['personal']})")
    assert personal["name"] == "household-meter"
    results = [
        o["result"]
        for o in world.as_(
            "household", "GET", f"Datastreams({world.streams['personal']})/Observations"
        )["value"]
    ]
    assert PERSONAL_RESULT["personal"] in results


def test_a_household_sees_no_other_households_personal_data(world: World) -> None:
    # the open Thing's personal stream belongs to another household
    assert names(world, "household", f"Things({world.things['open']})/Datastreams") == ["open-ds"]
    world.as_("household", "GET", f"Datastreams({world.streams['open-personal']})", status=404)
    world.as_("household", "GET", f"Things({world.things['other']})", status=404)
    # nor through $expand, $filter or $count
    expanded = world.as_("household", "GET", "Things?$expand=Datastreams($expand=Observations)")
    text = str(expanded)
    assert str(PERSONAL_RESULT["open-personal"]) not in text
    counted = world.as_("household", "GET", "Observations?$count=true&$top=0")["@iot.count"]
    visible = len(world.as_("household", "GET", "Observations?$top=1000")["value"])
    assert counted == visible
    found = world.as_(
        "household", "GET", f"Observations?$filter=result eq {PERSONAL_RESULT['open-personal']}"
    )
    assert found["value"] == []
    # the key of another Thing does not see this household's meter
    world.as_("neighbour", "GET", f"Datastreams({world.streams['personal']})", status=404)
    assert names(world, "neighbour", "Things") == ["open-thing", "utility-thing"]


def test_a_household_key_writes_nothing(world: World) -> None:
    for method, url, body in (
        ("POST", f"Datastreams({world.streams['personal']})/Observations", {"result": 1}),
        ("PATCH", f"Things({world.things['own']})", {"name": "mine"}),
        ("POST", f"TaskingCapabilities({world.capabilities['own']})/Tasks", {}),
    ):
        resp = world.request("household", method, url, body)
        assert resp.status_code == 403, (method, url, resp.text)
        assert "operator or admin role" in resp.json()["message"]


def test_household_keys_name_exactly_one_existing_thing(world: World) -> None:
    storage = world.client.app.state.service.storage
    with pytest.raises(BadRequest, match="names its Thing"):
        world.client.call(create_key(storage, "household"))
    with pytest.raises(BadRequest, match="names its Thing"):
        world.client.call(create_key(storage, "reader", "city", thing=world.things["own"]))
    with pytest.raises(BadRequest, match="leave out --org"):
        world.client.call(create_key(storage, "household", "city", thing=world.things["own"]))
    with pytest.raises(NotFound, match="no Thing 999999"):
        world.client.call(create_key(storage, "household", thing=999999))


def test_household_keys_from_the_command_line(tmp_path: Path) -> None:
    from tests.support import make_client

    url = f"sqlite:///{tmp_path}/h.db"
    client = make_client(tmp_path, db=url, auth="off")
    try:
        thing = client.post("Things", {"name": "flat 3", "description": "meter"})
        assert thing.status_code == 201
    finally:
        client.close()
    run = CliRunner().invoke
    made = run(main, ["keys", "create", "--role", "household", "--thing", "1", "--db", url])
    assert made.exit_code == 0, made.output
    assert "(household for Thing 1)" in made.output
    assert "1\thousehold\t- (Thing 1)\tactive" in run(main, ["keys", "list", "--db", url]).output
