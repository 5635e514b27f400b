"""``citytwin keys`` and ``citytwin orgs``: the API keys and organisations of a platform."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from citytwin.access import keys
from citytwin.errors import CitytwinError, ConfigurationError
from citytwin.settings import load_settings

T = TypeVar("T")
db_option = click.option("--db", "db_url", default=None, help="Database URL [setting: db].")


def _run(ctx: click.Context, db_url: str | None, step: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``step`` on the platform's migrated storage; its errors end the command."""
    from citytwin.plugins.manager import build_registry, build_storage, plugin_manager

    try:
        settings = load_settings({"db": db_url}, config_file=ctx.find_root().params.get("config"))
    except ConfigurationError as exc:
        raise click.UsageError(exc.message) from None
    pm = plugin_manager()
    storage = build_storage(pm, build_registry(pm), settings)

    async def go() -> T:
        if settings.auto_migrate:
            await storage.migrate()
        await storage.open()
        try:
            return await step(storage)
        finally:
            await storage.close()

    try:
        return asyncio.run(go())
    except CitytwinError as exc:
        raise click.ClickException(exc.message) from None


@click.group("keys")
def keys_group() -> None:
    """API keys: sent as 'Authorization: Bearer <key>' (docs/security.md)."""


@keys_group.command("create")
@click.option("--org", default=None, help="The organisation (required unless --role admin).")
@click.option(
    "--role",
    type=click.Choice(["admin", "operator", "reader", "household"]),
    required=True,
    help="admin: everything; operator: read and write its organisation's data; "
    "reader: read its organisation's data; household: read one Thing's data, personal "
    "data included (give the household its own meter's readings).",
)
@click.option("--thing", type=int, default=None, help="The Thing of a household key.")
@click.option("--name", default=None, help="What the key is for (shown by 'keys list').")
@db_option
@click.pass_context
def keys_create(
    ctx: click.Context,
    org: str | None,
    role: str,
    thing: int | None,
    name: str | None,
    db_url: str | None,
) -> None:
    """Create an API key and print it (once: only its digest is stored)."""
    new = _run(ctx, db_url, lambda s: keys.create_key(s, role, org, name, thing=thing))
    whose = f" of {org}" if org else f" for Thing {thing}" if thing is not None else ""
    click.echo(f"created API key {new.id} ({role}{whose}); keep it now:")
    click.echo(new.key)


@keys_group.command("revoke")
@click.argument("key_id", type=int)
@db_option
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: int, db_url: str | None) -> None:
    """Revoke an API key: requests sending it are refused (401) from now on."""
    _run(ctx, db_url, lambda s: keys.revoke_key(s, key_id))
    click.echo(f"revoked API key {key_id}")


@keys_group.command("list")
@db_option
@click.pass_context
def keys_list(ctx: click.Context, db_url: str | None) -> None:
    """List the API keys (never the keys themselves)."""
    for k in _run(ctx, db_url, keys.list_keys):
        state = "revoked" if k["revoked"] else "active"
        org = k["organisation"] or "-"
        if k["thing"] is not None:
            org = f"{org} (Thing {k['thing']})"
        click.echo(f"{k['id']}\t{k['role']}\t{org}\t{state}\t{k['name'] or ''}")


@click.group("orgs")
def orgs_group() -> None:
    """Organisations: each owns its Things and everything under them."""


@orgs_group.command("create")
@click.argument("name")
@db_option
@click.pass_context
def orgs_create(ctx: click.Context, name: str, db_url: str | None) -> None:
    """Create an organisation."""
    org_id = _run(ctx, db_url, lambda s: keys.create_organisation(s, name))
    click.echo(f"created organisation {org_id}: {name}")


@orgs_group.command("list")
@db_option
@click.pass_context
def orgs_list(ctx: click.Context, db_url: str | None) -> None:
    """List the organisations."""
    for org in _run(ctx, db_url, keys.organisations):
        click.echo(f"{org['id']}\t{org['name']}")
