"""Extension points. Built-in features implement them exactly as outside plugins do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from citytwin.model import EntityType, Registry
    from citytwin.settings import Settings
    from citytwin.storage.base import Storage

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
def citytwin_openapi_paths(registry: Registry) -> Mapping[str, Mapping[str, Any]]:
    """OpenAPI path items, ``{"/v1.1/...": item}``, of endpoints this plugin adds that are
    not entity sets (those are described from the registry); see :mod:`citytwin.openapi`."""
    raise NotImplementedError
