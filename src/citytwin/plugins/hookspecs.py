"""Extension points. Built-in features implement them exactly as outside plugins do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from citytwin.domains.base import Domain
    from citytwin.model import EntityType, Navigation, Registry
    from citytwin.service.extensions import WriteRule
    from citytwin.settings import Settings
    from citytwin.storage.base import Storage
    from citytwin.tasking.drivers import TaskDriver

hookspec = pluggy.HookspecMarker("citytwin")
hookimpl = pluggy.HookimplMarker("citytwin")


@hookspec
def citytwin_entity_types() -> Sequence[EntityType]:
    """Entity types this plugin adds to the model."""
    raise NotImplementedError


@hookspec(firstresult=True)
def citytwin_storage(url: str, registry: Registry, settings: Settings) -> Storage | None:
    """A storage backend for ``url``, or None if this plugin does not handle it."""
    raise NotImplementedError


@hookspec
def citytwin_navigations() -> Sequence[tuple[str, Navigation]]:
    """Navigation properties this plugin adds to entity types of other plugins, as
    (entity type name, navigation); the inverse is on one of this plugin's types."""
    raise NotImplementedError


@hookspec
def citytwin_write_rules(pm: pluggy.PluginManager) -> Sequence[WriteRule]:
    """Checks run inside write transactions for this plugin's entity types (``pm`` gives
    them what other plugins offer, such as task drivers)."""
    raise NotImplementedError


@hookspec
def citytwin_task_drivers() -> Sequence[TaskDriver]:
    """Drivers that hand Tasks to devices; a TaskingCapability names one by its ``name``."""
    raise NotImplementedError


@hookspec
def citytwin_openapi_paths(registry: Registry) -> Mapping[str, Mapping[str, Any]]:
    """OpenAPI path items, ``{"/v1.1/...": item}``, of endpoints this plugin adds that are
    not entity sets (those are described from the registry); see :mod:`citytwin.openapi`."""
    raise NotImplementedError


@hookspec
def citytwin_domains() -> Sequence[Domain]:
    """Domain packages (templates and KPIs) this plugin adds; see :mod:`citytwin.domains`."""
    raise NotImplementedError
