"""Short-lived session tokens, derived from an API key (docs/security.md, "The browser").

A browser signs in once with an API key; from then on it holds a token instead of the
key: in an HttpOnly cookie for HTTP, and as the password of its MQTT connection. A token
names its key and its expiry and is signed with HMAC-SHA-256 under the key's stored
digest. So every instance on the same database verifies it without a secret of its own,
revoking the key ends its tokens at once, and a token never reveals the key.

    ctt_<key id>_<expiry, Unix seconds>_<signature, hex>
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

from citytwin.access import Principal
from citytwin.access.keys import active_key, keys_table, principal_of_key
from citytwin.errors import Unauthorized
from citytwin.planner.dialect import param
from citytwin.storage.base import Row, Storage

TOKEN_PREFIX = "ctt_"
TTL_SECONDS = 12 * 3600  # a working day; signing in again makes a new one


@dataclass(frozen=True)
class Token:
    value: str
    expires: int  # Unix seconds


def _signature(key_hash: str, key_id: int, expires: int) -> str:
    msg = f"{key_id}.{expires}".encode()
    return hmac.new(key_hash.encode(), msg, hashlib.sha256).hexdigest()


def is_token(credential: str) -> bool:
    return credential.startswith(TOKEN_PREFIX)


async def _key_row(storage: Storage, key_id: int) -> Row | None:
    k = keys_table(storage.dialect.column_types)
    return await active_key(storage, k.c.id == param(key_id))


async def issue(
    storage: Storage, principal: Principal, ttl: int = TTL_SECONDS, now: float | None = None
) -> Token:
    """A token for the API key ``principal`` authenticated with."""
    if not principal.identity.startswith("key:"):
        raise Unauthorized("only an API key can open a session; send it as the key to sign in")
    key_id = int(principal.identity.removeprefix("key:"))
    row = await _key_row(storage, key_id)
    if row is None:
        raise Unauthorized("the API key is not valid (unknown or revoked)")
    expires = int(now if now is not None else time.time()) + ttl
    signature = _signature(row["key_hash"], key_id, expires)
    return Token(f"{TOKEN_PREFIX}{key_id}_{expires}_{signature}", expires)


async def verify(storage: Storage, token: str, now: float | None = None) -> Principal:
    """The principal of a token; :class:`Unauthorized` if it is malformed, forged,
    expired or its key revoked."""
    parts = token.removeprefix(TOKEN_PREFIX).split("_")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise Unauthorized("the session token is malformed; sign in again")
    key_id, expires, signature = int(parts[0]), int(parts[1]), parts[2]
    if expires <= (now if now is not None else time.time()):
        raise Unauthorized("the session has expired; sign in again")
    row = await _key_row(storage, key_id)
    if row is None or not hmac.compare_digest(
        signature, _signature(row["key_hash"], key_id, expires)
    ):
        # a forged token and one of a revoked key look the same from outside
        raise Unauthorized("the session token is not valid (forged, or its key was revoked)")
    return principal_of_key(row)
