"""``GET Datastreams(id)/Observations/$aggregate``: time-bucketed aggregates for charts.

Parameters (see docs/aggregation.md): ``interval`` (ISO 8601, required), ``bucket``
(an ISO 8601 duration of fixed length, required), ``functions`` (comma-separated, of
avg, min, max, sum, count, first, last; default avg). The work is one SQL statement
(:mod:`citytwin.planner.aggregate`); this module checks the request and writes the
answer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from citytwin.errors import BadRequest, MethodNotAllowed, NotFound
from citytwin.model.values import (
    format_instant,
    format_micros,
    parse_duration,
    parse_interval,
    to_micros,
)
from citytwin.planner.aggregate import FUNCTIONS, Aggregation, statement
from citytwin.planner.dialect import param
from citytwin.query.path import parse_path
from citytwin.service.messages import Request, Response

if TYPE_CHECKING:
    from citytwin.service import Service

SUFFIX = "/$aggregate"
PARAMETERS = ("interval", "bucket", "functions")
_USAGE = "e.g. Datastreams(1)/Observations/$aggregate?interval=2024-03-01T00:00:00Z/P1M&bucket=PT1H"


def is_aggregate(path: str) -> bool:
    return path.rstrip("/").endswith(SUFFIX)


async def aggregate(service: Service, request: Request) -> Response:
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed("$aggregate is read-only", ("GET", "HEAD"))
    agg = _parse(service, request)
    ds_type = service.registry.type("Datastream")
    datastreams = service.storage.tables.of(ds_type)
    exists = sa.select(datastreams.c.id).where(datastreams.c.id == param(agg.datastream))
    stmt = statement(service.registry, service.storage.tables, service.storage.dialect, agg)
    policy = service.policy(request.principal)
    async with service.storage.reader() as r:
        seen = None if policy is None else policy.visible(ds_type, datastreams)
        # a Datastream the principal may not read does not exist
        if seen is not None and await r.scalar(exists.where(seen)) is None:
            raise NotFound(f"no such Datastream: {agg.datastream}")
        rows = await r.fetch(stmt)
        # no buckets: tell an empty range from a missing Datastream (not asked otherwise)
        if not rows and await r.scalar(exists) is None:
            raise NotFound(f"no such Datastream: {agg.datastream}")
    end = to_micros(agg.end)
    value: list[dict[str, Any]] = []
    # a month of hourly buckets has 1,488 edges to write: each once, as a bucket's end is
    # most often the next one's start
    edge = -1
    text = ""
    for row in rows:
        start = service.storage.decode_time(row["bucket"])
        assert start is not None
        first = to_micros(start)
        start_text = text if first == edge else format_micros(first)
        edge = min(first + agg.size, end)
        text = format_micros(edge)
        bucket: dict[str, Any] = {"phenomenonTime": f"{start_text}/{text}"}
        for name in agg.functions:
            bucket[name] = row[name]
        value.append(bucket)
    return Response.json(
        {
            "interval": f"{format_instant(agg.start)}/{format_instant(agg.end)}",
            "bucket": _param(request, "bucket"),
            "functions": list(agg.functions),
            "value": value,
        }
    )


def _param(request: Request, name: str) -> str:
    return next(v for k, v in request.query if k == name)


def _parse(service: Service, request: Request) -> Aggregation:
    given: dict[str, str] = {}
    for key, val in request.query:
        if key not in PARAMETERS:
            raise BadRequest(
                f"$aggregate takes no parameter {key}; it takes {', '.join(PARAMETERS)}"
            )
        if key in given:
            raise BadRequest(f"$aggregate: {key} is given more than once")
        given[key] = val
    path = parse_path(request.path.rstrip("/")[: -len(SUFFIX)], service.registry)
    segs = path.segments
    if (
        len(segs) != 2
        or segs[0].name != "Datastreams"
        or segs[0].id is None
        or segs[1].name != "Observations"
        or segs[1].id is not None
        or path.property is not None
        or path.ref
    ):
        raise BadRequest(f"$aggregate follows the Observations of one Datastream, {_USAGE}")
    for name in ("interval", "bucket"):
        if not given.get(name):
            raise BadRequest(f"$aggregate needs the parameter {name}, {_USAGE}")
    try:
        interval = parse_interval(given["interval"], allow_instant=False)
    except ValueError as exc:
        raise BadRequest(f"$aggregate interval: {exc}") from None
    if interval.end <= interval.start:
        raise BadRequest("$aggregate interval: it must end after it starts")
    try:
        duration = parse_duration(given["bucket"])
    except ValueError as exc:
        raise BadRequest(f"$aggregate bucket: {exc}") from None
    if duration.months:
        raise BadRequest(
            f"$aggregate bucket {given['bucket']}: months and years have no fixed length; "
            "use days or shorter (P1D, PT1H, PT15M)"
        )
    if duration.micros <= 0:
        raise BadRequest(f"$aggregate bucket {given['bucket']}: must be longer than zero")
    span = (interval.end - interval.start) // timedelta(microseconds=1)
    buckets = -(-span // duration.micros)
    if buckets > service.max_buckets:
        raise BadRequest(
            f"$aggregate: {buckets:,} buckets of {given['bucket']} in the interval; at most "
            f"{service.max_buckets:,} are allowed (use a longer bucket or a shorter interval)"
        )
    functions = tuple(f.strip() for f in given.get("functions", "avg").split(","))
    unknown = [f for f in functions if f not in FUNCTIONS]
    if unknown or not functions:
        raise BadRequest(
            f"$aggregate functions: unknown {', '.join(repr(f) for f in unknown)}; "
            f"supported: {', '.join(FUNCTIONS)}"
        )
    if len(set(functions)) != len(functions):
        raise BadRequest("$aggregate functions: a function is named more than once")
    assert segs[0].id is not None
    return Aggregation(segs[0].id, interval.start, interval.end, duration.micros, functions)
