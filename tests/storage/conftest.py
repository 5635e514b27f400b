from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REQUIRE_ENV, Databases


@pytest.fixture
def pg_url(databases: Databases, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for tests of the store itself."""
    if not databases.postgres_ready():
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(str(databases.problem))
        pytest.skip(str(databases.problem))
    url = databases.create("postgresql", tmp_path)
    yield url
    databases.drop(url)
