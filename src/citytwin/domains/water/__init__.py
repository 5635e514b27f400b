"""The water domain: drinking-water supply (tanks, district metered areas) and
disposal (combined sewer overflows, rain). See docs/domains/water.md.

ObservedProperty definitions are attribute URIs of the FIWARE Smart Data Models
(WaterObserved, WaterConsumptionObserved, WeatherObserved); units are UCUM codes.
"""

from __future__ import annotations

from citytwin.domains.base import Domain, Kpi, PropertyTemplate, SensorTemplate, ThingKind, Unit
from citytwin.domains.water import kpis

SDM = "https://smartdatamodels.org/"

METRE = Unit("metre", "m")
FLOW = Unit("cubic metre per hour", "m3/h")
BAR = Unit("bar", "bar")
MILLIMETRE = Unit("millimetre", "mm")

PROPERTIES = (
    PropertyTemplate(
        "level",
        "Water level",
        SDM + "dataModel.Environment/height",
        "Height of the water surface above the floor of a tank or an overflow chamber",
        METRE,
    ),
    PropertyTemplate(
        "flow",
        "Water flow",
        SDM + "dataModel.WaterConsumption/flow",
        "Volume flow into a district metered area (mean over the reporting interval)",
        FLOW,
    ),
    PropertyTemplate(
        "pressure",
        "Water pressure",
        SDM + "dataModel.Environment/pressure",
        "Gauge pressure at the inlet of a district metered area",
        BAR,
    ),
    PropertyTemplate(
        "precipitation",
        "Precipitation",
        SDM + "dataModel.Weather/precipitation",
        "Rain depth fallen in the reporting interval",
        MILLIMETRE,
    ),
)

SENSORS = (
    SensorTemplate(
        "level_probe",
        "Hydrostatic level probe",
        "Submersible pressure transducer reporting the water level",
        "https://en.wikipedia.org/wiki/Level_sensor",
    ),
    SensorTemplate(
        "dma_meter",
        "DMA inlet station",
        "Electromagnetic flow meter and pressure transmitter at the inlet of a district "
        "metered area",
        "https://en.wikipedia.org/wiki/Magnetic_flow_meter",
    ),
    SensorTemplate(
        "rain_gauge",
        "Tipping-bucket rain gauge",
        "Rain gauge reporting the rain depth per interval",
        "https://en.wikipedia.org/wiki/Rain_gauge",
    ),
)

THING_KINDS = (
    ThingKind(
        "tank",
        "Water tank",
        "Drinking-water tank filled by pumps and drawn by demand; properties height_m "
        "(full level, m) and area_m2 (floor area, m²)",
        ("level",),
        "level_probe",
    ),
    ThingKind(
        "dma",
        "District metered area",
        "Inlet of a district metered area; property dma (its name)",
        ("flow", "pressure"),
        "dma_meter",
    ),
    ThingKind(
        "cso",
        "Combined sewer overflow",
        "Overflow structure with a level sensor at the weir; properties crest_m (crest "
        "height above the chamber floor, m), weir_width_m (m) and optionally "
        "discharge_coefficient (C_d of the Poleni formula, default 0.6)",
        ("level",),
        "level_probe",
        open_data=True,
    ),
    ThingKind(
        "rain_gauge",
        "Rain gauge",
        "Rain gauge in the sewer catchment",
        ("precipitation",),
        "rain_gauge",
        open_data=True,
    ),
)

KPIS = (
    Kpi(
        "night_flow",
        "Minimum night flow",
        "1",
        "Minimum night flow (02:00-04:00 local time) per district metered area and "
        "whether it suggests a leak; the value is the number of DMAs suspected",
        kpis.night_flow,
    ),
    Kpi(
        "cso_events",
        "Combined sewer overflows",
        "1",
        "Overflow events per structure with duration and volume (Poleni weir formula); "
        "overflow days scaled to a year; the value is the number of events",
        kpis.cso_events,
    ),
    Kpi(
        "tank_levels",
        "Tank levels",
        "1",
        "Latest level and fill ratio per tank; the value is the lowest fill ratio",
        kpis.tank_levels,
    ),
)

DOMAIN = Domain(
    name="water",
    title="Water",
    version="1.0.0",
    properties=PROPERTIES,
    sensors=SENSORS,
    thing_kinds=THING_KINDS,
    kpis=KPIS,
    settings=kpis.SETTINGS,
)
