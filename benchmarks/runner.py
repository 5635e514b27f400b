"""One benchmark run: create the database, start the server, load, measure, report."""

from __future__ import annotations

import asyncio
import itertools
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from benchmarks import measure, report
from benchmarks.backends import RawDatabase, database_for
from benchmarks.dataset import (
    KINDS,
    YEAR_END,
    YEAR_MICROS,
    YEAR_START,
    Plan,
    datastream_body,
    iso,
    micros_to_datetime,
    station_body,
    thing_name,
)
from benchmarks.httpclient import Connection
from benchmarks.measure import CpuUse, Rate, Read
from benchmarks.mqtt import MqttOptions, measure_mqtt
from benchmarks.server import Server
from citytwin import __version__
from citytwin.model.values import to_micros

SETUP_CONNECTIONS = 4  # concurrent requests while creating the city


@dataclass
class Options:
    db: str
    observations: int = 200_000
    datastreams: int = 100
    repeat: int = 3
    seconds: float = 5.0
    clients: tuple[int, ...] = (1, 16)
    bulk_size: int = 5_000
    bulk_requests: int = 5
    samples: int = 50
    warmup: int = 5
    load_batch: int = 100_000
    results_dir: Path = Path("benchmarks/results")
    reuse: bool = False
    workers: int | None = None  # None: one per core on PostgreSQL, one on SQLite
    mqtt: MqttOptions = field(default_factory=MqttOptions)


@dataclass
class City:
    """What the benchmark created, found again in the database."""

    datastreams: list[int]  # by station index
    things: list[int]
    features: dict[int, int]  # Datastream -> its FeatureOfInterest
    sensor: int
    observed_property: int


