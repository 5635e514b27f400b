"""The mobility domain: a ride-pooling EV fleet, traffic counters, car parks and charging
points, with the ride-pooling KPIs of the FGSV working group 1.6.1 (see :mod:`.kpis`).

Definitions are Smart Data Models attribute URIs where one fits (the JSON-LD contexts of
dataModel.Transportation and dataModel.Parking); OCPI 2.2.1 names the charging status
values. The vehicle's state of charge and its trip record have no Smart Data Models
attribute, so they carry a citytwin URN. Units are UCUM codes.
"""

from __future__ import annotations

from datetime import timedelta

from citytwin.domains.base import (
    OM_COUNT,
    OM_OBSERVATION,
    Domain,
    Kpi,
    PropertyTemplate,
    SensorTemplate,
    ThingKind,
    Unit,
)
from citytwin.domains.mobility import compute

SDM_TRANSPORT = "https://smartdatamodels.org/dataModel.Transportation/"
SDM_PARKING = "https://smartdatamodels.org/dataModel.Parking/"
OCPI_STATUS = (
    "https://github.com/ocpi/ocpi/blob/2.2.1/mod_locations.asciidoc#mod_locations_status_enum"
)
CITYTWIN = "urn:citytwin:def:mobility:"

PERCENT = Unit("percent", "%")
KILOMETRE = Unit("kilometre", "km")

PROPERTIES = (
    PropertyTemplate(
        "passengers",
        "Passengers on board",
        SDM_TRANSPORT + "passengerCount",
        "Number of passengers in the vehicle; changes at each pick-up and drop-off.",
        Unit("passengers", "{passengers}"),
        OM_COUNT,
    ),
    PropertyTemplate(
        "soc",
        "State of charge",
        CITYTWIN + "stateOfCharge",
        "Energy left in the traction battery as a share of its usable capacity.",
        PERCENT,
    ),
    PropertyTemplate(
        "odometer",
        "Odometer",
        SDM_TRANSPORT + "mileageFromOdometer",
        "Total distance the vehicle has travelled (cumulative).",
        KILOMETRE,
    ),
    PropertyTemplate(
        "trip",
        "Completed trip",
        CITYTWIN + "trip",
        "One record per completed trip at its drop-off: origin and destination [lon, lat], "
        "direct_km, ride_km, pooled, pickup, dropoff, passengers, origin_district, "
        "origin_neighbourhood.",
        Unit("trip", "{trip}"),
        OM_OBSERVATION,
    ),
    PropertyTemplate(
        "intensity",
        "Traffic intensity",
        SDM_TRANSPORT + "intensity",
        "Vehicles passing the counter per hour, from its 5-minute count (TrafficFlowObserved).",
        Unit("vehicles per hour", "/h"),
    ),
    PropertyTemplate(
        "occupancy",
        "Detector occupancy",
        SDM_TRANSPORT + "occupancy",
        "Share of the 5-minute period the detector was occupied by a vehicle "
        "(TrafficFlowObserved).",
        PERCENT,
    ),
    PropertyTemplate(
        "average_speed",
        "Average vehicle speed",
        SDM_TRANSPORT + "averageVehicleSpeed",
        "Mean speed of the vehicles counted in the 5-minute period (TrafficFlowObserved).",
        Unit("kilometre per hour", "km/h"),
    ),
    PropertyTemplate(
        "occupied_spots",
        "Occupied parking spaces",
        SDM_PARKING + "occupiedSpotNumber",
        "Parking spaces taken in the car park (OffStreetParking).",
        Unit("spaces", "{spaces}"),
        OM_COUNT,
    ),
    PropertyTemplate(
        "available_spots",
        "Available parking spaces",
        SDM_PARKING + "availableSpotNumber",
        "Parking spaces free in the car park (OffStreetParking).",
        Unit("spaces", "{spaces}"),
        OM_COUNT,
    ),
    PropertyTemplate(
        "status",
        "Charging point status",
        OCPI_STATUS,
        "OCPI 2.2.1 EVSE status: AVAILABLE, BLOCKED, CHARGING, INOPERATIVE, OUTOFORDER, "
        "PLANNED, REMOVED, RESERVED or UNKNOWN.",
        Unit("status", "{status}"),
        OM_OBSERVATION,
    ),
    PropertyTemplate(
        "power",
        "Charging power",
        "http://qudt.org/vocab/quantitykind/ActivePower",
        "Power the charging point delivers to the vehicle.",
        Unit("kilowatt", "kW"),
    ),
)

