"""Entity types, their properties and navigation; no storage or transport code."""

from citytwin.model.registry import Registry
from citytwin.model.types import EntityType, Kind, Navigation, Property

__all__ = ["EntityType", "Kind", "Navigation", "Property", "Registry"]
