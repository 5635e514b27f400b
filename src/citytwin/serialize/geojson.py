"""``$resultFormat=GeoJSON``: a FeatureCollection (RFC 7946) with one Feature per entity.

The Feature's geometry is the first geometry among the columns: the entity's own
(Location.location, FeatureOfInterest.feature, Datastream.observedArea) or one reached
through an expanded single entity (``Observations?$expand=FeatureOfInterest``). A stored
location that is itself a GeoJSON Feature gives its geometry. Every other column goes
into ``properties`` under its column name (``Datastream/name``); an entity without a
geometry gets ``"geometry": null``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from citytwin.serialize.flat import MISSING, Column, pick


def _geometry(value: Any) -> Any:
    if value is MISSING or value is None:
        return None
    data = orjson.loads(orjson.dumps(value))  # stored JSON text arrives as a Fragment
    if isinstance(data, dict) and data.get("type") == "Feature":
        return data.get("geometry")
    return data


class GeoJsonWriter:
    media_type = "application/geo+json"

    def __init__(self, columns: Sequence[Column]) -> None:
        geometries = [c for c in columns if c.geometry]
        self.geometry = geometries[0] if geometries else None
        self.id_path = next((c.path for c in columns if c.path == ("@iot.id",)), None)
        self.properties = [(c.header, c.path) for c in columns if c is not self.geometry]
        self._first = True

    def head(self) -> bytes:
        return b'{"type":"FeatureCollection","features":['

    def rows(self, entities: Sequence[dict[str, Any]]) -> bytes:
        features = []
        for e in entities:
            props = {}
            for header, path in self.properties:
                value = pick(e, path)
                if value is not MISSING:
                    props[header] = value
            feature: dict[str, Any] = {"type": "Feature"}
            if self.id_path is not None:
                feature["id"] = e.get("@iot.id")
            geometry = None if self.geometry is None else pick(e, self.geometry.path)
            feature["geometry"] = _geometry(geometry)
            feature["properties"] = props
            features.append(orjson.dumps(feature))
        if not features:
            return b""
        out = b",".join(features)
        if not self._first:
            out = b"," + out
        self._first = False
        return out

    def tail(self) -> bytes:
        return b"]}"
