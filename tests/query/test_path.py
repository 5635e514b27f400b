"""Resource paths against the model."""

from __future__ import annotations

import pytest

from citytwin.errors import BadRequest, NotFound
from citytwin.plugins.manager import build_registry, plugin_manager
from citytwin.query.path import ResourcePath, Segment, parse_path

REGISTRY = build_registry(plugin_manager(entry_points=False))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Things", ResourcePath((Segment("Things"),))),
        ("Things(7)", ResourcePath((Segment("Things", 7),), single=True)),
        ("Things('7')/", ResourcePath((Segment("Things", 7),), single=True)),
        (
            "Things(1)/Datastreams(2)/Observations",
            ResourcePath(
                (Segment("Things", 1), Segment("Datastreams", 2), Segment("Observations"))
            ),
        ),
        (
            "Datastreams(1)/Thing",
            ResourcePath((Segment("Datastreams", 1), Segment("Thing")), single=True),
        ),
        (
            "Things(1)/name/$value",
            ResourcePath((Segment("Things", 1),), "name", value=True, single=True),
        ),
        (
            "Things(1)/properties/list[2]/x",
            ResourcePath((Segment("Things", 1),), "properties", ("list", 2, "x"), single=True),
        ),
        (
            "Datastreams(1)/Observations/$ref",
            ResourcePath((Segment("Datastreams", 1), Segment("Observations")), ref=True),
        ),
        (
            "Observations(1)/Datastream/Thing/$ref",
            ResourcePath(
                (Segment("Observations", 1), Segment("Datastream"), Segment("Thing")),
                ref=True,
                single=True,
            ),
        ),
    ],
)
def test_paths(text: str, expected: ResourcePath) -> None:
    assert parse_path(text, REGISTRY) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Thingz", "no entity set named Thingz"),
        ("Things(1)/Sensor", "Thing has no property or navigation property Sensor"),
        ("Things/Datastreams", "must follow a single entity"),
        ("Things/name", "must follow a single entity"),
        ("Datastreams(1)/Thing(2)", "single entity and takes no id"),
        ("Things(1)/name/more", "name of Thing has no sub-properties"),
        ("Things(1)/$ref/x", "$ref must be the last"),
        ("Things(1)/na me", "not a valid path segment"),
        ("Things(99999999999999999999)", "no Thing with id"),
    ],
)
def test_unknown_paths_are_not_found(text: str, message: str) -> None:
    with pytest.raises(NotFound, match=message.replace("$", r"\$").replace("(", r"\(")):
        parse_path(text, REGISTRY)


def test_non_integer_id_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="ids are integers"):
        parse_path("Things(abc)", REGISTRY)
