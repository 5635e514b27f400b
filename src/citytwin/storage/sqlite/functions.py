"""SQL functions registered on every SQLite connection (names start with ``ct_``).

Spatial predicates evaluate WKB with shapely; the literal side of a predicate is the
same for every row, so parsed and prepared geometries are cached.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from citytwin.model.values import add_months, from_micros, to_micros


@functools.lru_cache(maxsize=256)
def _geom(wkb: bytes) -> BaseGeometry:
    geom = shapely.from_wkb(wkb)
    shapely.prepare(geom)
    return geom


def _binary(fn: Callable[[BaseGeometry, BaseGeometry], Any]) -> Callable[[Any, Any], Any]:
    def wrapped(a: Any, b: Any) -> Any:
        if a is None or b is None:
            return None
        try:
            return fn(_geom(bytes(a)), _geom(bytes(b)))
        except shapely.errors.ShapelyError:
            return None

    return wrapped


def _relate(a: Any, b: Any, pattern: Any) -> Any:
    if a is None or b is None or pattern is None:
        return None
    try:
        return bool(_geom(bytes(a)).relate_pattern(_geom(bytes(b)), pattern))
    except shapely.errors.ShapelyError:
        return None


def _length(a: Any) -> Any:
    """Length of the linear parts, as PostGIS ST_Length: 0 for points and polygons."""
    if a is None:
        return None
    geom = _geom(bytes(a))
    parts = shapely.get_parts(geom) if geom.geom_type == "GeometryCollection" else [geom]
    return float(
        sum(
            p.length
            for p in parts
            if p.geom_type in ("LineString", "MultiLineString", "LinearRing")
        )
    )


def _lower(s: Any) -> Any:
    return s.lower() if isinstance(s, str) else s


def _upper(s: Any) -> Any:
    return s.upper() if isinstance(s, str) else s


def _add_months_micros(micros: Any, months: Any) -> Any:
    if micros is None or months is None:
        return None
    try:
        return to_micros(add_months(from_micros(int(micros)), int(months)))
    except (ValueError, OverflowError):
        return None


def _number_text(x: Any) -> Any:
    if x is None:
        return None
    return repr(float(x))


PREDICATES: dict[str, Callable[[BaseGeometry, BaseGeometry], Any]] = {
    "st_equals": lambda a, b: bool(a.equals(b)),
    "st_disjoint": lambda a, b: bool(a.disjoint(b)),
    "st_touches": lambda a, b: bool(a.touches(b)),
    "st_within": lambda a, b: bool(a.within(b)),
    "st_overlaps": lambda a, b: bool(a.overlaps(b)),
    "st_crosses": lambda a, b: bool(a.crosses(b)),
    "st_intersects": lambda a, b: bool(a.intersects(b)),
    "st_contains": lambda a, b: bool(a.contains(b)),
    "st_distance": lambda a, b: float(a.distance(b)),
}


def register(conn: sqlite3.Connection) -> None:
    for name, fn in PREDICATES.items():
        conn.create_function("ct_" + name, 2, _binary(fn), deterministic=True)
    conn.create_function("ct_st_relate", 3, _relate, deterministic=True)
    conn.create_function("ct_st_length", 1, _length, deterministic=True)
    conn.create_function("ct_lower", 1, _lower, deterministic=True)
    conn.create_function("ct_upper", 1, _upper, deterministic=True)
    conn.create_function("ct_add_months", 2, _add_months_micros, deterministic=True)
    conn.create_function("ct_number_text", 1, _number_text, deterministic=True)
