"""The built-in plugin: the SensorThings sensing core with MultiDatastreams, and the stores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from citytwin.model import EntityType, Registry
from citytwin.model.core import SENSING_CORE
from citytwin.model.multi import with_multi_datastreams
from citytwin.plugins.hookspecs import hookimpl
from citytwin.settings import Settings
from citytwin.storage.base import Storage


@hookimpl
def citytwin_entity_types() -> Sequence[EntityType]:
    return with_multi_datastreams(SENSING_CORE)


@hookimpl
def citytwin_openapi_paths(registry: Registry) -> Mapping[str, Mapping[str, Any]]:
    from citytwin.domains.openapi import domain_paths
    from citytwin.openapi.extensions import extension_paths

    return {**extension_paths(), **domain_paths()}


@hookimpl
def citytwin_storage(url: str, registry: Registry, settings: Settings) -> Storage | None:
    if url.startswith("sqlite:"):
        from citytwin.storage.sqlite.store import SqliteStore

        return SqliteStore(
            url, registry, readers=settings.sqlite_readers, synchronous=settings.sqlite_synchronous
        )
    if url.startswith(("postgresql:", "postgres:", "postgresql+asyncpg:")):
        from citytwin.storage.postgres.store import PostgresStore

        return PostgresStore(url, registry, pool_size=settings.pg_pool_size)
    return None
