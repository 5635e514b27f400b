"""Conformance of the geospatial ``$filter`` functions (OGC 18-088 §9.3.3.5.2, FROST GeoTests).

Coordinates are WGS 84 longitude/latitude treated as planar values: ``geo.distance`` and
``geo.length`` are in degrees. Every test asserts the exact set of matching entities.

Locations of the module's store (name: geometry)::

    p54 p53 p52 p51     points (8 54) (8 53) (8 52) (8 51)
    edge                point (9 52.5), on the boundary of "square"
    line1               (5 52)-(5 53), length 1
    line2               (5 52)-(6 53), length sqrt(2)
    line3               (4 52)-(8 52), length 4, ends on p52 inside "square"
    square              POLYGON((7 51.5, 9 51.5, 9 53.5, 7 53.5, 7 51.5))
    ell                 L-shaped POLYGON((0 0, 4 0, 4 1, 1 1, 1 4, 0 4, 0 0))
    in_ell              point (0.5 3), inside "ell"
    notch               point (3 2.5), inside the bounding box of "ell" but outside it
    ring, hole          points (10.5 2) and (12 2): in the ring and in the hole of DONUT
    legacy              point (20 20) with the 1.0 encodingType application/vnd.geo+json
    text                encodingType text/plain, location "POINT (8 54)" (not a geometry)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from tests.support import Client, datastream, thing

SQ = "POLYGON((7 51.5, 9 51.5, 9 53.5, 7 53.5, 7 51.5))"
SQ_GEOJSON = '{"type":"Polygon","coordinates":[[[7,51.5],[9,51.5],[9,53.5],[7,53.5],[7,51.5]]]}'
ELL = "POLYGON((0 0, 4 0, 4 1, 1 1, 1 4, 0 4, 0 0))"
TRI = "POLYGON((2 2, 3.5 2, 3.5 3.5, 2 2))"  # in the empty corner of ELL's bounding box
DONUT = "POLYGON((10 0, 14 0, 14 4, 10 4, 10 0), (11 1, 13 1, 13 3, 11 3, 11 1))"

GEOMETRIES: dict[str, dict[str, Any]] = {
    "p54": {"type": "Point", "coordinates": [8, 54]},
    "p53": {"type": "Point", "coordinates": [8, 53]},
    "p52": {"type": "Point", "coordinates": [8, 52]},
    "p51": {"type": "Point", "coordinates": [8, 51]},
    "edge": {"type": "Point", "coordinates": [9, 52.5]},
    "line1": {"type": "LineString", "coordinates": [[5, 52], [5, 53]]},
    "line2": {"type": "LineString", "coordinates": [[5, 52], [6, 53]]},
    "line3": {"type": "LineString", "coordinates": [[4, 52], [8, 52]]},
    "square": {
        "type": "Polygon",
        "coordinates": [[[7, 51.5], [9, 51.5], [9, 53.5], [7, 53.5], [7, 51.5]]],
    },
    "ell": {
        "type": "Polygon",
        "coordinates": [[[0, 0], [4, 0], [4, 1], [1, 1], [1, 4], [0, 4], [0, 0]]],
    },
    "in_ell": {"type": "Point", "coordinates": [0.5, 3]},
    "notch": {"type": "Point", "coordinates": [3, 2.5]},
    "ring": {"type": "Point", "coordinates": [10.5, 2]},
    "hole": {"type": "Point", "coordinates": [12, 2]},
    "legacy": {"type": "Point", "coordinates": [20, 20]},
}
GEOJSON_NAMES = sorted(GEOMETRIES)


def enc(expr: str) -> str:
    return quote(expr, safe="")


def names(c: Client, entity_set: str, expr: str) -> list[str]:
    """Names of the matched entities, sorted; duplicates are kept so that they fail."""
    return sorted(e["name"] for e in c.values(f"{entity_set}?$filter={enc(expr)}"))


def but(*excluded: str) -> list[str]:
    return sorted(n for n in GEOJSON_NAMES if n not in excluded)


@dataclass
class GeoWorld:
    c: Client
    observations: dict[str, int]  # FeatureOfInterest name -> Observation id

    def obs(self, expr: str) -> list[str]:
        by_id = {v: k for k, v in self.observations.items()}
        got = self.c.values(f"Observations?$filter={enc(expr)}")
        return sorted(by_id[e["@iot.id"]] for e in got)


@pytest.fixture(scope="module")
def geo(new_client: Callable[..., Client]) -> Iterator[GeoWorld]:
    c = new_client("geo")
    try:
        locs: dict[str, int] = {}
        for name, geometry in GEOMETRIES.items():
            encoding = "application/vnd.geo+json" if name == "legacy" else "application/geo+json"
            locs[name] = c.create(
                "Locations",
                {
                    "name": name,
                    "description": f"{name} location",
                    "encodingType": encoding,
                    "location": geometry,
                },
            )
        locs["text"] = c.create(
            "Locations",
            {
                "name": "text",
                "description": "a location as free text",
                "encodingType": "text/plain",
                "location": "POINT (8 54)",
            },
        )
        thing_ids: dict[str, int] = {}
        for thing_name, loc_names in {
            "T-p52": ["p52"],
            "T-p54": ["p54"],
            "T-square": ["square"],
            "T-text": ["text"],
            "T-multi": ["p51", "p53"],
            "T-ell": ["ell", "notch"],
        }.items():
            thing_ids[thing_name] = c.create(
                "Things",
                thing(thing_name, Locations=[{"@iot.id": locs[n]} for n in loc_names]),
            )
        ds = c.create("Datastreams", datastream("Geo DS", Thing={"@iot.id": thing_ids["T-p52"]}))
        features = {
            "F-p52": {"type": "Point", "coordinates": [8, 52]},
            "F-p54": {"type": "Point", "coordinates": [8, 54]},
            "F-ell": GEOMETRIES["ell"],
            "F-notch": {"type": "Point", "coordinates": [3, 2.5]},
        }
        observations: dict[str, int] = {}
        for i, (fname, feature) in enumerate(features.items(), start=1):
            foi = c.create(
                "FeaturesOfInterest",
                {
                    "name": fname,
                    "description": f"{fname} feature",
                    "encodingType": "application/geo+json",
                    "feature": feature,
                },
            )
            observations[fname] = c.create(
                "Observations",
                {
                    "result": i,
                    "phenomenonTime": "2024-03-01T00:00:00Z",
                    "Datastream": {"@iot.id": ds},
                    "FeatureOfInterest": {"@iot.id": foi},
                },
            )
        text_foi = c.create(
            "FeaturesOfInterest",
            {
                "name": "F-text",
                "description": "a feature as free text",
                "encodingType": "text/plain",
                "feature": "POINT (8 52)",
            },
        )
        observations["F-text"] = c.create(
            "Observations",
            {
                "result": 99,
                "phenomenonTime": "2024-03-01T00:00:00Z",
                "Datastream": {"@iot.id": ds},
                "FeatureOfInterest": {"@iot.id": text_foi},
            },
        )
        yield GeoWorld(c, observations)
    finally:
        c.close()


LOCATION_FILTERS = [
    # geo.distance: planar, in degrees
    ("geo.distance(location, geography'POINT(8 54.1)') lt 1", ["p54", "square"]),
    ("geo.distance(location, geometry'POINT(8 52)') eq 0", ["line3", "p52", "square"]),
    ("geo.distance(location, geography'POINT(8 52)') eq 2", ["p54"]),
    ("geo.distance(location, geography'POINT(8 54)') le 0.5", ["p54", "square"]),
    ("geo.distance(location, geography'POINT(8 54)') lt 0.5", ["p54"]),
    ("geo.distance(geography'POINT(8 51)', location) lt 0.1", ["p51"]),
    ("geo.distance(location, geography'POINT(8 54)') lt 1000", GEOJSON_NAMES),
    ("geo.distance(location, geography'POINT(20 21)') eq 1", ["legacy"]),
    # geo.length: degrees
    ("geo.length(location) eq 1", ["line1"]),
    ("geo.length(location) gt 1 and geo.length(location) lt 5", ["line2", "line3"]),
    ("geo.length(location) gt 1.41 and geo.length(location) lt 1.42", ["line2"]),
    ("geo.length(location) eq 4", ["line3"]),
    # a condition on literals only holds for every Location, the text one included
    ("geo.length(geography'LINESTRING(0 0, 3 4)') eq 5", sorted([*GEOJSON_NAMES, "text"])),
    # geo.intersects / st_intersects
    ("geo.intersects(location, geography'" + SQ + "')", ["edge", "line3", "p52", "p53", "square"]),
    ("st_intersects(location, geography'" + SQ + "')", ["edge", "line3", "p52", "p53", "square"]),
    ("geo.intersects(geography'" + SQ + "', location)", ["edge", "line3", "p52", "p53", "square"]),
    (
        "geo.intersects(location, geography'" + SQ_GEOJSON + "')",
        [
            "edge",
            "line3",
            "p52",
            "p53",
            "square",
        ],
    ),
    ("st_intersects(location, geography'LINESTRING(4.5 52.5, 6.5 52.5)')", ["line1", "line2"]),
    # st_within / st_contains (argument order matters)
    ("st_within(location, geography'" + SQ + "')", ["p52", "p53", "square"]),
    ("st_within(location, geometry'" + SQ + "')", ["p52", "p53", "square"]),
    ("st_within(location, geography'" + SQ_GEOJSON + "')", ["p52", "p53", "square"]),
    ("st_contains(geography'" + SQ + "', location)", ["p52", "p53", "square"]),
    ("st_contains(location, geography'POINT(8 52)')", ["p52", "square"]),
    ("st_within(geography'POINT(8 52)', location)", ["p52", "square"]),
    # st_equals: topological equality
    ("st_equals(location, geography'POINT(8 53)')", ["p53"]),
    ('st_equals(location, geography\'{"type":"Point","coordinates":[8,54]}\')', ["p54"]),
    (
        "st_equals(location, geometry'POLYGON((9 51.5, 9 53.5, 7 53.5, 7 51.5, 9 51.5))')",
        ["square"],
    ),
    ("st_equals(location, geography'POINT(20 20)')", ["legacy"]),
    # st_disjoint
    ("st_disjoint(location, geography'" + SQ + "')", but("edge", "line3", "p52", "p53", "square")),
    # st_touches
    ("st_touches(location, geography'POINT(8 52)')", ["line3"]),
    ("st_touches(location, geography'" + SQ + "')", ["edge"]),
    # st_overlaps
    ("st_overlaps(location, geography'POLYGON((8 53, 10 53, 10 55, 8 55, 8 53))')", ["square"]),
    # st_crosses
    ("st_crosses(location, geography'LINESTRING(4.5 52.5, 6.5 52.5)')", ["line1", "line2"]),
    ("st_crosses(location, geography'" + SQ + "')", ["line3"]),
    # st_relate with DE-9IM patterns
    ("st_relate(location, geography'" + SQ + "', 'T********')", ["line3", "p52", "p53", "square"]),
    ("st_relate(location, geography'" + SQ + "', 'T*F**F***')", ["p52", "p53", "square"]),
    # combinations and case-insensitive function names
    (
        "st_within(location, geography'" + SQ + "') and not st_equals(location, "
        "geography'POINT(8 52)')",
        ["p53", "square"],
    ),
    ("St_Within(location, geometry'" + SQ + "')", ["p52", "p53", "square"]),
    ("GEO.INTERSECTS(location, geography'" + SQ + "')", ["edge", "line3", "p52", "p53", "square"]),
    (
        "st_within(location, geography'" + SQ + "') or startswith(name, 'line')",
        [
            "line1",
            "line2",
            "line3",
            "p52",
            "p53",
            "square",
        ],
    ),
]

BOUNDING_BOX_EDGES = [
    # "notch" is inside the bounding box of "ell" but not inside "ell"
    ("st_within(location, geography'" + ELL + "')", ["ell", "in_ell"]),
    ("geo.intersects(location, geography'" + ELL + "')", ["ell", "in_ell"]),
    ("st_contains(geography'" + ELL + "', location)", ["ell", "in_ell"]),
    # TRI lies in ELL's bounding box but does not touch "ell"
    ("geo.intersects(location, geography'" + TRI + "')", ["notch"]),
    ("st_disjoint(location, geography'" + TRI + "')", but("notch")),
    # a point in the hole of a polygon is not within it
    ("st_within(location, geography'" + DONUT + "')", ["ring"]),
    ("st_intersects(location, geography'" + DONUT + "')", ["ring"]),
    ("st_disjoint(location, geography'" + DONUT + "')", but("ring")),
    # a point on the boundary intersects and touches but is not within
    ("st_within(location, geography'" + SQ + "') and name eq 'edge'", []),
    (
        "st_touches(location, geography'"
        + SQ
        + "') and st_intersects(location, geography'"
        + SQ
        + "')",
        ["edge"],
    ),
]


@pytest.mark.parametrize(("expr", "expected"), LOCATION_FILTERS + BOUNDING_BOX_EDGES)
def test_location_geo_filter(geo: GeoWorld, expr: str, expected: list[str]) -> None:
    assert names(geo.c, "Locations", expr) == expected, expr


def test_text_location_is_not_matched_by_geo_filters(geo: GeoWorld) -> None:
    everything = "geography'POLYGON((-180 -90, 180 -90, 180 90, -180 90, -180 -90))'"
    assert names(geo.c, "Locations", f"st_within(location, {everything})") == GEOJSON_NAMES
    assert names(geo.c, "Locations", f"geo.intersects(location, {everything})") == GEOJSON_NAMES
    assert "text" not in names(geo.c, "Locations", "st_disjoint(location, geography'POINT(0 89)')")
    assert names(geo.c, "Locations", "geo.length(location) ge 0") == GEOJSON_NAMES
    # the text location still answers ordinary filters
    assert names(geo.c, "Locations", "encodingType eq 'text/plain'") == ["text"]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("st_within(Locations/location, geography'" + SQ + "')", ["T-multi", "T-p52", "T-square"]),
        ("geo.intersects(Locations/location, geography'POINT(8 54)')", ["T-p54"]),
        ("geo.distance(Locations/location, geography'POINT(8 51)') lt 0.1", ["T-multi"]),
        ("st_within(Locations/location, geography'" + ELL + "')", ["T-ell"]),
        ("geo.intersects(Locations/location, geography'" + TRI + "')", ["T-ell"]),
        ("st_disjoint(Locations/location, geography'" + SQ + "')", ["T-ell", "T-multi", "T-p54"]),
        (
            "st_within(Locations/location, geography'"
            + SQ
            + "') and geo.distance(Locations/location, geography'POINT(8 51)') lt 0.1",
            ["T-multi"],
        ),
    ],
)
def test_things_filtered_through_locations(geo: GeoWorld, expr: str, expected: list[str]) -> None:
    assert names(geo.c, "Things", expr) == expected, expr


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("st_within(FeatureOfInterest/feature, geography'" + SQ + "')", ["F-p52"]),
        ("geo.intersects(FeatureOfInterest/feature, geography'" + TRI + "')", ["F-notch"]),
        ("geo.intersects(FeatureOfInterest/feature, geography'" + ELL + "')", ["F-ell"]),
        (
            "geo.distance(FeatureOfInterest/feature, geography'POINT(8 53)') eq 1",
            [
                "F-p52",
                "F-p54",
            ],
        ),
        ("st_equals(FeatureOfInterest/feature, geography'POINT(8 52)')", ["F-p52"]),
        (
            "st_disjoint(FeatureOfInterest/feature, geography'" + SQ + "')",
            ["F-ell", "F-notch", "F-p54"],
        ),
    ],
)
def test_observations_filtered_through_feature(
    geo: GeoWorld, expr: str, expected: list[str]
) -> None:
    assert geo.obs(expr) == expected, expr


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("st_within(feature, geography'" + ELL + "')", ["F-ell"]),
        ("st_contains(feature, geometry'POINT(3 2.5)')", ["F-notch"]),
        ("geo.intersects(feature, geography'POINT(0.5 0.5)')", ["F-ell"]),
        ("geo.distance(feature, geography'POINT(8 53)') lt 1.5", ["F-p52", "F-p54"]),
        ("Observations/result eq 1 and st_within(feature, geography'" + SQ + "')", ["F-p52"]),
    ],
)
def test_features_of_interest_geo_filter(geo: GeoWorld, expr: str, expected: list[str]) -> None:
    assert names(geo.c, "FeaturesOfInterest", expr) == expected, expr


def test_geo_functions_in_orderby(geo: GeoWorld) -> None:
    got = geo.c.values(
        "Locations?$filter="
        + enc("startswith(name, 'p5')")
        + "&$orderby="
        + enc("geo.distance(location, geography'POINT(8 51.9)') asc")
    )
    assert [e["name"] for e in got] == ["p52", "p51", "p53", "p54"]


INVALID_LITERALS = [
    "geography'POINT(8)'",
    "geography'POINT(a b)'",
    "geography'POLYGON((0 0, 1 1))'",
    "geography'NOSHAPE(1 2)'",
    "geography''",
    'geography\'{"type":"Point"}\'',
    'geography\'{"type":"Point","coordinates":"x"}\'',
    "geometry'LINESTRING(1 1)'",
]


@pytest.mark.parametrize("lit", INVALID_LITERALS)
def test_invalid_geometry_literal_is_400(geo: GeoWorld, lit: str) -> None:
    resp = geo.c.get(f"Locations?$filter={enc(f'st_within(location, {lit})')}")
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["code"] == 400
    assert body["type"] == "error"
    assert isinstance(body["message"], str)
    assert body["message"]


@pytest.mark.parametrize(
    "expr",
    [
        "st_within(name, geography'" + SQ + "')",
        "geo.distance(location, 'POINT(8 52)') lt 1",
        "geo.length(name) gt 1",
        "st_relate(location, geography'" + SQ + "', 'TTTX')",
        "st_within(location) ",
        "geo.intersects(location, geography'" + SQ + "', location)",
    ],
)
def test_geo_type_and_arity_errors(geo: GeoWorld, expr: str) -> None:
    resp = geo.c.get(f"Locations?$filter={enc(expr)}")
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["code"] == 400
    assert body["type"] == "error"
    assert "position" in body["message"], body["message"]
