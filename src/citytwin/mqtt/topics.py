"""SensorThings MQTT topics (OGC 18-088 section 14).

A topic is a resource path with the version prefix, and for collections optionally a
query: ``v1.1/Datastreams(1)/Observations``, ``v1.1/Things(1)``, ``v1.1/Things(1)/name``,
``v1.1/Observations?$select=result,phenomenonTime``. Publishing an Observation to
``v1.1/Observations``, ``v1.1/Datastreams(x)/Observations`` or
``v1.1/FeaturesOfInterest(x)/Observations`` creates it; so does publishing a Task to
``v1.1/Tasks`` or ``v1.1/TaskingCapabilities(x)/Tasks``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from citytwin.errors import BadRequest, CitytwinError
from citytwin.model import Registry
from citytwin.query.ast import QueryOptions
from citytwin.query.parser import parse_query
from citytwin.query.path import ResourcePath, parse_path

VERSIONS = ("v1.0", "v1.1")


@dataclass(frozen=True)
class Topic:
    text: str
    version: str
    path: ResourcePath
    path_text: str  # the resource path without version and query
    options: QueryOptions

    @property
    def entity_type(self) -> str:
        return self.path.segments[-1].name

    @property
    def is_property(self) -> bool:
        return self.path.property is not None


def parse_topic(
    text: str, registry: Registry, *, expand: bool = False, filter_: bool = False
) -> Topic:
    """Parse a subscription or publish topic; BadRequest/NotFound name the problem."""
    version, _, rest = text.partition("/")
    if version not in VERSIONS or not rest:
        raise BadRequest(f"topic {text!r} must start with v1.1/ (or v1.0/) and name a resource")
    path_text, _, query = rest.partition("?")
    if "#" in text or "+" in text:
        raise BadRequest(f"topic {text!r}: wildcards do not name SensorThings resources")
    path = parse_path(path_text, registry)
    options = parse_query(parse_qsl(query, keep_blank_values=True)) if query else QueryOptions()
    if path.ref or path.value:
        raise BadRequest(f"topic {text!r}: $ref and $value are not topics")
    if query:
        if path.property is not None:
            raise BadRequest(f"topic {text!r}: a property topic takes no query")
        if options.expand and not expand:
            raise BadRequest(
                f"topic {text!r}: $expand in topics is not enabled (setting mqtt_expand_topics)"
            )
        if options.filter is not None and not filter_:
            raise BadRequest(
                f"topic {text!r}: $filter in topics is not enabled (setting mqtt_filter_topics)"
            )
        if (
            options.top is not None
            or options.skip
            or options.count
            or options.orderby
            or options.skiptoken
            or options.result_format
        ):
            raise BadRequest(
                f"topic {text!r}: only $select (and enabled extensions) apply to notifications"
            )
    return Topic(text, version, path, path_text.strip("/"), options)


def try_parse_topic(
    text: str, registry: Registry, *, expand: bool = False, filter_: bool = False
) -> Topic | None:
    try:
        return parse_topic(text, registry, expand=expand, filter_=filter_)
    except CitytwinError:
        return None


# collections an entity may be published to, to create it, and the parents they may follow
CREATES = {
    "Observations": ("Datastreams", "MultiDatastreams", "FeaturesOfInterest"),
    "Tasks": ("TaskingCapabilities",),
}


def is_create_topic(topic: Topic) -> bool:
    """Topics an Observation (section 14.1) or a Task may be published to, to create it."""
    segs = topic.path.segments
    parents = CREATES.get(segs[-1].name)
    if topic.path.property is not None or topic.path.single or parents is None:
        return False
    if len(segs) == 1:
        return True
    return len(segs) == 2 and segs[0].id is not None and segs[0].name in parents
