"""The command line of the benchmarks (``citytwin bench`` and ``python -m benchmarks``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from benchmarks.mqtt import MqttOptions
from benchmarks.runner import Options, run

_DEFAULTS = Options(db="")
_MQTT = MqttOptions()


def _clients(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        clients = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter("give client counts separated by commas, e.g. 1,16") from None
    if not clients or min(clients) < 1:
        raise click.BadParameter("client counts must be 1 or more")
    return clients


def _brokers(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    if value.strip().lower() == "none":
        return ()
    brokers = tuple(v.strip().lower() for v in value.split(",") if v.strip())
    unknown = set(brokers) - {"external", "embedded"}
    if unknown or not brokers:
        raise click.BadParameter("give external, embedded, both (external,embedded) or none")
    return brokers


@click.command(context_settings={"show_default": True})
@click.option(
    "--db",
    required=True,
    help="Benchmark database; it is DROPPED and created anew (PostgreSQL) or deleted "
    "(SQLite): postgresql://postgres@127.0.0.1/citytwin_bench or sqlite:///path/bench.db",
)
@click.option(
    "--observations",
    type=click.IntRange(1),
    default=_DEFAULTS.observations,
    help="Observations in the store during the measurements.",
)
@click.option(
    "--datastreams",
    type=click.IntRange(1),
    default=_DEFAULTS.datastreams,
    help="Datastreams (one Thing with a Location each) they are spread over.",
)
@click.option(
    "--repeat",
    type=click.IntRange(1),
    default=_DEFAULTS.repeat,
    help="Repetitions of each write measurement (the median is reported).",
)
@click.option(
    "--seconds",
    type=click.FloatRange(0.5),
    default=_DEFAULTS.seconds,
    help="Duration of each single-POST rate measurement.",
)
@click.option(
    "--clients",
    default="1,16",
    callback=_clients,
    help="Concurrent clients for the single-POST rates.",
)
@click.option(
    "--bulk-size",
    type=click.IntRange(1),
    default=_DEFAULTS.bulk_size,
    help="Observations per bulk POST.",
)
@click.option(
    "--bulk-requests",
    type=click.IntRange(1),
    default=_DEFAULTS.bulk_requests,
    help="Bulk POSTs per repetition.",
)
@click.option(
    "--samples",
    type=click.IntRange(5),
    default=_DEFAULTS.samples,
    help="Timed requests per read latency (after the warm-up).",
)
@click.option(
    "--warmup",
    type=click.IntRange(0),
    default=_DEFAULTS.warmup,
    help="Untimed requests before each read latency.",
)
@click.option(
    "--results-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=_DEFAULTS.results_dir,
    help="Where the JSON and Markdown results go.",
)
@click.option(
    "--reuse",
    is_flag=True,
    help="Keep the database if it already holds this dataset (skip the load).",
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=None,
    help="citytwin serve processes (default: half the cores on PostgreSQL, which runs on "
    "the same machine; one on SQLite).",
)
@click.option(
    "--mqtt",
    "brokers",
    default=",".join(_MQTT.brokers),
    callback=_brokers,
    help="MQTT measurements with which brokers (external: a private Mosquitto), or none.",
)
@click.option(
    "--mqtt-publishers",
    type=click.IntRange(1),
    default=_MQTT.publishers,
    help="MQTT clients publishing Observations at once.",
)
@click.option(
    "--mqtt-messages",
    type=click.IntRange(100),
    default=_MQTT.messages,
    help="Observations published per MQTT ingest measurement.",
)
@click.option(
    "--subscribers",
    type=click.IntRange(1),
    default=_MQTT.subscribers,
    help="MQTT subscribers of one Datastream's Observations (fan-out).",
)
@click.option(
    "--fanout-observations",
    type=click.IntRange(1),
    default=_MQTT.fanout_observations,
    help="Observations published in the fan-out burst.",
)
def main(
    db: str,
    observations: int,
    datastreams: int,
    repeat: int,
    seconds: float,
    clients: tuple[int, ...],
    bulk_size: int,
    bulk_requests: int,
    samples: int,
    warmup: int,
    results_dir: Path,
    reuse: bool,
    workers: int | None,
    brokers: tuple[str, ...],
    mqtt_publishers: int,
    mqtt_messages: int,
    subscribers: int,
    fanout_observations: int,
) -> None:
    """Benchmark citytwin against the raw database in the same run.

    Creates the database, starts `citytwin serve` on a free port, creates the
    Datastreams through the API, loads the Observations directly, then measures write
    rates and read latencies of the server and of the equivalent raw SQL, MQTT ingest
    and fan-out beside the broker's raw rate, and prints and saves the results
    (benchmarks/results/<time>-<backend>.json).
    """
    if observations < datastreams:
        raise click.BadParameter(
            "need at least one Observation per Datastream", param_hint="--observations"
        )
    options = Options(
        db=db,
        observations=observations,
        datastreams=datastreams,
        repeat=repeat,
        seconds=seconds,
        clients=clients,
        bulk_size=bulk_size,
        bulk_requests=bulk_requests,
        samples=samples,
        warmup=warmup,
        results_dir=results_dir,
        reuse=reuse,
        workers=workers,
        mqtt=MqttOptions(
            brokers=brokers,
            publishers=mqtt_publishers,
            messages=mqtt_messages,
            subscribers=subscribers,
            fanout_observations=fanout_observations,
        ),
    )
    try:
        asyncio.run(run(options))
    except (ValueError, RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
