"""Tasking is a plugin on the public hooks: what it adds, and what a plugin cannot do."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from citytwin.errors import ConfigurationError
from citytwin.model import Navigation
from citytwin.model.core import THING
from citytwin.plugins.hookspecs import hookimpl
from citytwin.plugins.manager import build_registry, plugin_manager, task_drivers
from citytwin.tasking.drivers import MqttDriver, TaskDriver


def test_the_thing_gets_its_capabilities_without_the_core_changing() -> None:
    registry = build_registry(plugin_manager(entry_points=False))
    nav = registry.type("Thing").navigation("TaskingCapabilities")
    assert nav is not None
    assert registry.inverse(nav).name == "Thing"
    assert THING.navigation("TaskingCapabilities") is None  # the core's own type is untouched
    assert set(task_drivers(plugin_manager(entry_points=False))) == {"mqtt", "webhook"}


class Stray:
    @hookimpl
    def citytwin_navigations(self) -> Sequence[tuple[str, Navigation]]:
        return (("Robot", Navigation("Tasks", "Task", True, "Robot", reverse_fk="robot_id")),)


class SecondMqtt:
    @hookimpl
    def citytwin_task_drivers(self) -> Sequence[TaskDriver]:
        return (MqttDriver(),)


def test_navigation_for_an_unknown_type_is_a_configuration_error() -> None:
    pm = plugin_manager(entry_points=False)
    pm.register(Stray())
    with pytest.raises(ConfigurationError, match="Robot"):
        build_registry(pm)


def test_two_drivers_of_one_name_are_a_configuration_error() -> None:
    pm = plugin_manager(entry_points=False)
    pm.register(SecondMqtt())
    with pytest.raises(ConfigurationError, match="mqtt"):
        task_drivers(pm)
