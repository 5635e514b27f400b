"""The benchmark harness runs end to end on a tiny dataset, on both backends.

Nothing here is timed: the figures only have to exist and be consistent. The point is
that `citytwin bench` keeps working as the server changes under it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import orjson
import pytest
from benchmarks import mqtt as bench_mqtt
from benchmarks.mqtt import MqttOptions, mosquitto_binary
from benchmarks.runner import Options, run

from tests.support import REQUIRE_ENV, Databases


def _mqtt_brokers() -> tuple[str, ...]:
    if mosquitto_binary() and shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub"):
        return ("external", "embedded")
    if os.environ.get(REQUIRE_ENV):
        pytest.fail("the MQTT benchmarks need mosquitto and mosquitto-clients")
    return ()  # the HTTP part still runs; apt-get install mosquitto mosquitto-clients for all


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_tiny_benchmark_run_measures_every_scenario_beside_its_raw_baseline(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    if backend == "postgresql" and not databases.postgres_ready():
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(str(databases.problem))
        pytest.skip(str(databases.problem))
    db = databases.create(backend, tmp_path)
    brokers = _mqtt_brokers()
    options = Options(
        db=db,
        observations=600,
        datastreams=3,
        repeat=1,
        seconds=0.5,
        clients=(1, 2),
        bulk_size=20,
        bulk_requests=1,
        samples=5,
        warmup=0,
        load_batch=200,
        results_dir=tmp_path / "results",
        workers=1,
        mqtt=MqttOptions(
            brokers=brokers,
            publishers=1,
            messages=100,
            subscribers=2,
            fanout_observations=3,
            latency_samples=3,
        ),
    )
    try:
        result = asyncio.run(run(options))
    finally:
        databases.drop(db)

    assert result["backend"] == backend
    assert result["dataset"]["observations"] == 600
    reads = result["reads"]
    assert set(reads) == {
        "top100",
        "time_range",
        "count",
        "latest",
        "relation_filter",
        "aggregate",
    }
    for name, read in reads.items():
        assert read["check"] == "ok", name  # the answer was the expected one
        for side in ("api", "raw"):
            assert read[side]["p50_ms"] > 0, (name, side)
            assert read[side]["p95_ms"] >= read[side]["p50_ms"], (name, side)
    single = result["writes"]["single_post"]
    assert set(single) == {"1", "2"}
    for rate in [*single.values(), result["writes"]["bulk"]]:
        assert rate["api"]["median"] > 0
        assert rate["raw"]["median"] > 0
    if brokers:
        assert set(result["mqtt"]) == set(brokers)
        for broker in brokers:
            for qos in ("qos0", "qos1"):
                ingest = result["mqtt"][broker]["ingest"][qos]
                assert ingest["published"] == 100
                # timed by the server's announcements where it makes them (the external
                # broker's change-event topic), which the database's count confirmed
                expected = "announced" if broker == "external" else "polled"
                assert ingest["end_of_burst"] == expected, (broker, ingest)
                if qos == "qos1":  # acknowledged: every one stored, and counted
                    assert ingest["stored"] == [100], (broker, ingest)
                # the CPU each side spent per Observation (in clock ticks: a burst of 100
                # may take less than one); PostgreSQL's backends are found by their titles
                assert ingest["server_us_per_obs"] >= 0, ingest
                if backend == "postgresql":
                    assert ingest["database_us_per_obs"] >= 0, ingest
                else:  # SQLite works inside the server
                    assert ingest["database_us_per_obs"] is None, ingest
            assert result["mqtt"][broker]["fanout"]["api"]["delivered"] == 2 * 3
            assert result["mqtt"][broker]["ingest_warm_up"] > 0  # a burst ran before
    names = [c["name"] for c in result["targets"]["checks"]]
    assert "bulk ingest through the API / raw bulk rate" in names
    [stored] = options.results_dir.glob(f"*-{backend}.json")
    assert orjson.loads(stored.read_bytes())["targets"] == result["targets"]
    table = stored.with_suffix(".md").read_text()
    assert "citytwin/raw" in table
    assert "time-range page" in table
    if brokers:
        assert "CPU us/Obs srv/DB" in table


class _Clock:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def perf_counter(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.parametrize("rate", [2_000.0, 20_000.0, 200_000.0])
def test_an_ingest_burst_is_polled_sparsely_until_its_end_is_near(
    rate: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting what reached the database costs the database: the polls of a burst are
    sparse while its end is far, and 10 ms apart near it, so that its end is still seen
    within 10 ms."""
    clock = _Clock()
    monkeypatch.setattr(bench_mqtt.time, "perf_counter", clock.perf_counter)
    monkeypatch.setattr(bench_mqtt.asyncio, "sleep", clock.sleep)
    expected = 10_000
    end = expected / rate

    async def count() -> int:
        return min(expected, int(clock.now * rate))

    seen, at = asyncio.run(bench_mqtt._until(count, expected))
    assert seen == expected
    assert end <= at <= end + bench_mqtt.POLL_SECONDS + 1e-9
    every_10_ms = end / bench_mqtt.POLL_SECONDS
    # as often as every 10 ms only when the whole burst is that short
    bound = min(every_10_ms + 1, 20 + every_10_ms / 10)
    assert len(clock.sleeps) <= bound, (len(clock.sleeps), every_10_ms)
    assert max(clock.sleeps) <= bench_mqtt.MAX_POLL_SECONDS


