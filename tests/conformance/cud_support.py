"""Helpers shared by the create/update/delete conformance tests (test_create.py, test_update.py,
test_delete.py). Only black-box HTTP calls through :class:`tests.support.Client`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.support import (
    ENTITY_SETS,
    Client,
    datastream,
    location,
    observed_property,
    sensor,
    thing,
)

SETS = ENTITY_SETS

JSON_PATCH = {"content-type": "application/json-patch+json"}


def counts(client: Client) -> dict[str, int]:
    """The number of entities in each of the 8 entity sets, read with $count=true."""
    out: dict[str, int] = {}
    for name in SETS:
        body = client.ok("GET", f"{name}?$count=true")
        assert "@iot.count" in body, f"{name}?$count=true gave no @iot.count: {body}"
        out[name] = body["@iot.count"]
    return out


def snapshot(client: Client) -> dict[str, list[dict[str, Any]]]:
    """Every entity of every set, as GET returns it (to prove nothing changed)."""
    return {name: client.values(name) for name in SETS}


def assert_error(resp: httpx.Response, status: int, *fragments: str) -> str:
    """The response is a JSON error body {"code", "type": "error", "message"} with ``status``,
    and its message mentions every fragment (case-insensitive). Returns the message."""
    assert resp.status_code == status, (
        f"{resp.request.method} {resp.request.url}: expected {status}, got "
        f"{resp.status_code} {resp.text}"
    )
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body, dict), body
    assert body.get("code") == status, body
    assert body.get("type") == "error", body
    message = body.get("message")
    assert isinstance(message, str), body
    assert message.strip(), body
    for fragment in fragments:
        assert fragment.lower() in message.lower(), (
            f"error message {message!r} does not mention {fragment!r}"
        )
    return message


def parse_instant(text: str) -> datetime:
    assert isinstance(text, str), text
    assert text.endswith("Z"), f"time {text!r} is not given in UTC with Z"
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert value.tzinfo is not None
    return value


def parse_period(text: str) -> tuple[datetime, datetime]:
    """An ISO interval 'start/end' (an instant counts as start == end)."""
    assert isinstance(text, str), text
    if "/" in text:
        start, end = text.split("/", 1)
        return parse_instant(start), parse_instant(end)
    one = parse_instant(text)
    return one, one


def at(text: str) -> datetime:
    """A test-side instant from an ISO string."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_recent(text: str, slack: float = 120.0) -> None:
    """The time is the server's "now": within ``slack`` seconds of the test's clock."""
    value = parse_instant(text)
    now = datetime.now(UTC)
    assert abs(now - value) < timedelta(seconds=slack), f"{text} is not close to now ({now})"


def entity_id(resp: httpx.Response) -> int:
    location_header = resp.headers["location"]
    return int(location_header[location_header.rindex("(") + 1 : location_header.rindex(")")])


def nav_id(client: Client, url: str) -> int:
    """The id of a single-valued navigation target, e.g. ``Datastreams(1)/Thing``."""
    return int(client.ok("GET", url)["@iot.id"])


@dataclass
class World:
    """A small, fully linked data set created through the API."""

    thing: int
    location: int
    hl: int
    datastream: int
    sensor: int
    prop: int
    foi: int
    observation: int


def build_world(client: Client, name: str = "W") -> World:
    """A Thing at one Location with one Datastream (new Sensor and ObservedProperty) and one
    Observation with an explicit FeatureOfInterest."""
    sensor_id = client.create("Sensors", sensor(f"{name} sensor"))
    prop_id = client.create("ObservedProperties", observed_property(f"{name} property"))
    location_id = client.create("Locations", location(f"{name} location"))
    thing_id = client.create("Things", thing(name, Locations=[{"@iot.id": location_id}]))
    ds_id = client.create(
        "Datastreams",
        datastream(
            f"{name} datastream",
            new_related=False,
            Thing={"@iot.id": thing_id},
            Sensor={"@iot.id": sensor_id},
            ObservedProperty={"@iot.id": prop_id},
        ),
    )
    foi_id = client.create("FeaturesOfInterest", foi(f"{name} feature"))
    obs_id = client.create(
        "Observations",
        {
            "result": 1,
            "phenomenonTime": "2024-01-01T00:00:00Z",
            "Datastream": {"@iot.id": ds_id},
            "FeatureOfInterest": {"@iot.id": foi_id},
        },
    )
    hls = client.ids(f"Things({thing_id})/HistoricalLocations")
    assert len(hls) == 1, hls
    return World(thing_id, location_id, hls[0], ds_id, sensor_id, prop_id, foi_id, obs_id)


def foi(name: str = "Feature", lon: float = 7.0, lat: float = 50.0, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} description",
        "encodingType": "application/geo+json",
        "feature": {"type": "Point", "coordinates": [lon, lat]},
        **extra,
    }


def obs(result: Any = 1, time: str | None = "2024-01-01T00:00:00Z", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"result": result, **extra}
    if time is not None:
        body["phenomenonTime"] = time
    return body


def without_links(entity: dict[str, Any]) -> dict[str, Any]:
    """The entity's properties only (no control information, no navigation links)."""
    return {k: v for k, v in entity.items() if "@" not in k}
