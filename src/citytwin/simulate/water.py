"""The simulated water utility: drinking-water tanks, district metered areas (DMAs) with
one hidden leak, combined sewer overflows (CSOs) driven by a seeded rain process, and a
rain gauge. Values every 15 minutes.

- Each neighbourhood is a DMA. Its demand follows a daily water-use curve in local time
  (lowest around 03:00, peaks in the morning and evening; a later, flatter morning at
  weekends) scaled by the residents and businesses of its buildings, plus background
  leakage of 6 % of the mean demand. One DMA, chosen by the seed, gets a leak of 40 %
  of its mean demand from ``leak_after`` on, so its minimum night flow rises.
- Tanks supply the DMAs (DMA i from tank i mod n). A pump with a fixed rate of 1.6
  times the mean demand fills a tank between 35 % and 90 % of its height (``auto``);
  the Task capability ``pump`` switches it on, off or back to auto. The level stays
  within 0 and the tank's height.
- Rain comes in events (a few a week; heavier in summer). Each CSO chamber receives the
  dry-weather flow of its district and the runoff of its impervious catchment (a linear
  reservoir, 20 min), passes at most a throttle flow on to the treatment plant and
  spills over its weir (Poleni) when the level rises above the crest. Without rain the
  throttle takes all the dry-weather flow, so overflows happen only during and after
  rain.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from citytwin.domains.kpi_options import ceil_time
from citytwin.domains.water.kpis import weir_flow
from citytwin.simulate.base import (
    Capability,
    Event,
    Reading,
    SimThing,
    TaskOutcome,
    point,
    rng,
)
from citytwin.simulate.city import BLOCK_M, City

STEP = timedelta(minutes=15)
HOURS_PER_STEP = STEP / timedelta(hours=1)
SUBSTEPS = 30  # of 30 s each when it rains
LITRES_PER_RESIDENT_DAY = 125.0  # German household water use, about 125 l a day
M2_PER_RESIDENT = 45.0
COMMERCIAL_L_PER_M2_DAY = 4.0
BACKGROUND_LEAKAGE = 0.06
LEAK_SHARE = 0.40
PUMP_FACTOR = 1.6
PUMP_ON, PUMP_OFF = 0.35, 0.90  # shares of the tank height
TANK_HOURS = 12.0  # a tank holds this many hours of mean demand when full

# hourly demand factors in local time, 00:00 .. 23:00 (normalised to mean 1 below)
WORKDAY = (
    0.55, 0.42, 0.33, 0.30, 0.36, 0.62, 1.20, 1.60, 1.45, 1.20, 1.10, 1.10,
    1.15, 1.10, 1.00, 0.95, 1.00, 1.15, 1.35, 1.40, 1.30, 1.10, 0.90, 0.70,
)  # fmt: skip
WEEKEND = (
    0.62, 0.48, 0.36, 0.31, 0.32, 0.40, 0.62, 0.95, 1.30, 1.50, 1.45, 1.35,
    1.30, 1.20, 1.05, 1.00, 1.00, 1.10, 1.25, 1.30, 1.25, 1.10, 0.95, 0.78,
)  # fmt: skip

PUMP_PARAMETERS: Mapping[str, Any] = {
    "type": "DataRecord",
    "field": [
        {
            "name": "mode",
            "label": "Pump mode",
            "description": "on or off overrides the level control; auto returns to it",
            "type": "Category",
            "constraint": {"type": "AllowedTokens", "value": ["auto", "on", "off"]},
        }
    ],
}


def demand_factor(local: datetime) -> float:
    """The demand curve at local time ``local``: the hourly factors interpolated
    linearly, each table normalised to a mean of 1."""
    table = WEEKEND if local.weekday() >= 5 else WORKDAY
    hour = local.hour + local.minute / 60
    i = int(hour)
    a, b = table[i], table[(i + 1) % 24]
    return (a + (b - a) * (hour - i)) / (sum(table) / 24)


@dataclass
class _Dma:
    thing: SimThing
    mean: float  # m3/h of demand
    static_bar: float
    rand: random.Random
    leak_from: datetime | None = None
    flow: float = 0.0


@dataclass
class _Tank:
    thing: SimThing
    height: float
    area: float
    pump_rate: float  # m3/h
    dmas: list[_Dma]
    level: float
    pumping: bool = False
    mode: str = "auto"


@dataclass
class _Cso:
    thing: SimThing
    crest: float
    width: float
    chamber_m2: float
    catchment_m2: float
    dwf: float  # mean dry-weather flow, m3/s
    throttle: float  # m3/s at the crest
    rand: random.Random
    volume: float = 0.0
    runoff: float = 0.0  # m3/s reaching the chamber

    @property
    def level(self) -> float:
        return self.volume / self.chamber_m2


class WaterSim:
    """Simulated water utility for ``city`` (see the module docstring)."""

    domain = "water"

    def __init__(
        self,
        city: City,
        seed: int,
        start: datetime,
        *,
        tanks: int = 2,
        csos: int = 2,
        leak_after: timedelta | None = None,
        tz: str = "Europe/Berlin",
    ) -> None:
        if tanks < 1 or csos < 1:
            raise ValueError("a water utility needs at least one tank and one CSO")
        self.city = city
        self.seed = seed
        self.tz = ZoneInfo(tz)
        self.now = ceil_time(start, STEP)  # the first step at or after the start
        self._rain = rng(seed, "water", "rain")
        self._rain_left = 0  # steps of the current rain event
        self._rain_rate = 0.0  # mm/h
        self._dmas = self._make_dmas()
        leaky = rng(seed, "water", "leak")
        after = leak_after if leak_after is not None else timedelta(days=leaky.randint(2, 5))
        self.leaky = leaky.choice(self._dmas).thing.key
        for d in self._dmas:
            if d.thing.key == self.leaky:
                d.leak_from = self.now + after
        self._tanks = self._make_tanks(tanks)
        self._csos = self._make_csos(csos)
        self._gauge = SimThing(
            key="water/rain_gauge/1",
            name="Regenschreiber Zentrum",
            description="Rain gauge of the sewer catchment",
            domain="water",
            kind="rain_gauge",
            location=point(city.centre),
            district=city.area_of(city.centre)[0],
            neighbourhood=city.area_of(city.centre)[1],
            datastreams=("precipitation",),
        )

    # --- DomainSim ----------------------------------------------------------------------

    def things(self) -> Sequence[SimThing]:
        return (
            [t.thing for t in self._tanks]
            + [d.thing for d in self._dmas]
            + [c.thing for c in self._csos]
            + [self._gauge]
        )

    def advance(self, until: datetime) -> list[Event]:
        events: list[Event] = []
        while self.now < until:
            events.extend(self._step(self.now))
            self.now += STEP
        return events

    def task(
        self, thing: str, capability: str, parameters: Mapping[str, Any], at: datetime
    ) -> TaskOutcome:
        tank = next((t for t in self._tanks if t.thing.key == thing), None)
        if tank is None or capability != "pump":
            return TaskOutcome("rejected", f"{thing} has no capability {capability!r}")
        mode = parameters.get("mode")
        if mode not in ("auto", "on", "off"):
            return TaskOutcome("rejected", "mode must be auto, on or off")
        tank.mode = mode
        return TaskOutcome("done", f"pump of {tank.thing.name} set to {mode}")

    # --- one step -----------------------------------------------------------------------

    def _step(self, t: datetime) -> list[Event]:
        local = t.astimezone(self.tz)
        factor = demand_factor(local)
        rain_mm = self._rain_step(local.month)
        out: list[Event] = []
        for d in self._dmas:
            demand = d.mean * factor * (1 + d.rand.gauss(0, 0.04))
            flow = max(0.0, demand) + BACKGROUND_LEAKAGE * d.mean
            if d.leak_from is not None and t >= d.leak_from:
                flow += LEAK_SHARE * d.mean
            d.flow = flow
            bar = d.static_bar - 0.4 * (flow / d.mean) ** 2 + d.rand.gauss(0, 0.02)
            out.append(Reading(d.thing.key, "flow", t, round(flow, 3)))
            out.append(Reading(d.thing.key, "pressure", t, round(bar, 3)))
        for tank in self._tanks:
            out.append(Reading(tank.thing.key, "level", t, round(tank.level, 3)))
            self._tank_step(tank)
        for c in self._csos:
            self._cso_step(c, factor, rain_mm)
            noisy = max(0.0, c.level + c.rand.gauss(0, 0.003))
            out.append(Reading(c.thing.key, "level", t, round(noisy, 3)))
        out.append(Reading(self._gauge.key, "precipitation", t, round(rain_mm, 2)))
        return out

    def _rain_step(self, month: int) -> float:
        """Rain depth (mm) of this step; events start about every 3.5 days, last about
        2 h (at most 12 h) and bring heavier rain in summer."""
        r = self._rain
        summer = month in (5, 6, 7, 8, 9)
        if self._rain_left <= 0:
            if r.random() < 1 / (3.5 * 96):
                self._rain_left = min(48, 1 + int(r.expovariate(1 / 8)))
                self._rain_rate = r.lognormvariate(math.log(2.5 if summer else 1.2), 0.8)
            else:
                return 0.0
        self._rain_left -= 1
        return self._rain_rate * r.uniform(0.3, 1.7) * HOURS_PER_STEP

    def _tank_step(self, tank: _Tank) -> None:
        demand = sum(d.flow for d in tank.dmas)
        if tank.mode == "auto":
            if tank.level < PUMP_ON * tank.height:
                tank.pumping = True
            elif tank.level > PUMP_OFF * tank.height:
                tank.pumping = False
        else:
            tank.pumping = tank.mode == "on"
        inflow = tank.pump_rate if tank.pumping else 0.0
        change = (inflow - demand) * HOURS_PER_STEP / tank.area
        tank.level = min(tank.height, max(0.0, tank.level + change))

    def _cso_step(self, c: _Cso, factor: float, rain_mm: float) -> None:
        rain = rain_mm / 1000 / STEP.total_seconds()  # m/s
        # in dry weather the chamber changes slowly (its time constant is about half an
        # hour); when wet, the weir reacts within a minute and needs short steps
        wet = rain > 0 or c.runoff > 1e-3 or c.level > 0.5 * c.crest
        substeps = SUBSTEPS if wet else 3
        dt = STEP.total_seconds() / substeps
        k = 20 * 60.0  # s, runoff reservoir constant
        for _ in range(substeps):
            c.runoff += (c.catchment_m2 * rain - c.runoff) * dt / k
            inflow = c.dwf * factor + c.runoff
            throttle = c.throttle * math.sqrt(c.level / c.crest)
            spill = weir_flow(c.level - c.crest, c.width, 0.6)
            c.volume = max(0.0, c.volume + (inflow - throttle - spill) * dt)

    # --- set-up -------------------------------------------------------------------------

    def _make_dmas(self) -> list[_Dma]:
        out = []
        for hood in self.city.neighbourhoods:
            houses = [b for b in self.city.buildings if b.neighbourhood == hood.name]
            litres = sum(
                b.floor_area_m2 / M2_PER_RESIDENT * LITRES_PER_RESIDENT_DAY
                if b.use == "residential"
                else b.floor_area_m2 * COMMERCIAL_L_PER_M2_DAY
                for b in houses
            )
            mean = max(1.0, litres / 1000 / 24)
            r = rng(self.seed, "water", "dma", hood.name)
            thing = SimThing(
                key=f"water/dma/{hood.name}",
                name=f"DMA {hood.name}",
                description=f"Inlet of the district metered area {hood.name}",
                domain="water",
                kind="dma",
                location=point(self.city.neighbourhood_centre(hood.name)),
                district=hood.district,
                neighbourhood=hood.name,
                properties={"dma": hood.name, "mean_demand_m3h": round(mean, 1)},
                datastreams=("flow", "pressure"),
            )
            out.append(_Dma(thing, mean, round(r.uniform(4.6, 5.8), 2), r))
        return out

    def _make_tanks(self, n: int) -> list[_Tank]:
        out = []
        names = ("Hochbehälter Nord", "Hochbehälter Süd", "Hochbehälter Ost", "Hochbehälter West")
        for i in range(n):
            dmas = self._dmas[i::n]
            r = rng(self.seed, "water", "tank", i)
            height = r.choice((4.0, 5.0, 6.0))
            mean = sum(d.mean for d in dmas) or 1.0
            area = round(mean * TANK_HOURS / height, 1)
            position = self.city.at(
                (i + 0.5) * self.city.cols * BLOCK_M / n, (self.city.rows - 0.5) * BLOCK_M
            )
            district, hood = self.city.area_of(position)
            name = names[i] if i < len(names) else f"Hochbehälter {i + 1}"
            thing = SimThing(
                key=f"water/tank/{i + 1}",
                name=name,
                description=f"Drinking-water tank supplying {len(dmas)} DMAs",
                domain="water",
                kind="tank",
                location=point(position),
                district=district,
                neighbourhood=hood,
                properties={
                    "height_m": height,
                    "area_m2": area,
                    "supplies": [d.thing.properties["dma"] for d in dmas],
                },
                datastreams=("level",),
                capabilities=(
                    Capability("pump", "Pump", "Switch the filling pump", PUMP_PARAMETERS),
                ),
            )
            level = round(r.uniform(0.5, 0.8) * height, 3)
            out.append(_Tank(thing, height, area, PUMP_FACTOR * mean, dmas, level))
        return out

    def _make_csos(self, n: int) -> list[_Cso]:
        out = []
        districts = self.city.districts
        for i in range(n):
            district = districts[i % len(districts)]
            r = rng(self.seed, "water", "cso", i)
            x = (districts.index(district) + 0.3 + 0.4 * (i // len(districts))) * 8 * BLOCK_M
            position = self.city.at(x, 0.3 * BLOCK_M)
            _, hood = self.city.area_of(position)
            crest = round(r.uniform(1.1, 1.6), 2)
            width = r.choice((3.0, 4.0, 5.0))
            dwf = r.uniform(0.02, 0.04)
            thing = SimThing(
                key=f"water/cso/{i + 1}",
                name=f"Regenüberlauf {district.name}",
                description="Combined sewer overflow chamber with a level sensor at the weir",
                domain="water",
                kind="cso",
                location=point(position),
                district=district.name,
                neighbourhood=hood,
                properties={
                    "crest_m": crest,
                    "weir_width_m": width,
                    "discharge_coefficient": 0.6,
                    "chamber_area_m2": 300.0,
                },
                datastreams=("level",),
            )
            cso = _Cso(thing, crest, width, 300.0, r.uniform(150_000, 250_000), dwf, 4 * dwf, r)
            # start at the dry-weather level, where the throttle takes the mean flow
            cso.volume = crest * (dwf / cso.throttle) ** 2 * cso.chamber_m2
            out.append(cso)
        return out
