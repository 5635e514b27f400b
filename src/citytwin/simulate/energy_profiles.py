"""Load profiles, sun position and sky for the energy simulator.

Standard load profiles (BDEW/VDEW, "Repräsentative VDEW-Lastprofile", 1999): H0 for
households, G0 for commerce, each for three seasons — winter 1 Nov-20 Mar, summer
15 May-14 Sep, transition otherwise — and three day types: workday, Saturday, Sunday
(nationwide fixed public holidays count as Sundays). H0 is dynamised by the day of the
year t (1 January = 1):

    F(t) = -3.92e-10 t^4 + 3.2e-7 t^3 - 7.02e-5 t^2 + 2.1e-3 t + 1.24

The coefficients were checked against three independent implementations of the BDEW
method (oemof demandlib, the OSH simulation's H0 profile, and a VDEW profile analysis);
demandlib uses -3.916649251e-10 for the first, which only corrects rounding.

The published profiles are 96 quarter-hour values per season and day type. They are not
reproduced here: the hourly tables below give the documented shape (night minimum around
04:00, morning rise, midday peak that is highest on Sundays, evening peak that is highest
in winter; winter Saturday starts at about 71 W per 1,000 kWh/a as the published table
does) and are interpolated to quarter hours. They are scaled so that one calendar year
sums to exactly the annual consumption, as the BDEW normalisation to 1,000,000 kWh/a does.

Sun: solar elevation after NOAA's "General Solar Position Calculations" (Spencer's 1971
Fourier series for declination and equation of time). Clear-sky global horizontal
irradiance after Haurwitz (1945): 1098 cos z exp(-0.057 / cos z) W/m². Clouds reduce it
after Kasten & Czeplak (1980): G = G_clear (1 - 0.75 (N/8)^3.4), N the cover in oktas.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

WINTER, SUMMER, TRANSITION = "winter", "summer", "transition"
WORKDAY, SATURDAY, SUNDAY = "workday", "saturday", "sunday"
FIXED_HOLIDAYS = ((1, 1), (5, 1), (10, 3), (12, 25), (12, 26))  # nationwide in Germany

# W per 1,000 kWh/a at each full hour (local time), before normalisation
H0: dict[tuple[str, str], tuple[float, ...]] = {
    (WINTER, WORKDAY): (
        67, 52, 43, 40, 40, 45, 75, 110, 125, 125, 125, 135,
        150, 140, 125, 115, 125, 165, 200, 210, 190, 165, 140, 100,
    ),
    (WINTER, SATURDAY): (
        71, 56, 46, 41, 40, 42, 55, 80, 120, 150, 165, 175,
        180, 165, 145, 135, 140, 170, 200, 205, 185, 165, 145, 110,
    ),
    (WINTER, SUNDAY): (
        88, 68, 52, 45, 42, 42, 47, 60, 95, 140, 170, 200,
        215, 180, 145, 130, 135, 165, 195, 200, 180, 160, 130, 95,
    ),
    (SUMMER, WORKDAY): (
        75, 57, 47, 42, 41, 45, 65, 90, 100, 105, 108, 118,
        135, 125, 110, 100, 100, 110, 125, 130, 130, 140, 130, 100,
    ),
    (SUMMER, SATURDAY): (
        80, 62, 50, 44, 42, 43, 52, 70, 100, 125, 135, 145,
        150, 135, 120, 112, 112, 120, 130, 132, 130, 140, 135, 108,
    ),
    (SUMMER, SUNDAY): (
        92, 72, 56, 47, 43, 42, 45, 55, 85, 120, 145, 165,
        175, 150, 120, 108, 108, 118, 128, 132, 130, 138, 125, 95,
    ),
}  # fmt: skip
for _day in (WORKDAY, SATURDAY, SUNDAY):
    H0[(TRANSITION, _day)] = tuple(
        (w + s) / 2 for w, s in zip(H0[(WINTER, _day)], H0[(SUMMER, _day)], strict=True)
    )

_G0_DAY: dict[str, tuple[float, ...]] = {
    WORKDAY: (
        55, 54, 53, 53, 54, 58, 70, 110, 160, 185, 190, 190,
        180, 175, 180, 180, 170, 150, 120, 95, 80, 70, 62, 58,
    ),
    SATURDAY: (
        55, 54, 53, 53, 53, 54, 58, 70, 90, 120, 130, 130,
        120, 100, 80, 70, 65, 62, 60, 58, 57, 56, 55, 55,
    ),
    SUNDAY: (
        55, 54, 53, 53, 53, 53, 54, 55, 57, 60, 62, 63,
        63, 62, 60, 59, 58, 58, 58, 57, 57, 56, 55, 55,
    ),
}  # fmt: skip
_G0_SEASON = {WINTER: 1.1, TRANSITION: 1.0, SUMMER: 0.9}
G0 = {(s, d): tuple(v * f for v in _G0_DAY[d]) for s, f in _G0_SEASON.items() for d in _G0_DAY}


def season(day: date) -> str:
    md = (day.month, day.day)
    if md >= (11, 1) or md <= (3, 20):
        return WINTER
    if (5, 15) <= md <= (9, 14):
        return SUMMER
    return TRANSITION


def day_type(day: date) -> str:
    if day.weekday() == 6 or (day.month, day.day) in FIXED_HOLIDAYS:
        return SUNDAY
    return SATURDAY if day.weekday() == 5 else WORKDAY


def dynamisation(day: date) -> float:
    """The BDEW H0 dynamisation factor F(t) of the day of the year."""
    t = day.timetuple().tm_yday
    return -3.92e-10 * t**4 + 3.2e-7 * t**3 - 7.02e-5 * t**2 + 2.1e-3 * t + 1.24


def _shape(table: dict[tuple[str, str], tuple[float, ...]], local: datetime) -> float:
    """The table's value at local clock time, linear between the hourly values (each
    taken as the mean of its hour, so placed at its half hour)."""
    values = table[(season(local.date()), day_type(local.date()))]
    h = local.hour + local.minute / 60 + local.second / 3600 - 0.5
    i = math.floor(h)
    frac = h - i
    return values[i % 24] * (1 - frac) + values[(i + 1) % 24] * frac


def _raw(profile: str, local: datetime) -> float:
    if profile == "H0":
        return _shape(H0, local) * dynamisation(local.date())
    return _shape(G0, local)


@lru_cache(maxsize=16)
def _year_scale(profile: str, year: int) -> float:
    """Factor that makes a whole calendar year of the profile sum to 1,000 kWh."""
    t = datetime(year, 1, 1, 0, 7, 30)
    step = timedelta(minutes=15)
    total_wh = 0.0
    while t.year == year:
        total_wh += _raw(profile, t) * 0.25
        t += step
    return 1_000_000 / total_wh


def profile_kw(profile: str, local: datetime, annual_kwh: float) -> float:
    """Mean power (kW) of a customer with ``annual_kwh`` on profile H0 or G0 at ``local``
    (naive local clock time; the middle of the quarter hour to get its mean)."""
    watts_per_1000 = _raw(profile, local) * _year_scale(profile, local.year)
    return watts_per_1000 * annual_kwh / 1_000_000


def local_time(t: datetime, tz: ZoneInfo) -> datetime:
    return t.astimezone(tz).replace(tzinfo=None)


def solar_elevation(lat: float, lon: float, t: datetime) -> float:
    """Solar elevation in degrees at ``lat``/``lon`` and UTC time ``t`` (NOAA)."""
    doy = t.timetuple().tm_yday
    hour = t.hour + t.minute / 60 + t.second / 3600
    g = 2 * math.pi / 365 * (doy - 1 + (hour - 12) / 24)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    true_solar_min = hour * 60 + eqtime + 4 * lon
    hour_angle = math.radians(true_solar_min / 4 - 180)
    phi = math.radians(lat)
    cos_zenith = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(
        hour_angle
    )
    return 90 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zenith))))


def clear_sky_ghi(elevation_deg: float) -> float:
    """Clear-sky global horizontal irradiance (W/m²) after Haurwitz."""
    cos_z = math.sin(math.radians(elevation_deg))
    if cos_z <= 0.01:
        return 0.0
    return 1098 * cos_z * math.exp(-0.057 / cos_z)


def cloud_factor(cover: float) -> float:
    """Share of clear-sky irradiance that reaches the ground at cloud ``cover`` (0..1)."""
    clamped = max(0.0, min(1.0, cover))
    return 1 - 0.75 * math.pow(clamped, 3.4)
