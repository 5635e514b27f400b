"""Feeds simulated Things to a citytwin platform through its public interfaces.

:func:`set_up` creates (or finds again) every simulated Thing with its Datastreams and
TaskingCapabilities over HTTP; :func:`backfill` sends the history up to now with
``CreateObservations``; :class:`Live` then advances the simulation with the clock
(``speed`` times faster), publishes each Observation over MQTT (or POSTs it when no
broker is given) when the sensor would deliver it, moves vehicles, and answers Tasks on
the devices' command topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson

from citytwin.domains.base import Domain
from citytwin.model.values import format_instant
from citytwin.simulate.base import Capability, DomainSim, Move, Reading, SimThing, point
from citytwin.simulate.mqtt import SimMqtt

log = logging.getLogger("citytwin.simulate")

API = "/v1.1"
COMMAND_PREFIX = "citytwin/sim/"
ROWS_PER_REQUEST = 5_000
CONCURRENT_REQUESTS = 8
BACKFILL_CHUNK = timedelta(days=1)


class SimulationError(Exception):
    """The platform refused what the simulator sent; the message says what and why."""


@dataclass
class Platform:
    """Ids on the platform of the simulated Things and their Datastreams."""

    things: dict[str, int] = field(default_factory=dict)  # SimThing key -> Thing id
    streams: dict[tuple[str, str], int] = field(default_factory=dict)  # (key, prop) -> id


class Client:
    """HTTP to the platform; every refusal becomes a :class:`SimulationError`."""

    def __init__(self, http: httpx.AsyncClient, api_key: str | None = None) -> None:
        self.http = http
        self._limit = asyncio.Semaphore(CONCURRENT_REQUESTS)
        self._auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = dict(self._auth)
        if body is not None:
            headers["Content-Type"] = "application/json"
        async with self._limit:
            resp = await self.http.request(
                method,
                path,
                content=orjson.dumps(body) if body is not None else None,
                headers=headers or None,
            )
        if resp.status_code >= 400:
            raise SimulationError(f"{method} {path}: {resp.status_code} {resp.text[:500]}")
        return orjson.loads(resp.content) if resp.content else None

    async def collect(self, path: str) -> list[dict[str, Any]]:
        """Every entity of a collection, following nextLinks."""
        out: list[dict[str, Any]] = []
        url: str | None = path
        while url is not None:
            page = await self.call("GET", url)
            out.extend(page["value"])
            url = page.get("@iot.nextLink")
        return out


def command_topic(thing: str, capability: str) -> str:
    return f"{COMMAND_PREFIX}{thing}/{capability}"


async def set_up(
    client: Client, sims: Sequence[DomainSim], domains: Mapping[str, Domain]
) -> Platform:
    """Create the Things of ``sims`` that the platform does not have yet; find the rest."""
    platform = await _known(client)
    observed = {
        op["definition"]: op["@iot.id"]
        for op in await client.collect(f"{API}/ObservedProperties?$select=id,definition&$top=1000")
    }
    sensors: dict[str, int] = {}
    for s in await client.collect(f"{API}/Sensors?$select=id,properties&$top=1000"):
        template = (s.get("properties") or {}).get("template")
        if isinstance(template, str):
            sensors[template] = s["@iot.id"]
    missing = [t for sim in sims for t in sim.things() if t.key not in platform.things]
    for thing in missing:  # the templates first, once each
        domain = domains[thing.domain]
        kind = domain.thing_kind(thing.kind)
        for key in thing.datastreams:
            prop = domain.property(key)
            if prop.definition not in observed:
                made = await client.call(
                    "POST", f"{API}/ObservedProperties", prop.observed_property()
                )
                observed[prop.definition] = made["@iot.id"]
        template = f"{thing.domain}/{kind.sensor}"
        if template not in sensors:
            body = domain.sensor(kind.sensor).sensor()
            body["properties"] = {**body["properties"], "template": template}
            sensors[template] = (await client.call("POST", f"{API}/Sensors", body))["@iot.id"]
    await asyncio.gather(
        *(
            client.call("POST", f"{API}/Things", _thing_body(t, domains, observed, sensors))
            for t in missing
        )
    )
    if missing:
        platform = await _known(client)
    return platform


async def _known(client: Client) -> Platform:
    platform = Platform()
    path = (
        f"{API}/Things?$select=id,properties&$top=1000"
        "&$expand=Datastreams($select=id,properties;$top=1000)"
    )
    for thing in await client.collect(path):
        key = (thing.get("properties") or {}).get("simKey")
        if not isinstance(key, str):
            continue
        platform.things[key] = thing["@iot.id"]
        for ds in thing.get("Datastreams", []):
            prop = (ds.get("properties") or {}).get("property")
            if isinstance(prop, str):
                platform.streams[key, prop] = ds["@iot.id"]
    return platform


def _thing_body(
    thing: SimThing,
    domains: Mapping[str, Domain],
    observed: Mapping[str, int],
    sensors: Mapping[str, int],
) -> dict[str, Any]:
    domain = domains[thing.domain]
    kind = domain.thing_kind(thing.kind)
    datastreams = []
    for key in thing.datastreams:
        prop = domain.property(key)
        datastreams.append(
            {
                "name": f"{prop.name} {thing.name}",
                "description": f"{prop.description} ({thing.name})",
                "observationType": prop.observation_type,
                "unitOfMeasurement": prop.unit.as_sta(),
                "ObservedProperty": {"@iot.id": observed[prop.definition]},
                "Sensor": {"@iot.id": sensors[f"{thing.domain}/{kind.sensor}"]},
                "properties": {
                    "domain": thing.domain,
                    "property": key,
                    "personal": kind.personal,
                },
            }
        )
    body: dict[str, Any] = {
        "name": thing.name,
        "description": thing.description,
        "properties": {
            **thing.properties,
            "domain": thing.domain,
            "kind": thing.kind,
            "district": thing.district,
            "neighbourhood": thing.neighbourhood,
            "simKey": thing.key,
            **({"openData": True} if kind.open_data else {}),
        },
        "Locations": [
            {
                "name": thing.name,
                "description": f"Where {thing.name} is",
                "encodingType": "application/geo+json",
                "location": thing.location,
            }
        ],
        "Datastreams": datastreams,
    }
    if thing.capabilities:
        body["TaskingCapabilities"] = [_capability(thing, c) for c in thing.capabilities]
    return body


def _capability(thing: SimThing, cap: Capability) -> dict[str, Any]:
    return {
        "name": cap.name,
        "description": cap.description,
        "taskingParameters": dict(cap.parameters),
        "properties": {
            "key": cap.key,
            "driver": {"name": "mqtt", "topic": command_topic(thing.key, cap.key)},
        },
        "Actuator": {
            "name": f"{thing.name} controller",
            "description": f"Controls {thing.name}",
            "encodingType": "text/html",
            "metadata": "https://citytwin.example/simulated-devices",
        },
    }


def observation(reading: Reading) -> dict[str, Any]:
    body: dict[str, Any] = {
        "phenomenonTime": format_instant(reading.time),
        "result": reading.value,
    }
    if reading.parameters:
        body["parameters"] = dict(reading.parameters)
    return body


async def backfill(
    client: Client,
    platform: Platform,
    sims: Sequence[DomainSim],
    until: datetime,
    since: datetime | None = None,
) -> int:
    """Advance ``sims`` to ``until`` and store everything they produced, each sensor's
    values in the order it would have delivered them; return the number of Observations.
    With ``since``, the history goes a day at a time, so that a month of it is never held
    in memory at once."""
    ends = []
    if since is not None:
        t = since + BACKFILL_CHUNK
        while t < until:
            ends.append(t)
            t += BACKFILL_CHUNK
    ends.append(until)
    sent = 0
    last_moves: dict[str, Move] = {}
    for end in ends:
        sent += await _backfill_until(client, platform, sims, end, last_moves)
    await asyncio.gather(*(move(client, platform, m) for m in last_moves.values()))
    return sent


async def _backfill_until(
    client: Client,
    platform: Platform,
    sims: Sequence[DomainSim],
    until: datetime,
    last_moves: dict[str, Move],
) -> int:
    rows: dict[int, list[tuple[datetime, list[Any]]]] = defaultdict(list)
    for sim in sims:
        for event in sim.advance(until):
            if isinstance(event, Move):
                last_moves[event.thing] = event
                continue
            ds = platform.streams[event.thing, event.prop]
            row = [format_instant(event.time), event.value, dict(event.parameters or {})]
            rows[ds].append((event.time + event.delay, row))
    groups: list[dict[str, Any]] = []
    size = 0
    sent = 0
    for ds, arriving in rows.items():
        arriving.sort(key=lambda pair: pair[0])
        values = [row for _, row in arriving]
        for i in range(0, len(values), ROWS_PER_REQUEST):
            chunk = values[i : i + ROWS_PER_REQUEST]
            groups.append(
                {
                    "Datastream": {"@iot.id": ds},
                    "components": ["phenomenonTime", "result", "parameters"],
                    "dataArray": chunk,
                }
            )
            size += len(chunk)
            if size >= ROWS_PER_REQUEST:
                sent += await _create(client, groups)
                groups, size = [], 0
    if groups:
        sent += await _create(client, groups)
    return sent


async def _create(client: Client, groups: list[dict[str, Any]]) -> int:
    links = await client.call("POST", f"{API}/CreateObservations", groups)
    failed = [link for link in links if not str(link).startswith("http")]
    if failed:
        raise SimulationError(f"CreateObservations refused {len(failed)} rows: {failed[:3]}")
    return len(links)


async def move(client: Client, platform: Platform, event: Move) -> None:
    location = {
        "name": f"Position at {format_instant(event.time)}",
        "description": "Reported by the vehicle",
        "encodingType": "application/geo+json",
        "location": point(event.position),
    }
    # a new Location of the Thing: the platform makes it the current one and keeps the
    # way there as HistoricalLocations
    await client.call("POST", f"{API}/Things({platform.things[event.thing]})/Locations", location)


class Live:
    """The simulation going on with the clock; :meth:`run` until ``stop`` is set."""

    def __init__(
        self,
        client: Client,
        platform: Platform,
        sims: Sequence[DomainSim],
        start: datetime,
        *,
        speed: float = 1.0,
        mqtt: SimMqtt | None = None,
        tick: float = 1.0,
        readings_over_mqtt: bool = True,
    ) -> None:
        self.client = client
        # false: readings go over HTTP (with the client's key), MQTT only brings Tasks
        self.readings_over_mqtt = readings_over_mqtt
        self.platform = platform
        self.sims = {sim.domain: sim for sim in sims}
        self.start = start
        self.speed = speed
        self.mqtt = mqtt
        self.tick = tick
        self.sent = 0
        self.tasks_answered = 0
        self._due: list[tuple[datetime, int, Reading]] = []
        self._order = itertools.count()
        self._domain_of = {t.key: sim.domain for sim in sims for t in sim.things()}

    def now(self, started: float) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - started) * self.speed)

    async def run(self, stop: asyncio.Event) -> None:
        started = time.monotonic()
        if self.mqtt is not None:
            self.mqtt.subscribe(COMMAND_PREFIX + "#")
        while not stop.is_set():
            await self.step(self.now(started))
            if self.mqtt is not None:
                for topic, payload in self.mqtt.received():
                    await self.answer(topic, payload, self.now(started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick)

    async def step(self, now: datetime) -> None:
        moves: list[Move] = []
        for sim in self.sims.values():
            for event in sim.advance(now):
                if isinstance(event, Move):
                    moves.append(event)
                else:
                    heapq.heappush(self._due, (event.time + event.delay, next(self._order), event))
        ready: list[Reading] = []
        while self._due and self._due[0][0] <= now:
            ready.append(heapq.heappop(self._due)[2])
        await asyncio.gather(*(self.send(r) for r in ready))
        latest: dict[str, Move] = {m.thing: m for m in moves}  # the map needs the last one
        await asyncio.gather(*(move(self.client, self.platform, m) for m in latest.values()))

    async def send(self, reading: Reading) -> None:
        ds = self.platform.streams[reading.thing, reading.prop]
        body = observation(reading)
        if self.mqtt is not None and self.readings_over_mqtt:
            self.mqtt.publish(f"v1.1/Datastreams({ds})/Observations", orjson.dumps(body))
        else:
            await self.client.call("POST", f"{API}/Datastreams({ds})/Observations", body)
        self.sent += 1

    async def answer(self, topic: str, payload: bytes, now: datetime) -> None:
        """A Task arrived on a device's command topic: let the simulator act on it and
        answer on the topic the platform named."""
        rest = topic[len(COMMAND_PREFIX) :]
        thing, _, capability = rest.rpartition("/")
        try:
            task = orjson.loads(payload)
            parameters = task["taskingParameters"]
            answer_topic = task["answerTopic"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignored a command that is not a Task on %s", topic)
            return
        domain = self._domain_of.get(thing)
        if domain is None or self.mqtt is None:
            return
        outcome = self.sims[domain].task(thing, capability, parameters, now)
        reply = {"status": outcome.status, "message": outcome.message}
        self.mqtt.publish(answer_topic, orjson.dumps(reply))
        self.tasks_answered += 1
