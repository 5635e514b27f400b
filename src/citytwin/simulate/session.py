"""One simulation run against a platform: build the city and the domain simulators,
set them up, backfill the history and go live (``citytwin simulate``, ``citytwin demo``)."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from citytwin.domains.base import Domain
from citytwin.model.values import floor_time
from citytwin.plugins.manager import domains as installed_domains
from citytwin.plugins.manager import plugin_manager
from citytwin.simulate.base import DomainSim
from citytwin.simulate.city import City
from citytwin.simulate.mqtt import SimMqtt
from citytwin.simulate.runner import Client, Live, Platform, backfill, set_up

# the built-in simulators, imported only when asked for
SIMULATORS: dict[str, str] = {
    "energy": "citytwin.simulate.energy:EnergySim",
    "mobility": "citytwin.simulate.mobility:MobilitySim",
    "water": "citytwin.simulate.water:WaterSim",
    "environment": "citytwin.simulate.environment:EnvironmentSim",
}
STEP = timedelta(minutes=15)


@dataclass
class Options:
    seed: int = 1
    history: timedelta = timedelta(days=1)
    speed: float = 1.0
    domains: Sequence[str] = tuple(SIMULATORS)
    name: str = "Musterstadt"
    centre: tuple[float, float] = (8.0640, 51.4030)
    districts: int = 3
    sizes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # per domain


Factory = Callable[..., DomainSim]


def simulator(name: str) -> Factory:
    if name not in SIMULATORS:
        raise ValueError(f"no simulator for domain {name!r}; there are {', '.join(SIMULATORS)}")
    module, _, cls = SIMULATORS[name].partition(":")
    factory: Factory = getattr(importlib.import_module(module), cls)
    return factory


def build(
    city: City, options: Options, start: datetime, factories: Mapping[str, Factory] | None = None
) -> list[DomainSim]:
    """The simulators of ``options.domains`` (the built-in ones unless ``factories``
    names others)."""
    out = []
    for name in options.domains:
        factory = factories[name] if factories is not None else simulator(name)
        out.append(factory(city, options.seed, start, **dict(options.sizes.get(name, {}))))
    return out


class Session:
    """Talks to the platform at ``url`` (and its broker at ``mqtt_url``, if given)."""

    def __init__(
        self,
        url: str,
        options: Options,
        *,
        mqtt_url: str | None = None,
        http: httpx.AsyncClient | None = None,
        domains: Mapping[str, Domain] | None = None,
        say: Callable[[str], None] = lambda _: None,
        simulators: Mapping[str, Factory] | None = None,
        api_key: str | None = None,
        readings_over_mqtt: bool = True,
    ) -> None:
        """``api_key`` goes with every HTTP request and is the MQTT connection's password;
        live readings go over MQTT (if ``mqtt_url`` is given) unless
        ``readings_over_mqtt`` is false: a broker that cannot take the key as the
        connection's credentials (an external one) would refuse them as anonymous."""
        self.api_key = api_key
        self.readings_over_mqtt = readings_over_mqtt
        self.options = options
        self.http = http or httpx.AsyncClient(base_url=url, timeout=120)
        self.client = Client(self.http, api_key)  # the key goes with every request
        self.mqtt = SimMqtt(mqtt_url, api_key) if mqtt_url else None
        self.domains = dict(domains) if domains is not None else _all_domains()
        self.say = say
        self.factories = simulators
        self.city = City(options.name, options.centre, options.seed, options.districts)
        self.sims: list[DomainSim] = []
        self.platform = Platform()
        self.live: Live | None = None

    async def prepare(self, now: datetime | None = None) -> int:
        """Set the city up on the platform and store its history up to ``now``; return
        the number of Observations stored. Run again, it goes on where the last run
        stopped (the simulators replay the time between without sending it)."""
        now = now or datetime.now(UTC)
        await self._upload_layers()
        start = floor_time(now - self.options.history, STEP)
        found = await _first_start(self.client)
        if found is not None:
            start = found
        self.sims = build(self.city, self.options, start, self.factories)
        self.platform = await set_up(self.client, self.sims, self.domains)
        await _mark_start(self.client, self.platform, start)
        resume = await _latest_time(self.client, self.platform)
        if resume is not None and resume > start:
            for sim in self.sims:  # replay what is stored already
                sim.advance(resume + timedelta(microseconds=1))
        self.say(f"city set up: {len(self.platform.things)} Things")
        since = resume if resume is not None and resume > start else start
        sent = await backfill(self.client, self.platform, self.sims, now, since)
        self.say(f"history stored: {sent} Observations")
        self.started = now
        return sent

    async def run(self, stop: asyncio.Event) -> None:
        if self.mqtt is not None:
            await asyncio.to_thread(self.mqtt.connect)
        self.live = Live(
            self.client,
            self.platform,
            self.sims,
            self.started,
            speed=self.options.speed,
            mqtt=self.mqtt,
            readings_over_mqtt=self.readings_over_mqtt,
        )
        try:
            await self.live.run(stop)
        finally:
            if self.mqtt is not None:
                self.mqtt.close()

    async def close(self) -> None:
        await self.http.aclose()

    async def _upload_layers(self) -> None:
        for name, doc in self.city.layers().items():
            await self.client.call("PUT", f"/api/v1/layers/{name}", doc)


def _all_domains() -> dict[str, Domain]:
    return {d.name: d for d in installed_domains(plugin_manager())}


async def _first_start(client: Client) -> datetime | None:
    page = await client.call(
        "GET", "/v1.1/Things?$select=properties&$filter=properties/simStart ne null&$top=1"
    )
    for thing in page["value"]:
        return datetime.fromisoformat(thing["properties"]["simStart"].replace("Z", "+00:00"))
    return None


async def _mark_start(client: Client, platform: Platform, start: datetime) -> None:
    """The simulation's start is kept on its first Thing, so a later run replays from it."""
    if not platform.things:
        return
    first = min(platform.things.values())
    thing = await client.call("GET", f"/v1.1/Things({first})?$select=properties")
    props = thing.get("properties") or {}
    if "simStart" not in props:
        props["simStart"] = start.isoformat().replace("+00:00", "Z")
        await client.call("PATCH", f"/v1.1/Things({first})", {"properties": props})


async def _latest_time(client: Client, platform: Platform) -> datetime | None:
    """The end of the latest Observation stored for any simulated Datastream."""
    latest: datetime | None = None
    path = "/v1.1/Datastreams?$select=id,phenomenonTime&$top=1000"
    ids = set(platform.streams.values())
    for ds in await client.collect(path):
        if ds["@iot.id"] not in ids or not ds.get("phenomenonTime"):
            continue
        end = ds["phenomenonTime"].split("/")[-1]
        t = datetime.fromisoformat(end.replace("Z", "+00:00"))
        latest = t if latest is None or t > latest else latest
    return latest
