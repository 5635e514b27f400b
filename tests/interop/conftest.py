"""A real ``citytwin serve`` process for the third-party client tests.

Each test module gets its own server on a free port with a fresh store of the module's
backend (the fixture is module scoped), so the client modules never see each other's data.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import StaServer, running_server
from tests.support import Databases


@pytest.fixture(scope="module")
def sta_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    backend: str,
    databases: Databases,
) -> Iterator[StaServer]:
    """``citytwin serve`` on a free port with a fresh store of the module's backend."""
    workdir = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    db = databases.create(backend, workdir)
    try:
        with running_server(workdir, db) as server:
            yield server
    finally:
        databases.drop(db)