SENSORS = (
    SensorTemplate(
        "fleet_telematics",
        "Fleet telematics unit",
        "On-board unit reporting position, passengers, state of charge, odometer and trips.",
        SDM_TRANSPORT + "FleetVehicle",
    ),
    SensorTemplate(
        "traffic_counter",
        "Induction-loop traffic counter",
        "Counts vehicles, detector occupancy and mean speed in 5-minute periods.",
        SDM_TRANSPORT + "TrafficFlowObserved",
    ),
    SensorTemplate(
        "parking_counter",
        "Car park entry/exit counter",
        "Counts vehicles entering and leaving an off-street car park.",
        SDM_PARKING + "OffStreetParking",
    ),
    SensorTemplate(
        "evse_controller",
        "Charging point controller (OCPI EVSE)",
        "Reports the EVSE status and the charging power.",
        "https://github.com/ocpi/ocpi/blob/2.2.1/mod_locations.asciidoc",
    ),
)

THING_KINDS = (
    ThingKind(
        "vehicle",
        "Ride-pooling vehicle",
        "Battery-electric van of the on-demand ride-pooling fleet (PBefG §44/§50); its "
        "district and neighbourhood are those of its depot.",
        ("passengers", "soc", "odometer", "trip"),
        "fleet_telematics",
    ),
    ThingKind(
        "traffic_counter",
        "Traffic counter",
        "Counting point on a main street (TrafficFlowObserved).",
        ("intensity", "occupancy", "average_speed"),
        "traffic_counter",
        open_data=True,
    ),
    ThingKind(
        "parking",
        "Car park",
        "Off-street car park; its Thing carries the capacity (totalSpotNumber).",
        ("occupied_spots", "available_spots"),
        "parking_counter",
        open_data=True,
    ),
    ThingKind(
        "charging_point",
        "Charging point",
        "Public or fleet EV charging point (one OCPI EVSE).",
        ("status", "power"),
        "evse_controller",
        open_data=True,
    ),
)

HOUR = timedelta(hours=1)

KPIS = (
    Kpi(
        "occupancy",
        "Fleet occupancy",
        "1",
        "Passenger-km / vehicle-km of the fleet based in the area, from odometer differences "
        "weighted by the passengers on board (FGSV AK 1.6.1).",
        compute.occupancy,
        HOUR,
    ),
    Kpi(
        "pooling_rate",
        "Pooling rate",
        "1",
        "Share of the trips starting in the area that shared the vehicle with another trip.",
        compute.pooling_rate,
        HOUR,
    ),
    Kpi(
        "empty_km_share",
        "Empty-km share",
        "1",
        "Km driven without passengers / all km of the fleet based in the area (FGSV AK 1.6.1).",
        compute.empty_km_share,
        HOUR,
    ),
    Kpi(
        "detour_factor",
        "Detour factor",
        "1",
        "Passenger-km ridden / direct passenger-km of the trips starting in the area "
        "(FGSV AK 1.6.1).",
        compute.detour_factor,
        HOUR,
    ),
    Kpi(
        "fleet_soc",
        "Fleet state of charge",
        "%",
        "Mean of each vehicle's latest state of charge in the period; per vehicle; series of "
        "the fleet mean.",
        compute.fleet_soc,
        timedelta(minutes=15),
    ),
    Kpi(
        "charging_utilisation",
        "Charging point utilisation",
        "1",
        "Share of their in-service time the area's charging points were occupied (OCPI status "
        "CHARGING or BLOCKED).",
        compute.charging_utilisation,
        HOUR,
    ),
)

DOMAIN = Domain(
    name="mobility",
    title="Mobility",
    version="1.0.0",
    properties=PROPERTIES,
    sensors=SENSORS,
    thing_kinds=THING_KINDS,
    kpis=KPIS,
)
