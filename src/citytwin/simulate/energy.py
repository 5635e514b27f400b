"""The energy simulator: households with smart meters, rooftop PV, commercial customers,
heat pumps and wallboxes behind the meters, and a transformer station per district.

Every 15 minutes each meter reports its registers (OBIS 1-0:1.8.0 import, 1-0:2.8.0
export for prosumers) and the mean active power of the interval (1-0:16.7.0, import minus
export, equal to the register increments times 4), stamped at the end of the interval.

- Household load follows the BDEW H0 shape for the season and day type, dynamised by the
  day of the year, scaled to the household's annual consumption (1,500-5,000 kWh/a), with
  individual noise and short appliance peaks (see :mod:`energy_profiles` for what of H0
  is verified and what is its documented shape). Commercial customers follow G0.
- Rooftop PV (about 20 % of households, 4-12 kWp) follows the sun's elevation at the
  city centre and a cloud-cover process shared by the city (an AR(1) process with a
  correlation time of about 8 hours).
- Heat pumps (4.5-9 kW) follow the outdoor temperature; wallboxes (11 kW) charge cars
  arriving in the evening. Both are controllable under §14a EnWG: a Task on capability
  ``dim`` (max_kw >= 4.2, duration_min) keeps their power at or below max_kw in every
  interval that overlaps the dimming; energy they could not draw is drawn later.
- A transformer per district carries the district's net load plus its losses
  (no-load 0.6 kW and load losses 6.5 kW x (S/S_r)² at rated power for 630 kVA, scaled
  with the rating; typical values, not taken from a data sheet) and reports active and
  apparent power (load at cos φ 0.95, PV at cos φ 1).
- Data as it arrives in practice: about 2 % of meter messages come 1-10 minutes late and
  1 % 20-90 minutes late (after the next interval's), one household's import register is
  reset to 0 and one household gets a new meter (new serial in ``parameters.meter``,
  registers from 0) within the first two days.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from citytwin.domains.energy import kpis as k
from citytwin.model.values import floor_time
from citytwin.simulate.base import (
    Capability,
    Event,
    Reading,
    SimThing,
    TaskOutcome,
    point,
    rng,
)
from citytwin.simulate.city import Building, City
from citytwin.simulate.energy_profiles import (
    clear_sky_ghi,
    cloud_factor,
    local_time,
    profile_kw,
    solar_elevation,
)

STEP = timedelta(minutes=15)
HOURS = 0.25
MIN_DIM_KW = 4.2  # §14a EnWG: a controllable device is never dimmed below 4.2 kW
KVA_SIZES = (160, 250, 400, 630, 800, 1000)
COS_PHI = 0.95
CLOUD_PHI = math.exp(-STEP / timedelta(hours=8))

DIM = Capability(
    key="dim",
    name="Dim (§14a EnWG)",
    description="Limit the device's power for a while; the grid operator may not limit "
    "it below 4.2 kW",
    parameters={
        "type": "DataRecord",
        "field": [
            {
                "name": "max_kw",
                "label": "Power limit",
                "type": "Quantity",
                "uom": {"code": "kW"},
                "constraint": {"type": "AllowedValues", "interval": [[MIN_DIM_KW, 50.0]]},
            },
            {
                "name": "duration_min",
                "label": "Duration",
                "type": "Quantity",
                "uom": {"code": "min"},
                "optional": True,
                "constraint": {"type": "AllowedValues", "interval": [[1, 1440]]},
            },
        ],
    },
)


@dataclass
class _Meter:
    key: str
    name: str
    kind: str
    building: Building
    annual_kwh: float
    serial: str
    profile: str  # "H0" or "G0"
    import_kwh: float
    export_kwh: float | None  # None without an export register
    pv_key: str | None = None
    peak_kw: float = 0.0
    orientation: float = 1.0
    devices: list[_Device] = field(default_factory=list)


@dataclass
class _Device:
    key: str
    kind: str  # "heat_pump" or "wallbox"
    rated_kw: float
    meter: _Meter
    backlog_kwh: float = 0.0
    limits: list[tuple[datetime, datetime, float]] = field(default_factory=list)
    last_session: date | None = None


class EnergySim:
    """Simulated electricity customers and grid of a :class:`City` (see module docstring).

    Options: ``households`` (300), ``prosumer_share`` (0.2), ``commercial`` (6),
    ``heat_pump_share`` (0.1), ``wallbox_share`` (0.08), ``timezone`` ("Europe/Berlin",
    the clock of the load profiles).
    """

    domain = k.DOMAIN

    def __init__(
        self,
        city: City,
        seed: int,
        start: datetime,
        *,
        households: int = 300,
        prosumer_share: float = 0.2,
        commercial: int = 6,
        heat_pump_share: float = 0.1,
        wallbox_share: float = 0.08,
        timezone: str = "Europe/Berlin",
    ) -> None:
        if households < 2:
            raise ValueError("households must be at least 2 (one reset, one meter swap)")
        self.city = city
        self.seed = seed
        self.tz = ZoneInfo(timezone)
        self.start = floor_time(start, STEP)
        self._time = self.start
        self._started = False
        self._lat, self._lon = city.centre[1], city.centre[0]
        self._cloud = rng(seed, "energy", "cloud", 0).gauss(0, 1)
        self.meters: list[_Meter] = []
        self.devices: dict[str, _Device] = {}
        self._things: list[SimThing] = []
        self._place(households, prosumer_share, commercial, heat_pump_share, wallbox_share)
        r = rng(seed, "energy", "incidents")
        homes = [m for m in self.meters if m.kind == k.HOUSEHOLD]
        reset, swap = r.sample(homes, 2)
        self.reset_meter, self.swap_meter = reset.key, swap.key
        self.reset_at = self.start + STEP * r.randint(24, 96)
        self.swap_at = self.start + STEP * r.randint(96, 190)
        self.new_serial = f"1EMH00{r.randrange(10**8):08d}"

    # --- set-up --------------------------------------------------------------------------

    def _place(
        self, households: int, prosumers: float, commercial: int, hp: float, wb: float
    ) -> None:
        r = rng(self.seed, "energy", "placement")
        homes = [b for b in self.city.buildings if b.use == "residential"]
        shops = [b for b in self.city.buildings if b.use == "commercial"]
        r.shuffle(homes)
        r.shuffle(shops)
        for i in range(households):
            b = homes[i % len(homes)]
            m = _Meter(
                key=f"energy/household/{i}",
                name=f"Household {i + 1:03d}",
                kind=k.HOUSEHOLD,
                building=b,
                annual_kwh=round(r.uniform(1500, 5000)),
                serial=f"1EMH00{r.randrange(10**8):08d}",
                profile="H0",
                import_kwh=round(r.uniform(1000, 40000), 3),
                export_kwh=None,
            )
            if r.random() < prosumers:
                m.pv_key = f"energy/pv/{i}"
                m.peak_kw = round(r.uniform(4, 12), 1)
                m.orientation = r.uniform(0.75, 1.0)
                m.export_kwh = round(r.uniform(0, 20000), 3)
            if r.random() < hp:
                self._device(m, k.HEAT_PUMP, round(r.uniform(4.5, 9.0), 1))
            if r.random() < wb:
                self._device(m, k.WALLBOX, 11.0)
            self.meters.append(m)
        for i in range(min(commercial, len(shops))):
            b = shops[i]
            self.meters.append(
                _Meter(
                    key=f"energy/commercial/{i}",
                    name=f"Commercial {i + 1:02d} ({b.key})",
                    kind=k.COMMERCIAL,
                    building=b,
                    annual_kwh=round(r.uniform(15000, 80000)),
                    serial=f"1ESY11{r.randrange(10**8):08d}",
                    profile="G0",
                    import_kwh=round(r.uniform(50000, 900000), 3),
                    export_kwh=None,
                )
            )
        self._rated: dict[str, int] = {}
        for d in self.city.districts:
            n = sum(1 for m in self.meters if m.building.district == d.name)
            need = 2.0 * n + sum(
                m.annual_kwh / 2500
                for m in self.meters
                if m.kind == k.COMMERCIAL and m.building.district == d.name
            )
            self._rated[d.name] = next((s for s in KVA_SIZES if s >= need), KVA_SIZES[-1])

    def _device(self, m: _Meter, kind: str, rated_kw: float) -> None:
        key = f"energy/{kind}/{m.key.rsplit('/', 1)[1]}"
        dev = _Device(key, kind, rated_kw, m)
        m.devices.append(dev)
        self.devices[key] = dev

    def things(self) -> Sequence[SimThing]:
        if not self._things:
            self._things = self._make_things()
        return self._things

    def _make_things(self) -> list[SimThing]:
        out = []
        for m in self.meters:
            b = m.building
            streams = [k.IMPORT, k.POWER] + ([k.EXPORT] if m.export_kwh is not None else [])
            props: dict[str, Any] = {
                "annual_kwh": m.annual_kwh,
                "meter": m.serial,
                "building": b.key,
                "profile": m.profile,
            }
            if m.kind == k.HOUSEHOLD:
                props["prosumer"] = m.pv_key is not None
            out.append(self._thing(m.key, m.name, m.kind, b, props, streams))
            if m.pv_key is not None:
                props = {"peak_kw": m.peak_kw, "household": m.key, "building": b.key}
                name = f"Rooftop PV {m.name.split()[-1]}"
                out.append(self._thing(m.pv_key, name, k.PV, b, props, [k.PV_POWER]))
            for dev in m.devices:
                label = "Heat pump" if dev.kind == k.HEAT_PUMP else "Wallbox"
                props = {"rated_kw": dev.rated_kw, "household": m.key, "building": b.key}
                name = f"{label} {m.name.split()[-1]}"
                out.append(self._thing(dev.key, name, dev.kind, b, props, [k.POWER], (DIM,)))
        for d in self.city.districts:
            xs = [c[0] for c in d.ring]
            ys = [c[1] for c in d.ring]
            centre = (sum(xs) / len(xs), sum(ys) / len(ys))
            hood = self.city.area_of(centre)[1]
            out.append(
                SimThing(
                    key=f"energy/transformer/{d.name}",
                    name=f"Transformer station {d.name}",
                    description=f"Secondary substation supplying {d.name}",
                    domain=self.domain,
                    kind=k.TRANSFORMER,
                    location=point(centre),
                    district=d.name,
                    neighbourhood=hood,
                    properties={"rated_kva": self._rated[d.name]},
                    datastreams=(k.POWER, k.APPARENT),
                )
            )
        return out

    def _thing(
        self,
        key: str,
        name: str,
        kind: str,
        b: Building,
        props: Mapping[str, Any],
        streams: Sequence[str],
        capabilities: Sequence[Capability] = (),
    ) -> SimThing:
        return SimThing(
            key=key,
            name=name,
            description=f"{name} in building {b.key}",
            domain=self.domain,
            kind=kind,
            location=point(b.centre),
            district=b.district,
            neighbourhood=b.neighbourhood,
            properties=dict(props),
            datastreams=tuple(streams),
            capabilities=tuple(capabilities),
        )

    # --- running -------------------------------------------------------------------------

    def advance(self, until: datetime) -> list[Event]:
        events: list[Event] = []
        if not self._started and self._time < until:
            self._started = True
            events += self._registers(self._time, None)
        while self._time + STEP < until:
            events += self._step(self._time, self._time + STEP)
            self._time += STEP
        return events

    def task(
        self, thing: str, capability: str, parameters: Mapping[str, Any], at: datetime
    ) -> TaskOutcome:
        dev = self.devices.get(thing)
        if dev is None or capability != DIM.key:
            return TaskOutcome("rejected", f"{thing} has no capability {capability!r}")
        max_kw = parameters.get("max_kw")
        duration = parameters.get("duration_min", 120)
        if not isinstance(max_kw, (int, float)) or isinstance(max_kw, bool):
            return TaskOutcome("rejected", "max_kw must be a number of kW")
        if max_kw < MIN_DIM_KW:
            return TaskOutcome("rejected", f"§14a EnWG: max_kw may not be below {MIN_DIM_KW}")
        if not isinstance(duration, (int, float)) or not 1 <= duration <= 1440:
            return TaskOutcome("rejected", "duration_min must be between 1 and 1440")
        end = at + timedelta(minutes=float(duration))
        dev.limits.append((at, end, float(max_kw)))
        return TaskOutcome("accepted", f"limited to {float(max_kw):g} kW until {end.isoformat()}")

    def _registers(self, t: datetime, delay: Mapping[str, timedelta] | None) -> list[Reading]:
        out = []
        for m in self.meters:
            late = delay.get(m.key, timedelta(0)) if delay else timedelta(0)
            params = {"meter": m.serial}
            out.append(Reading(m.key, k.IMPORT, t, round(m.import_kwh, 4), late, params))
            if m.export_kwh is not None:
                out.append(Reading(m.key, k.EXPORT, t, round(m.export_kwh, 4), late, params))
        return out

    def _step(self, t0: datetime, t1: datetime) -> list[Event]:
        r = rng(self.seed, "energy", "step", t1.isoformat())
        mid = t0 + STEP / 2
        local = local_time(mid, self.tz)
        self._cloud = CLOUD_PHI * self._cloud + math.sqrt(1 - CLOUD_PHI**2) * r.gauss(0, 1)
        cover = 1 / (1 + math.exp(-1.6 * self._cloud - 0.4))
        sun = clear_sky_ghi(solar_elevation(self._lat, self._lon, mid)) * cloud_factor(cover)
        temp = _temperature(local) + rng(self.seed, "energy", "temp", local.date()).gauss(0, 2)
        readings: list[Event] = []
        delay: dict[str, timedelta] = {}
        district_p: dict[str, float] = {}
        district_q: dict[str, float] = {}
        for m in self.meters:
            load = self._load(m, local, r)
            for dev in m.devices:
                kw = self._device_kw(dev, t0, t1, local, temp, r)
                load += kw
                readings.append(Reading(dev.key, k.POWER, t1, round(kw, 4)))
            pv = 0.0
            if m.pv_key is not None:
                pv = m.peak_kw * m.orientation * 0.85 * sun / 1000 * r.uniform(0.97, 1.03)
                readings.append(Reading(m.pv_key, k.PV_POWER, t1, round(pv, 4)))
            net = load - pv
            if m.key == self.reset_meter and t1 == self.reset_at:
                m.import_kwh = 0.0
            if m.key == self.swap_meter and t1 == self.swap_at:
                m.serial = self.new_serial
                m.import_kwh = 0.0
                m.export_kwh = 0.0 if m.export_kwh is not None else None
            if net >= 0:
                m.import_kwh += net * HOURS
            elif m.export_kwh is not None:
                m.export_kwh += -net * HOURS
            u = r.random()
            if u < 0.02:
                delay[m.key] = timedelta(minutes=r.uniform(1, 10))
            elif u < 0.03:
                delay[m.key] = timedelta(minutes=r.uniform(20, 90))
            late = delay.get(m.key, timedelta(0))
            readings.append(Reading(m.key, k.POWER, t1, round(net, 4), late))
            area = m.building.district
            district_p[area] = district_p.get(area, 0.0) + net
            district_q[area] = district_q.get(area, 0.0) + load * math.tan(math.acos(COS_PHI))
        readings += self._registers(t1, delay)
        for d in self.city.districts:
            rated = self._rated[d.name]
            p, q = district_p.get(d.name, 0.0), district_q.get(d.name, 0.0)
            s = math.hypot(p, q)
            losses = rated / 630 * (0.6 + 6.5 * (s / rated) ** 2)
            p += losses
            key = f"energy/transformer/{d.name}"
            readings.append(Reading(key, k.POWER, t1, round(p, 3)))
            readings.append(Reading(key, k.APPARENT, t1, round(math.hypot(p, q), 3)))
        return readings

    def _load(self, m: _Meter, local: datetime, r: random.Random) -> float:
        base = profile_kw(m.profile, local, m.annual_kwh)
        if m.profile == "G0":
            return base * math.exp(r.gauss(0, 0.08) - 0.0032)
        # households: 88 % follows the profile with noise, the rest comes as short peaks
        # (an oven, a kettle, a washing machine) about once every six hours
        kw = 0.88 * base * math.exp(r.gauss(0, 0.3) - 0.045)
        if r.random() < 0.04:
            kw += r.uniform(0.5, 1.5) * m.annual_kwh / 3000
        return kw

    def _device_kw(
        self,
        dev: _Device,
        t0: datetime,
        t1: datetime,
        local: datetime,
        temp: float,
        r: random.Random,
    ) -> float:
        if dev.kind == k.HEAT_PUMP:
            if temp < 14:
                share = 0.1 + 0.85 * min(1.0, (14 - temp) / 26)
            else:
                share = 0.1 if local.hour in (6, 7, 18, 19) else 0.02  # hot water
            demand = dev.rated_kw * share * r.uniform(0.9, 1.1) * HOURS
        else:
            demand = 0.0
            day = local.date()
            if dev.last_session != day:
                plan = rng(self.seed, "energy", "session", dev.key, day)
                arrives = plan.uniform(16.5, 20.5)
                need = plan.uniform(6, 25) if plan.random() < 0.5 else 0.0
                if local.hour + local.minute / 60 >= arrives:
                    dev.last_session = day
                    demand = need
        wanted = dev.backlog_kwh + demand
        limit = min([dev.rated_kw] + [kw for a, b, kw in dev.limits if a < t1 and b > t0])
        kw = min(wanted / HOURS, limit)
        dev.backlog_kwh = min(wanted - kw * HOURS, dev.rated_kw * 12)
        return kw


def _temperature(local: datetime) -> float:
    """Typical outdoor temperature (°C) in Central Europe: about 1 °C in mid-January and
    18 °C in mid-July, coldest around 05:00, warmest around 15:00."""
    doy = local.timetuple().tm_yday
    hour = local.hour + local.minute / 60
    annual = 9.5 - 8.5 * math.cos(2 * math.pi * (doy - 20) / 365)
    return annual + 4 * math.cos(2 * math.pi * (hour - 15) / 24)
