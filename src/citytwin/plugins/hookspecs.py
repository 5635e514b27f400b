"""Extension points. Built-in features implement them exactly as outside plugins do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

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
