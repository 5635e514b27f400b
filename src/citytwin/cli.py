"""The ``citytwin`` command."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import httpx

from citytwin import __version__
from citytwin.access.cli import audit_command, keys_group, orgs_group
from citytwin.errors import ConfigurationError
from citytwin.model.values import parse_duration
from citytwin.settings import SETTINGS, Settings, load_settings
from citytwin.simulate.runner import SimulationError
from citytwin.simulate.session import SIMULATORS, Options, Session


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    config = ctx.find_root().params.get("config")
    try:
        return load_settings(overrides, config_file=config)
    except ConfigurationError as exc:
        raise click.UsageError(exc.message) from None


def _storage(settings: Settings) -> Any:
    from citytwin.plugins.manager import build_registry, build_storage, plugin_manager

    pm = plugin_manager()
    return build_storage(pm, build_registry(pm), settings)


@click.group()
@click.version_option(__version__, prog_name="citytwin")
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Settings file (TOML). Default: $CITYTWIN_CONFIG or ./citytwin.toml.",
)
def main(config: str | None) -> None:
    """citytwin: open urban data platform (OGC SensorThings API)."""


_server_options = [
    click.option("--host", default=None, help="Listen address [setting: host]."),
    click.option("--port", type=int, default=None, help="HTTP port [setting: port]."),
    click.option(
        "--db", default=None, help="Database URL, e.g. sqlite:///data/city.db [setting: db]."
    ),
    click.option("--data-dir", default=None, help="Directory for local data [setting: data_dir]."),
    click.option("--workers", type=int, default=None, help="Server processes [setting: workers]."),
    click.option(
        "--mqtt",
        default=None,
        help="MQTT: embedded, off, or mqtt://user:password@host:port [setting: mqtt].",
    ),
    click.option(
        "--insecure",
        is_flag=True,
        default=False,
        help="Switch access control off: anyone may read and write everything [setting: auth].",
    ),
]


def server_options(fn: Any) -> Any:
    for option in reversed(_server_options):
        fn = option(fn)
    return fn


def _run_server(settings: Settings) -> None:
    if settings.workers > 1 and settings.mqtt == "embedded":
        raise click.UsageError(
            "the embedded MQTT broker runs in one process: with workers > 1 set mqtt to an "
            "external broker (mqtt://host:port) or to off"
        )
    from granian import Granian
    from granian.constants import Interfaces

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for chatty in ("amqtt", "transitions"):  # the embedded broker's state-machine chatter
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    storage = _storage(settings)
    if settings.auto_migrate:
        for name in asyncio.run(storage.migrate()):
            click.echo(f"applied migration {name}")
    if settings.auth == "on":
        from citytwin.access.keys import ensure_admin_key

        async def first_key() -> Path | None:
            await storage.open()
            try:
                return await ensure_admin_key(storage, Path(settings.data_dir))
            finally:
                await storage.close()

        made = asyncio.run(first_key())
        if made is not None:
            click.echo(f"created the first admin API key; it is in {made} (readable by you only)")
    else:
        from citytwin.http.app import INSECURE

        click.secho(f"WARNING: {INSECURE}", fg="red", bold=True, err=True)
    os.environ.update(settings.as_env())
    os.environ["CITYTWIN_AUTO_MIGRATE"] = "false"  # done once here, not per worker
    click.echo(f"citytwin {__version__} serving {settings.database_url}")
    click.echo(f"SensorThings API: http://{settings.host}:{settings.port}/v1.1")
    Granian(
        "citytwin.http.app:app_from_env",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        factory=True,
        log_level=settings.log_level.lower(),
    ).serve()


@main.command()
@server_options
@click.pass_context
def serve(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    db: str | None,
    data_dir: str | None,
    workers: int | None,
    mqtt: str | None,
    insecure: bool,
) -> None:
    """Serve the SensorThings API (and MQTT)."""
    settings = _settings(
        ctx,
        host=host,
        port=port,
        db=db,
        data_dir=data_dir,
        workers=workers,
        mqtt=mqtt,
        auth="off" if insecure else None,
    )
    _run_server(settings)


def _simulation_options(fn: Any) -> Any:
    options = [
        click.option("--seed", type=int, default=1, show_default=True, help="Seed of the city."),
        click.option(
            "--history",
            default="P1D",
            show_default=True,
            help="History to store before going live (ISO 8601 duration).",
        ),
        click.option(
            "--speed",
            type=float,
            default=1.0,
            show_default=True,
            help="Simulated seconds per second.",
        ),
        click.option(
            "--domains",
            default=",".join(SIMULATORS),
            show_default=True,
            help="Comma-separated domains to simulate.",
        ),
        click.option("--households", type=int, default=None, help="Households with smart meters."),
        click.option(
            "--vehicles", type=int, default=None, help="Vehicles of the ride-pooling fleet."
        ),
        click.option(
            "--centre", default=None, help="Centre of the district as LON,LAT (default Arnsberg)."
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _options(
    seed: int,
    history: str,
    speed: float,
    domains: str,
    households: int | None,
    vehicles: int | None,
    centre: str | None,
) -> Options:
    try:
        duration = parse_duration(history)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--history") from None
    if duration.months:
        raise click.BadParameter("use days, hours or minutes (e.g. P7D)", param_hint="--history")
    if speed <= 0:
        raise click.BadParameter("must be above 0", param_hint="--speed")
    names = [d.strip() for d in domains.split(",") if d.strip()]
    unknown = [d for d in names if d not in SIMULATORS]
    if unknown or not names:
        raise click.BadParameter(
            f"choose from {', '.join(SIMULATORS)}, not {', '.join(unknown) or 'nothing'}",
            param_hint="--domains",
        )
    sizes: dict[str, dict[str, int]] = {}
    if households is not None:
        sizes["energy"] = {"households": households}
    if vehicles is not None:
        sizes["mobility"] = {"vehicles": vehicles}
    options = Options(
        seed=seed,
        history=timedelta(microseconds=duration.micros),
        speed=speed,
        domains=names,
        sizes=sizes,
    )
    if centre:
        try:
            lon, lat = (float(v) for v in centre.split(","))
        except ValueError:
            raise click.BadParameter(
                "expected LON,LAT, e.g. 8.064,51.403", param_hint="--centre"
            ) from None
        if not (-180 <= lon <= 180 and -85 <= lat <= 85):
            raise click.BadParameter("longitude or latitude out of range", param_hint="--centre")
        options.centre = (lon, lat)
    return options


@main.command()
@server_options
@_simulation_options
@click.option(
    "--seconds",
    type=float,
    default=None,
    help="Stop after this many seconds live (default: never).",
)
@click.pass_context
def demo(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    db: str | None,
    data_dir: str | None,
    workers: int | None,
    mqtt: str | None,
    insecure: bool,
    seconds: float | None,
    seed: int,
    history: str,
    speed: float,
    domains: str,
    households: int | None,
    vehicles: int | None,
    centre: str | None,
) -> None:
    """Serve citytwin with a simulated city feeding it live (data in ./citytwin-demo)."""
    from citytwin import demo as live_demo

    settings = _settings(
        ctx,
        host=host,
        port=port,
        db=db,
        data_dir=data_dir or "citytwin-demo",
        workers=workers,
        mqtt=mqtt,
        auth="off" if insecure else None,
    )
    options = _options(seed, history, speed, domains, households, vehicles, centre)
    status = live_demo.run(settings, options, click.echo, seconds=seconds)
    ctx.exit(status)


@main.command()
@_simulation_options
@click.option(
    "--url", default="http://127.0.0.1:8080", show_default=True, help="The platform to feed."
)
@click.option(
    "--mqtt",
    "mqtt_url",
    default=None,
    help="Its MQTT broker, mqtt://host:port (default: live values go over HTTP).",
)
@click.option(
    "--seconds",
    type=float,
    default=None,
    help="Stop after this many seconds live (default: never).",
)
@click.option(
    "--api-key",
    envvar="CITYTWIN_API_KEY",
    default=None,
    help="An operator's or admin's API key, sent with every HTTP request and as the MQTT "
    "password [env: CITYTWIN_API_KEY].",
)
@click.option(
    "--readings-over-http",
    is_flag=True,
    help="Send live readings over HTTP even with --mqtt (for an external broker, which "
    "cannot pass the API key of the connection on to citytwin).",
)
def simulate(
    url: str,
    mqtt_url: str | None,
    seconds: float | None,
    api_key: str | None,
    readings_over_http: bool,
    **simulation: Any,
) -> None:
    """Feed a simulated city to a running platform over HTTP and MQTT."""
    options = _options(**simulation)

    async def go() -> None:
        session = Session(
            url,
            options,
            mqtt_url=mqtt_url,
            say=click.echo,
            api_key=api_key,
            readings_over_mqtt=not readings_over_http,
        )
        try:
            await session.prepare()
            stop = asyncio.Event()
            if seconds is not None:
                asyncio.get_running_loop().call_later(seconds, stop.set)
            click.echo("live; stop with Ctrl-C")
            await session.run(stop)
        finally:
            await session.close()

    try:
        asyncio.run(go())
    except SimulationError as exc:
        raise click.ClickException(str(exc)) from None
    except httpx.ConnectError:
        raise click.ClickException(f"cannot reach the platform at {url}") from None
    except KeyboardInterrupt:
        pass


main.add_command(keys_group)
main.add_command(orgs_group)
main.add_command(audit_command)


@main.group()
def db() -> None:
    """Database schema."""


@db.command()
@click.option("--db", "db_url", default=None, help="Database URL [setting: db].")
@click.pass_context
def migrate(ctx: click.Context, db_url: str | None) -> None:
    """Apply pending schema migrations."""
    settings = _settings(ctx, db=db_url)
    storage = _storage(settings)
    try:
        applied = asyncio.run(storage.migrate())
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    for name in applied:
        click.echo(f"applied {name}")
    click.echo(
        f"{settings.database_url}: schema version {asyncio.run(storage.schema_version())}"
        + ("" if applied else " (up to date)")
    )


@main.group()
def package() -> None:
    """Solution packages: hand a domain's set-up to another city (docs/packages.md)."""


