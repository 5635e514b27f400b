"""The HTTP adapter: translates HTTP requests to and from the service.

Build the application with :func:`create_app` (or :func:`app_from_env` in server worker
processes); nothing is configured at import time.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from citytwin import __version__
from citytwin.access import ANONYMOUS, SYSTEM, Principal, Role, audit
from citytwin.access.keys import ensure_admin_key
from citytwin.access.oidc import OidcVerifier
from citytwin.bus import Bus
from citytwin.domains.service import DomainService
from citytwin.errors import CitytwinError, Unauthorized
from citytwin.http import domains as domain_routes
from citytwin.http import hardening, session, web
from citytwin.http.session import session_cookie
from citytwin.metrics import Metrics
from citytwin.mqtt import Mqtt
from citytwin.openapi import OPENAPI_PATH, ApiDescription
from citytwin.plugins.manager import (
    build_registry,
    build_storage,
    domains,
    plugin_manager,
    task_drivers,
    write_rules,
)
from citytwin.service import Request, Service
from citytwin.service import Response as ServiceResponse
from citytwin.settings import Settings, load_settings
from citytwin.tasking.dispatch import Dispatcher
from citytwin.tasking.drivers import DriverContext, WebhookTargets

log = logging.getLogger("citytwin.http")

INSECURE = (
    "ACCESS CONTROL IS OFF (auth = off / --insecure): anyone who reaches this server can "
    "read and change all data, personal data included"
)
ADMIN_WHEN_OFF = Principal("auth-off", role=Role.ADMIN)  # with access control off
RETENTION = audit.Origin(SYSTEM, "system")  # the setting audit_retention_days, at start


def _base_url(settings: Settings, scope: Scope, host: str | None) -> str:
    """The URL the client used to reach the service root (for self links)."""
    if settings.service_root_url:
        return str(settings.service_root_url).rstrip("/")
    if host is None:
        server = scope.get("server") or ("localhost", settings.port)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


def create_app(settings: Settings | None = None, *, server_process: bool = False) -> Starlette:
    """The citytwin web application for the given settings. ``server_process``: the app
    is all its process serves (a ``citytwin serve`` worker), so it may tune the
    process's garbage collector once started."""
    settings = settings or load_settings()
    pm = plugin_manager()
    registry = build_registry(pm)
    storage = build_storage(pm, registry, settings)
    bus = Bus()
    service = Service(
        registry,
        storage,
        bus,
        default_top=settings.default_page_size,
        max_top=settings.max_page_size,
        count_limit=settings.count_exact_limit if settings.count_mode == "estimate" else None,
        max_export_rows=settings.result_format_max_rows,
        max_buckets=settings.aggregate_max_buckets,
        write_rules=write_rules(pm),
        max_batch_requests=settings.max_batch_requests,
        filtered_delete=settings.filtered_delete,
        auth=settings.auth == "on",
        oidc=OidcVerifier.from_settings(settings),
        max_expand_depth=settings.max_expand_depth,
    )
    metrics = Metrics()
    domain_service = DomainService(
        storage,
        registry,
        domains(pm),
        Path(settings.layers_dir or Path(settings.data_dir) / "layers"),
        lambda principal: None if (p := service.policy(principal)) is None else p.visible,
        settings.privacy_k,
    )
    api = ApiDescription(registry, pm.hook.citytwin_openapi_paths(registry=registry))
    base = settings.service_root_url or f"http://{_local_host(settings.host)}:{settings.port}"
    mqtt = Mqtt(service, settings, bus, metrics, str(base))
    tasks = Dispatcher(
        service,
        task_drivers(pm),
        DriverContext(
            mqtt.publish,
            lambda: mqtt.transport is not None,
            settings.task_timeout,
            WebhookTargets.parse(settings.task_webhook_allow),
        ),
        str(base),
        mqtt.publish_to_readers,
    )

    ui = web.WebUi(settings, mqtt)

    async def root(request: HttpRequest) -> Response:
        if web.wants_html(request):
            return ui.index(request)
        base = _base_url(settings, request.scope, request.headers.get("host"))
        return RedirectResponse(url=f"{base}/v1.1", status_code=307)

    async def health(request: HttpRequest) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "database": storage.dialect.name,
                "mqtt": mqtt.state,
            }
        )

    async def openapi_page(request: HttpRequest) -> Response:
        base = _base_url(settings, request.scope, request.headers.get("host"))
        return Response(api.json(base), media_type="application/json")

    async def metrics_page(request: HttpRequest) -> Response:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.auto_migrate:
            applied = await storage.migrate()
            for name in applied:
                log.info("applied migration %s", name)
        await storage.open()
        try:
            if service.auth and settings.auto_migrate:  # else done once by `citytwin serve`
                await _first_admin_key(storage, Path(settings.data_dir))
            elif not service.auth:
                log.warning(INSECURE)
            pruned = await audit.prune(storage, settings.audit_retention_days, RETENTION)
            if pruned:
                log.info(
                    "deleted %d audit rows older than %d days",
                    pruned,
                    settings.audit_retention_days,
                )
            await mqtt.start()
            tasks.start(mqtt.ingest.listen)
            thresholds = _settle_heap() if server_process else None
            try:
                yield
            finally:
                if thresholds is not None:
                    gc.unfreeze()
                    gc.set_threshold(*thresholds)
                await tasks.stop()
                await mqtt.stop()
        finally:
            await storage.close()

    async def http_error(request: HttpRequest, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = (
            "no such resource; the API is at /v1.1" if exc.status_code == 404 else (exc.detail)
        )
        return JSONResponse(
            {"code": exc.status_code, "type": "error", "message": message},
            exc.status_code,
            headers=exc.headers,
        )

    async def sta_asgi(scope: Scope, receive: Receive, send: Send) -> None:
        """The SensorThings routes without Starlette's request and routing machinery:
        on the hot path (sensors posting Observations) it cost a third of the CPU."""
        version, _, path = scope["path"][1:].partition("/")
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away before sending its body
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        content_type = host = key = cookie = None
        minimal = False
        prefer: list[str] = []
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"host":
                host = value.decode("latin-1")
            elif name == b"authorization" or name == b"x-api-key":
                key = _api_key(name, value.decode("latin-1"))
            elif name == b"cookie":
                cookie = session_cookie(value.decode("latin-1"))
            elif name == b"prefer":
                prefer.append(value.decode("latin-1"))
                minimal = minimal or b"return=minimal" in value.lower().replace(b" ", b"")
        principal = ANONYMOUS
        if key is not None and service.auth:
            try:
                principal = await service.authenticate(key)
            except CitytwinError as exc:
                await _send(send, ServiceResponse.error(exc))
                return
        elif cookie is not None and service.auth:
            principal = await cookie_principal(cookie)
        req = Request(
            principal=principal,
            method=scope["method"],
            version=version,
            path=path,
            query=_query_pairs(scope["query_string"].decode("latin-1")),
            body=b"".join(chunks),
            content_type=content_type,
            base_url=_base_url(settings, scope, host),
            minimal=minimal,
            prefer=", ".join(prefer),
        )
        resp = await service.handle(req)
        if resp.stream is not None:
            await _send_stream(resp, send)
            return
        await _send(send, resp)

    async def principal_of(request: HttpRequest) -> Principal:
        """The principal of a request to the domain API (anonymous with auth off)."""
        if not service.auth:
            return ADMIN_WHEN_OFF
        key = None
        for name in ("authorization", "x-api-key"):
            value = request.headers.get(name)
            if value is not None:
                key = _api_key(name.encode(), value)
        if key is not None:
            return await service.authenticate(key)
        cookie = session_cookie(request.headers.get("cookie", ""))
        return ANONYMOUS if cookie is None else await cookie_principal(cookie)

    async def cookie_principal(token: str) -> Principal:
        """A browser's session; an expired or revoked one leaves it anonymous (the page
        asks /api/v1/session, which says so and forgets the cookie)."""
        try:
            return await service.authenticate(token)
        except Unauthorized:
            return ANONYMOUS

    app = CitytwinApp(
        sta_asgi,
        lambda inner: hardening.harden(inner, settings, mqtt),
        exception_handlers={HTTPException: http_error},
        routes=[
            Route("/", root, methods=["GET", "HEAD"]),
            Route("/health", health, methods=["GET", "HEAD"]),
            Route("/metrics", metrics_page, methods=["GET"]),
            Route(OPENAPI_PATH, openapi_page, methods=["GET", "HEAD"]),
            *domain_routes.routes(domain_service, principal_of),
            *session.routes(service, principal_of),
            *ui.routes(),
        ],
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.mqtt = mqtt
    app.state.tasks = tasks
    app.state.settings = settings
    app.state.domains = domain_service
    return app


class CitytwinApp(Starlette):
    """Starlette for the service's own pages; SensorThings requests go straight to the
    service. ``outer`` puts layers around both (citytwin.http.hardening)."""

    def __init__(
        self, sta: ASGIApp, outer: Callable[[ASGIApp], ASGIApp] = lambda a: a, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.sta = sta
        self.outer = outer(self._route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.outer(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path not in OWN_PAGES and not path.startswith(OWN_PREFIXES):
            scope["app"] = self
            await self.sta(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


OWN_PAGES = frozenset({"/", "/health", "/metrics", OPENAPI_PATH})
OWN_PREFIXES = web.PREFIXES  # the UI's assets and all of /api/ (domains, UI settings)


def _settle_heap() -> tuple[int, int, int]:
    """Leave what start-up made out of the garbage collector's full passes, and run them
    less often: a batch of thousands of Observations makes enough short-lived objects to
    set off collections that walk every module and table definition each time (measured:
    an Observation taken in over MQTT cost 71 us of CPU with the defaults, 49 us with a
    first threshold of 10,000; 50,000 saved another 2% of its instructions)."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    return thresholds


async def _send_stream(resp: ServiceResponse, send: Send) -> None:
    """A streamed body, chunk by chunk (chunked transfer: no content-length).

    A failure once the status is sent is logged and raised on, so that the server ends
    the connection without finishing the body: the client sees an incomplete answer.
    """
    assert resp.stream is not None
    headers = [(k.lower().encode(), v.encode()) for k, v in resp.headers.items()]
    if resp.content_type:
        headers.append((b"content-type", resp.content_type.encode()))
    await send({"type": "http.response.start", "status": resp.status, "headers": headers})
    try:
        async for chunk in resp.stream:
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except Exception:
        log.exception("a streamed answer failed after it had started")
        raise
    finally:
        await resp.stream.aclose()
    await send({"type": "http.response.body", "body": b""})


async def _send(send: Send, resp: ServiceResponse) -> None:
    headers = [(b"content-length", str(len(resp.body)).encode())]
    if resp.content_type and (resp.body or resp.status != 204):
        headers.append((b"content-type", resp.content_type.encode()))
    headers += [(k.lower().encode(), v.encode()) for k, v in resp.headers.items()]
    await send({"type": "http.response.start", "status": resp.status, "headers": headers})
    await send({"type": "http.response.body", "body": resp.body})


def _api_key(header: bytes, value: str) -> str:
    """The key sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` ("" for
    another scheme: an invalid key, answered 401)."""
    if header == b"x-api-key":
        return value.strip()
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def _first_admin_key(storage: Any, data_dir: Path) -> None:
    """Secure by default: with access control on and no admin key yet, make one."""
    path = await ensure_admin_key(storage, data_dir)
    if path is not None:
        log.warning("created the first admin API key; it is in %s (readable by you only)", path)


def _local_host(host: str) -> str:
    return "localhost" if host in ("0.0.0.0", "::", "") else host


def _query_pairs(raw: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(raw, keep_blank_values=True)


def app_from_env() -> Starlette:
    """Factory for server worker processes: settings come from CITYTWIN_* variables."""
    return create_app(load_settings(), server_process=True)
