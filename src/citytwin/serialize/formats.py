"""The ``$resultFormat`` values and their writers, in one place.

A writer turns pages of SensorThings JSON entities into the bytes of one streamed
answer: :meth:`~Writer.head`, then :meth:`~Writer.rows` once per page, then
:meth:`~Writer.tail`. ``None`` stands for SensorThings JSON itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from citytwin.errors import BadRequest
from citytwin.serialize.csv import CsvWriter
from citytwin.serialize.flat import Column
from citytwin.serialize.geojson import GeoJsonWriter


class Writer(Protocol):
    media_type: str

    def head(self) -> bytes: ...

    def rows(self, entities: Sequence[dict[str, Any]]) -> bytes: ...

    def tail(self) -> bytes: ...


WriterFactory = Callable[[Sequence[Column]], Writer]

# lower-case name -> writer; None: SensorThings JSON, or the data arrays of
# citytwin.service.dataarrays, which group Observations by their stream
FORMATS: dict[str, WriterFactory | None] = {
    "default": None,
    "dataarray": None,
    "csv": CsvWriter,
    "geojson": GeoJsonWriter,
}
NAMES = {"default": "default", "dataarray": "dataArray", "csv": "CSV", "geojson": "GeoJSON"}


def result_format(name: str | None) -> WriterFactory | None:
    """The writer for a ``$resultFormat`` value (None: SensorThings JSON)."""
    if name is None:
        return None
    key = name.lower()
    if key not in FORMATS:
        supported = ", ".join(NAMES.get(k, k) for k in FORMATS)
        raise BadRequest(f"$resultFormat={name} is not supported; supported: {supported}")
    return FORMATS[key]
