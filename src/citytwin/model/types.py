"""Descriptions of entity types: their properties, navigation and storage columns.

The query planner, the serializer and the validator all read these descriptions; none
of them hard-codes an entity type. Plugins add entity types by returning more of them.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field


class Kind(enum.Enum):
    """What a property holds; decides its columns, validation, filtering and output."""

    ID = "id"
    STRING = "string"
    OBJECT = "object"  # a JSON object (properties, unitOfMeasurement, parameters)
    ANY = "any"  # any JSON value (Observation.result, resultQuality)
    INSTANT = "instant"  # an ISO 8601 instant
    INTERVAL = "interval"  # an ISO 8601 interval start/end
    TIME = "time"  # an instant or an interval (Observation.phenomenonTime)
    GEOMETRY = "geometry"  # GeoJSON, or any JSON under another encodingType
    RESULT = "result"  # Observation.result: any JSON, numbers indexed for comparison


# The members under plain names, for code that runs per row: before Python 3.12 each
# Kind.X goes through the enum's metaclass, which costs more than the comparison.
K_STRING, K_OBJECT, K_ANY, K_INSTANT = Kind.STRING, Kind.OBJECT, Kind.ANY, Kind.INSTANT
K_INTERVAL, K_TIME, K_GEOMETRY, K_RESULT = Kind.INTERVAL, Kind.TIME, Kind.GEOMETRY, Kind.RESULT


@dataclass(frozen=True)
class Property:
    """A property of an entity type and the columns that store it.

    Storage by kind: ID, STRING, OBJECT, ANY and INSTANT use ``column``; INTERVAL and
    TIME use ``<column>_start`` and ``<column>_end`` (equal for an instant); GEOMETRY
    uses ``column`` for the JSON as given and ``<column>_geom`` for the geometry;
    RESULT uses ``result_type``, ``result_number``, ``result_string`` and ``result_json``.
    """

    name: str
    kind: Kind
    column: str
    required: bool = False
    nullable: bool = True
    writable: bool = True  # False: maintained by the server, ignored on input
    show_null: bool = False  # written as null rather than left out when it has no value

    @functools.cached_property
    def start(self) -> str:
        return self.column + "_start"

    @functools.cached_property
    def end(self) -> str:
        return self.column + "_end"

    @functools.cached_property
    def geom(self) -> str:
        return self.column + "_geom"


@dataclass(frozen=True)
class Navigation:
    """A navigation property and how it is joined.

    Exactly one of ``fk`` (a column of this entity's table holding the target id),
    ``reverse_fk`` (a column of the target's table holding this entity's id) or ``link``
    (table, column for this entity, column for the target) is set. ``order`` names a
    column of the link table holding each target's position, for lists whose order means
    something (a MultiDatastream's ObservedProperties); it is kept on the owning side.
    """

    name: str
    target: str
    many: bool
    inverse: str
    fk: str | None = None
    reverse_fk: str | None = None
    link: tuple[str, str, str] | None = None
    required: bool = False  # must be given (or implied by the path) on create
    order: str | None = None


@dataclass(frozen=True)
class EntityType:
    name: str  # Thing
    set_name: str  # Things
    table: str
    properties: tuple[Property, ...]
    navigations: tuple[Navigation, ...]
    id_column: str = "id"
    _props: dict[str, Property] = field(default_factory=dict, compare=False, repr=False)
    _navs: dict[str, Navigation] = field(default_factory=dict, compare=False, repr=False)

    writable: tuple[Property, ...] = field(default=(), init=False, compare=False, repr=False)
    geometric: tuple[Property, ...] = field(default=(), init=False, compare=False, repr=False)
    required: tuple[str, ...] = field(default=(), init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._props.update({p.name: p for p in self.properties})
        self._navs.update({n.name: n for n in self.navigations})
        object.__setattr__(self, "writable", tuple(p for p in self.properties if p.writable))
        object.__setattr__(
            self, "geometric", tuple(p for p in self.properties if p.kind is Kind.GEOMETRY)
        )
        object.__setattr__(self, "required", tuple(p.name for p in self.properties if p.required))

    def property(self, name: str) -> Property | None:
        return self._props.get(name)

    def navigation(self, name: str) -> Navigation | None:
        return self._navs.get(name)

    def with_navigations(self, extra: tuple[Navigation, ...]) -> EntityType:
        """This type with navigation properties another plugin adds to it."""
        return EntityType(
            self.name,
            self.set_name,
            self.table,
            self.properties,
            self.navigations + extra,
            self.id_column,
        )


ID_NAMES = ("@iot.id", "id")
