"""A synthetic district: districts split into neighbourhoods, a grid of streets, and
buildings along them, at any coordinates and the same for the same seed.

Distances are in metres on a local flat approximation around the centre, which is exact
enough for a few kilometres. The layers are written as GeoJSON for the map and for
``/api/v1/layers``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from citytwin.simulate.base import Coordinates, polygon, rng

M_PER_DEG_LAT = 111_320.0
BLOCK_M = 100.0  # street spacing
DISTRICT_NAMES = ("Altstadt", "Hafen", "Gartenstadt", "Bergviertel", "Neustadt")
STREET_NAMES = (
    "Linden", "Mühlen", "Kirch", "Schul", "Garten", "Berg", "Wiesen", "Bach", "Markt",
    "Post", "Ahorn", "Birken", "Eichen", "Kastanien", "Rosen", "Tulpen", "Feld", "Hafen",
    "Brunnen", "Schiller", "Goethe", "Bahnhof", "Rathaus", "Burg", "Sonnen",
)  # fmt: skip


@dataclass(frozen=True)
class Area:
    name: str
    level: str  # "district" or "neighbourhood"
    district: str
    ring: tuple[Coordinates, ...]

    def contains(self, p: Coordinates) -> bool:
        xs = [c[0] for c in self.ring]
        ys = [c[1] for c in self.ring]
        return min(xs) <= p[0] < max(xs) and min(ys) <= p[1] < max(ys)


@dataclass(frozen=True)
class Building:
    key: str
    use: str  # "residential" or "commercial"
    floor_area_m2: float
    ring: tuple[Coordinates, ...]
    centre: Coordinates
    district: str
    neighbourhood: str
    node: tuple[int, int]  # the nearest street crossing


@dataclass(frozen=True)
class Street:
    name: str
    coords: tuple[Coordinates, ...]


class City:
    """The district the simulator feeds: ``districts`` (1 to 5) districts,
    each 800 m x 1,200 m and split into a northern and a southern neighbourhood."""

    def __init__(
        self,
        name: str = "Musterstadt",
        centre: Coordinates = (8.0640, 51.4030),
        seed: int = 1,
        districts: int = 3,
    ) -> None:
        if not 1 <= districts <= len(DISTRICT_NAMES):
            raise ValueError(f"districts must be between 1 and {len(DISTRICT_NAMES)}")
        self.name = name
        self.centre = centre
        self.seed = seed
        self.cols = districts * 8  # blocks west to east
        self.rows = 12  # blocks south to north
        self._m_per_deg_lon = M_PER_DEG_LAT * math.cos(math.radians(centre[1]))
        self.districts: list[Area] = []
        self.neighbourhoods: list[Area] = []
        for d in range(districts):
            name_d = DISTRICT_NAMES[d]
            x0, x1 = d * 8, (d + 1) * 8
            self.districts.append(Area(name_d, "district", name_d, self._rect(x0, 0, x1, 12)))
            for half, (y0, y1) in (("Süd", (0, 6)), ("Nord", (6, 12))):
                ring = self._rect(x0, y0, x1, y1)
                self.neighbourhoods.append(Area(f"{name_d}-{half}", "neighbourhood", name_d, ring))
        self.streets = self._streets()
        self.buildings = self._buildings()

    # --- geometry ------------------------------------------------------------------------

    def at(self, x_m: float, y_m: float) -> Coordinates:
        """The position ``x_m`` east and ``y_m`` north of the south-west corner."""
        west = self.centre[0] - (self.cols * BLOCK_M / 2) / self._m_per_deg_lon
        south = self.centre[1] - (self.rows * BLOCK_M / 2) / M_PER_DEG_LAT
        return (west + x_m / self._m_per_deg_lon, south + y_m / M_PER_DEG_LAT)

    def node(self, ix: int, iy: int) -> Coordinates:
        """The street crossing ``ix`` streets east and ``iy`` north of the corner."""
        return self.at(ix * BLOCK_M, iy * BLOCK_M)

    def distance_m(self, a: Coordinates, b: Coordinates) -> float:
        dx = (a[0] - b[0]) * self._m_per_deg_lon
        dy = (a[1] - b[1]) * M_PER_DEG_LAT
        return math.hypot(dx, dy)

    def route(self, a: tuple[int, int], b: tuple[int, int]) -> list[tuple[int, int]]:
        """Crossings along the streets from ``a`` to ``b``: east-west first, then north-south."""
        path = [a]
        x, y = a
        while x != b[0]:
            x += 1 if b[0] > x else -1
            path.append((x, y))
        while y != b[1]:
            y += 1 if b[1] > y else -1
            path.append((x, y))
        return path

    def area_of(self, p: Coordinates) -> tuple[str, str]:
        """(district, neighbourhood) holding ``p``; the nearest one for points outside."""
        for hood in self.neighbourhoods:
            if hood.contains(p):
                return hood.district, hood.name
        nearest = min(self.neighbourhoods, key=lambda a: self.distance_m(_centroid(a.ring), p))
        return nearest.district, nearest.name

    def neighbourhood_centre(self, name: str) -> Coordinates:
        return _centroid(next(a for a in self.neighbourhoods if a.name == name).ring)

    # --- layers --------------------------------------------------------------------------

    def layers(self) -> dict[str, dict[str, Any]]:
        """GeoJSON FeatureCollections: districts, neighbourhoods, streets, buildings."""

        def collection(features: Sequence[dict[str, Any]]) -> dict[str, Any]:
            return {"type": "FeatureCollection", "features": list(features)}

        def area(a: Area) -> dict[str, Any]:
            props = {"name": a.name, "kind": a.level, "district": a.district}
            return {"type": "Feature", "geometry": polygon(a.ring), "properties": props}

        return {
            "districts": collection([area(a) for a in self.districts]),
            "neighbourhoods": collection([area(a) for a in self.neighbourhoods]),
            "streets": collection(
                [
                    {
                        "type": "Feature",
                        "geometry": {
                            "type": "LineString",
                            "coordinates": [[round(x, 7), round(y, 7)] for x, y in s.coords],
                        },
                        "properties": {"name": s.name, "kind": "street"},
                    }
                    for s in self.streets
                ]
            ),
            "buildings": collection(
                [
                    {
                        "type": "Feature",
                        "id": b.key,
                        "geometry": polygon(b.ring),
                        "properties": {
                            "name": b.key,
                            "kind": "building",
                            "use": b.use,
                            "floor_area_m2": b.floor_area_m2,
                            "district": b.district,
                            "neighbourhood": b.neighbourhood,
                        },
                    }
                    for b in self.buildings
                ]
            ),
        }

    # --- generation ----------------------------------------------------------------------

    def _rect(self, x0: int, y0: int, x1: int, y1: int) -> tuple[Coordinates, ...]:
        b = BLOCK_M
        return (
            self.at(x0 * b, y0 * b),
            self.at(x1 * b, y0 * b),
            self.at(x1 * b, y1 * b),
            self.at(x0 * b, y1 * b),
        )

    def _streets(self) -> list[Street]:
        streets = []
        for ix in range(self.cols + 1):
            name = f"{STREET_NAMES[ix % len(STREET_NAMES)]}straße"
            if ix >= len(STREET_NAMES):
                name += f" {ix // len(STREET_NAMES) + 1}"
            streets.append(Street(name, (self.node(ix, 0), self.node(ix, self.rows))))
        for iy in range(self.rows + 1):
            streets.append(Street(f"Ring {iy + 1}", (self.node(0, iy), self.node(self.cols, iy))))
        return streets

    def _buildings(self) -> list[Building]:
        r = rng(self.seed, "buildings")
        out = []
        for bx in range(self.cols):
            for by in range(self.rows):
                # four houses per block, one in each corner, set back from the streets
                for cx, cy in ((0, 0), (1, 0), (0, 1), (1, 1)):
                    w = r.uniform(14, 30)
                    h = r.uniform(10, 22)
                    x0 = bx * BLOCK_M + (12 if cx == 0 else BLOCK_M - 12 - w)
                    y0 = by * BLOCK_M + (12 if cy == 0 else BLOCK_M - 12 - h)
                    ring = (
                        self.at(x0, y0),
                        self.at(x0 + w, y0),
                        self.at(x0 + w, y0 + h),
                        self.at(x0, y0 + h),
                    )
                    use = "commercial" if r.random() < 0.08 else "residential"
                    floors = r.randint(1, 4) if use == "residential" else r.randint(1, 3)
                    centre = self.at(x0 + w / 2, y0 + h / 2)
                    district, hood = self.area_of(centre)
                    out.append(
                        Building(
                            key=f"B{bx:02d}{by:02d}{cx}{cy}",
                            use=use,
                            floor_area_m2=round(w * h * floors, 1),
                            ring=ring,
                            centre=centre,
                            district=district,
                            neighbourhood=hood,
                            node=(bx + cx, by + cy),
                        )
                    )
        return out


def _centroid(ring: Sequence[Coordinates]) -> Coordinates:
    xs = [c[0] for c in ring]
    ys = [c[1] for c in ring]
    return (sum(xs) / len(xs), sum(ys) / len(ys))
