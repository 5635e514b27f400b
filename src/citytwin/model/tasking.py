"""The entity types of SensorThings Tasking Core (OGC 17-079r1, section 8).

A Thing offers TaskingCapabilities, each carried out by an Actuator; a Task asks one
TaskingCapability to do something, with values for its taskingParameters. Beyond the
standard a Task shows how its device took it: ``status`` and ``statusMessage``, and
``answer``, whatever the device replied (server-maintained; see docs/tasking.md).
"""

from __future__ import annotations

from citytwin.model.core import ENCODING, PROPERTIES, _named
from citytwin.model.types import EntityType, Kind, Navigation, Property

P = Property
N = Navigation

ACTUATOR = EntityType(
    name="Actuator",
    set_name="Actuators",
    table="actuators",
    properties=(
        *_named(),
        ENCODING,
        P("metadata", Kind.ANY, "metadata", required=True, nullable=False),
        PROPERTIES,
    ),
    navigations=(
        N("TaskingCapabilities", "TaskingCapability", True, "Actuator", reverse_fk="actuator_id"),
    ),
)

TASKING_CAPABILITY = EntityType(
    name="TaskingCapability",
    set_name="TaskingCapabilities",
    table="tasking_capabilities",
    properties=(
        *_named(),
        P("taskingParameters", Kind.OBJECT, "tasking_parameters", required=True, nullable=False),
        PROPERTIES,
    ),
    navigations=(
        N("Thing", "Thing", False, "TaskingCapabilities", fk="thing_id", required=True),
        N("Actuator", "Actuator", False, "TaskingCapabilities", fk="actuator_id", required=True),
        N("Tasks", "Task", True, "TaskingCapability", reverse_fk="tasking_capability_id"),
    ),
)

TASK = EntityType(
    name="Task",
    set_name="Tasks",
    table="tasks",
    properties=(
        P("creationTime", Kind.INSTANT, "creation_time", writable=False),
        P("taskingParameters", Kind.OBJECT, "tasking_parameters", required=True, nullable=False),
        PROPERTIES,
        P("status", Kind.STRING, "status", writable=False),
        P("statusMessage", Kind.STRING, "status_message", writable=False),
        P("answer", Kind.ANY, "answer", writable=False),
    ),
    navigations=(
        N(
            "TaskingCapability",
            "TaskingCapability",
            False,
            "Tasks",
            fk="tasking_capability_id",
            required=True,
        ),
    ),
)

TASKING_CORE: tuple[EntityType, ...] = (ACTUATOR, TASKING_CAPABILITY, TASK)

# navigation added to a sensing-core type
THING_CAPABILITIES = (
    "Thing",
    N("TaskingCapabilities", "TaskingCapability", True, "Thing", reverse_fk="thing_id"),
)
