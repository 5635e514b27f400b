"""Organisations and API keys: created, listed and revoked with the CLI, checked on
every request that sends one.

A key is 32 random bytes (``secrets.token_urlsafe``), shown once when it is made. Only
its SHA-256 digest is stored: for high-entropy random tokens a fast hash is right (a
slow password hash such as bcrypt or Argon2 protects guessable passwords; nobody can
enumerate 2**256 keys), and it lets a request's key be looked up by its digest.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from citytwin.access import Principal, Role
from citytwin.access.oidc import Identity, OidcVerifier, looks_like_jwt
from citytwin.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from citytwin.planner.dialect import param
from citytwin.planner.tables import ColumnTypes
from citytwin.storage.base import Reader, Row, Storage

KEY_PREFIX = "ct_"
ADMIN_KEY_FILE = "admin-key.txt"


def hash_key(key: str) -> str:
    """The stored form of a key: its SHA-256 digest, hexadecimal."""
    return hashlib.sha256(key.encode()).hexdigest()


@cache
def organisations_table(types: ColumnTypes) -> sa.Table:
    """``organisations`` in a backend's column types (its migrations create it)."""
    return sa.Table(
        "organisations",
        sa.MetaData(),
        sa.Column("id", types.id, primary_key=True),
        sa.Column("name", types.text, nullable=False),
        sa.Column("created_at", types.time, nullable=False),
    )


@cache
def keys_table(types: ColumnTypes) -> sa.Table:
    """``api_keys``: one row per key, with the digest of the key, never the key."""
    return sa.Table(
        "api_keys",
        sa.MetaData(),
        sa.Column("id", types.id, primary_key=True),
        sa.Column("key_hash", types.text, nullable=False),
        sa.Column("org_id", types.id),
        sa.Column("role", types.text, nullable=False),
        sa.Column("thing_id", types.id),
        sa.Column("name", types.text),
        sa.Column("created_at", types.time, nullable=False),
        sa.Column("revoked_at", types.time),
    )


@dataclass(frozen=True)
class NewKey:
    id: int
    key: str  # shown once; only its digest is stored


async def create_organisation(storage: Storage, name: str) -> int:
    name = name.strip()
    if not name:
        raise BadRequest("an organisation needs a name")
    t = organisations_table(storage.dialect.column_types)
    async with storage.writer() as w:
        if await w.scalar(sa.select(t.c.id).where(t.c.name == param(name))) is not None:
            raise Conflict(f"there is already an organisation named {name}")
        rows = await w.execute_returning(
            sa.insert(t)
            .values(name=param(name), created_at=storage.dialect.time_param(datetime.now(UTC)))
            .returning(t.c.id)
        )
    return int(rows[0]["id"])


async def organisations(storage: Storage) -> list[dict[str, Any]]:
    t = organisations_table(storage.dialect.column_types)
    async with storage.reader() as r:
        rows = await r.fetch(sa.select(t.c.id, t.c.name).order_by(t.c.id))
    return [{"id": row["id"], "name": row["name"]} for row in rows]


async def _organisation_id(r: Reader, storage: Storage, name: str) -> int:
    t = organisations_table(storage.dialect.column_types)
    found = await r.scalar(sa.select(t.c.id).where(t.c.name == param(name)))
    if found is None:
        raise NotFound(f"no organisation named {name}; create it with: citytwin orgs create NAME")
    return int(found)


async def create_key(
    storage: Storage,
    role: str,
    organisation: str | None = None,
    name: str | None = None,
    *,
    thing: int | None = None,
) -> NewKey:
    """A new API key for ``role`` in the named organisation (admins may have none); a
    household key names its ``thing`` instead and belongs to the Thing's organisation."""
    try:
        parsed = Role(role)
    except ValueError:
        raise BadRequest(f"no role {role}; choose admin, operator, reader or household") from None
    if parsed is Role.PUBLIC:
        raise BadRequest("the public role needs no key; choose admin, operator or reader")
    if (thing is None) == (parsed is Role.HOUSEHOLD):
        raise BadRequest("a household key, and only a household key, names its Thing (--thing ID)")
    if organisation is None and parsed not in (Role.ADMIN, Role.HOUSEHOLD):
        raise BadRequest(f"a key with the role {role} needs an organisation (--org NAME)")
    if organisation is not None and parsed is Role.HOUSEHOLD:
        raise BadRequest("a household key belongs to its Thing's organisation; leave out --org")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    t = keys_table(storage.dialect.column_types)
    async with storage.writer() as w:
        if thing is not None:
            things = storage.tables.entity["Thing"]
            found = await w.fetch(sa.select(things.c.org_id).where(things.c.id == param(thing)))
            if not found:
                raise NotFound(f"no Thing {thing} for the household key")
            org_id = found[0]["org_id"]
        else:
            org_id = (
                None if organisation is None else await _organisation_id(w, storage, organisation)
            )
        rows = await w.execute_returning(
            sa.insert(t)
            .values(
                key_hash=param(hash_key(key)),
                org_id=param(org_id),
                role=param(parsed.value),
                thing_id=param(thing),
                name=param(name),
                created_at=storage.dialect.time_param(datetime.now(UTC)),
            )
            .returning(t.c.id)
        )
    return NewKey(int(rows[0]["id"]), key)