async def _open_platform(settings: Settings) -> Any:
    """The service of the platform at ``settings.database_url`` (migrated and opened) and
    its domains by name; close the service's storage when done."""
    from citytwin.bus import Bus
    from citytwin.plugins.manager import (
        build_registry,
        build_storage,
        domains,
        plugin_manager,
        write_rules,
    )
    from citytwin.service import Service

    pm = plugin_manager()
    registry = build_registry(pm)
    storage = build_storage(pm, registry, settings)
    if settings.auto_migrate:
        await storage.migrate()
    await storage.open()
    # a local command with the database's own credentials: not subject to API keys
    service = Service(registry, storage, Bus(), write_rules=write_rules(pm), auth=False)
    return service, {d.name: d for d in domains(pm)}


@package.command("export")
@click.argument("domain")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="The package file to write, e.g. energy.citytwin.json.",
)
@click.option("--db", "db_url", default=None, help="Database URL [setting: db].")
@click.pass_context
def package_export(ctx: click.Context, domain: str, output: str, db_url: str | None) -> None:
    """Write the set-up of DOMAIN on this platform as a package file."""
    import orjson

    from citytwin.domains.packages import export_package

    settings = _settings(ctx, db=db_url)

    async def run() -> dict[str, Any]:
        service, found = await _open_platform(settings)
        try:
            if domain not in found:
                have = ", ".join(sorted(found)) or "none"
                raise click.ClickException(
                    f"this platform has no domain named {domain!r}; it has: {have}"
                )
            return await export_package(service.storage, found[domain])
        finally:
            await service.storage.close()

    doc = _run_package_step(run())
    with open(output, "wb") as out:
        out.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    click.echo(f"wrote the {domain} package, version {doc['version']}, to {output}")


