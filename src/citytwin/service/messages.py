"""What adapters hand to the service and get back."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

import orjson

from citytwin.access import ANONYMOUS, Principal
from citytwin.errors import CitytwinError, MethodNotAllowed


@dataclass(frozen=True)
class Request:
    method: str
    version: str  # "v1.0" or "v1.1"
    path: str  # after the version, without leading slash; "" for the landing page
    query: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    content_type: str | None = None
    base_url: str = "http://localhost"  # scheme://host[:port][/prefix], no trailing slash
    minimal: bool = False  # "Prefer: return=minimal": writes answer 204 without the entity
    prefer: str = ""  # the Prefer header(s), comma-separated (RFC 7240)
    # who asks; what it may read and write is decided by the service (citytwin.access)
    principal: Principal = ANONYMOUS
    transport: str = "http"  # how it came: "http" or "mqtt" (for the audit log)

    @property
    def root(self) -> str:
        return f"{self.base_url}/{self.version}"


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # a body sent in chunks as they are produced (large results); ``body`` is then unused
    stream: AsyncGenerator[bytes, None] | None = None

    @classmethod
    def json(
        cls, data: object, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        return cls(status, orjson.dumps(data), "application/json", headers or {})

    @classmethod
    def error(cls, exc: CitytwinError) -> Response:
        resp = cls.json(exc.to_json(), exc.status)
        if exc.status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="citytwin"'
        if isinstance(exc, MethodNotAllowed) and exc.allowed:
            resp.headers["Allow"] = ", ".join(exc.allowed)
        return resp
