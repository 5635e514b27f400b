"""``citytwin keys``, ``citytwin orgs`` and ``citytwin audit``: the API keys and
organisations of a platform, and its audit log."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
import orjson

from citytwin.access import audit, keys
from citytwin.errors import CitytwinError, ConfigurationError
from citytwin.settings import Settings, load_settings

T = TypeVar("T")
db_option = click.option("--db", "db_url", default=None, help="Database URL [setting: db].")


def _run(ctx: click.Context, db_url: str | None, step: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``step`` on the platform's migrated storage; its errors end the command."""
    from citytwin.plugins.manager import build_registry, build_storage, plugin_manager

    settings = _settings(ctx, db_url)
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


def _settings(ctx: click.Context, db_url: str | None) -> Settings:
    try:
        return load_settings({"db": db_url}, config_file=ctx.find_root().params.get("config"))
    except ConfigurationError as exc:
        raise click.UsageError(exc.message) from None


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


@click.command("audit")
@click.option(
    "--since", default=None, help="From this time: ISO 8601 (UTC if no offset) or ago (7d)."
)
@click.option("--until", default=None, help="Before this time: ISO 8601 or ago (12h).")
@click.option(
    "--who", default=None, help="An identity (key:3, anonymous, cli:alice) or organisation."
)
@click.option(
    "--entity", default=None, help="An entity type (Observation, Thing, ...), layer or package."
)
@click.option(
    "--limit",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows shown, newest first.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line instead of a table.")
@click.option(
    "--prune",
    is_flag=True,
    help="Delete the rows older than the setting audit_retention_days, then show.",
)
@db_option
@click.pass_context
def audit_command(
    ctx: click.Context,
    since: str | None,
    until: str | None,
    who: str | None,
    entity: str | None,
    limit: int,
    as_json: bool,
    prune: bool,
    db_url: str | None,
) -> None:
    """Who changed what, when and how (docs/security.md): the audit log, newest first."""
    try:
        start = None if since is None else audit.parse_when(since)
        end = None if until is None else audit.parse_when(until)
    except CitytwinError as exc:
        raise click.BadParameter(exc.message) from None

    async def step(storage: Any) -> tuple[int | None, list[dict[str, Any]]]:
        pruned = None
        if prune:
            days = _settings(ctx, db_url).audit_retention_days
            if not days:
                raise click.UsageError(
                    "--prune needs the setting audit_retention_days (0 keeps every row)"
                )
            pruned = await audit.prune(storage, days, audit.cli_origin())
        found = await audit.entries(
            storage, since=start, until=end, who=who, entity=entity, limit=limit
        )
        return pruned, found

    pruned, rows = _run(ctx, db_url, step)
    if pruned is not None:
        click.echo(f"deleted {pruned} audit rows", err=True)
    if as_json:
        for row in rows:
            click.echo(orjson.dumps(row).decode())
        return
    click.echo(_table(rows))


AUDIT_COLUMNS = (
    "time",
    "identity",
    "organisation",
    "role",
    "transport",
    "operation",
    "entity",
    "count",
    "ids",
)


def _table(rows: list[dict[str, Any]]) -> str:
    """The rows as aligned columns; ids shortened, the Datastreams of Observations added."""
    cells = [list(AUDIT_COLUMNS)]
    for row in rows:
        ids = ",".join(str(i) for i in row["ids"][:5]) + ("..." if len(row["ids"]) > 5 else "")
        detail = row["detail"] or {}
        if "Datastreams" in detail:
            ids = (
                (ids + " " if ids else "")
                + "Datastreams "
                + ",".join(str(i) for i in detail["Datastreams"][:5])
            )
        elif detail:
            ids = (ids + " " if ids else "") + " ".join(f"{k}={v}" for k, v in detail.items())
        cells.append(
            [
                row["time"],
                row["identity"],
                row["organisation"] or "-",
                row["role"],
                row["transport"],
                row["operation"],
                row["entity"],
                str(row["count"]),
                ids,
            ]
        )
    widths = [max(len(r[i]) for r in cells) for i in range(len(AUDIT_COLUMNS) - 1)]
    return "\n".join(
        "  ".join([c.ljust(w) for c, w in zip(r, widths, strict=False)] + [r[-1]]).rstrip()
        for r in cells
    )
