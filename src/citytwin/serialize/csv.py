"""``$resultFormat=CSV``: one header row of column names, then one row per entity.

Quoting follows RFC 4180 (CRLF line ends; fields with commas, quotes or line breaks in
double quotes). Text goes out as it is; numbers and booleans as JSON writes them;
objects, arrays and geometries as their JSON text; a missing or null value as an empty
field.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson

from citytwin.serialize.flat import MISSING, Column, pick


def cell(value: Any) -> str:
    if value is MISSING or value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


class CsvWriter:
    media_type = "text/csv; charset=utf-8"

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\r\n")

    def _take(self) -> bytes:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode()

    def head(self) -> bytes:
        self._csv.writerow([c.header for c in self.columns])
        return self._take()

    def rows(self, entities: Sequence[dict[str, Any]]) -> bytes:
        paths = [c.path for c in self.columns]
        self._csv.writerows([cell(pick(e, p)) for p in paths] for e in entities)
        return self._take()

    def tail(self) -> bytes:
        return b""
