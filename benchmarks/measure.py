"""The measurements: write rates and read latencies of the server next to the raw database.

Every figure is taken in the same run as its baseline, repeated and interleaved with it
(server, database, server, ...) so that a noisy neighbour on the machine hits both.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson

from benchmarks.backends import RawDatabase, Row
from benchmarks.httpclient import Connection, HttpError
from benchmarks.server import Server
from citytwin.model.values import to_micros


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ratio(a: float, b: float) -> float | None:
    return a / b if b else None


@dataclass
class Rate:
    """Repetitions of a throughput, in items per second."""

    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else 0.0

    def as_json(self) -> dict[str, Any]:
        return {"median": round(self.median, 1), "runs": [round(r, 1) for r in self.runs]}


@dataclass
class Latency:
    """Samples of one request, in seconds."""

    samples: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return percentile(self.samples, 95)

    def as_json(self) -> dict[str, Any]:
        return {
            "p50_ms": round(self.p50 * 1000, 3),
            "p95_ms": round(self.p95 * 1000, 3),
            "samples_ms": [round(s * 1000, 3) for s in self.samples],
        }


@dataclass
class CpuUse:
    """CPU seconds per wall second of the server and of this (load-generating) process."""

    server: list[float] = field(default_factory=list)
    client: list[float] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "server_cores": round(statistics.median(self.server), 2) if self.server else None,
            "client_cores": round(statistics.median(self.client), 2) if self.client else None,
        }


async def cpu_measured(
    server: Server, cpu: CpuUse, run: Callable[[], Awaitable[tuple[int, float]]]
) -> tuple[int, float]:
    server_before, client_before = server.cpu_seconds(), time.process_time()
    done, elapsed = await run()
    cpu.server.append((server.cpu_seconds() - server_before) / elapsed)
    cpu.client.append((time.process_time() - client_before) / elapsed)
    return done, elapsed


# --- single Observations --------------------------------------------------------------------


def _iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def post_rate(
    base_url: str, datastreams: Sequence[int], clients: int, seconds: float
) -> tuple[int, float]:
    """POST single Observations on ``clients`` keep-alive connections for ``seconds``,
    each to the next Datastream in turn; return (created, elapsed)."""
    conns = [Connection(base_url) for _ in range(clients)]
    for c in conns:
        await c.open()
    paths = [f"/v1.1/Datastreams({ds})/Observations" for ds in datastreams]
    counter = iter(range(1 << 62))
    done = 0
    stop = time.perf_counter() + seconds

    async def loop(conn: Connection) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            i = next(counter)
            body = b'{"phenomenonTime":"%s","result":%d.5}' % (_iso_now().encode(), i % 100)
            reply = await conn.post(paths[i % len(paths)], body)
            reply.expect(201, "POST of one Observation")
            done += 1

    start = time.perf_counter()
    try:
        await asyncio.gather(*(loop(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    return done, time.perf_counter() - start


def raw_row_maker(
    db: RawDatabase, datastreams: Sequence[int], features: dict[int, int]
) -> Callable[[int], Row]:
    """The row the server writes for the i-th single POST (time: now)."""

    def make(i: int) -> Row:
        ds = datastreams[i % len(datastreams)]
        return db.row(ds, features[ds], to_micros(datetime.now(UTC)), (i % 100) + 0.5)

    return make


# --- bulk -------------------------------------------------------------------------------------

BULK_BASE = datetime(2024, 6, 1, tzinfo=UTC)


def bulk_observations(request: int, size: int) -> list[tuple[datetime, float]]:
    """The Observations of the ``request``-th bulk request: one a second, in 2024."""
    first = BULK_BASE + timedelta(seconds=request * size)
    return [(first + timedelta(seconds=j), round(20 + (j % 150) / 10, 1)) for j in range(size)]


def bulk_body(name: str, sensor: int, prop: int, obs: list[tuple[datetime, float]]) -> bytes:
    from benchmarks.dataset import datastream_body, iso

    items = [{"phenomenonTime": iso(t), "result": v} for t, v in obs]
    return orjson.dumps(datastream_body(name, sensor, prop, items))


async def bulk_api(base_url: str, requests: Sequence[tuple[str, bytes]]) -> float:
    """POST the prepared (path, body) requests one after the other; return the time."""
    async with Connection(base_url) as conn:
        start = time.perf_counter()
        for path, body in requests:
            (await conn.post(path, body)).expect(201, "POST of a Datastream with Observations")
        return time.perf_counter() - start


# --- reads ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Read:
    """A measured request and the name of its hand-written SQL (backends.QUERIES)."""

    name: str
    label: str
    target: str  # path and query of the request
    check: Callable[[Any], str | None]


def target(path: str, **options: str) -> str:
    query = "&".join(f"${k}={quote(v, safe='(),;=/$')}" for k, v in options.items())
    return f"/v1.1/{path}?{query}" if query else f"/v1.1/{path}"


async def latencies(
    conn: Connection,
    db: RawDatabase,
    read: Read,
    params: dict[str, Any],
    samples: int,
    warmup: int,
) -> tuple[Latency, Latency, str | None]:
    """Alternate the request and its SQL; the first ``warmup`` of each are not kept."""
    api, raw = Latency(), Latency()
    problem = None
    for i in range(warmup + samples):
        start = time.perf_counter()
        reply = await conn.get(read.target)
        elapsed = time.perf_counter() - start
        if reply.status != 200:
            raise HttpError(f"{read.label}: HTTP {reply.status}: {reply.body[:500]!r}")
        raw_elapsed = await db.query(read.name, params)
        if i == 0:
            problem = read.check(reply.json())
        if i >= warmup:
            api.samples.append(elapsed)
            raw.samples.append(raw_elapsed)
    return api, raw, problem
