"""Data arrays (OGC 18-088, section 14.3 and 14.4): reading Observations with
``$resultFormat=dataArray`` and creating many with ``POST /CreateObservations``.

CreateObservations answers per row, as the standard asks: the selfLink of each stored
Observation, or ``"error"`` for a row that could not be stored (a bad value, an unknown
Datastream, a result of the wrong length for a MultiDatastream), while the others are
stored. A request whose shape is wrong (not an array of groups, unknown components, no
Datastream) is refused as a whole with 400. Rows are stored together through the bulk
path; if that write fails, each row is stored alone, so a bad row never takes good rows
with it and never leaves half of itself behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from citytwin.access.audit import Origin
from citytwin.errors import BadRequest, CitytwinError, InvalidEntity
from citytwin.model import EntityType
from citytwin.query.ast import Expand, QueryOptions
from citytwin.query.path import ResourcePath
from citytwin.serialize import dataarray
from citytwin.service.drafts import Draft, DraftParser, Mode, load_json
from citytwin.service.messages import Request, Response
from citytwin.service.reading import check_ancestors, count, next_link, read_collection
from citytwin.service.writing import _require_json, set_up_first

if TYPE_CHECKING:
    from citytwin.planner.reads import Target
    from citytwin.service import Service

log = logging.getLogger("citytwin.service")

CREATE_OBSERVATIONS = "CreateObservations"
STREAMS = (("Datastream", "datastream_id"), ("MultiDatastream", "multi_datastream_id"))
POSTABLE = frozenset(
    {
        "id",
        "phenomenonTime",
        "result",
        "resultTime",
        "resultQuality",
        "validTime",
        "parameters",
        "FeatureOfInterest/id",
    }
)


def is_data_array(options: QueryOptions) -> bool:
    fmt = options.result_format
    return fmt is not None and fmt.lower() == dataarray.NAME.lower()


# --- GET ------------------------------------------------------------------------------------
async def read_data_array(
    service: Service, request: Request, path: ResourcePath, options: QueryOptions
) -> Response:
    """A collection of Observations, or of (Multi)Datastreams with their Observations
    expanded, as data arrays."""
    if path.property is not None or path.ref:
        raise BadRequest("$resultFormat=dataArray returns entities, not properties or $ref")
    target = service.planner(principal=request.principal).resolve(path)
    et = target.et
    if target.single and et.name == "Observation":
        raise BadRequest("$resultFormat=dataArray applies to collections of Observations")
    if et.name == "Observation":
        return Response.json(await _observations(service, request, target, options))
    if et.name in ("Datastream", "MultiDatastream"):
        return Response.json(await _expanded(service, request, target, options))
    raise BadRequest(
        "$resultFormat=dataArray applies to Observations, or to Datastreams and "
        "MultiDatastreams with $expand=Observations"
    )


async def _observations(
    service: Service, request: Request, target: Target, options: QueryOptions
) -> dict[str, Any]:
    if options.expand:
        raise BadRequest("$resultFormat=dataArray takes no $expand on Observations")
    et = target.et
    names = dataarray.components(et, options.select)
    planner = service.planner(principal=request.principal)
    ser = service.serializer(request)
    # read the properties the components name (and nothing to expand)
    page = planner.page(target, replace(options, select=None))
    scope = target.scope
    statement = page.statement.add_columns(*(scope.col(fk).label(f"_{fk}") for _, fk in STREAMS))
    groups = dataarray.Groups(ser, et, names)
    out: dict[str, Any] = {}
    async with service.storage.reader() as r:
        await check_ancestors(r, planner, target)
        fetched = await r.fetch(statement)
        rows, more = fetched[: page.top], len(fetched) > page.top
        if page.count is not None:
            out["@iot.count"] = await count(r, page)
    for row in rows:
        for kind, fk in STREAMS:
            if row[f"_{fk}"] is not None:
                stream = service.registry.type(kind)
                groups.add_row(kind, ser.self_link(stream, row[f"_{fk}"]), row)
                break
    out["value"] = groups.value()
    if more and rows:
        out["@iot.nextLink"] = next_link(request, options, page, rows[-1])
    return out


async def _expanded(
    service: Service, request: Request, target: Target, options: QueryOptions
) -> dict[str, Any]:
    exp = next((e for e in options.expand if e.navigation == "Observations"), None)
    if exp is None:
        raise BadRequest(
            f"$resultFormat=dataArray on {target.et.set_name} needs $expand=Observations"
        )
    obs = service.registry.type("Observation")
    names = dataarray.components(obs, exp.options.select)
    # read every Observation property the components need, with the id for "id"
    inner = replace(exp.options, select=None, expand=())
    outer = replace(options, select=None, expand=(Expand(exp.navigation, inner),))
    planner = service.planner(principal=request.principal)
    ser = service.serializer(request)
    async with service.storage.reader() as r:
        await check_ancestors(r, planner, target)
        if target.single:
            one = replace(outer, top=1)
            body = await read_collection(request, r, planner, ser, target, one)
            body.pop("@iot.nextLink", None)
            body.pop("@iot.count", None)
        else:
            body = await read_collection(request, r, planner, ser, target, outer)
    groups = dataarray.Groups(ser, obs, names)
    for entity in body["value"]:
        link = entity["@iot.selfLink"]
        groups.open(target.et.name, link)
        for item in entity.get("Observations", ()):
            groups.add_entity(target.et.name, link, item)
    body["value"] = groups.value()
    return body


# --- POST /CreateObservations ---------------------------------------------------------------
@dataclass
class Row:
    index: int  # among all rows of the request, in order
    draft: Draft
    implied: dict[str, int]


async def create_observations(service: Service, request: Request) -> Response:
    _require_json(request)
    data = load_json(request.body)
    if not isinstance(data, list):
        raise InvalidEntity(
            f"{CREATE_OBSERVATIONS} takes a JSON array of objects, each with a Datastream or "
            "MultiDatastream, components and dataArray"
        )
    obs = service.registry.type("Observation")
    parser = DraftParser(service.registry)
    answers: list[str | None] = []
    rows: list[Row] = []
    for gi, group in enumerate(data):
        where = f"{CREATE_OBSERVATIONS}[{gi}]"
        kind, stream_id, names, values = _group(group, where)
        for ri, value in enumerate(values):
            at = f"{where}.dataArray[{ri}]"
            answers.append(None)
            try:
                draft = parser.parse(obs, _body(names, value, at), Mode.CREATE, where=at)
            except CitytwinError as exc:
                log.debug("%s: %s", at, exc)
                answers[-1] = "error"
                continue
            rows.append(Row(len(answers) - 1, draft, {kind: stream_id}))
    rows = await _known_streams(service, rows, answers)
    links = await _store(service, request, obs, rows)
    for row, link in zip(rows, links, strict=True):
        answers[row.index] = link
    return Response.json([a or "error" for a in answers], 201)


def _group(group: Any, where: str) -> tuple[str, int, list[str], list[Any]]:
    if not isinstance(group, dict):
        raise InvalidEntity(f"{where} must be an object")
    named = [k for k, _ in STREAMS if k in group]
    if len(named) != 1:
        raise InvalidEntity(f"{where} needs exactly one of Datastream and MultiDatastream")
    kind = named[0]
    ref = group[kind]
    ident = ref.get("@iot.id", ref.get("id")) if isinstance(ref, dict) else None
    if isinstance(ident, bool) or not isinstance(ident, int):
        raise InvalidEntity(f'{where}.{kind} must be {{"@iot.id": <integer>}}')
    names = group.get("components")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise InvalidEntity(f"{where}.components must be a non-empty array of names")
    unknown = [n for n in names if n not in POSTABLE]
    if unknown or len(set(names)) != len(names):
        raise InvalidEntity(
            f"{where}.components: {', '.join(unknown) or 'a name given twice'} is not allowed; "
            f"use each of {', '.join(sorted(POSTABLE))} at most once"
        )
    values = group.get("dataArray")
    if not isinstance(values, list):
        raise InvalidEntity(f"{where}.dataArray must be an array of rows")
    return kind, ident, names, values


def _body(names: list[str], value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, list) or len(value) != len(names):
        raise InvalidEntity(f"{where} must be an array of {len(names)} values, one per component")
    body: dict[str, Any] = {}
    for name, item in zip(names, value, strict=True):
        if name == "FeatureOfInterest/id":
            body["FeatureOfInterest"] = {"@iot.id": item}
        elif name != "id":  # the server assigns ids
            body[name] = item
    return body


async def _known_streams(service: Service, rows: list[Row], answers: list[str | None]) -> list[Row]:
    """The rows whose Datastream or MultiDatastream exists; the others are errors."""
    missing: set[tuple[str, int]] = set()
    async with service.storage.reader() as r:
        for kind, _ in STREAMS:
            et = service.registry.type(kind)
            wanted = sorted({row.implied[kind] for row in rows if kind in row.implied})
            if not wanted:
                continue
            t = service.storage.tables.of(et)
            found = {int(x[0]) for x in await r.fetch(sa.select(t.c.id).where(t.c.id.in_(wanted)))}
            missing |= {(kind, i) for i in wanted if i not in found}
    kept = []
    for row in rows:
        if any(row.implied.get(k) == i for k, i in missing):
            answers[row.index] = "error"
        else:
            kept.append(row)
    return kept


async def _store(
    service: Service, request: Request, et: EntityType, rows: list[Row]
) -> list[str | None]:
    """Store the rows together; if that fails, each alone. A selfLink per row, or None."""
    if not rows:
        return []
    ser = service.serializer(request)
    try:
        ids = await _together(service, rows, Origin(request.principal, request.transport))
    except CitytwinError as exc:
        log.debug(
            "%s: storing %d rows together failed (%s); each alone",
            CREATE_OBSERVATIONS,
            len(rows),
            exc,
        )
    else:
        return [ser.self_link(et, i) for i in ids]
    out: list[str | None] = []
    for row in rows:
        try:
            (new_id,) = await _together(
                service, [row], Origin(request.principal, request.transport)
            )
        except CitytwinError as exc:
            log.debug("%s: %s", row.draft.where, exc)
            out.append(None)
        else:
            out.append(ser.self_link(et, new_id))
    return out


@set_up_first
async def _together(service: Service, rows: list[Row], origin: Origin) -> list[int]:
    async with service.transaction(origin) as unit:
        ids = await unit.create_many([r.draft for r in rows], [r.implied for r in rows])
    await service.bus.publish(unit.events)
    return ids
