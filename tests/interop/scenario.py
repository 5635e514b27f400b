"""What every interop scenario shares: the station, its unit, and the observation times."""

from __future__ import annotations

import datetime as dt

from tests.support import OM_MEASUREMENT

N_OBS = 250
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
THING_NAME = "Weather station 1"
COORDS = [8.4259, 49.0151]
UNIT = {
    "name": "degree Celsius",
    "symbol": "degC",
    "definition": "http://www.qudt.org/vocab/unit/DEG_C",
}

__all__ = [
    "COORDS",
    "N_OBS",
    "OM_MEASUREMENT",
    "T0",
    "THING_NAME",
    "UNIT",
    "iso_z",
    "obs_time",
    "parse_time",
]


def obs_time(i: int) -> dt.datetime:
    """The phenomenon time of the i-th Observation of a scenario."""
    return T0 + dt.timedelta(minutes=i)


def iso_z(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)