@dataclass
class Log:
    start: float = field(default_factory=time.perf_counter)

    def __call__(self, message: str) -> None:
        elapsed = time.perf_counter() - self.start
        print(f"[{elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)


# --- setting up -------------------------------------------------------------------------------


async def _parallel(
    base_url: str, items: Sequence[int], send: Callable[[Connection, int], Any]
) -> None:
    queue = iter(items)

    async def worker() -> None:
        async with Connection(base_url) as conn:
            for i in queue:
                await send(conn, i)

    await asyncio.gather(*(worker() for _ in range(SETUP_CONNECTIONS)))


async def create_city(base_url: str, plan: Plan, log: Log) -> None:
    """Every station (Thing, Location, Datastream) and its first Observation, through the
    API; the first stations also create the shared Sensors and ObservedProperties."""
    first = min(len(KINDS), plan.datastreams)
    async with Connection(base_url) as conn:
        for i in range(first):
            reply = await conn.post("/v1.1/Things", orjson.dumps(station_body(i, {}, {})))
            reply.expect(201, "POST of a station")
        sensors = await _ids_by_name(conn, "Sensors")
        props = await _ids_by_name(conn, "ObservedProperties")

    async def station(conn: Connection, i: int) -> None:
        body = orjson.dumps(station_body(i, sensors, props))
        (await conn.post("/v1.1/Things", body)).expect(201, "POST of a station")

    await _parallel(base_url, range(first, plan.datastreams), station)
    log(f"created {plan.datastreams} Things with Locations and Datastreams through the API")


async def post_first_observations(base_url: str, plan: Plan, city: City, log: Log) -> None:
    async def first(conn: Connection, d: int) -> None:
        body = orjson.dumps(
            {"phenomenonTime": iso(micros_to_datetime(plan.time(d, 0))), "result": plan.value(d, 0)}
        )
        path = f"/v1.1/Datastreams({city.datastreams[d]})/Observations"
        (await conn.post(path, body)).expect(201, "POST of an Observation")

    await _parallel(base_url, range(plan.datastreams), first)
    log(f"posted the first Observation of each Datastream through the API ({plan.datastreams})")


async def _ids_by_name(conn: Connection, entity_set: str) -> dict[str, int]:
    reply = await conn.get(f"/v1.1/{entity_set}?$select=id,name&$top=1000")
    value: Any = reply.expect(200, f"GET {entity_set}").json()
    return {e["name"]: e["@iot.id"] for e in value["value"]}


async def find_city(db: RawDatabase, plan: Plan) -> City:
    rows = await db.fetch(
        "SELECT t.name, d.id, t.id FROM datastreams d JOIN things t ON t.id = d.thing_id "
        "WHERE t.name LIKE 'bench station %' ORDER BY d.id"
    )
    by_index = {int(name.rsplit(" ", 1)[1]): (ds, thing) for name, ds, thing in rows}
    if sorted(by_index) != list(range(plan.datastreams)):
        raise RuntimeError(
            f"the database holds {len(by_index)} benchmark stations, not {plan.datastreams}"
        )
    sensor = (await db.fetch("SELECT min(id) FROM sensors"))[0][0]
    prop = (await db.fetch("SELECT min(id) FROM observed_properties"))[0][0]
    return City(
        [by_index[i][0] for i in range(plan.datastreams)],
        [by_index[i][1] for i in range(plan.datastreams)],
        await db.features(),
        sensor,
        prop,
    )


async def load_observations(db: RawDatabase, plan: Plan, city: City, batch: int, log: Log) -> float:
    """The rest of the Observations, straight into the database in time order."""
    total = plan.observations - plan.datastreams
    ds, feat = city.datastreams, city.features
    rows = (db.row(ds[d], feat[ds[d]], t, v) for d, t, v in plan.rows(first_k=1))
    start = time.perf_counter()
    loaded = 0
    while chunk := list(itertools.islice(rows, batch)):
        await db.load(chunk)
        loaded += len(chunk)
        if loaded % (batch * 10) == 0 or loaded == total:
            rate = loaded / (time.perf_counter() - start)
            log(f"loaded {loaded:,}/{total:,} Observations directly ({rate:,.0f}/s)")
    return time.perf_counter() - start


async def reusable(db: RawDatabase, plan: Plan) -> str | None:
    """Why the database cannot be reused for this plan, or None if it can."""
    try:
        await db.open()
        size = await db.table_size()
        await find_city(db, plan)
    except Exception as exc:  # no database, no schema or another city: load anew
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    finally:
        await db.close()
    if size["observations"] != plan.observations:
        return f"it holds {size['observations']:,} Observations, not {plan.observations:,}"
    return None


# --- reads ------------------------------------------------------------------------------------


def reads(plan: Plan, city: City, station: int) -> tuple[list[Read], dict[str, Any]]:
    """The measured requests and the parameters of their SQL."""
    ds = city.datastreams[station]
    count = plan.count(station)
    step = plan.step(station)
    if count >= 1100:
        t1 = YEAR_START + timedelta(microseconds=YEAR_MICROS * 2 // 5)
        t2 = t1 + timedelta(microseconds=step * 1100)
        expected_page = 1000
    else:
        t1, t2 = YEAR_START, YEAR_END
        expected_page = min(count, 1000)
    m1, m2 = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)
    params = {
        "ds": ds, "t1": t1, "t2": t2, "m1": m1, "m2": m2,
        "thing": thing_name(station), "threshold": 50.0,
    }  # fmt: skip
    hours = {
        (t - to_micros(m1)) // 3_600_000_000
        for t in (plan.time(station, k) for k in range(count))
        if to_micros(m1) <= t < to_micros(m2)
    }
    latest_top = min(1000, plan.datastreams)

    def page_of(n: int) -> Callable[[Any], str | None]:
        def check(body: Any) -> str | None:
            got = len(body.get("value", []))
            return None if got == n else f"expected {n} entities, got {got}"

        return check

    def counted(body: Any) -> str | None:
        got = body.get("@iot.count")
        return None if got == plan.observations else f"@iot.count {got} != {plan.observations}"

    def latest(body: Any) -> str | None:
        value = body.get("value", [])
        bad = [e["@iot.id"] for e in value if len(e.get("Observations", [])) != 1]
        if len(value) != latest_top or bad:
            return f"{len(value)} Datastreams, {len(bad)} without their latest Observation"
        return None

    def hourly(body: Any) -> str | None:
        value = body.get("value", [])
        if len(value) != len(hours) or any(not isinstance(b.get("avg"), float) for b in value):
            return f"{len(value)} hourly buckets, expected {len(hours)}"
        return None

    time_filter = f"phenomenonTime ge {iso(t1)} and phenomenonTime lt {iso(t2)}"
    return [
        Read("top100", "Observations?$top=100", measure.target("Observations", top="100"),
             page_of(min(100, plan.observations))),
        Read(
            "time_range",
            f"time-range page ({expected_page} Obs of 1 Datastream)",
            measure.target(
                f"Datastreams({ds})/Observations",
                filter=time_filter, orderby="phenomenonTime", top="1000",
            ),
            page_of(expected_page),
        ),
        Read("count", "Observations?$count=true&$top=0",
             measure.target("Observations", count="true", top="0"), counted),
        Read(
            "latest",
            f"latest value of {latest_top} Datastreams",
            measure.target(
                "Datastreams", top=str(latest_top),
                expand="Observations($top=1;$orderby=phenomenonTime desc)",
            ),
            latest,
        ),
        Read(
            "relation_filter",
            "$filter via Datastream/Thing + $expand",
            measure.target(
                "Observations",
                filter=f"Datastream/Thing/name eq '{thing_name(station)}' and result gt 50",
                expand="Datastream($select=name)", top="100",
            ),
            page_of(100),
        ),
        Read(
            "aggregate",
            "hourly means of a month (1 Datastream)",
            f"/v1.1/Datastreams({ds})/Observations/$aggregate?interval="
            f"{iso(m1)}/{iso(m2)}&bucket=PT1H&functions=avg",
            hourly,
        ),
    ], params  # fmt: skip


async def measure_reads(
    server: Server, db: RawDatabase, plan: Plan, city: City, opts: Options, log: Log
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    measured, params = reads(plan, city, plan.datastreams // 2)
    async with Connection(server.base_url) as conn:
        for read in measured:
            api, raw, problem = await measure.latencies(
                conn, db, read, params, opts.samples, opts.warmup
            )
            out[read.name] = {
                "label": read.label,
                "request": read.target,
                "api": api.as_json(),
                "raw": raw.as_json(),
                "ratio_p50": _round(measure.ratio(api.p50, raw.p50)),
                "check": problem or "ok",
            }
            warn = f" (CHECK: {problem})" if problem else ""
            log(
                f"{read.label}: citytwin p50 {api.p50 * 1000:.2f} ms, "
                f"raw p50 {raw.p50 * 1000:.2f} ms{warn}"
            )
    return out


# --- writes -----------------------------------------------------------------------------------


async def measure_single(
    server: Server, db: RawDatabase, city: City, opts: Options, log: Log
) -> dict[str, Any]:
    make_row = measure.raw_row_maker(db, city.datastreams, city.features)
    # warm both paths up (connections, statement caches, the current month's partition)
    await measure.post_rate(server.base_url, city.datastreams, 1, 1.0)
    await db.insert_rate(1, 1.0, make_row)
    out: dict[str, Any] = {}
    for clients in opts.clients:
        api, raw, cpu = Rate(), Rate(), CpuUse()

        async def api_run(c: int = clients) -> tuple[int, float]:
            return await measure.post_rate(server.base_url, city.datastreams, c, opts.seconds)

        for rep in range(opts.repeat):
            for what in ("api", "raw") if rep % 2 == 0 else ("raw", "api"):
                if what == "api":
                    done, elapsed = await measure.cpu_measured(server, cpu, api_run)
                    api.runs.append(done / elapsed)
                else:
                    done, elapsed = await db.insert_rate(clients, opts.seconds, make_row)
                    raw.runs.append(done / elapsed)
        out[str(clients)] = {
            "api": api.as_json(),
            "raw": raw.as_json(),
            "ratio": _round(measure.ratio(api.median, raw.median)),
            "cpu": cpu.as_json(),
        }
        log(
            f"single POST, {clients} client(s): citytwin {api.median:,.0f}/s, "
            f"raw {raw.median:,.0f}/s (server {cpu.as_json()['server_cores']} cores, "
            f"load generator {cpu.as_json()['client_cores']} cores)"
        )
    return out


async def _new_datastream(conn: Connection, city: City, station: int, name: str) -> int:
    body = orjson.dumps(datastream_body(name, city.sensor, city.observed_property))
    reply = await conn.post(f"/v1.1/Things({city.things[station]})/Datastreams", body)
    reply.expect(201, "POST of a Datastream")
    match = re.search(r"\((\d+)\)$", reply.location or "")
    if match is None:
        raise RuntimeError(f"no Datastream id in Location: {reply.location}")
    return int(match.group(1))


async def measure_bulk(
    server: Server, db: RawDatabase, city: City, opts: Options, log: Log
) -> dict[str, Any]:
    """Datastreams posted with ``bulk_size`` Observations each, and COPY/executemany of the
    same rows in batches of the same size, one transaction each."""
    n = len(city.things)
    api, raw, cpu = Rate(), Rate(), CpuUse()
    reps = opts.repeat + 1  # the first is a warm-up
    for rep in range(reps):
        api_requests, raw_batches = [], []
        async with Connection(server.base_url) as conn:
            for j in range(opts.bulk_requests):
                station = (rep * opts.bulk_requests + j) % n
                obs = measure.bulk_observations(rep * opts.bulk_requests + j, opts.bulk_size)
                name = f"bench bulk {rep}.{j}"
                body = measure.bulk_body(name, city.sensor, city.observed_property, obs)
                api_requests.append((f"/v1.1/Things({city.things[station]})/Datastreams", body))
                target = await _new_datastream(conn, city, station, f"bench bulk raw {rep}.{j}")
                feature = city.features[city.datastreams[station]]
                raw_batches.append([db.row(target, feature, to_micros(t), v) for t, v in obs])
        total = opts.bulk_requests * opts.bulk_size

        async def api_run(
            requests: list[tuple[str, bytes]] = api_requests, n: int = total
        ) -> tuple[int, float]:
            return n, await measure.bulk_api(server.base_url, requests)

        for what in ("api", "raw") if rep % 2 == 0 else ("raw", "api"):
            if what == "api":
                _, elapsed = await measure.cpu_measured(server, cpu, api_run)
                if rep:
                    api.runs.append(total / elapsed)
            else:
                elapsed = await db.bulk_insert(raw_batches)
                if rep:
                    raw.runs.append(total / elapsed)
    result = {
        "observations_per_request": opts.bulk_size,
        "requests_per_run": opts.bulk_requests,
        "api": api.as_json(),
        "raw": raw.as_json(),
        "ratio": _round(measure.ratio(api.median, raw.median)),
        "cpu": cpu.as_json(),
    }
    log(
        f"bulk {opts.bulk_size:,} Obs/request: citytwin {api.median:,.0f} Obs/s, "
        f"raw {raw.median:,.0f} Obs/s (ratio {result['ratio']})"
    )
    return result


async def clean_up_writes(db: RawDatabase, log: Log) -> None:
    """Remove what the write measurements added, so the database can be reused."""
    await db.execute(
        "DELETE FROM observations WHERE datastream_id IN "
        "(SELECT id FROM datastreams WHERE name LIKE 'bench bulk %')"
    )
    await db.execute("DELETE FROM datastreams WHERE name LIKE 'bench bulk %'")
    await db.execute(
        "DELETE FROM observations WHERE phenomenon_time_start >= :end", {"end": YEAR_END}
    )
    await db.recompute_summary()
    await db.analyze()
    log("removed the Observations and Datastreams written by the measurements")


# --- the run ----------------------------------------------------------------------------------


async def run(opts: Options) -> dict[str, Any]:
    log = Log()
    plan = Plan(opts.observations, opts.datastreams)
    db = database_for(opts.db)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    opts.results_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": db.kind,
        "machine": machine(),
        "citytwin": {"version": __version__, "commit": git_commit()},
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
    }
    dataset: dict[str, Any] = {"observations": plan.observations, "datastreams": plan.datastreams}
    fresh = True
    if opts.reuse:
        why_not = await reusable(db, plan)
        fresh = why_not is not None
        if why_not:
            log(f"not reusing the database: {why_not}")
    if fresh:
        await db.reset()
        await db.migrate()
        await db.open()
        await db.prepare()
        log(f"created an empty {db.kind} database and applied citytwin's migrations")
    else:
        await db.open()
        log(f"reusing the loaded {db.kind} database")
    # PostgreSQL runs on the same machine: half the cores for citytwin, half for it (on
    # 2 cores, a second worker cut 16-client POSTs from 2,200/s to 1,700/s)
    workers = opts.workers or (max(1, (os.cpu_count() or 1) // 2) if db.kind == "postgresql" else 1)
    log(f"citytwin serve runs {workers} worker process(es)")
    env = {
        "CITYTWIN_MAX_PAGE_SIZE": "1000",
        "CITYTWIN_DEFAULT_PAGE_SIZE": "100",
        "CITYTWIN_LOG_LEVEL": "warning",
    }
    server = Server(
        db.url,
        opts.results_dir / f"{stamp}-{db.kind}-server.log",
        env={
            **env,
            "CITYTWIN_MQTT": "off",  # HTTP only; the embedded broker needs a single worker
            "CITYTWIN_WORKERS": str(workers),
        },
    )
    try:
        with server:
            log(f"citytwin serve is up at {server.base_url}")
            if fresh:
                t0 = time.perf_counter()
                await create_city(server.base_url, plan, log)
                city = await find_city(db, plan)
                await post_first_observations(server.base_url, plan, city, log)
                city = await find_city(db, plan)
                dataset["api_setup_seconds"] = round(time.perf_counter() - t0, 1)
                seconds = await load_observations(db, plan, city, opts.load_batch, log)
                dataset["load_seconds"] = round(seconds, 1)
                dataset["load_rows_per_second"] = round(
                    (plan.observations - plan.datastreams) / seconds
                )
                t0 = time.perf_counter()
                await db.recompute_summary()
                dataset["summary_seconds"] = round(time.perf_counter() - t0, 1)
                t0 = time.perf_counter()
                await db.analyze()
                dataset["analyze_seconds"] = round(time.perf_counter() - t0, 1)
                log(
                    f"recomputed the Datastream summaries ({dataset['summary_seconds']} s) "
                    f"and analysed ({dataset['analyze_seconds']} s)"
                )
            else:
                city = await find_city(db, plan)
            dataset.update(await db.table_size())
            if dataset["observations"] != plan.observations:
                raise RuntimeError(f"{dataset['observations']} Observations loaded, not {plan}")
            result["dataset"] = dataset
            result["database"] = await db.describe()
            result["reads"] = await measure_reads(server, db, plan, city, opts, log)
            result["writes"] = {
                "single_post": await measure_single(server, db, city, opts, log),
                "bulk": await measure_bulk(server, db, city, opts, log),
            }
            if opts.mqtt.brokers:
                result["mqtt"] = await measure_mqtt(
                    db,
                    city.datastreams,
                    opts.mqtt,
                    opts.repeat,
                    workers,
                    env,
                    opts.results_dir,
                    stamp,
                    log,
                )
            await clean_up_writes(db, log)
    finally:
        await db.close()
    result["targets"] = report.targets(result)
    path = opts.results_dir / f"{stamp}-{db.kind}.json"
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    (opts.results_dir / f"{stamp}-{db.kind}.md").write_text(report.markdown(result))
    print(report.text(result))
    log(f"results written to {path}")
    return result


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
    except (OSError, StopIteration):
        mem_kb = 0
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True, text=True, check=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
