"""A platform with access control on, shared by a city and a utility (docs/security.md).

The city owns a closed Thing with an ordinary and a personal Datastream (a household
meter); the utility owns a closed Thing and an open-data Thing (``openData: true``),
the latter with a personal Datastream too. Each Thing has a TaskingCapability.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from citytwin.access.keys import create_key, create_organisation
from tests.support import Client, datastream, location, thing
from tests.tasking_support import actuator, capability

# only ever stored in the personal Datastreams of the city and of the utility
PERSONAL_RESULT = {"personal": 4242.5, "open-personal": 4343.5}


@dataclass
class World:
    client: Client
    keys: dict[str, str | None] = field(default_factory=dict)  # role name -> key
    things: dict[str, int] = field(default_factory=dict)
    streams: dict[str, int] = field(default_factory=dict)  # ownership -> Datastream id
    observations: dict[str, int] = field(default_factory=dict)
    capabilities: dict[str, int] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        key = self.keys[who]
        return {} if key is None else {"Authorization": f"Bearer {key}"}

    def request(self, who: str, method: str, url: str, body: Any = None) -> Any:
        return self.client.request(method, url, json=body, headers=self.headers(who))

    def as_(self, who: str, method: str, url: str, body: Any = None, status: int = 200) -> Any:
        resp = self.request(who, method, url, body)
        assert resp.status_code == status, f"{who} {method} {url}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def create(self, who: str, url: str, body: Any) -> int:
        resp = self.request(who, "POST", url, body)
        assert resp.status_code == 201, f"{who} POST {url}: {resp.status_code} {resp.text}"
        link = resp.headers["location"]
        return int(link[link.rindex("(") + 1 : link.rindex(")")])

    def observation(self, ownership: str, result: float = 1.0) -> int:
        """A new Observation in the Datastream of ``ownership``, made by an admin."""
        ds = self.streams[ownership]
        return self.create("admin", f"Datastreams({ds})/Observations", {"result": result})


def build(make: Callable[..., Client], **settings: Any) -> World:
    client = make("access", auth="on", **settings)
    storage = client.app.state.service.storage
    world = World(client)
    client.call(create_organisation(storage, "city"))
    client.call(create_organisation(storage, "utility"))
    for who, role, org in (
        ("admin", "admin", None),
        ("operator", "operator", "city"),
        ("reader", "reader", "city"),
        ("utility", "operator", "utility"),
    ):
        world.keys[who] = client.call(create_key(storage, role, org, who)).key
    world.keys["anonymous"] = None

    def stream(name: str, **props: Any) -> dict[str, Any]:
        return datastream(name, properties=props) if props else datastream(name)

    def tasking(name: str) -> list[dict[str, Any]]:
        return [capability(f"{name} dim", Actuator=actuator(f"{name} actuator"))]

    world.things["own"] = world.create(
        "operator",
        "Things",
        thing(
            "city-thing",
            locations=[location("City hall")],
            datastreams=[stream("city-ds"), stream("household-meter", personal=True)],
            TaskingCapabilities=tasking("city"),
        ),
    )
    world.things["other"] = world.create(
        "utility",
        "Things",
        thing(
            "utility-thing",
            locations=[location("Waterworks")],
            datastreams=[stream("utility-ds")],
            TaskingCapabilities=tasking("u"),
        ),
    )
    world.things["open"] = world.create(
        "utility",
        "Things",
        thing(
            "open-thing",
            properties={"openData": True},
            locations=[location("Open square")],
            datastreams=[stream("open-ds"), stream("open-household", personal=True)],
            TaskingCapabilities=tasking("open"),
        ),
    )
    for ownership in ("own", "other", "open"):
        tid = world.things[ownership]
        body = world.as_("admin", "GET", f"Things({tid})/Datastreams?$orderby=id")
        ids = [d["@iot.id"] for d in body["value"]]
        world.streams[ownership] = ids[0]
        if len(ids) > 1:
            world.streams["personal" if ownership == "own" else "open-personal"] = ids[1]
        caps = world.as_("admin", "GET", f"Things({tid})/TaskingCapabilities")["value"]
        world.capabilities[ownership] = caps[0]["@iot.id"]
    world.capabilities["personal"] = world.capabilities["own"]
    for ownership in ("own", "other", "open"):
        world.observations[ownership] = world.observation(ownership)
    for ownership, result in PERSONAL_RESULT.items():
        world.observations[ownership] = world.observation(ownership, result)
    return world
