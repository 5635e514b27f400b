"""Test support: a synchronous client for the real application, and entity factories."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from starlette.applications import Starlette

from citytwin.http.app import create_app
from citytwin.plugins.manager import build_registry, plugin_manager
from citytwin.settings import load_settings
from citytwin.storage.postgres.store import PostgresStore

REGISTRY = build_registry(plugin_manager(entry_points=False))

T = TypeVar("T")
BASE = "http://testserver"
ROOT = f"{BASE}/v1.1"
OM_MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
ENTITY_SETS = (
    "Things",
    "Locations",
    "HistoricalLocations",
    "Datastreams",
    "Sensors",
    "ObservedProperties",
    "Observations",
    "FeaturesOfInterest",
)


class Client:
    """Runs the app with its lifespan on a background event loop; requests are synchronous."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._lifespan = app.router.lifespan_context(app)
        self.call(self._lifespan.__aenter__())
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        if not url.startswith("http") and not url.startswith("/"):
            url = f"/v1.1/{url}"
        return self.call(self.http.request(method, url, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("POST", url, json=json, **kw)

    def patch(self, url: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("PATCH", url, json=json, **kw)

    def put(self, url: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("PUT", url, json=json, **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", url, **kw)

    def head(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("HEAD", url, **kw)

    def ok(self, method: str, url: str, json: Any = None, status: int = 200) -> Any:
        """A request that must succeed with ``status``; returns the parsed body (or None)."""
        resp = self.request(method, url, json=json)
        assert resp.status_code == status, f"{method} {url}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def create(self, url: str, body: Any) -> int:
        """POST and return the new id, read from the Location header."""
        resp = self.post(url, body)
        assert resp.status_code == 201, f"POST {url}: {resp.status_code} {resp.text}"
        location = resp.headers["location"]
        return int(location[location.rindex("(") + 1 : location.rindex(")")])

    def values(self, url: str) -> list[dict[str, Any]]:
        """All entities of a collection, following nextLinks."""
        out: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            body = self.ok("GET", next_url)
            out.extend(body["value"])
            next_url = body.get("@iot.nextLink")
        return out

    def ids(self, url: str) -> list[int]:
        return [e["@iot.id"] for e in self.values(url)]

    def close(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self.call(self.http.aclose())
            self.call(self._lifespan.__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()


def count_writes(client: Client) -> list[int]:
    """Counts the write transactions the service opens from now on (in ``[0]``)."""
    storage = client.app.state.service.storage
    opened = [0]
    writer = storage.writer

    @asynccontextmanager
    async def counted() -> AsyncIterator[Any]:
        opened[0] += 1
        async with writer() as w:
            yield w

    storage.writer = counted
    return opened


def make_client(data_dir: Path, **settings: Any) -> Client:
    """The application on ``data_dir``. Access control is off unless a test asks for
    ``auth="on"``: the tests of the API's behaviour act as an all-powerful client, and
    tests/access/ check access control with it on."""
    values = {"data_dir": str(data_dir), "mqtt": "off", "auth": "off", **settings}
    return Client(create_app(load_settings(values, environ={})))


# --- entity bodies --------------------------------------------------------------------------
def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def location(
    name: str = "Location", lon: float = 8.06, lat: float = 51.4, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} description",
        "encodingType": "application/geo+json",
        "location": point(lon, lat),
        **extra,
    }


def sensor(name: str = "Sensor", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} description",
        "encodingType": "text/html",
        "metadata": "https://example.org/sensor",
        **extra,
    }


def observed_property(name: str = "Temperature", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "definition": f"https://example.org/{name}",
        "description": f"{name} description",
        **extra,
    }


def datastream(
    name: str = "Datastream", *, new_related: bool = True, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "description": f"{name} description",
        "observationType": OM_MEASUREMENT,
        "unitOfMeasurement": {
            "name": "degree Celsius",
            "symbol": "Cel",
            "definition": "http://unitsofmeasure.org/ucum#Cel",
        },
    }
    if new_related:
        body["Sensor"] = sensor(f"{name} sensor")
        body["ObservedProperty"] = observed_property(f"{name} property")
    body.update(extra)
    return body


def thing(
    name: str = "Thing",
    *,
    locations: list[dict[str, Any]] | None = None,
    datastreams: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "description": f"{name} description", **extra}
    if locations is not None:
        body["Locations"] = locations
    if datastreams is not None:
        body["Datastreams"] = datastreams
    return body


# --- databases for both backends --------------------------------------------------------------
BACKENDS = ("sqlite", "postgresql")
PG_ENV = "CITYTWIN_TEST_PG"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
REQUIRE_ENV = "CITYTWIN_REQUIRE_SERVICES"


class Databases:
    """Throwaway databases: SQLite files, or PostgreSQL databases copied from a template
    that is migrated once per test session."""

    def __init__(self) -> None:
        self.admin_url = os.environ.get(PG_ENV, PG_DEFAULT)
        self.template: str | None = None
        self.problem: str | None = None
        self._n = 0

    def _admin(self, sql: str) -> None:
        async def run() -> None:
            conn = await asyncpg.connect(self.admin_url, timeout=5)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(run())

    def _url(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"

    def postgres_ready(self) -> bool:
        if self.template is not None:
            return True
        if self.problem is not None:
            return False
        name = f"citytwin_test_tpl_{os.getpid()}"
        try:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self._admin(f'CREATE DATABASE "{name}"')
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            self.problem = (
                f"PostgreSQL is not reachable at {self.admin_url} ({exc}); set {PG_ENV} to an "
                "admin URL of a PostgreSQL 15 server with PostGIS to run these tests"
            )
            return False
        store = PostgresStore(self._url(name), REGISTRY)

        async def prepare() -> None:
            await store.migrate()
            await store.open()  # makes the partitions of the current months
            await store.close()

        asyncio.run(prepare())
        self.template = name
        return True

    def create(self, backend: str, tmp: Path) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp}/citytwin-test.db"
        assert self.postgres_ready(), self.problem
        self._n += 1
        name = f"citytwin_test_{os.getpid()}_{self._n}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return self._url(name)

    def drop(self, url: str) -> None:
        if url.startswith("postgresql"):
            self._admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')

    def close(self) -> None:
        if self.template is not None:
            self._admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
            self.template = None
