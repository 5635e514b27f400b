"""A stand-in OpenID provider for the tests: local RSA and EC key pairs, their JWKS, tokens
shaped as Keycloak issues them, and a tiny HTTP server publishing the discovery document
and the JWKS as Keycloak lays them out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "citytwin"
REALM_PATH = "/realms/city"


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any  # a cryptography private key

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        algorithm = RSAAlgorithm if self.alg.startswith(("RS", "PS")) else ECAlgorithm
        out: dict[str, Any] = json.loads(algorithm.to_jwk(public))
        out.update(kid=self.kid, alg=self.alg, use="sig")
        return out

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(  # type: ignore[no-any-return]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def keycloak_claims(
    issuer: str,
    *,
    roles: tuple[str, ...] = (),
    organization: Any = None,
    subject: str = "f3b0c1de-0000-4000-8000-000000000001",
    lifetime: int = 300,
    **extra: Any,
) -> dict[str, Any]:
    """Claims as a Keycloak realm puts them into an access token: realm roles under
    realm_access.roles, the organisation (Keycloak 26 organizations) as a list of names."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "exp": now + lifetime,
        "iat": now,
        "jti": "onrtac:0f4c",
        "iss": issuer,
        "aud": [AUDIENCE, "account"],
        "sub": subject,
        "typ": "Bearer",
        "azp": "citytwin-ui",
        "realm_access": {"roles": ["offline_access", "uma_authorization", *roles]},
        "resource_access": {"account": {"roles": ["manage-account"]}},
        "scope": "openid profile email",
        "preferred_username": "jdoe",
    }
    if organization is not None:
        claims["organization"] = organization
    claims.update(extra)
    return claims


def sign(key: SigningKey, claims: dict[str, Any], **header: Any) -> str:
    return jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid, **header})


def hmac_token(secret: bytes, claims: dict[str, Any], kid: str) -> str:
    """An HS256 token MACed with ``secret`` (the attack: a public key used as the secret)."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(mac)}"


def unsigned_token(claims: dict[str, Any], kid: str) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Provider:
    """What the stand-in provider publishes; change ``keys`` to rotate them."""

    keys: list[SigningKey]
    issuer: str = ""
    requests: list[str] = field(default_factory=list)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self.keys]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/protocol/openid-connect/certs",
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }


@contextmanager
def serve(provider: Provider) -> Iterator[Provider]:
    """Publishes ``provider`` over HTTP on a free local port while the block runs; sets its
    issuer to the served realm's URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            provider.requests.append(self.path)
            if self.path == f"{REALM_PATH}/.well-known/openid-configuration":
                body = provider.discovery()
            elif self.path == f"{REALM_PATH}/protocol/openid-connect/certs":
                body = provider.jwks()
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}{REALM_PATH}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
