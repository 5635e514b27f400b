"""MQTT: Observations published through the broker into storage, and one Observation
announced to many subscribers, each beside the broker's own rate for the same messages
in the same run.

* **ingest**: ``--mqtt-publishers`` clients publish ``--mqtt-messages`` Observations of
  all Datastreams to ``v1.1/Observations``; the rate counts what reached the database,
  until the last of them was stored: with the external broker the moment the server
  announced it on its change-event topic (after the commit), with the embedded broker
  the first poll of the database's count that saw it (a lower bound of the rate).
  Raw: the same clients publish the same payloads to ``bench/raw/<n>``; one client
  subscribed to ``bench/raw/#`` counts what the broker passes on.
* **fan-out**: ``--subscribers`` clients subscribe to ``v1.1/Datastreams(x)/Observations``;
  one client publishes ``--fanout-observations`` Observations of it and the rate
  counts the notifications the subscribers receive. Raw: the same number of messages of
  the notification's size published to a topic with as many subscribers. The latency is
  that of one Observation until every subscriber has it, against the raw message's.

With the external broker citytwin runs with the same workers as for HTTP; the embedded
broker runs in one process. The clients are Mosquitto's command-line clients
(mosquitto_pub, mosquitto_sub): the load generator should not be what limits a rate.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import selectors
import shutil
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from benchmarks.backends import RawDatabase
from benchmarks.measure import Latency, Rate, ratio
from benchmarks.server import Server, free_port

CONNECT_TIMEOUT = 10.0
STALL_SECONDS = 5.0  # no progress for this long: what has not arrived will not (QoS 0)
POLL_SECONDS = 0.01  # counts are polled this often near the end of a burst
MAX_POLL_SECONDS = 0.25  # and at least this often before

# a private listener, and what docs/mosquitto.conf tells operators to set
MOSQUITTO_CONF = "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
DOCUMENTED_CONF = Path(__file__).parents[1] / "docs" / "mosquitto.conf"


@dataclass
class MqttOptions:
    brokers: tuple[str, ...] = ("external", "embedded")
    publishers: int = 4
    messages: int = 10_000  # per ingest measurement
    subscribers: int = 100
    fanout_observations: int = 200
    latency_samples: int = 20


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found is None and Path("/usr/sbin/mosquitto").exists():
        found = "/usr/sbin/mosquitto"
    return found


@contextmanager
def mosquitto(workdir: Path) -> Iterator[int]:
    """A private Mosquitto on a free port, configured as docs/mqtt.md asks."""
    binary = mosquitto_binary()
    if binary is None:
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto-bench.conf"
    conf.write_text(MOSQUITTO_CONF.format(port=port) + DOCUMENTED_CONF.read_text())
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_port(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError("mosquitto exited at start") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port}") from None
            time.sleep(0.1)


# --- clients ------------------------------------------------------------------------------------
# mosquitto_pub and mosquitto_sub (C): the load generator must not be what limits the rates


def _command(tool: str, port: int, qos: int, client_id: str, topic: str, *more: str) -> list[str]:
    found = shutil.which(tool)
    if found is None:
        raise RuntimeError(f"{tool} is not installed (apt-get install mosquitto-clients)")
    where = ["-h", "127.0.0.1", "-p", str(port)]
    return [found, *where, "-q", str(qos), "-i", client_id, "-t", topic, *more]


class Subscribers:
    """``n`` mosquitto_sub processes subscribed to one topic; a thread counts the messages
    (lines) they print, and when the last one came."""

    def __init__(self, port: int, prefix: str, topic: str, n: int, qos: int) -> None:
        self.procs = [
            subprocess.Popen(
                _command("mosquitto_sub", port, qos, f"{prefix}-{i}", topic),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            for i in range(n)
        ]
        self.lock = threading.Lock()
        self.counts = [0] * n
        self.count = 0
        self.last = 0.0
        self.sample = b""
        self._selector = selectors.DefaultSelector()
        for i, proc in enumerate(self.procs):
            assert proc.stdout is not None
            os.set_blocking(proc.stdout.fileno(), False)
            self._selector.register(proc.stdout, selectors.EVENT_READ, i)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.1):
                try:
                    chunk = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                lines = chunk.count(b"\n")
                if not lines:
                    continue
                now = time.perf_counter()
                with self.lock:
                    self.counts[key.data] += lines
                    self.count += lines
                    self.last = now
                    if not self.sample:
                        self.sample = chunk.split(b"\n", 1)[0]

    def everyone_has_one(self) -> bool:
        with self.lock:
            return min(self.counts) > 0

    def reset(self) -> None:
        with self.lock:
            self.counts = [0] * len(self.counts)
            self.count, self.last = 0, 0.0

    def close(self) -> None:
        self._stop.set()
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=10)
        self._thread.join(timeout=5)
        self._selector.close()
        for proc in self.procs:
            if proc.stdout is not None:
                proc.stdout.close()


class Announcements:
    """What the server announces on its change-event topic (``citytwin/events/<instance>``,
    published after each commit so that other instances learn of it): a mosquitto_sub
    counts the Observations announced as created, and when the last one came. This tells
    when a burst is stored without asking the database, whose count query, polled often
    enough to time the end of a burst, took CPU from the server under test, and polled
    sparsely, found the end up to a poll interval late."""

    TOPIC = "citytwin/events/#"
    PROBE = "bench/announcements/probe"

    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen(
            _command("mosquitto_sub", port, 1, "bench-announcements", self.TOPIC, "-t", self.PROBE),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.lock = threading.Lock()
        self.count = 0
        self.last = 0.0
        self.probed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            now = time.perf_counter()
            n = created_observations(line)
            with self.lock:
                if n is None:
                    self.probed = True
                elif n:
                    self.count += n
                    self.last = now

    def reset(self) -> None:
        with self.lock:
            self.count, self.last = 0, 0.0

    async def counted(self) -> int:
        with self.lock:
            return self.count

    async def ready(self, port: int) -> None:
        """Wait until the subscription is in place (a probe has come back)."""
        probe = Publisher(port, "bench-announcements-probe", self.PROBE, 1)
        try:
            deadline = time.monotonic() + 30
            while not self.probed:
                if time.monotonic() > deadline:
                    raise RuntimeError("the change-event topic's subscriber never got its probe")
                probe.send(b"probe")
                await asyncio.sleep(0.1)
        finally:
            probe.close()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._thread.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def created_observations(line: bytes) -> int | None:
    """The Observations a line of the change-event topic announces as created; None for
    anything that is not a list of event records (the readiness probe)."""
    try:
        records = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(records, list):
        return None
    return sum(
        len(r.get("ids", ()))
        for r in records
        if isinstance(r, dict)
        and r.get("entityType") == "Observation"
        and r.get("kind") == "created"
    )


class Publisher:
    """One long-lived mosquitto_pub: each line written to it is published at once."""

    def __init__(self, port: int, name: str, topic: str, qos: int) -> None:
        self.proc = subprocess.Popen(
            _command("mosquitto_pub", port, qos, name, topic, "-l"),
            stdin=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def send(self, payload: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(payload + b"\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def publish_all(port: int, name: str, topic: str, payloads: Sequence[bytes], qos: int) -> None:
    """Publish as fast as the client and the broker allow; return when all are sent
    (QoS 0) or acknowledged (QoS 1)."""
    proc = subprocess.run(
        _command("mosquitto_pub", port, qos, name, topic, "-l"),
        input=b"".join(p + b"\n" for p in payloads),
        stderr=subprocess.PIPE,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"mosquitto_pub failed: {proc.stderr.decode(errors='replace')}")


async def _publish(
    port: int, prefix: str, batches: Sequence[tuple[str, Sequence[bytes]]], qos: int
) -> None:
    await asyncio.gather(
        *(
            asyncio.to_thread(publish_all, port, f"{prefix}-{i}", topic, payloads, qos)
            for i, (topic, payloads) in enumerate(batches)
        )
    )


async def _until(
    count: Callable[[], Awaitable[int]], expected: int, *, sparse: bool = True
) -> tuple[int, float]:
    """Poll ``count`` until it reaches ``expected`` or stops growing; the final count
    and the time it was first seen.

    The polls come every ``POLL_SECONDS`` near the end, and more sparsely while the end,
    estimated from the rate so far, is further off: counting what reached the database
    is a query that costs the database about 1 ms, and at one every 10 ms it took 8 us of
    the database's CPU per Observation of an ingest burst, CPU that the server under
    test lacked on a machine of 2 cores. A count that costs nothing (``sparse`` false) is
    polled every ``POLL_SECONDS`` throughout."""
    seen, at = 0, time.perf_counter()
    start = at
    while seen < expected:
        now = await count()
        t = time.perf_counter()
        if now != seen:
            seen, at = now, t
        elif t - at > STALL_SECONDS:
            break
        wait = POLL_SECONDS
        if seen and sparse:
            left = (expected - seen) * (t - start) / seen
            wait = min(max(left / 4, POLL_SECONDS), MAX_POLL_SECONDS)
        await asyncio.sleep(wait)
    return seen, at


async def _ready(subs: Subscribers, publish: Callable[[], None]) -> None:
    """Publish probes until every subscriber has received one (the broker, and through
    it citytwin, know the subscriptions), then start counting afresh."""
    deadline = time.monotonic() + 30
    while not subs.everyone_has_one():
        if time.monotonic() > deadline:
            raise RuntimeError("the subscribers did not all receive the probe within 30 s")
        publish()
        await asyncio.sleep(0.5)
    await asyncio.sleep(0.5)
    subs.reset()


# --- the measurements ---------------------------------------------------------------------------


def _observations(datastreams: Sequence[int], n: int, start: datetime) -> list[bytes]:
    """Observation bodies naming their Datastream (for ``v1.1/Observations``)."""
    out = []
    for i in range(n):
        t = (start + timedelta(milliseconds=i)).isoformat(timespec="milliseconds")
        body = {
            "result": i % 1000 / 10,
            "phenomenonTime": t.replace("+00:00", "Z"),
            "Datastream": {"@iot.id": datastreams[i % len(datastreams)]},
        }
        out.append(orjson.dumps(body))
    return out


def _split(payloads: Sequence[bytes], n: int) -> list[Sequence[bytes]]:
    return [payloads[i::n] for i in range(n)]


@dataclass
class Burst:
    """One ingest measurement: Observations per second that reached the database, how
    many did, and the CPU time per Observation of the server's processes and of the
    database's (None where the database's cannot be seen), from the first publish until
    the last Observation was stored."""

    rate: float
    stored: int
    server_us: float | None
    database_us: float | None


async def ingest(
    port: int,
    db: RawDatabase,
    datastreams: Sequence[int],
    qos: int,
    opts: MqttOptions,
    server_cpu: Callable[[], float],
    announced: Announcements | None = None,
) -> Burst:
    """One burst of ``opts.messages`` Observations. Its end is when the server announced
    the last of them (``announced``: exact, and free for the database), or else when a
    poll of the database's count first saw them all."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    payloads = _observations(datastreams, opts.messages, start)
    # counted by the Datastreams' maintained counts, which each insert's transaction
    # updates: new ids are no measure, since each PostgreSQL connection takes them from
    # the sequence 64 at a time, so a new row may have a lower id than an older one
    total = "SELECT coalesce(sum(observation_count), 0) FROM datastreams"
    before = int((await db.fetch(total))[0][0])

    async def stored() -> int:
        return int((await db.fetch(total))[0][0]) - before

    batches = [("v1.1/Observations", b) for b in _split(payloads, opts.publishers)]
    if announced is not None:
        announced.reset()
    server_before, db_before = server_cpu(), db.cpu_seconds()
    t0 = time.perf_counter()
    publishing = asyncio.ensure_future(_publish(port, "bench-ingest", batches, qos))
    if announced is None:
        done, at = await _until(stored, len(payloads))
        server_after, db_after = server_cpu(), db.cpu_seconds()
    else:
        heard, _ = await _until(announced.counted, len(payloads), sparse=False)
        at = announced.last
        server_after, db_after = server_cpu(), db.cpu_seconds()
        done = await stored()
        if done != heard:
            raise RuntimeError(
                f"the server announced {heard} Observations as created, the database holds "
                f"{done}: the announcements cannot time this burst"
            )
    await publishing

    def per_observation(before: float | None, after: float | None) -> float | None:
        if before is None or after is None or not done:
            return None
        return round((after - before) / done * 1e6, 1)

    return Burst(
        done / (at - t0),
        done,
        per_observation(server_before, server_after),
        per_observation(db_before, db_after),
    )


