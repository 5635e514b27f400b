"""The built-in plugin for SensorThings Tasking Core: Actuators, TaskingCapabilities and
Tasks, their write rules, and the MQTT and webhook task drivers."""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

from citytwin.model import EntityType, Navigation
from citytwin.model.tasking import TASKING_CORE, THING_CAPABILITIES
from citytwin.plugins.hookspecs import hookimpl
from citytwin.service.extensions import WriteRule
from citytwin.tasking.drivers import BUILT_IN, TaskDriver


@hookimpl(trylast=True)  # listed after the sensing core
def citytwin_entity_types() -> Sequence[EntityType]:
    return TASKING_CORE


@hookimpl
def citytwin_navigations() -> Sequence[tuple[str, Navigation]]:
    return (THING_CAPABILITIES,)


@hookimpl
def citytwin_task_drivers() -> Sequence[TaskDriver]:
    return BUILT_IN


@hookimpl
def citytwin_write_rules(pm: pluggy.PluginManager) -> Sequence[WriteRule]:
    from citytwin.plugins.manager import task_drivers
    from citytwin.tasking.rules import TaskingRules

    return (TaskingRules(task_drivers(pm)),)
