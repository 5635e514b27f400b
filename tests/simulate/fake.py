"""A small domain and its simulator, for testing the runner and the domain API without
the built-in domains."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from citytwin.domains.base import (
    Domain,
    Kpi,
    KpiQuery,
    KpiResult,
    PropertyTemplate,
    SensorTemplate,
    ThingKind,
    Unit,
)
from citytwin.domains.data import DomainData
from citytwin.simulate.base import (
    Capability,
    Event,
    Move,
    Reading,
    SimThing,
    TaskOutcome,
    point,
    rng,
)
from citytwin.simulate.city import City

STEP = timedelta(minutes=15)


async def total(data: DomainData, query: KpiQuery) -> KpiResult:
    """Sum of the counts of every counter in the area, with hourly sums as series and
    each counter's sum as items."""
    streams = await data.streams("fake", kind="counter", prop="count", area=query.area)
    ids = [s.id for s in streams]
    points = await data.observations(ids, query.start, query.end)
    hourly = await data.buckets(ids, query.start, query.end, timedelta(hours=1), "sum")
    items = [
        {"id": s.thing_id, "name": s.thing_name, "value": sum(p.result for p in points[s.id])}
        for s in sorted(streams, key=lambda s: s.thing_name)
    ]
    series: dict[datetime, float] = {}
    for per_stream in hourly.values():
        for t, v in per_stream.items():
            series[t] = series.get(t, 0.0) + v
    value = sum(i["value"] for i in items) if items else None
    return KpiResult(
        value=value,
        series=[{"time": t, "value": v} for t, v in sorted(series.items())],
        items=items,
    )


DOMAIN = Domain(
    name="fake",
    title="Fake",
    version="1.2.0",
    properties=(
        PropertyTemplate(
            "count", "Count", "https://example.org/count", "Things counted", Unit("one", "1")
        ),
        PropertyTemplate(
            "level", "Level", "https://example.org/level", "A level", Unit("metre", "m")
        ),
    ),
    sensors=(SensorTemplate("counter", "Counter", "Counts things", "https://example.org/counter"),),
    thing_kinds=(
        ThingKind("counter", "Counter", "Counts", ("count", "level"), "counter", open_data=True),
        ThingKind("cart", "Cart", "Moves and can be stopped", ("level",), "counter", personal=True),
    ),
    kpis=(Kpi("total", "Total count", "1", "Sum of all counts", total),),
)


class FakeSim:
    """Two counters counting 1, 2, 3, ... every 15 minutes (every fourth value arrives
    20 minutes late) and a cart that moves one block every 15 minutes and stops for a
    Task."""

    domain = "fake"

    def __init__(self, city: City, seed: int, start: datetime) -> None:
        self.city = city
        self.seed = seed
        self.now = start
        self.n = 0
        self.stopped = False
        hood = city.neighbourhoods
        self._things = [
            SimThing(
                key=f"fake/counter/{i}",
                name=f"Counter {i}",
                description="A counter",
                domain="fake",
                kind="counter",
                location=point(city.neighbourhood_centre(hood[i].name)),
                district=hood[i].district,
                neighbourhood=hood[i].name,
                properties={"lanes": i + 1},
                datastreams=("count", "level"),
            )
            for i in range(2)
        ] + [
            SimThing(
                key="fake/cart/0",
                name="Cart",
                description="A cart",
                domain="fake",
                kind="cart",
                location=point(city.node(0, 0)),
                district=hood[0].district,
                neighbourhood=hood[0].name,
                datastreams=("level",),
                capabilities=(
                    Capability(
                        "stop",
                        "Stop",
                        "Stop the cart",
                        {"type": "DataRecord", "field": [{"name": "reason", "type": "Text"}]},
                    ),
                ),
            )
        ]

    def things(self) -> Sequence[SimThing]:
        return self._things

    def advance(self, until: datetime) -> list[Event]:
        out: list[Event] = []
        r = rng(self.seed, "fake", self.now)
        while self.now < until:
            self.n += 1
            for i in range(2):
                delay = timedelta(minutes=20) if self.n % 4 == 0 else timedelta(0)
                out.append(Reading(f"fake/counter/{i}", "count", self.now, self.n * (i + 1), delay))
            out.append(Reading("fake/counter/0", "level", self.now, round(r.uniform(0, 1), 3)))
            if not self.stopped:
                out.append(Move("fake/cart/0", self.now, self.city.node(self.n % 5, 0)))
            self.now += STEP
        return out

    def task(
        self, thing: str, capability: str, parameters: Mapping[str, Any], at: datetime
    ) -> TaskOutcome:
        self.stopped = True
        return TaskOutcome("done", f"stopped: {parameters.get('reason', '')}")
