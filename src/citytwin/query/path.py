"""Resource paths: ``Things(1)/Datastreams(2)/Observations``, ``Things(1)/name/$value``,
``Datastreams(1)/Observations/$ref``, ``Things(1)/properties/owner``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from citytwin.errors import BadRequest, NotFound
from citytwin.model import EntityType, Kind, Registry

_SEGMENT = re.compile(
    r"^(?P<name>[A-Za-z_@$][\w.@-]*)(?:\((?P<id>[^()]*)\))?(?P<index>(\[\d+\])*)$"
)
_INDEX = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class Segment:
    name: str
    id: int | None = None


@dataclass(frozen=True)
class ResourcePath:
    segments: tuple[Segment, ...]  # an entity set, then navigation properties
    property: str | None = None
    subpath: tuple[str | int, ...] = ()  # into a JSON property
    value: bool = False  # $value
    ref: bool = False  # $ref
    single: bool = False  # the segments address one entity, not a collection


def _parse_id(raw: str, name: str) -> int:
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1]
    if not text.isdigit():
        raise BadRequest(f"{name}({raw}): ids are integers")
    value = int(text)
    if value > 2**63 - 1:
        raise NotFound(f"no {name} with id {value}")
    return value


def parse_path(text: str, registry: Registry) -> ResourcePath:
    """Parse the part of a URL after ``/v1.1/``; 404 for names the model does not know."""
    parts = [unquote(p) for p in text.strip("/").split("/")]
    if not parts or not parts[0]:
        raise NotFound("empty resource path")
    segments: list[Segment] = []
    et = None
    single_nav = False
    i = 0
    while i < len(parts):
        raw = parts[i]
        if raw == "$ref":
            if i != len(parts) - 1:
                raise NotFound("$ref must be the last segment of a path")
            if et is None:
                raise NotFound("$ref must follow an entity set or navigation property")
            return ResourcePath(
                tuple(segments), ref=True, single=single_nav or segments[-1].id is not None
            )
        m = _SEGMENT.match(raw)
        if m is None:
            raise NotFound(f"'{raw}' is not a valid path segment")
        name, id_text, index = m.group("name"), m.group("id"), m.group("index")
        if et is None:
            et = registry.by_set(name)
            if et is None:
                raise NotFound(f"no entity set named {name}")
            if index:
                raise NotFound(f"'{raw}' is not a valid path segment")
            ident = _parse_id(id_text, et.name) if id_text is not None else None
            segments.append(Segment(name, ident))
            i += 1
            continue
        nav = et.navigation(name)
        if nav is not None:
            if segments[-1].id is None and not single_nav:
                raise NotFound(f"{name} must follow a single entity, e.g. {et.set_name}(1)")
            if index:
                raise NotFound(f"'{raw}' is not a valid path segment")
            if id_text is not None and not nav.many:
                raise NotFound(f"{name} is a single entity and takes no id")
            ident = _parse_id(id_text, nav.target) if id_text is not None else None
            segments.append(Segment(name, ident))
            single_nav = not nav.many
            et = registry.type(nav.target)
            i += 1
            continue
        prop = et.property(name)
        if prop is None:
            raise NotFound(f"{et.name} has no property or navigation property {name}")
        if id_text is not None:
            raise NotFound(f"'{raw}' is not a valid path segment")
        if segments[-1].id is None and not single_nav:
            raise NotFound(f"{name} must follow a single entity, e.g. {et.set_name}(1)")
        sub: list[str | int] = [int(x) for x in _INDEX.findall(index)]
        rest = parts[i + 1 :]
        value = bool(rest) and rest[-1] == "$value"
        if value:
            rest = rest[:-1]
        for r in rest:
            m2 = _SEGMENT.match(r)
            if m2 is None or m2.group("id") is not None or r in ("$value", "$ref"):
                raise NotFound(f"'{r}' is not a valid path segment")
            sub.append(m2.group("name"))
            sub.extend(int(x) for x in _INDEX.findall(m2.group("index")))
        if sub and prop.kind not in (Kind.OBJECT, Kind.ANY, Kind.GEOMETRY, Kind.RESULT):
            raise NotFound(f"{prop.name} of {et.name} has no sub-properties")
        return ResourcePath(
            tuple(segments),
            prop.name,
            tuple(sub),
            value,
            single=single_nav or segments[-1].id is not None,
        )
    return ResourcePath(tuple(segments), single=single_nav or segments[-1].id is not None)


def addressed_type(path: ResourcePath, registry: Registry) -> EntityType:
    """The type of the entities the segments of a parsed path address."""
    et = registry.by_set(path.segments[0].name)
    assert et is not None  # checked by parse_path
    for segment in path.segments[1:]:
        nav = et.navigation(segment.name)
        assert nav is not None
        et = registry.target(nav)
    return et