async def raw_ingest(
    port: int, datastreams: Sequence[int], qos: int, opts: MqttOptions
) -> tuple[float, int]:
    """Messages per second the broker passes from the publishers to one subscriber."""
    payloads = _observations(datastreams, opts.messages, datetime.now(UTC))
    sub = await asyncio.to_thread(Subscribers, port, "bench-raw-sub", "bench/raw/#", 1, qos)
    probe = Publisher(port, "bench-raw-probe", "bench/raw/probe", qos)
    try:
        await _ready(sub, lambda: probe.send(b"{}"))

        async def received() -> int:
            return sub.count

        batches = [(f"bench/raw/{i}", b) for i, b in enumerate(_split(payloads, opts.publishers))]
        t0 = time.perf_counter()
        publishing = asyncio.ensure_future(_publish(port, "bench-raw", batches, qos))
        await _until(received, len(payloads))
        await publishing
        return sub.count / (sub.last - t0), sub.count
    finally:
        probe.close()
        sub.close()


async def fanout(
    port: int, topic: str, publish_topic: str, make: Callable[[int], bytes], opts: MqttOptions
) -> dict[str, Any]:
    """Deliveries per second of a burst to the subscribers, and the latency of one
    message until all have it."""
    n = opts.subscribers
    subs = await asyncio.to_thread(Subscribers, port, "bench-fan", topic, n, 0)
    publisher = Publisher(port, "bench-fan-pub", publish_topic, 1)
    counter = itertools.count()
    try:
        await _ready(subs, lambda: publisher.send(make(next(counter))))

        async def received() -> int:
            return subs.count

        async def one() -> float:
            subs.reset()
            t0 = time.perf_counter()
            publisher.send(make(next(counter)))
            got, _ = await _until(received, n)
            if got < n:
                raise RuntimeError(f"only {got} of {n} subscribers received the message")
            await asyncio.sleep(0.05)  # nothing more is coming
            return subs.last - t0

        latency = Latency([await one() for _ in range(opts.latency_samples)])
        subs.reset()
        burst = opts.fanout_observations
        t0 = time.perf_counter()
        for _ in range(burst):
            publisher.send(make(next(counter)))
        got, _ = await _until(received, burst * n)
        return {
            "deliveries_per_second": round(got / (subs.last - t0), 1),
            "delivered": got,
            "expected": burst * n,
            "latency_p50_ms": round(latency.p50 * 1000, 2),
            "latency_p95_ms": round(latency.p95 * 1000, 2),
            "payload_bytes": len(subs.sample),
        }
    finally:
        publisher.close()
        subs.close()


