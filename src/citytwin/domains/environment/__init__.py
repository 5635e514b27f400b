"""The environment domain: air quality (UBA index) and air temperature (DWD heat days).
See docs/domains/environment.md.

ObservedProperty definitions are attribute URIs of the FIWARE Smart Data Models
AirQualityObserved and WeatherObserved; units are UCUM codes.
"""

from __future__ import annotations

from citytwin.domains.base import Domain, Kpi, PropertyTemplate, SensorTemplate, ThingKind, Unit
from citytwin.domains.environment import kpis

SDM = "https://smartdatamodels.org/"
UG_M3 = Unit("microgram per cubic metre", "ug/m3")
CELSIUS = Unit("degree Celsius", "Cel")


def _pollutant(key: str, name: str, description: str) -> PropertyTemplate:
    return PropertyTemplate(key, name, SDM + f"dataModel.Environment/{key}", description, UG_M3)


PROPERTIES = (
    _pollutant("pm25", "PM2.5", "Mass concentration of particles up to 2.5 µm"),
    _pollutant("pm10", "PM10", "Mass concentration of particles up to 10 µm"),
    _pollutant("no2", "Nitrogen dioxide", "Mass concentration of nitrogen dioxide (NO2)"),
    _pollutant("o3", "Ozone", "Mass concentration of ozone (O3)"),
    _pollutant("so2", "Sulphur dioxide", "Mass concentration of sulphur dioxide (SO2)"),
    PropertyTemplate(
        "air_temperature",
        "Air temperature",
        SDM + "dataModel.Weather/temperature",
        "Air temperature 2 m above ground",
        CELSIUS,
    ),
)

SENSORS = (
    SensorTemplate(
        "aq_monitor",
        "Air quality monitor",
        "Station measuring particulate matter (PM10, PM2.5), NO2 and O3 as hourly means",
        "https://www.umweltbundesamt.de/daten/luft/luftdaten",
    ),
    SensorTemplate(
        "thermometer",
        "Screened thermometer",
        "Air temperature sensor in a radiation screen 2 m above ground",
        "https://www.dwd.de/DE/service/lexikon/Functions/glossar.html",
    ),
)

THING_KINDS = (
    ThingKind(
        "air_quality_station",
        "Air quality station",
        "Measuring station for the UBA air quality index; property station_type "
        "(traffic or background)",
        ("pm25", "pm10", "no2", "o3"),
        "aq_monitor",
        open_data=True,
    ),
    ThingKind(
        "weather_station",
        "Weather station",
        "Air temperature station for heat days",
        ("air_temperature",),
        "thermometer",
        open_data=True,
    ),
)

KPIS = (
    Kpi(
        "air_quality",
        "Air quality index",
        "1",
        "UBA air quality index per station and hour (1 very good .. 5 very poor; the "
        "worst pollutant decides); the value is the worst class in the latest hour",
        kpis.air_quality,
    ),
    Kpi(
        "heat_days",
        "Heat days",
        "d",
        "DWD summer days (Tmax >= 25 Cel), hot days (Tmax >= 30 Cel) and tropical nights "
        "(Tmin >= 20 Cel) per local day; the value is the number of hot days",
        kpis.heat_days,
    ),
)

DOMAIN = Domain(
    name="environment",
    title="Environment",
    version="1.0.0",
    properties=PROPERTIES,
    sensors=SENSORS,
    thing_kinds=THING_KINDS,
    kpis=KPIS,
    settings=kpis.SETTINGS,
)
