"""HTTP routes of the domain API under /api/v1 (see docs/domains.md); they translate
requests for :class:`citytwin.domains.service.DomainService` and nothing more."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from citytwin.access import Principal
from citytwin.access.audit import Origin
from citytwin.domains.service import DomainService, dumps
from citytwin.errors import CitytwinError, Forbidden

PREFIX = "/api/v1"
JSON = "application/json"
GEOJSON = "application/geo+json"


def routes(
    service: DomainService, principal_of: Callable[[Request], Awaitable[Principal]]
) -> list[Route]:
    """The routes; ``principal_of`` names who sends a request (401 for a bad key)."""

    async def domains(request: Request) -> Response:
        return Response(dumps(service.describe()), media_type=JSON)

    async def areas(request: Request) -> Response:
        return Response(dumps(await service.areas()), media_type=JSON)

    async def kpi(request: Request) -> Response:
        doc = await service.kpi(
            request.path_params["domain"],
            request.path_params["kpi"],
            list(request.query_params.multi_items()),
            principal=await principal_of(request),
        )
        return Response(dumps(doc), media_type=JSON)

    async def sensors(request: Request) -> Response:
        # the map's first picture; the page reads it afresh on every load
        return Response(
            dumps(await service.sensors(await principal_of(request))),
            media_type=JSON,
            headers={"cache-control": "no-cache"},
        )

    async def packages(request: Request) -> Response:
        return Response(dumps(await service.packages()), media_type=JSON)

    async def layers(request: Request) -> Response:
        return Response(dumps(service.layers()), media_type=JSON)

    async def layer(request: Request) -> Response:
        return Response(service.layer(request.path_params["name"]), media_type=GEOJSON)

    async def put_layer(request: Request) -> Response:
        principal = await principal_of(request)
        if not principal.writes:
            raise Forbidden(
                f"storing a layer needs the operator or admin role; {principal.describe()}"
            )
        new = await service.put_layer(
            request.path_params["name"], await request.body(), Origin(principal, "http")
        )
        return Response(status_code=201 if new else 204)

    return [
        Route(f"{PREFIX}/domains", _errors(domains), methods=["GET", "HEAD"]),
        Route(f"{PREFIX}/areas", _errors(areas), methods=["GET", "HEAD"]),
        Route(f"{PREFIX}/kpis/{{domain}}/{{kpi}}", _errors(kpi), methods=["GET", "HEAD"]),
        Route(f"{PREFIX}/sensors", _errors(sensors), methods=["GET", "HEAD"]),
        Route(f"{PREFIX}/packages", _errors(packages), methods=["GET", "HEAD"]),
        Route(f"{PREFIX}/layers", _errors(layers), methods=["GET", "HEAD"]),
        Route(f"{PREFIX}/layers/{{name}}", _errors(layer), methods=["GET", "HEAD"]),
        Route(f"{PREFIX}/layers/{{name}}", _errors(put_layer), methods=["PUT"]),
    ]


def _errors(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except CitytwinError as exc:
            headers = {"WWW-Authenticate": 'Bearer realm="citytwin"'} if exc.status == 401 else None
            return Response(
                dumps(exc.to_json()), status_code=exc.status, media_type=JSON, headers=headers
            )

    return wrapped
