"""The simulated environment: air-quality stations and weather stations.

- Air-quality stations (3 to 5, across the districts; traffic and background sites)
  report hourly means of PM10, PM2.5, NO2 and O3 in µg/m³ at every full hour. NO2 and
  PM follow the traffic of the local day (rush hours on workdays, less at weekends) over
  a regional background; regional episodes of a few days (more often in winter) raise
  PM and NO2 several-fold, so that the UBA classes from "good" to "poor" or worse all
  occur. Ozone builds up on sunny summer afternoons, more so in warm spells.
- Weather stations (one per district) report the air temperature every 15 minutes: a
  seasonal level from the day of the year, a daily cycle peaking at 15:00 local time,
  slow weather anomalies, warm spells of 3 to 10 days (mostly May to September) and an
  urban heat island in the first district, warmest at night. Summer backfills have
  summer days, hot days and tropical nights.
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
from citytwin.simulate.base import Event, Reading, SimThing, TaskOutcome, point, rng
from citytwin.simulate.city import City

STEP = timedelta(minutes=15)
STEPS_PER_DAY = 96

# traffic by local hour, workdays and weekends (1 = daily mean of a workday)
TRAFFIC_WORKDAY = (
    0.15, 0.10, 0.08, 0.10, 0.25, 0.70, 1.40, 1.90, 1.70, 1.20, 1.00, 1.00,
    1.05, 1.05, 1.10, 1.30, 1.70, 1.80, 1.50, 1.10, 0.80, 0.60, 0.40, 0.25,
)  # fmt: skip
TRAFFIC_WEEKEND = (
    0.25, 0.18, 0.12, 0.10, 0.12, 0.20, 0.35, 0.50, 0.70, 0.90, 1.00, 1.05,
    1.05, 1.00, 1.00, 1.00, 1.00, 0.95, 0.85, 0.70, 0.55, 0.45, 0.35, 0.28,
)  # fmt: skip


def summerness(t: datetime) -> float:
    """0 in mid-January, 1 in mid-July."""
    doy = t.timetuple().tm_yday
    return (1 - math.cos(2 * math.pi * (doy - 15) / 365.25)) / 2


@dataclass
class _Station:
    thing: SimThing
    traffic_site: bool
    rand: random.Random
    pm25_share: float


@dataclass
class _Weather:
    thing: SimThing
    heat_island: float  # °C added at night
    rand: random.Random


class EnvironmentSim:
    """Simulated air quality and temperature for ``city`` (see the module docstring)."""

    domain = "environment"

    def __init__(
        self,
        city: City,
        seed: int,
        start: datetime,
        *,
        stations: int = 4,
        tz: str = "Europe/Berlin",
    ) -> None:
        if not 1 <= stations <= len(city.neighbourhoods):
            raise ValueError(f"stations must be between 1 and {len(city.neighbourhoods)}")
        self.city = city
        self.seed = seed
        self.tz = ZoneInfo(tz)
        self.now = ceil_time(start, STEP)
        self._regional = rng(seed, "environment", "regional")
        self._weather_rng = rng(seed, "environment", "weather")
        self._pm_log = 0.0  # regional PM anomaly (log scale)
        self._episode_left = 0
        self._episode = 1.0
        self._spell_left = 0
        self._spell_peak = 0.0
        self._spell_length = 1
        self._anomaly = 0.0  # °C, slow weather
        self._stations = self._make_stations(stations)
        self._weather = self._make_weather()

    # --- DomainSim ----------------------------------------------------------------------

    def things(self) -> Sequence[SimThing]:
        return [s.thing for s in self._stations] + [w.thing for w in self._weather]

    def advance(self, until: datetime) -> list[Event]:
        events: list[Event] = []
        while self.now < until:
            events.extend(self._step(self.now))
            self.now += STEP
        return events

    def task(
        self, thing: str, capability: str, parameters: Mapping[str, Any], at: datetime
    ) -> TaskOutcome:
        return TaskOutcome("rejected", f"{thing} takes no tasks")

    # --- one step -----------------------------------------------------------------------

    def _step(self, t: datetime) -> list[Event]:
        local = t.astimezone(self.tz)
        season = summerness(local)
        self._regional_step(local, season)
        out: list[Event] = []
        spell = self._spell()
        hour = local.hour + local.minute / 60
        if local.minute == 0:
            for s in self._stations:
                out.extend(self._air(s, t, local, season, spell))
        for w in self._weather:
            out.append(
                Reading(
                    w.thing.key,
                    "air_temperature",
                    t,
                    self._temperature(w, local, hour, season, spell),
                )
            )
        return out

    def _regional_step(self, local: datetime, season: float) -> None:
        r = self._regional
        self._pm_log = 0.985 * self._pm_log + r.gauss(0, 0.05)
        if self._episode_left > 0:
            self._episode_left -= 1
            if self._episode_left == 0:
                self._episode = 1.0
        elif r.random() < (1.6 - season) / (7 * STEPS_PER_DAY):
            self._episode_left = r.randint(24 * 4, 72 * 4)
            self._episode = r.uniform(1.8, 3.6)
        w = self._weather_rng
        self._anomaly = 0.998 * self._anomaly + w.gauss(0, 0.07)
        if self._spell_left > 0:
            self._spell_left -= 1
        elif w.random() < season**2 / (14 * STEPS_PER_DAY):
            self._spell_length = self._spell_left = w.randint(3, 10) * STEPS_PER_DAY
            self._spell_peak = w.uniform(6.0, 10.0) * season

    def _spell(self) -> float:
        """The warm spell's anomaly now (°C): rising over its first day, falling over its
        last."""
        if self._spell_left <= 0:
            return 0.0
        done = self._spell_length - self._spell_left
        ramp = min(1.0, done / STEPS_PER_DAY, self._spell_left / STEPS_PER_DAY)
        return self._spell_peak * ramp

    def _air(
        self, s: _Station, t: datetime, local: datetime, season: float, spell: float
    ) -> list[Event]:
        r = s.rand
        table = TRAFFIC_WEEKEND if local.weekday() >= 5 else TRAFFIC_WORKDAY
        traffic = table[local.hour]
        winter = 1 - season
        local_no2 = (32.0 if s.traffic_site else 8.0) * traffic
        no2 = (10 + 8 * winter + local_no2) * math.sqrt(self._episode) * r.lognormvariate(0, 0.12)
        regional_pm = math.exp(self._pm_log) * self._episode
        pm10 = (11 + 5 * winter) * regional_pm + (5.0 if s.traffic_site else 1.5) * traffic
        pm10 *= r.lognormvariate(0, 0.12)
        pm25 = pm10 * s.pm25_share * r.lognormvariate(0, 0.05)
        sun = max(0.0, math.cos(2 * math.pi * (local.hour - 15) / 24))
        o3 = (25 + 75 * sun * (0.25 + 0.75 * season)) * (1 + spell / 20)
        o3 = max(2.0, o3 - 0.35 * local_no2) * r.lognormvariate(0, 0.1)
        return [
            Reading(s.thing.key, key, t, round(value, 1))
            for key, value in (("pm25", pm25), ("pm10", pm10), ("no2", no2), ("o3", o3))
        ]

    def _temperature(
        self, w: _Weather, local: datetime, hour: float, season: float, spell: float
    ) -> float:
        level = 9.5 - 9.0 * math.cos(2 * math.pi * (local.timetuple().tm_yday - 15) / 365.25)
        amplitude = 3.0 + 3.0 * season
        cycle = math.cos(2 * math.pi * (hour - 15) / 24)  # +1 at 15:00, -1 at 03:00
        island = w.heat_island * (1 - cycle) / 2  # strongest at night
        value = level + amplitude * cycle + self._anomaly + spell + island
        return round(value + w.rand.gauss(0, 0.1), 2)

    # --- set-up -------------------------------------------------------------------------

    def _make_stations(self, n: int) -> list[_Station]:
        hoods = self.city.neighbourhoods
        out = []
        for i in range(n):
            hood = hoods[i * len(hoods) // n]
            traffic_site = i % 2 == 0
            r = rng(self.seed, "environment", "aq", i)
            kind = "Verkehr" if traffic_site else "Hintergrund"
            thing = SimThing(
                key=f"environment/aq/{i + 1}",
                name=f"Luftmessstation {hood.name} ({kind})",
                description="Air quality station for the UBA air quality index",
                domain="environment",
                kind="air_quality_station",
                location=point(self.city.neighbourhood_centre(hood.name)),
                district=hood.district,
                neighbourhood=hood.name,
                properties={"station_type": "traffic" if traffic_site else "background"},
                datastreams=("pm25", "pm10", "no2", "o3"),
            )
            out.append(_Station(thing, traffic_site, r, r.uniform(0.6, 0.72)))
        return out

    def _make_weather(self) -> list[_Weather]:
        out = []
        for i, district in enumerate(self.city.districts):
            hood = next(h for h in self.city.neighbourhoods if h.district == district.name)
            centre = self.city.neighbourhood_centre(hood.name)
            position = (centre[0] + 0.001, centre[1] + 0.001)
            thing = SimThing(
                key=f"environment/weather/{i + 1}",
                name=f"Wetterstation {district.name}",
                description="Air temperature 2 m above ground",
                domain="environment",
                kind="weather_station",
                location=point(position),
                district=district.name,
                neighbourhood=hood.name,
                datastreams=("air_temperature",),
            )
            r = rng(self.seed, "environment", "weather", i)
            out.append(_Weather(thing, 1.5 if i == 0 else 0.3, r))
        return out
