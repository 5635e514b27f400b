from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import BACKENDS, REQUIRE_ENV, Client, Databases, make_client


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    dbs = Databases()
    yield dbs
    dbs.close()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest, databases: Databases) -> str:
    """Each test module that stores data runs once on SQLite and once on PostgreSQL."""
    name: str = request.param
    if name == "postgresql" and not databases.postgres_ready():
        assert databases.problem is not None
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(databases.problem)
        pytest.skip(databases.problem)
    return name


@pytest.fixture
def db_url(backend: str, databases: Databases, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty, migrated database of the module's backend."""
    url = databases.create(backend, tmp_path)
    yield url
    databases.drop(url)


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[Client]:
    """The application on a fresh store."""
    c = make_client(tmp_path, db=db_url)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def small_pages(db_url: str, tmp_path: Path) -> Iterator[Client]:
    """The application with page size 2 (maximum 5), to exercise paging."""
    c = make_client(tmp_path, db=db_url, default_page_size=2, max_page_size=5)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def new_client(
    backend: str, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Client]]:
    """Makes clients on fresh stores of the module's backend, for data seeded once per
    module; all are closed and dropped when the module is done."""
    made: list[tuple[Client, str]] = []

    def make(name: str = "store", **settings: Any) -> Client:
        tmp = tmp_path_factory.mktemp(name)
        url = databases.create(backend, tmp)
        c = make_client(tmp, db=url, **settings)
        made.append((c, url))
        return c

    yield make
    for c, url in made:
        c.close()
        databases.drop(url)
