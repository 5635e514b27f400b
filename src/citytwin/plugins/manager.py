"""Loads the built-in plugins and those installed under the ``citytwin`` entry point."""

from __future__ import annotations

import pluggy

from citytwin.errors import ConfigurationError
from citytwin.model import Registry
from citytwin.plugins import core, hookspecs
from citytwin.settings import Settings
from citytwin.storage.base import Storage

DEFAULT_PLUGINS = (core,)


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
    return Registry(types)


def build_storage(pm: pluggy.PluginManager, registry: Registry, settings: Settings) -> Storage:
    url = settings.database_url
    storage: Storage | None = pm.hook.citytwin_storage(
        url=url, registry=registry, settings=settings
    )
    if storage is None:
        raise ConfigurationError(f"no storage backend for database URL {url}")
    return storage
