"""The ``citytwin`` command."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import click

from citytwin import __version__
from citytwin.errors import ConfigurationError
from citytwin.settings import SETTINGS, Settings, load_settings


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
) -> None:
    """Serve the SensorThings API (and MQTT)."""
    settings = _settings(
        ctx, host=host, port=port, db=db, data_dir=data_dir, workers=workers, mqtt=mqtt
    )
    _run_server(settings)


@main.command()
@server_options
@click.option("--no-serve", is_flag=True, help="Only seed the example data, then exit.")
@click.pass_context
def demo(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    db: str | None,
    data_dir: str | None,
    workers: int | None,
    mqtt: str | None,
    no_serve: bool,
) -> None:
    """Seed a small example city (once) and serve it."""
    from citytwin.demo import seed

    settings = _settings(
        ctx,
        host=host,
        port=port,
        db=db,
        data_dir=data_dir or "citytwin-demo",
        workers=workers,
        mqtt=mqtt,
    )
    created = asyncio.run(seed(settings))
    click.echo(
        f"example city: {created} Observations added" if created else "example city already seeded"
    )
    if not no_serve:
        _run_server(settings)


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
    service = Service(registry, storage, Bus(), write_rules=write_rules(pm))
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