@package.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--db", "db_url", default=None, help="Database URL [setting: db].")
@click.pass_context
def package_import(ctx: click.Context, file: str, db_url: str | None) -> None:
    """Install the package in FILE on this platform (again: nothing changes)."""
    from citytwin.domains.packages import install, loads

    settings = _settings(ctx, db=db_url)
    with open(file, "rb") as f:
        data = f.read()

    async def run() -> str:
        package = loads(data)
        service, found = await _open_platform(settings)
        try:
            report = await install(service, package, found)
        finally:
            await service.storage.close()
        return report.summary()

    click.echo(_run_package_step(run(), f"{file}: "))


def _run_package_step(step: Any, prefix: str = "") -> Any:
    """Run a package command's work; refusals become messages, not tracebacks."""
    from citytwin.errors import CitytwinError

    try:
        return asyncio.run(step)
    except CitytwinError as exc:
        raise click.ClickException(prefix + exc.message) from None
    except RuntimeError as exc:  # the database's schema is newer than this citytwin
        raise click.ClickException(prefix + str(exc)) from None


@main.group()
def config() -> None:
    """Settings."""


@config.command()
@click.pass_context
def show(ctx: click.Context) -> None:
    """Show every setting, its value and where the value came from."""
    settings = _settings(ctx)
    for s in SETTINGS:
        value = settings[s.name]
        shown = "(unset)" if value is None else value
        click.echo(f"{s.name} = {shown}    [{settings.source(s.name)}]")
        click.echo(f"    {s.help}  env: CITYTWIN_{s.name.upper()}")
    click.echo(f"database URL in effect: {settings.database_url}")


@main.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Run the benchmarks of a source checkout (options: citytwin bench --help)."""
    import importlib
    from pathlib import Path

    roots = [Path.cwd(), Path(__file__).resolve().parents[2]]
    root = next((r for r in roots if (r / "benchmarks" / "__init__.py").is_file()), None)
    if root is None:
        raise click.ClickException(
            "citytwin bench runs the benchmarks/ package of a citytwin source checkout, and "
            f"there is none in {roots[0]}; run it from the repository root"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module: Any = importlib.import_module("benchmarks.cli")
    module.main(args=list(args), prog_name="citytwin bench")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
