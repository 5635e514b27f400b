"""OpenID Connect bearer tokens: a JWT signed by a configured issuer becomes a principal.

The token's signature is checked with the issuer's published keys (its JWKS), then its
issuer, audience and validity period; its claims name a role and an organisation through
settings (docs/security.md has a Keycloak example). Only asymmetric signatures are
accepted: ``none`` and the HMAC algorithms (HS256 ...) are refused whatever the token
says, so a public key can never be used as a shared secret.

The JWKS is fetched once and kept; a token naming a key id the cache does not hold makes
it fetch again (the issuer rotated its keys), at most once per :data:`REFRESH_INTERVAL`, so
tokens with made-up key ids cannot turn every request into a fetch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from jwt.exceptions import InvalidKeyError, PyJWKError, PyJWTError

from citytwin.access import Role
from citytwin.errors import ConfigurationError, Forbidden, Unauthorized, Unavailable

log = logging.getLogger("citytwin.access.oidc")

# asymmetric algorithms only; the family is what the signing key must be
ALGORITHMS = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
}
REFRESH_INTERVAL = 30.0  # seconds between fetches caused by unknown key ids
MAX_AGE = 3600.0  # seconds a fetched JWKS is used before it is fetched anew
FETCH_TIMEOUT = 5.0
DEFAULT_ROLE_MAP = "citytwin-admin=admin,citytwin-operator=operator,citytwin-reader=reader"
_RANK = {Role.ADMIN: 3, Role.OPERATOR: 2, Role.READER: 1, Role.PUBLIC: 0}


def looks_like_jwt(token: str) -> bool:
    """A JWT (JWS compact form) has three parts separated by two dots; API keys have none."""
    return token.count(".") == 2


def parse_role_map(text: str) -> dict[str, Role]:
    """``"kc-role=operator,other=reader"`` as {claim value: role}; ValueError if bad."""
    out: dict[str, Role] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, role = part.partition("=")
        name, role = name.strip(), role.strip()
        if not sep or not name:
            raise ValueError(f"{part.strip()!r} is not NAME=ROLE")
        try:
            out[name] = Role(role)
        except ValueError:
            raise ValueError(
                f"{role!r} (for {name}) is not a role; choose admin, operator, reader or public"
            ) from None
    return out


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """The claim at a dotted ``path`` ("realm_access.roles"), or None."""
    value: Any = claims
    for name in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


@dataclass(frozen=True)
class OidcConfig:
    """What a token must satisfy and how its claims map to a role and an organisation."""

    issuer: str
    audience: str
    jwks_url: str | None = None  # None: from the issuer's discovery document
    role_claim: str = "realm_access.roles"
    org_claim: str = "organization"
    role_map: Mapping[str, Role] = field(default_factory=lambda: parse_role_map(DEFAULT_ROLE_MAP))
    leeway: float = 30.0  # seconds of clock skew allowed on exp, nbf and iat

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> OidcConfig | None:
        """The configuration the settings ask for; None when ``oidc_issuer`` is not set."""
        issuer = settings.get("oidc_issuer")
        if not issuer:
            return None
        audience = settings.get("oidc_audience")
        if not audience:
            raise ConfigurationError(
                "setting oidc_audience is needed with oidc_issuer: tokens issued for other "
                "clients of the same issuer must not be accepted"
            )
        try:
            role_map = parse_role_map(settings.get("oidc_role_map") or DEFAULT_ROLE_MAP)
        except ValueError as exc:
            raise ConfigurationError(f"setting oidc_role_map: {exc}") from None
        return cls(
            issuer=str(issuer),
            audience=str(audience),
            jwks_url=settings.get("oidc_jwks_url") or None,
            role_claim=settings.get("oidc_role_claim") or "realm_access.roles",
            org_claim=settings.get("oidc_org_claim") or "organization",
            role_map=role_map,
            leeway=float(settings.get("oidc_leeway", 30.0)),
        )


@dataclass(frozen=True)
class Identity:
    """What a verified token says: who, with which role, of which organisation (by name)."""

    subject: str
    role: Role
    organisation: str | None


class Jwks:
    """The issuer's signing keys by key id, fetched when needed (see the module docstring).

    ``transport``: an httpx transport to fetch through (tests pass a stub); ``clock``: the
    monotonic clock the refresh limits are measured on."""

    def __init__(
        self,
        config: OidcConfig,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.transport = transport
        self.clock = clock
        self.fetches = 0  # how often the JWKS was fetched (for tests and the log)
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched: float | None = None  # when the keys were fetched
        self._tried: float | None = None  # when a fetch was last tried
        self._jwks_url = config.jwks_url
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> jwt.PyJWK:
        """The key with id ``kid`` (None: the only key). The JWKS is fetched when it is
        missing or old, or lacks ``kid``; but never twice within the interval, whether
        the last try worked or not."""
        if self._fetched is None or self.clock() - self._fetched > MAX_AGE:
            await self._refresh()
        found = self._find(kid)
        if found is None and self._keys:
            await self._refresh()
            found = self._find(kid)
        if found is None:
            which = "names no key id" if kid is None else f"key id {kid!r}"
            raise Unauthorized(f"the token's signing key ({which}) is not among the issuer's keys")
        return found

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        async with self._lock:  # one fetch at a time; those waiting find it done
            now = self.clock()
            if self._tried is not None and now - self._tried < REFRESH_INTERVAL:
                if not self._keys:
                    raise Unavailable(
                        "the OpenID provider's keys could not be fetched; trying again shortly"
                    )
                return
            self._tried = now
            self.fetches += 1
            try:
                self._keys = await self._fetch()
            except Unavailable as exc:
                if not self._keys:
                    raise
                log.warning("%s; using the keys fetched before", exc.message)
                return
            self._fetched = self.clock()

    async def _fetch(self) -> dict[str | None, jwt.PyJWK]:
        async with httpx.AsyncClient(transport=self.transport, timeout=FETCH_TIMEOUT) as http:
            if self._jwks_url is None:
                found = await _get_json(http, _discovery_url(self.config.issuer))
                if found.get("issuer") != self.config.issuer:
                    raise Unavailable(
                        f"the OpenID provider's discovery document names the issuer "
                        f"{found.get('issuer')!r}, not the configured {self.config.issuer!r}"
                    )
                url = found.get("jwks_uri")
                if not isinstance(url, str) or not url:
                    raise Unavailable("the OpenID provider's discovery document has no jwks_uri")
                self._jwks_url = url
            doc = await _get_json(http, self._jwks_url)
        keys: dict[str | None, jwt.PyJWK] = {}
        entries = doc.get("keys")
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            if entry.get("kty") not in ("RSA", "EC"):
                continue  # symmetric ("oct") and other keys never verify a token here
            try:
                keys[entry.get("kid")] = jwt.PyJWK(entry)
            except (PyJWKError, InvalidKeyError, ValueError, TypeError) as exc:
                log.warning("skipping an unusable key %s of the JWKS: %s", entry.get("kid"), exc)
        log.info("fetched %d signing keys from %s", len(keys), self._jwks_url)
        return keys


def _discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


async def _get_json(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    try:
        resp = await http.get(url, headers={"Accept": "application/json"})
        resp.raise_for_status()
        doc = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Unavailable(f"cannot read the OpenID provider's {url}: {exc}") from None
    if not isinstance(doc, dict):
        raise Unavailable(f"the OpenID provider's {url} is not a JSON object")
    return doc


class OidcVerifier:
    """Checks bearer tokens of one issuer and reads their identity."""

    def __init__(self, config: OidcConfig, jwks: Jwks | None = None) -> None:
        self.config = config
        self.jwks = jwks or Jwks(config)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> OidcVerifier | None:
        """The verifier the settings configure; None when ``oidc_issuer`` is not set."""
        config = OidcConfig.from_settings(settings)
        return None if config is None else cls(config)

    async def verify(self, token: str) -> Identity:
        """The identity of a valid token; :class:`Unauthorized` with the reason if not."""
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError as exc:
            raise Unauthorized(f"the bearer token is not a valid JWT: {exc}") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise Unauthorized(
                f"the token's signature algorithm {alg!r} is not accepted; "
                f"accepted: {', '.join(ALGORITHMS)}"
            )
        kid = header.get("kid")
        key = await self.jwks.key(kid if isinstance(kid, str) else None)
        if key.key_type != ALGORITHMS[alg]:
            raise Unauthorized(f"the token's algorithm {alg} does not fit its {key.key_type} key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("the token is not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized(
                f"the token is not meant for this service (its audience is not "
                f"{self.config.audience!r})"
            ) from None
        except jwt.InvalidIssuerError:
            raise Unauthorized(
                f"the token was not issued by the configured issuer {self.config.issuer}"
            ) from None
        except PyJWTError as exc:
            raise Unauthorized(f"the token is not valid: {exc}") from None
        return Identity(str(claims["sub"]), self.role(claims), self.organisation(claims))

    def role(self, claims: Mapping[str, Any]) -> Role:
        """The highest role the claims map to; public when none does."""
        value = claim(claims, self.config.role_claim)
        names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        known = self.config.role_map
        roles = [known[n] for n in names if isinstance(n, str) and n in known]
        return max(roles, key=_RANK.__getitem__, default=Role.PUBLIC)

    def organisation(self, claims: Mapping[str, Any]) -> str | None:
        """The organisation the claims name: a string, a list of one, or (as Keycloak's
        organisations put it with their attributes) an object with one key."""
        value = claim(claims, self.config.org_claim)
        if value is None or value == [] or value == {}:
            return None
        names = (
            [value]
            if isinstance(value, str)
            else list(value)
            if isinstance(value, (list, dict))
            else []
        )
        if len(names) != 1 or not isinstance(names[0], str) or not names[0]:
            raise Forbidden(
                f"the token's claim {self.config.org_claim} must name one organisation, "
                f"not {value!r}"
            )
        return names[0]