async def measure_broker(
    kind: str,
    port: int,
    db: RawDatabase,
    datastreams: Sequence[int],
    opts: MqttOptions,
    repeat: int,
    server_cpu: Callable[[], float],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Ingest and fan-out through one broker. With the external broker, the end of an
    ingest burst is timed by the server's announcements (:class:`Announcements`); the
    embedded broker has no change-event topic, so there the database's count is polled
    and the rate is a lower bound (the last poll comes after the end)."""
    announced = Announcements(port) if kind == "external" else None
    try:
        if announced is not None:
            await announced.ready(port)
        return await _measure_broker(
            kind, port, db, datastreams, opts, repeat, server_cpu, log, announced
        )
    finally:
        if announced is not None:
            announced.close()


async def _measure_broker(
    kind: str,
    port: int,
    db: RawDatabase,
    datastreams: Sequence[int],
    opts: MqttOptions,
    repeat: int,
    server_cpu: Callable[[], float],
    log: Callable[[str], None],
    announced: Announcements | None,
) -> dict[str, Any]:
    # a burst that is not kept, as the write measurements have their warm-up: the server
    # has just started, and makes its connections and prepares its statements in it
    warm_up = await ingest(port, db, datastreams, 0, opts, server_cpu, announced)
    out: dict[str, Any] = {"ingest": {}, "ingest_warm_up": round(warm_up.rate, 1)}
    for qos in (0, 1):
        api, raw = Rate(), Rate()
        stored, passed = [], []
        server_us: list[float] = []
        database_us: list[float] = []
        for rep in range(repeat):
            for what in ("api", "raw") if rep % 2 == 0 else ("raw", "api"):
                if what == "api":
                    burst = await ingest(port, db, datastreams, qos, opts, server_cpu, announced)
                    api.runs.append(burst.rate)
                    stored.append(burst.stored)
                    if burst.server_us is not None:
                        server_us.append(burst.server_us)
                    if burst.database_us is not None:
                        database_us.append(burst.database_us)
                else:
                    rate, done = await raw_ingest(port, datastreams, qos, opts)
                    raw.runs.append(rate)
                    passed.append(done)
        result = {
            "api": api.as_json(),
            "raw": raw.as_json(),
            "ratio": _round(ratio(api.median, raw.median)),
            "stored": stored,
            "raw_delivered": passed,
            "published": opts.messages,
            "end_of_burst": "announced" if announced is not None else "polled",
            # CPU per Observation: steadier than the rates on a shared machine
            "server_us_per_obs": _median(server_us),
            "database_us_per_obs": _median(database_us),
        }
        out["ingest"][f"qos{qos}"] = result
        cpu = f"server {result['server_us_per_obs']} us"
        if result["database_us_per_obs"] is not None:
            cpu += f", database {result['database_us_per_obs']} us"
        log(
            f"MQTT ingest, {kind} broker, QoS {qos}, {opts.publishers} publishers: "
            f"citytwin {api.median:,.0f} Obs/s stored, raw {raw.median:,.0f} msg/s "
            f"(ratio {result['ratio']}; stored {min(stored):,}-{max(stored):,}, raw delivered "
            f"{min(passed):,}-{max(passed):,} of {opts.messages:,}; CPU per Observation: {cpu})"
        )
    ds = datastreams[0]
    start = datetime.now(UTC) + timedelta(days=2)

    def observation(i: int) -> bytes:
        t = (start + timedelta(milliseconds=i)).isoformat(timespec="milliseconds")
        body = {
            "result": i,
            "phenomenonTime": t.replace("+00:00", "Z"),
            "Datastream": {"@iot.id": ds},
        }
        return orjson.dumps(body)

    # created on v1.1/Observations: an external broker would pass a publish on the topic
    # the subscribers listen to on to them as it is, beside the notification
    topic = f"v1.1/Datastreams({ds})/Observations"
    api_fan = await fanout(port, topic, "v1.1/Observations", observation, opts)
    filler = b"x" * max(api_fan["payload_bytes"], 1)
    raw_fan = await fanout(port, "bench/fan", "bench/fan", lambda i: filler, opts)
    out["fanout"] = {
        "api": api_fan,
        "raw": raw_fan,
        "ratio": _round(ratio(api_fan["deliveries_per_second"], raw_fan["deliveries_per_second"])),
        "subscribers": opts.subscribers,
    }
    log(
        f"MQTT fan-out, {kind} broker, {opts.subscribers} subscribers: citytwin "
        f"{api_fan['deliveries_per_second']:,.0f} deliveries/s (one Observation to all: "
        f"p50 {api_fan['latency_p50_ms']} ms), raw {raw_fan['deliveries_per_second']:,.0f}/s "
        f"(p50 {raw_fan['latency_p50_ms']} ms)"
    )
    return out


async def measure_mqtt(
    db: RawDatabase,
    datastreams: Sequence[int],
    opts: MqttOptions,
    repeat: int,
    workers: int,
    server_env: dict[str, str],
    results_dir: Path,
    stamp: str,
    log: Callable[[str], None],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in opts.brokers:
        log_file = results_dir / f"{stamp}-{db.kind}-mqtt-{kind}-server.log"
        if kind == "external":
            if mosquitto_binary() is None:
                log("no mosquitto on this machine: the external-broker measurements are left out")
                out[kind] = {"skipped": "mosquitto is not installed"}
                continue
            with mosquitto(results_dir) as port:
                env = {
                    **server_env,
                    "CITYTWIN_DATA_DIR": str(results_dir / "data"),  # the workers' MQTT ids
                    "CITYTWIN_MQTT": f"mqtt://127.0.0.1:{port}",
                    "CITYTWIN_MQTT_CLIENT_ID": "bench",
                    "CITYTWIN_WORKERS": str(workers),
                }
                with Server(db.url, log_file, env=env) as server:
                    await asyncio.sleep(1.0)  # its subscriptions are in place
                    out[kind] = await measure_broker(
                        kind, port, db, datastreams, opts, repeat, server.cpu_seconds, log
                    )
                out[kind]["workers"] = workers
        else:
            port = free_port()
            env = {
                **server_env,
                "CITYTWIN_MQTT": "embedded",
                "CITYTWIN_MQTT_PORT": str(port),
                "CITYTWIN_MQTT_WS_PORT": "0",
                "CITYTWIN_WORKERS": "1",
            }
            with Server(db.url, log_file, env=env) as server:
                await asyncio.to_thread(_wait_for_port, port)
                out[kind] = await measure_broker(
                    kind, port, db, datastreams, opts, repeat, server.cpu_seconds, log
                )
            out[kind]["workers"] = 1
    return out


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
