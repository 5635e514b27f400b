"""Loads the built-in plugins and those installed under the ``citytwin`` entry point."""

from __future__ import annotations

import pluggy

from citytwin.domains.base import Domain
from citytwin.domains.energy import plugin as energy
from citytwin.domains.environment import plugin as environment
from citytwin.domains.mobility import plugin as mobility
from citytwin.domains.water import plugin as water
from citytwin.errors import ConfigurationError
from citytwin.model import Navigation, Registry
from citytwin.plugins import core, hookspecs, tasking
from citytwin.service.extensions import WriteRule
from citytwin.settings import Settings
from citytwin.storage.base import Storage
from citytwin.tasking.drivers import TaskDriver

DEFAULT_PLUGINS = (core, tasking, energy, mobility, water, environment)


def plugin_manager(*, entry_points: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("citytwin")
    pm.add_hookspecs(hookspecs)
    for plugin in DEFAULT_PLUGINS:
        pm.register(plugin, name=plugin.__name__)
    if entry_points:
        pm.load_setuptools_entrypoints("citytwin")
    return pm


def build_registry(pm: pluggy.PluginManager) -> Registry:
    types = [et for batch in pm.hook.citytwin_entity_types() for et in batch]
    added: dict[str, list[Navigation]] = {}
    for batch in pm.hook.citytwin_navigations():
        for type_name, nav in batch:
            added.setdefault(type_name, []).append(nav)
    types = [et.with_navigations(tuple(added.pop(et.name, ()))) for et in types]
    if added:
        raise ConfigurationError(f"navigation added to unknown entity types {sorted(added)}")
    return Registry(types)


def build_storage(pm: pluggy.PluginManager, registry: Registry, settings: Settings) -> Storage:
    url = settings.database_url
    storage: Storage | None = pm.hook.citytwin_storage(
        url=url, registry=registry, settings=settings
    )
    if storage is None:
        raise ConfigurationError(f"no storage backend for database URL {url}")
    return storage


def write_rules(pm: pluggy.PluginManager) -> list[WriteRule]:
    return [rule for batch in pm.hook.citytwin_write_rules(pm=pm) for rule in batch]


def task_drivers(pm: pluggy.PluginManager) -> dict[str, TaskDriver]:
    drivers: dict[str, TaskDriver] = {}
    for batch in pm.hook.citytwin_task_drivers():
        for driver in batch:
            if driver.name in drivers:
                raise ConfigurationError(f"two task drivers are named {driver.name!r}")
            drivers[driver.name] = driver
    return drivers


def domains(pm: pluggy.PluginManager) -> list[Domain]:
    found: dict[str, Domain] = {}
    for batch in pm.hook.citytwin_domains():
        for domain in batch:
            if domain.name in found:
                raise ConfigurationError(f"two domain packages are named {domain.name!r}")
            found[domain.name] = domain
    return list(found.values())
