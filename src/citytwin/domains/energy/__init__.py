"""The energy domain: household smart meters, rooftop PV, commercial loads, neighbourhood
transformer stations and controllable consumer devices (§14a EnWG), with the KPIs a
municipal utility's grid operator works with.

Conventions (see docs/domains/energy.md):

- A household is one Thing of kind ``household`` for its grid connection meter (smart
  meter gateway): the import register OBIS 1-0:1.8.0, for prosumers the export register
  1-0:2.8.0, and the active power 1-0:16.7.0 (import minus export). Its Datastreams are
  personal data.
- Rooftop PV is a Thing of its own, kind ``pv``, measured by its inverter (generation
  power), and names its household in ``properties.household``. A separate Thing keeps the
  generation figures apart from the personal meter data and lets a building have PV
  without a prosumer meter and the other way round.
- Heat pumps and wallboxes are behind their household's meter; their own ``power``
  Datastreams come from the device and serve control (dimming), not the balance.
- Power values are means over the 15 minutes that *end* at their phenomenonTime (an
  instant), the time of the register reading they belong to, as a meter stamps its
  interval values.

OBIS codes after IEC 62056-61 (value group A 1 = electricity, C 1/2 = import/export,
16 = total active power (import minus export), 9 = apparent power import, D 8 = register,
D 7 = instantaneous value).
"""

from __future__ import annotations

from citytwin.domains.base import Domain, Kpi, PropertyTemplate, SensorTemplate, ThingKind, Unit
from citytwin.domains.energy import kpis

NAME = "energy"
OBIS = "https://w3id.org/obis#"
KWH = Unit("kilowatt hour", "kW.h")
KW = Unit("kilowatt", "kW")
KVA = Unit("kilovolt ampere", "kV.A")

PROPERTIES = (
    PropertyTemplate(
        kpis.IMPORT,
        "Active energy import",
        OBIS + "1-0:1.8.0",
        "Cumulative register of active energy drawn from the grid (+A), all tariffs "
        "(OBIS 1-0:1.8.0)",
        KWH,
    ),
    PropertyTemplate(
        kpis.EXPORT,
        "Active energy export",
        OBIS + "1-0:2.8.0",
        "Cumulative register of active energy fed into the grid (-A), all tariffs (OBIS 1-0:2.8.0)",
        KWH,
    ),
    PropertyTemplate(
        kpis.POWER,
        "Active power",
        OBIS + "1-0:16.7.0",
        "Total active power, import minus export (OBIS 1-0:16.7.0); mean over the "
        "15 minutes ending at the phenomenonTime",
        KW,
    ),
    PropertyTemplate(
        kpis.APPARENT,
        "Apparent power",
        OBIS + "1-0:9.7.0",
        "Total apparent power (OBIS 1-0:9.7.0); mean over the 15 minutes ending at the "
        "phenomenonTime",
        KVA,
    ),
    PropertyTemplate(
        kpis.PV_POWER,
        "PV generation power",
        "https://smartdatamodels.org/dataModel.Energy/activePower",
        "Active power the PV inverter feeds out (generation, before own consumption); "
        "mean over the 15 minutes ending at the phenomenonTime",
        KW,
    ),
)

SENSORS = (
    SensorTemplate(
        "smart_meter_gateway",
        "Smart meter gateway",
        "Intelligent metering system: a bidirectional electricity meter with a smart "
        "meter gateway after BSI TR-03109-1 delivering 15-minute register values",
        "https://www.bsi.bund.de/dok/TR-03109",
    ),
    SensorTemplate(
        "pv_inverter",
        "PV inverter",
        "Inverter of a rooftop photovoltaic system reporting its AC output power",
        "https://smartdatamodels.org/dataModel.Energy/PhotovoltaicMeasurement",
    ),
    SensorTemplate(
        "transformer_monitor",
        "Transformer monitor",
        "Measurement at the low-voltage side of a secondary substation transformer "
        "(active and apparent power)",
        "https://smartdatamodels.org/dataModel.Energy/ThreePhaseAcMeasurement",
    ),
    SensorTemplate(
        "heat_pump",
        "Heat pump",
        "Controllable heat pump (steuerbare Verbrauchseinrichtung, §14a EnWG) with "
        "its own power measurement",
        "https://www.gesetze-im-internet.de/enwg_2005/__14a.html",
    ),
    SensorTemplate(
        "wallbox",
        "Wallbox",
        "Controllable charging point for electric vehicles (§14a EnWG) with its own "
        "power measurement",
        "https://www.gesetze-im-internet.de/enwg_2005/__14a.html",
    ),
)