async def revoke_key(storage: Storage, key_id: int) -> None:
    t = keys_table(storage.dialect.column_types)
    now = storage.dialect.time_param(datetime.now(UTC))
    async with storage.writer() as w:
        changed = await w.execute(
            sa.update(t)
            .where(t.c.id == param(key_id), t.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    if not changed:
        raise NotFound(f"no active API key with id {key_id}")


async def list_keys(storage: Storage) -> list[dict[str, Any]]:
    """Every key (without the key itself): id, organisation, role, name, state."""
    k = keys_table(storage.dialect.column_types)
    o = organisations_table(storage.dialect.column_types)
    stmt = (
        sa.select(
            k.c.id, o.c.name.label("organisation"), k.c.role, k.c.thing_id, k.c.name, k.c.revoked_at
        )
        .select_from(k.outerjoin(o, o.c.id == k.c.org_id))
        .order_by(k.c.id)
    )
    async with storage.reader() as r:
        rows = await r.fetch(stmt)
    return [
        {
            "id": row["id"],
            "organisation": row["organisation"],
            "role": row["role"],
            "thing": row["thing_id"],
            "name": row["name"],
            "revoked": row["revoked_at"] is not None,
        }
        for row in rows
    ]


async def authenticate(storage: Storage, key: str, oidc: OidcVerifier | None = None) -> Principal:
    """The principal of an API key or, with ``oidc``, of an OpenID Connect token (a JWT:
    it has two dots, API keys none). :class:`Unauthorized` for an unknown or revoked key
    and an invalid token; :class:`Forbidden` for a valid token that this platform does not
    admit (its organisation is unknown here, see :func:`token_principal`)."""
    if looks_like_jwt(key):
        if oidc is None:
            raise Unauthorized(
                "the bearer token looks like a JWT, but this server accepts no OpenID Connect "
                "tokens (setting oidc_issuer is not set); send an API key"
            )
        return await token_principal(storage, await oidc.verify(key))
    k = keys_table(storage.dialect.column_types)
    row = await active_key(storage, k.c.key_hash == param(hash_key(key)))
    if row is None:
        raise Unauthorized("the API key is not valid (unknown or revoked)")
    return principal_of_key(row)


async def active_key(storage: Storage, where: Any) -> Row | None:
    """The row of the active (not revoked) key meeting ``where``, with its digest and its
    organisation's name as ``organisation``; None if there is none."""
    k = keys_table(storage.dialect.column_types)
    o = organisations_table(storage.dialect.column_types)
    stmt = (
        sa.select(
            k.c.id,
            k.c.key_hash,
            k.c.org_id,
            k.c.role,
            k.c.thing_id,
            o.c.name.label("organisation"),
        )
        .select_from(k.outerjoin(o, o.c.id == k.c.org_id))
        .where(where, k.c.revoked_at.is_(None))
    )
    async with storage.reader() as r:
        rows = await r.fetch(stmt)
    return rows[0] if rows else None


def principal_of_key(row: Row) -> Principal:
    """The principal of a key's row (as :func:`active_key` reads it)."""
    return Principal(
        f"key:{row['id']}", row["org_id"], Role(row["role"]), row["organisation"], row["thing_id"]
    )


async def token_principal(storage: Storage, identity: Identity) -> Principal:
    """The principal of a verified token. Its organisation must exist here (by name): a
    token naming an unknown one, or an operator or reader token naming none, is refused
    with 403 (the token is genuine, so a new one would not help; an admin has to create
    the organisation or the issuer has to send its claim). A token mapping to no role
    acts as the public role, with or without organisation."""
    subject = f"oidc:{identity.subject}"
    if identity.role is Role.PUBLIC:
        return Principal(subject, None, Role.PUBLIC)
    if identity.organisation is None:
        if identity.role is Role.ADMIN:
            return Principal(subject, None, Role.ADMIN)
        raise Forbidden(
            f"the token's role {identity.role} needs an organisation, and the token names "
            "none (see setting oidc_org_claim)"
        )
    async with storage.reader() as r:
        try:
            org_id = await _organisation_id(r, storage, identity.organisation)
        except NotFound:
            raise Forbidden(
                f"the token names the organisation {identity.organisation!r}, which this "
                "platform does not know; an admin creates it with: citytwin orgs create "
                f"{identity.organisation}"
            ) from None
    return Principal(subject, org_id, identity.role, identity.organisation)


async def ensure_admin_key(storage: Storage, data_dir: Path) -> Path | None:
    """With no active admin key yet, make one and write it to a file only its owner can
    read; the file's path, or None when an admin key exists already."""
    k = keys_table(storage.dialect.column_types)
    async with storage.reader() as r:
        found = await r.scalar(
            sa.select(k.c.id).where(k.c.role == param("admin"), k.c.revoked_at.is_(None)).limit(1)
        )
    if found is not None:
        return None
    new = await create_key(storage, "admin", name="created at first start")
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / ADMIN_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(new.key + "\n")
    path.chmod(0o600)
    return path


def read_admin_key(data_dir: Path) -> str | None:
    """The admin key written at first start, if its file is there."""
    path = data_dir / ADMIN_KEY_FILE
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