def test_a_stalled_burst_ends_at_its_last_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """What has not arrived STALL_SECONDS after the last progress is not waited for; the
    end is seen within a quarter of the time the rate so far left for the rest."""
    clock = _Clock()
    monkeypatch.setattr(bench_mqtt.time, "perf_counter", clock.perf_counter)
    monkeypatch.setattr(bench_mqtt.asyncio, "sleep", clock.sleep)

    async def count() -> int:
        return min(6_000, int(clock.now * 10_000))

    seen, at = asyncio.run(bench_mqtt._until(count, 10_000))
    assert seen == 6_000
    left = (10_000 - 6_000) / 10_000
    assert 0.6 <= at <= 0.6 + left / 4 + bench_mqtt.POLL_SECONDS
    assert clock.now - at <= bench_mqtt.STALL_SECONDS + bench_mqtt.MAX_POLL_SECONDS


def test_the_announced_observations_are_the_ids_of_created_observation_records() -> None:
    """A line of the change-event topic names each created Observation once; other types,
    other kinds and anything that is not a list of records count for nothing."""
    line = orjson.dumps(
        [
            {"entityType": "Observation", "kind": "created", "changed": [], "ids": [4, 5, 6]},
            {"entityType": "Observation", "kind": "updated", "changed": ["result"], "ids": [4]},
            {"entityType": "Datastream", "kind": "created", "changed": [], "ids": [9]},
            {"entityType": "Observation", "kind": "created", "changed": [], "ids": [7]},
        ]
    )
    assert bench_mqtt.created_observations(line + b"\n") == 4
    assert bench_mqtt.created_observations(b"[]") == 0
    assert bench_mqtt.created_observations(b"probe") is None  # the readiness probe
    assert bench_mqtt.created_observations(b'{"ids": [1]}') is None


# when the transactions of a burst of 10,000 committed, and how many Observations each
# stored (seconds from the first publish; a timeline measured on this project's machine)
COMMITS = [(0.014, 2), (0.095, 363), (0.173, 1096), (0.269, 1903), (0.412, 3777), (0.469, 2859)]


def test_a_free_count_is_polled_every_poll_interval_to_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The announcements' count costs nothing to read, so it is not polled sparsely: the
    end of a burst whose rate rises late (a pipeline filling) is seen within 10 ms, where
    the sparse polls of the database's count, misled by the slow start, see it late."""
    expected = sum(n for _, n in COMMITS)

    def polled(sparse: bool) -> tuple[float, float]:
        clock = _Clock()
        monkeypatch.setattr(bench_mqtt.time, "perf_counter", clock.perf_counter)
        monkeypatch.setattr(bench_mqtt.asyncio, "sleep", clock.sleep)

        async def count() -> int:
            return sum(n for t, n in COMMITS if t <= clock.now)

        seen, at = asyncio.run(bench_mqtt._until(count, expected, sparse=sparse))
        assert seen == expected
        return at, max(clock.sleeps)

    end = COMMITS[-1][0]
    at, longest = polled(sparse=False)
    assert end <= at <= end + bench_mqtt.POLL_SECONDS + 1e-9
    assert longest == bench_mqtt.POLL_SECONDS
    late, _ = polled(sparse=True)
    assert late - end > 0.04  # 9% late: why the database's count is not the measure
