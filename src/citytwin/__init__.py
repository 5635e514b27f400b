"""citytwin: an open urban data platform speaking OGC SensorThings API 1.1."""

from __future__ import annotations

__version__ = "0.1.0"
