"""What stands between the network and the application (docs/security.md, "Hardening"):
a request body size limit, rate limiting per identity, CORS and security headers.

:func:`harden` wraps the whole ASGI application (SensorThings, the domain API, the UI)
in these layers, outermost first: security headers (on every answer, the refusals below
included), CORS (only with ``cors_origins`` set), rate limiting (only with
``rate_limit`` set) and the body size limit. Limits of the query itself (``$expand``
depth, ``$top``) are the service's (:class:`citytwin.service.Service`).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable

import orjson
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citytwin.http import web
from citytwin.settings import Settings

UNLIMITED_PATHS = frozenset({"/health"})  # load balancers' health checks are never limited
MAX_BUCKETS = 100_000  # identities remembered; beyond, full buckets are forgotten
CORS_METHODS = ("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE")
CORS_HEADERS = ("Authorization", "X-API-Key", "Content-Type", "Prefer")
CORS_EXPOSE = ("Location", "Preference-Applied", "Retry-After")
# answers the UI page does not render: nothing may load from them, nobody may frame them
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"DENY"),
]


def harden(app: ASGIApp, settings: Settings, mqtt: web.HasState) -> ASGIApp:
    """``app`` behind the layers the settings switch on."""
    outer: ASGIApp = BodyLimit(app, settings.max_body_bytes)
    if settings.rate_limit > 0:
        outer = RateLimit(outer, TokenBuckets(settings.rate_limit, settings.rate_limit_burst))
    origins = cors_origins(settings.cors_origins)
    if origins:
        outer = CORSMiddleware(
            outer,
            allow_origins=origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            expose_headers=CORS_EXPOSE,
        )
    return SecurityHeaders(outer, settings, mqtt)


def cors_origins(value: str | None) -> list[str]:
    """The origins of the ``cors_origins`` setting (comma-separated; "*" for any)."""
    return [o.strip().rstrip("/") for o in (value or "").split(",") if o.strip()]


async def _refuse(send: Send, status: int, message: str, headers: dict[str, str]) -> None:
    body = orjson.dumps({"code": status, "type": "error", "message": message})
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


# --- body size ------------------------------------------------------------------------------
class BodyLimit:
    """Refuses a request body of more than ``limit`` bytes with 413 (0: no limit), before
    the application reads any of it: at once when its Content-Length says so; a body
    without one (chunked) is read here up to the limit and handed on whole."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def message(self) -> str:
        return (
            f"the request body is larger than the limit of {self.limit} bytes "
            f"(setting max_body_bytes); split it, e.g. into several $batch or "
            f"CreateObservations requests"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limit:
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > self.limit:
                    await _refuse(send, 413, self.message(), {"connection": "close"})
                    return
                await self.app(scope, receive, send)  # the server holds it to its length
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away: nobody waits for an answer
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await _refuse(send, 413, self.message(), {"connection": "close"})
                return
            if not message.get("more_body", False):
                break
        whole: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]

        async def replay() -> Message:
            return whole.pop() if whole else await receive()

        await self.app(scope, replay, send)


# --- rate limiting --------------------------------------------------------------------------
class TokenBuckets:
    """A token bucket per identity: ``rate`` requests a second on average, up to
    ``burst`` at once. In memory: each instance (each server worker process) limits on
    its own."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}  # identity -> (tokens, when)

    def take(self, identity: str) -> float:
        """Take a token for ``identity``: 0 if it may go ahead, else the seconds until
        it may."""
        now = self.clock()
        tokens, then = self.buckets.get(identity, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens >= 1.0:
            if len(self.buckets) >= MAX_BUCKETS and identity not in self.buckets:
                self._forget(now)
            self.buckets[identity] = (tokens - 1.0, now)
            return 0.0
        self.buckets[identity] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _forget(self, now: float) -> None:
        """Drop the buckets that have filled up again: they hold nothing to remember."""
        full = [
            i for i, (t, then) in self.buckets.items() if t + (now - then) * self.rate >= self.burst
        ]
        for identity in full:
            del self.buckets[identity]
        if len(self.buckets) >= MAX_BUCKETS:  # nothing full: start afresh rather than grow
            self.buckets.clear()


def identity_of(scope: Scope) -> str:
    """Who a request counts against: the API key it sends (by digest: one bucket per
    key, whatever its client's address), else the client's address."""
    for name, value in scope["headers"]:
        if name == b"authorization" or name == b"x-api-key":
            key = value.strip()
            if name == b"authorization" and key[:7].lower() == b"bearer ":
                key = key[7:].strip()
            return "key:" + hashlib.sha256(key).hexdigest()[:32]
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


class RateLimit:
    """Answers 429 with Retry-After to an identity that sends requests faster than its
    token bucket allows."""

    def __init__(self, app: ASGIApp, buckets: TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(identity_of(scope))
        if wait:
            seconds = max(1, math.ceil(wait))
            message = (
                f"too many requests: at most {self.buckets.rate:g} a second (bursts of "
                f"{self.buckets.burst:g}) per API key or client address; retry in {seconds} s"
            )
            await _refuse(send, 429, message, {"retry-after": str(seconds)})
            return
        await self.app(scope, receive, send)


# --- security headers -----------------------------------------------------------------------
def ui_policy(settings: Settings, mqtt: web.HasState, request: Request) -> str:
    """The Content-Security-Policy of the UI's page: its own scripts, style sheets and
    data, style attributes, the MQTT WebSocket it connects to, MapLibre's workers (which
    it may start from blob: URLs) and, with a basemap style set, the map tiles of https
    servers."""
    connect = ["'self'"]
    images = ["'self'", "data:", "blob:"]
    url = web.mqtt_url(settings, mqtt, request)
    if url:
        connect.append(url)
    if settings.web_basemap_style:
        connect.append("https:")  # the style names its tile, glyph and sprite servers
        images.append("https:")
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            # the UI sets style attributes (legend swatches); no <style> elements
            "style-src-attr 'unsafe-inline'",
            f"img-src {' '.join(images)}",
            "font-src 'self' data:",
            f"connect-src {' '.join(connect)}",
            "worker-src 'self' blob:",
            "child-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


class SecurityHeaders:
    """nosniff, a referrer policy and no framing on every answer; a Content-Security-
    Policy that lets the UI's page work and an empty one on everything else."""

    def __init__(self, app: ASGIApp, settings: Settings, mqtt: web.HasState) -> None:
        self.app = app
        self.settings = settings
        self.mqtt = mqtt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                html = any(
                    k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers
                )
                policy = (
                    ui_policy(self.settings, self.mqtt, Request(scope)).encode()
                    if html
                    else API_CSP
                )
                headers += COMMON_HEADERS
                headers.append((b"content-security-policy", policy))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)