THING_KINDS = (
    ThingKind(
        kpis.HOUSEHOLD,
        "Household",
        "Grid connection of a household with its smart meter; prosumers (rooftop PV) "
        "also have the export register. Properties: annual_kwh, meter (serial).",
        (kpis.IMPORT, kpis.EXPORT, kpis.POWER),
        "smart_meter_gateway",
        personal=True,
    ),
    ThingKind(
        kpis.PV,
        "Rooftop PV",
        "Rooftop photovoltaic system of a household (properties: peak_kw, household)",
        (kpis.PV_POWER,),
        "pv_inverter",
    ),
    ThingKind(
        kpis.COMMERCIAL,
        "Commercial customer",
        "Grid connection of a shop or office, standard load profile G0 "
        "(properties: annual_kwh, profile)",
        (kpis.IMPORT, kpis.POWER),
        "smart_meter_gateway",
    ),
    ThingKind(
        kpis.TRANSFORMER,
        "Transformer station",
        "Neighbourhood secondary substation (properties: rated_kva)",
        (kpis.POWER, kpis.APPARENT),
        "transformer_monitor",
    ),
    ThingKind(
        kpis.HEAT_PUMP,
        "Heat pump",
        "Heat pump behind a household's meter, dimmable under §14a EnWG "
        "(properties: rated_kw, household)",
        (kpis.POWER,),
        "heat_pump",
    ),
    ThingKind(
        kpis.WALLBOX,
        "Wallbox",
        "EV charging point behind a household's meter, dimmable under §14a EnWG "
        "(properties: rated_kw, household)",
        (kpis.POWER,),
        "wallbox",
    ),
)

KPIS = (
    Kpi(
        "balance",
        "Energy balance",
        "1",
        "Consumption and generation of the area per 15 minutes; the value is the "
        "autarky rate (locally generated energy consumed locally / consumption, summed "
        "per 15-minute interval), with the period-balanced figures beside it",
        kpis.balance,
    ),
    Kpi(
        "autarky",
        "Autarky rate",
        "1",
        "Share of the area's consumption covered by generation in the same 15-minute "
        "interval (values: balanced, the figure over the whole period)",
        kpis.autarky,
    ),
    Kpi(
        "self_consumption",
        "Self-consumption rate",
        "1",
        "Share of the area's generation consumed in the area in the same 15-minute "
        "interval (values: balanced, the figure over the whole period)",
        kpis.self_consumption,
    ),
    Kpi(
        "consumption",
        "Consumption per meter",
        "kW.h",
        "Energy drawn per meter point from its import register over the period; "
        "robust to late and out-of-order readings, duplicates, resets and meter swaps",
        kpis.consumption,
    ),
    Kpi(
        "transformer_loading",
        "Transformer loading",
        "1",
        "Per transformer station: peak load (maximum 15-minute mean power), peak "
        "loading S/S_r and load factor (mean / peak); the value is the highest loading",
        kpis.transformer_loading,
    ),
    Kpi(
        "load_profile",
        "Load profile",
        "kW",
        "Mean consumption power of the area per 15-minute slot of the day over the "
        "period (option tz: IANA time zone of the slots, default UTC); the value is "
        "the peak slot",
        kpis.load_profile,
    ),
)

DOMAIN = Domain(
    name=NAME,
    title="Energy",
    version="1.0.0",
    properties=PROPERTIES,
    sensors=SENSORS,
    thing_kinds=THING_KINDS,
    kpis=KPIS,
)
