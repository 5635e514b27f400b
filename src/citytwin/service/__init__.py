"""The service: every request, whatever its transport, is parsed, planned, executed and
formatted here. Adapters (HTTP, MQTT) only translate to and from :class:`Request` and
:class:`Response`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from citytwin import __version__
from citytwin.access import Principal, Role
from citytwin.access.audit import Origin
from citytwin.access.guard import Guard, require_writer
from citytwin.access.keys import authenticate
from citytwin.access.oidc import OidcVerifier
from citytwin.access.policy import Policy
from citytwin.access.tokens import is_token, verify
from citytwin.bus import Bus
from citytwin.errors import BadRequest, CitytwinError, MethodNotAllowed, NotFound
from citytwin.model import Registry
from citytwin.openapi import OPENAPI_PATH
from citytwin.planner.reads import ReadPlanner
from citytwin.query.ast import QueryOptions
from citytwin.query.parser import parse_query
from citytwin.query.path import ResourcePath, parse_path
from citytwin.serialize.formats import result_format
from citytwin.serialize.sta import Serializer
from citytwin.service.aggregation import aggregate, is_aggregate
from citytwin.service.batch import run_batch
from citytwin.service.batching import Batcher
from citytwin.service.dataarrays import (
    CREATE_OBSERVATIONS,
    create_observations,
    is_data_array,
    read_data_array,
)
from citytwin.service.export import export
from citytwin.service.extensions import WriteRule
from citytwin.service.messages import Request, Response
from citytwin.service.reading import read
from citytwin.service.unit import Unit
from citytwin.service.writing import (
    Post,
    create,
    create_together,
    delete,
    delete_matching,
    update,
)
from citytwin.storage.base import Storage

__all__ = ["Request", "Response", "Service"]

log = logging.getLogger("citytwin.service")

VERSIONS = ("v1.0", "v1.1")
NO_OPTIONS = QueryOptions()
BATCHED = frozenset({"Observations"})  # POSTs that may share a transaction (group commit)
CONFORMANCE_BASE = "http://www.opengis.net/spec/iot_sensing/1.1/req/"
CONFORMANCE = (
    "datamodel",
    "resource-path/resource-path-to-entities",
    "request-data",
    "create-update-delete",
    "multi-datastream",
    "data-array/data-array",
    "batch-request/batch-request",
)
MQTT_CONFORMANCE = (  # announced while MQTT is on, with its endpoints
    "create-observations-via-mqtt/observations-creation",
    "receive-updates-via-mqtt/receive-updates",
)
TASKING_CONFORMANCE = tuple(
    "http://www.opengis.net/spec/iot_tasking/1.0/req/" + c
    for c in ("tasking-capability", "task", "actuator", "create-tasks")
)


class Service:
    """SensorThings over one storage backend."""

    def __init__(
        self,
        registry: Registry,
        storage: Storage,
        bus: Bus,
        *,
        default_top: int = 100,
        max_top: int = 1000,
        count_limit: int | None = None,
        max_export_rows: int = 1_000_000,
        max_buckets: int = 100_000,
        write_rules: Sequence[WriteRule] = (),
        max_batch_requests: int = 1000,
        filtered_delete: bool = False,
        auth: bool = True,
        oidc: OidcVerifier | None = None,
        max_expand_depth: int = 0,
    ) -> None:
        self.registry = registry
        self.storage = storage
        self.bus = bus
        self.default_top = default_top
        self.max_top = max_top
        self.count_limit = count_limit
        self.max_export_rows = max_export_rows  # rows of one CSV or GeoJSON answer
        self.max_buckets = max_buckets  # of one $aggregate request
        self.write_rules = tuple(write_rules)
        self.mqtt_endpoints: list[str] = []  # set by the MQTT side once it runs
        self.max_batch_requests = max_batch_requests
        self.filtered_delete = filtered_delete  # DELETE /Observations?$filter=...
        self.batcher = Batcher(lambda posts: create_together(self, posts))
        self._paths: dict[str, ResourcePath] = {}  # parsed resource paths, by their text
        self.auth = auth  # off: every request may read and write everything
        self.oidc = oidc  # checks bearer tokens of the configured issuer; None: keys only
        self.max_expand_depth = max_expand_depth  # 0: no limit

    # --- access control (docs/security.md) -----------------------------------------------
    async def authenticate(self, key: str) -> Principal:
        """The principal of an API key, a session token made from one, or an OpenID
        Connect token, whatever transport carried it (:class:`~citytwin.errors.Unauthorized`
        if bad)."""
        if is_token(key):
            return await verify(self.storage, key)
        return await authenticate(self.storage, key, self.oidc)

    def policy(self, principal: Principal | None) -> Policy | None:
        """What ``principal`` may see and change; None when it may do everything
        (access control off, an admin, or the service's own work: no principal)."""
        if not self.auth or principal is None or principal.role is Role.ADMIN:
            return None
        return Policy(principal, self.registry, self.storage.tables, self.storage.dialect)

    def guard(self, principal: Principal) -> Guard | None:
        """The write checks of a request's transaction; None with access control off."""
        return Guard(principal, self.policy(principal)) if self.auth else None

    @contextlib.asynccontextmanager
    async def transaction(self, origin: Origin, now: datetime | None = None) -> AsyncIterator[Unit]:
        """A write transaction of ``origin``'s principal, with its write checks: every
        write of the service goes through here. What it changed is written to the audit
        log just before it commits, in it (nothing is recorded when it rolls back)."""
        async with self.storage.writer() as w:
            unit = Unit(
                self.registry,
                self.storage,
                w,
                now,
                self.write_rules,
                self.guard(origin.principal),
                origin,
            )
            yield unit
            await unit.close()

    def check_writer(self, request: Request) -> None:
        """Refuse a write of a reader or an anonymous request before it starts."""
        if self.auth:
            require_writer(request.principal)

    def planner(
        self, now: datetime | None = None, principal: Principal | None = None
    ) -> ReadPlanner:
        """A read planner for ``principal``: without one it sees everything (the
        service's own reads); with one, only what the principal may read."""
        policy = self.policy(principal)
        return ReadPlanner(
            self.registry,
            self.storage.tables,
            self.storage.dialect,
            default_top=self.default_top,
            max_top=self.max_top,
            count_limit=self.count_limit,
            now=now or datetime.now(UTC),
            visible=None if policy is None else policy.visible,
        )

    def serializer(self, request: Request) -> Serializer:
        return Serializer(request.root, self.storage.format_time)

    async def handle(self, request: Request) -> Response:
        """Answer one request; client mistakes become 4xx, never 5xx."""
        try:
            response = await self._dispatch(request)
        except Exception as exc:
            response = self.failure(request, exc)
        if request.method == "HEAD":
            response.body = b""
            if response.stream is not None:
                await response.stream.aclose()
                response.stream = None
        return response

    async def handle_many(self, requests: Sequence[Request]) -> list[Response]:
        """Answer independent requests that arrived together (an MQTT client's backlog):
        POSTs of Observations among them share transactions, like concurrent ones."""
        out: list[Response | None] = [None] * len(requests)
        shared: list[tuple[int, Post]] = []
        for i, request in enumerate(requests):
            try:
                post = self.shared_post(request)
            except Exception as exc:
                out[i] = self.failure(request, exc)
                continue
            if post is None:
                out[i] = await self.handle(request)
            else:
                shared.append((i, post))
        # already a batch: stored together at once, without waiting for concurrent POSTs
        results = await create_together(self, [post for _, post in shared]) if shared else []
        for (i, post), result in zip(shared, results, strict=True):
            if isinstance(result, BaseException):
                out[i] = self.failure(post[0], result)
            else:
                out[i] = result
        return [r for r in out if r is not None]

    def failure(self, request: Request, exc: BaseException) -> Response:
        """The answer to a request that raised ``exc``; a bug is logged and answered 500."""
        if isinstance(exc, CitytwinError):
            return Response.error(exc)
        log.error(
            "failed: %s %s/%s",
            request.method,
            request.version,
            request.path,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        return Response.json(
            {"code": 500, "type": "error", "message": "internal error; see the server log"},
            500,
        )

    def shared_post(self, request: Request) -> Post | None:
        """The POST parsed, if it may share a transaction with others."""
        if request.method != "POST" or request.version not in VERSIONS:
            return None
        if not request.path.strip("/"):
            return None
        self.check_writer(request)
        path, options = self._parse(request)
        self._writable_collection(path)
        return (request, path, options) if path.segments[-1].name in BATCHED else None

    def _parse(self, request: Request) -> tuple[ResourcePath, QueryOptions]:
        path = self._paths.get(request.path)
        if path is None:
            path = parse_path(request.path, self.registry)
            if len(self._paths) >= 10_000:
                self._paths.clear()
            self._paths[request.path] = path
        options = parse_query(request.query) if request.query else NO_OPTIONS
        result_format(options.result_format)  # refuses unknown formats, whatever the method
        if self.max_expand_depth and options.expand:
            depth = expand_depth(options)
            if depth > self.max_expand_depth:
                raise BadRequest(
                    f"$expand nests {depth} levels; at most {self.max_expand_depth} are "
                    f"allowed (setting max_expand_depth)"
                )
        return path, options

    async def _dispatch(self, request: Request) -> Response:
        if request.version not in VERSIONS:
            raise NotFound(f"unknown API version {request.version}; use v1.1")
        if not request.path.strip("/"):
            if request.method not in ("GET", "HEAD"):
                raise MethodNotAllowed("the service root is read-only", ("GET", "HEAD"))
            return Response.json(self.landing_page(request))
        if request.path.strip("/") == "$batch":
            return await run_batch(self, request)  # each request in it is checked
        if request.method not in ("GET", "HEAD"):
            self.check_writer(request)
        if is_aggregate(request.path):
            return await aggregate(self, request)
        if request.path.strip("/") == CREATE_OBSERVATIONS:
            if request.method != "POST":
                raise MethodNotAllowed(f"{CREATE_OBSERVATIONS} only takes POST", ("POST",))
            return await create_observations(self, request)
        path, options = self._parse(request)
        method = request.method
        if method in ("GET", "HEAD"):
            if is_data_array(options):
                return await read_data_array(self, request, path, options)
            writer = result_format(options.result_format)
            if writer is not None:
                return await export(self, request, path, options, writer)
            return await read(self, request, path, options)
        if method == "POST" and path.segments[-1].name in BATCHED:
            self._writable_collection(path)
            return await self.batcher.submit((request, path, options))
        return await self._write(request, path, options, None)

    async def write_in(self, unit: Unit, request: Request) -> Response:
        """A write of a batch change set, in the change set's open transaction: the caller
        commits it and publishes its events."""
        if request.version not in VERSIONS:
            raise NotFound(f"unknown API version {request.version}; use v1.1")
        self.check_writer(request)
        path, options = self._parse(request)
        return await self._write(request, path, options, unit)

    async def _write(
        self, request: Request, path: ResourcePath, options: QueryOptions, unit: Unit | None
    ) -> Response:
        method = request.method
        if method == "POST":
            self._writable_collection(path)
            return await create(self, request, path, options, unit)
        if method == "DELETE" and not path.single and path.property is None and not path.ref:
            return await delete_matching(self, request, path, options, unit)
        if method in ("PATCH", "PUT", "DELETE"):
            self._writable_entity(path, method)
            if method == "DELETE":
                return await delete(self, request, path, options, unit)
            return await update(self, request, path, options, unit)
        raise MethodNotAllowed(
            f"method {method} is not supported", ("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE")
        )

    @staticmethod
    def _writable_collection(path: ResourcePath) -> None:
        if path.property is not None or path.ref or path.single:
            raise MethodNotAllowed(
                "POST only creates entities in a collection, e.g. /Things",
                ("GET", "HEAD", "PATCH", "PUT", "DELETE"),
            )

    @staticmethod
    def _writable_entity(path: ResourcePath, method: str) -> None:
        if path.property is not None or path.ref or not path.single:
            raise MethodNotAllowed(
                f"{method} needs the path of one entity, e.g. /Things(1)", ("GET", "HEAD", "POST")
            )

    def landing_page(self, request: Request) -> dict[str, object]:
        root = request.root
        settings: dict[str, object] = {
            "conformance": [CONFORMANCE_BASE + c for c in CONFORMANCE]
            + (list(TASKING_CONFORMANCE) if self.registry.by_set("Tasks") else [])
            + ([CONFORMANCE_BASE + c for c in MQTT_CONFORMANCE] if self.mqtt_endpoints else []),
        }
        for c in MQTT_CONFORMANCE if self.mqtt_endpoints else ():
            settings[CONFORMANCE_BASE + c] = {"endpoints": list(self.mqtt_endpoints)}
        settings["citytwin"] = {
            "version": __version__,
            "openapi": f"{request.base_url}{OPENAPI_PATH}",
        }
        return {
            "value": [
                {"name": et.set_name, "url": f"{root}/{et.set_name}"} for et in self.registry
            ],
            "serverSettings": settings,
        }


def expand_depth(options: QueryOptions) -> int:
    """How many levels of $expand ``options`` nest (0: none)."""
    return max((1 + expand_depth(e.options) for e in options.expand), default=0)
