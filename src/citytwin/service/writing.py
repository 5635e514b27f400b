"""POST, PATCH, PUT (and JSON-Patch) and DELETE.

Each request is stored whole or not at all, in one transaction (Observations POSTed at
the same time may share one; see :mod:`citytwin.service.batching`). Change events are
published after the commit. Successful creates answer 201 with a ``Location`` header
and the entity as a GET would return it; updates answer 200 with the entity; deletes
answer 200 with no body.

Given a :class:`~citytwin.service.unit.Unit`, a write joins that open transaction instead
(the requests of a batch change set): its caller commits, publishes the events and, when
the store needs setting up first (:class:`~citytwin.storage.base.SetupNeeded`), runs
every write of the transaction again.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import jsonpatch
import jsonpointer
import sqlalchemy as sa

from citytwin.access.audit import Origin
from citytwin.errors import (
    BadRequest,
    CitytwinError,
    InvalidEntity,
    MethodNotAllowed,
    NotFound,
    UnsupportedMediaType,
)
from citytwin.model import EntityType, Navigation
from citytwin.planner.reads import ReadPlanner, Target, storage_columns
from citytwin.query.ast import QueryOptions
from citytwin.query.path import ResourcePath, Segment, addressed_type
from citytwin.service.drafts import Draft, DraftParser, Mode, load_json
from citytwin.service.messages import Request, Response
from citytwin.service.reading import check_ancestors, read_entity
from citytwin.service.unit import Unit
from citytwin.storage.base import Reader, SetupNeeded

if TYPE_CHECKING:
    from citytwin.service import Service

log = logging.getLogger("citytwin.service")

JSON_PATCH = "application/json-patch+json"


def _media_type(request: Request) -> str | None:
    if request.content_type is None:
        return None
    return request.content_type.split(";", 1)[0].strip().lower() or None


def _require_json(request: Request, *, patch_allowed: bool = False) -> str | None:
    media = _media_type(request)
    if media is None or media == "application/json" or media.endswith("+json"):
        if media == JSON_PATCH and not patch_allowed:
            raise UnsupportedMediaType(f"{JSON_PATCH} is only accepted with PATCH")
        return media
    raise UnsupportedMediaType(f"send the body as application/json, not {request.content_type}")


P = ParamSpec("P")
R = TypeVar("R")
SETUP_ROUNDS = 3  # a write finding a new month missing each time: months made meanwhile


def set_up_first(write: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Run a write again after the store made what it found missing (a partition)."""

    @functools.wraps(write)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        for _ in range(SETUP_ROUNDS):
            try:
                return await write(*args, **kwargs)
            except SetupNeeded as needed:
                await needed.setup()
        return await write(*args, **kwargs)

    return run


@dataclass
class Written:
    """What a write stored, for its answer."""

    et: EntityType
    entity_id: int
    status: int  # 201 or 200
    fresh: dict[str, Any] | None = None  # the row as inserted, if nothing changed it since


# a write returns what it stored, or its whole answer when that needs no reading back
Write = Callable[[ReadPlanner, Target, Unit], Awaitable[Written | Response]]


async def _write(
    service: Service,
    request: Request,
    path: ResourcePath,
    options: QueryOptions,
    write: Write,
    shared: Unit | None,
) -> Response:
    """Run ``write`` in a transaction of its own, or in ``shared``, and answer it."""
    if shared is None:
        return await _alone(service, request, path, options, write)
    planner = service.planner(shared.now, request.principal)
    done = await write(planner, planner.resolve(path), shared)
    return await _answer(service, request, done, options, shared.w)


@set_up_first
async def _alone(
    service: Service, request: Request, path: ResourcePath, options: QueryOptions, write: Write
) -> Response:
    """Resolve the path, run one write transaction, announce what it changed, answer."""
    planner = service.planner(principal=request.principal)
    target = planner.resolve(path)
    origin = Origin(request.principal, request.transport)
    async with service.transaction(origin, planner.compiler.now) as unit:
        done = await write(planner, target, unit)
    await service.bus.publish(unit.events)
    return await _answer(service, request, done, options, None)


async def _answer(
    service: Service,
    request: Request,
    done: Written | Response,
    options: QueryOptions,
    reader: Reader | None,
) -> Response:
    """The answer to a write; ``reader`` reads back from its still open transaction."""
    if isinstance(done, Response):
        return done
    if done.fresh is not None and options.select is None and not options.expand:
        # nothing changed this entity after its insert: answer from the row written
        return _created(
            service, service.planner(), request, done.et, done.entity_id, done.fresh, options
        )  # only the row just written: nothing the principal may not see
    ser = service.serializer(request)
    created = done.status == 201
    link = ser.self_link(done.et, done.entity_id)
    if request.minimal:
        return _minimal(link if created else None)
    planner = service.planner(principal=request.principal)
    single = ResourcePath((Segment(done.et.set_name, done.entity_id),), single=True)
    target = planner.resolve(single)
    if reader is None:
        async with service.storage.reader() as r:
            entity = await read_entity(r, planner, ser, target, options)
    else:
        entity = await read_entity(reader, planner, ser, target, options)
    headers = {"Location": link} if created else {}
    return Response.json(entity if entity is not None else {}, done.status, headers)


async def _entity_id(r: Reader, planner: ReadPlanner, target: Target) -> int:
    await check_ancestors(r, planner, target)
    found = await r.scalar(
        sa.select(target.scope.col(target.et.id_column)).where(*target.conditions).limit(1)
    )
    if found is None:
        raise NotFound(f"no such {target.et.name}")
    return int(found)


async def create(
    service: Service,
    request: Request,
    path: ResourcePath,
    options: QueryOptions,
    unit: Unit | None = None,
) -> Response:
    _require_json(request)
    data = load_json(request.body)
    parser = DraftParser(service.registry)

    async def write(planner: ReadPlanner, target: Target, unit: Unit) -> Written:
        et = target.et
        parent_id: int | None = None
        if target.parent is not None:
            parent_id = await _entity_id(unit.w, planner, target.parent)
        if (
            parent_id is not None
            and isinstance(data, dict)
            and data
            and set(data) <= {"@iot.id", "id"}
        ):
            # POST {"@iot.id": 5} to Things(1)/Locations links an existing entity
            assert target.via is not None and target.parent is not None
            ref = parser.parse(et, data, Mode.CREATE, nested=True)
            await unit.rules.replace_related(target.parent.et, parent_id, target.via, [ref])
            assert ref.ref is not None
            return Written(et, ref.ref, 201)
        draft = parser.parse(et, data, Mode.CREATE)
        implied: dict[str, int] = {}
        if parent_id is not None:
            assert target.via is not None and target.parent is not None
            inverse = service.registry.inverse(target.via)
            if inverse.fk is not None:
                implied[inverse.name] = parent_id
            else:
                draft.many.setdefault(inverse.name, []).append(
                    Draft(target.parent.et, f"{et.name}.{inverse.name}", ref=parent_id)
                )
        new_id = await unit.create(draft, implied)
        fresh = unit.written.get((et.name, new_id)) if not draft.many else None
        return Written(et, new_id, 201, fresh)

    return await _write(service, request, path, options, write, unit)


def _created(
    service: Service,
    planner: ReadPlanner,
    request: Request,
    et: EntityType,
    new_id: int,
    written: Mapping[str, Any],
    options: QueryOptions,
) -> Response:
    """201 for a new entity, answered from the row written (as a GET would return it)."""
    ser = service.serializer(request)
    if request.minimal:
        return _minimal(ser.self_link(et, new_id))
    row = {c: written.get(c) for prop in et.properties for c in storage_columns(prop)}
    row["id"] = new_id
    stored = service.storage.stored_row(row)
    sel = planner.selection(et, options, top_level=True)
    headers = {"Location": ser.self_link(et, new_id)}
    return Response.json(ser.entity(et, stored, sel), 201, headers)


def _minimal(link: str | None) -> Response:
    """204 for a write whose client asked for no body (RFC 7240, as OData does)."""
    headers = {"Preference-Applied": "return=minimal"}
    if link is not None:
        headers["Location"] = link
    return Response(204, b"", None, headers)


Post = tuple[Request, ResourcePath, QueryOptions]


async def create_together(
    service: Service, posts: Sequence[Post]
) -> list[Response | BaseException]:
    """Independent POSTs, stored in one transaction and each answered as if it had come
    alone. Those that cannot share the transaction (deep inserts of to-many relations,
    links, paths longer than ``Datastreams(1)/Observations``, $select or $expand) are
    stored alone. When the shared transaction fails, each of its POSTs is tried alone, so
    that one request's mistake never costs another its write. POSTs of different
    principals (or transports) share no transaction: each transaction checks and records
    one principal's writes."""
    groups: dict[Origin, list[int]] = {}
    for i, (request, _, _) in enumerate(posts):
        groups.setdefault(Origin(request.principal, request.transport), []).append(i)
    if len(groups) == 1:
        return await _create_together(service, posts, next(iter(groups)))
    out: list[Response | BaseException | None] = [None] * len(posts)
    for origin, indexes in groups.items():
        answers = await _create_together(service, [posts[i] for i in indexes], origin)
        for i, answer in zip(indexes, answers, strict=True):
            out[i] = answer
    return [r for r in out if r is not None]


async def _create_together(
    service: Service, posts: Sequence[Post], origin: Origin
) -> list[Response | BaseException]:
    together, early = _together(service, posts)
    results: list[Response | BaseException | None] = list(early)
    if len(together) > 1:
        planner = service.planner()
        try:
            stored = await _store_together(service, planner, together, origin)
        except Exception as exc:
            log.debug(
                "a shared write of %d POSTs failed (%s); each is stored alone", len(together), exc
            )
        else:
            for item, new_id, row in stored:
                request, _, options = posts[item.index]
                results[item.index] = _created(
                    service, planner, request, item.draft.et, new_id, row, options
                )
    for i, result in enumerate(results):
        if result is None:
            try:
                results[i] = await create(service, *posts[i])
            except CitytwinError as exc:
                results[i] = Response.error(exc)
            except Exception as exc:
                results[i] = exc
    return [r for r in results if r is not None]


async def create_together_in(
    service: Service, unit: Unit, posts: Sequence[Post]
) -> list[Response] | None:
    """POSTs of a batch change set, stored in its open transaction with one bulk insert
    per entity type and each answered as if alone; None (and nothing written) when one of
    them cannot be stored this way. A failure is raised: the caller rolls back and stores
    them one by one to find the request at fault."""
    together, _ = _together(service, posts)
    if len(together) < len(posts):
        return None
    planner = service.planner(unit.now)
    out: list[Response | None] = [None] * len(posts)
    for item, new_id, row in await _store_in(service, unit, together):
        request, _, options = posts[item.index]
        out[item.index] = _created(service, planner, request, item.draft.et, new_id, row, options)
    return [r for r in out if r is not None]


def _together(
    service: Service, posts: Sequence[Post]
) -> tuple[list[Together], list[Response | None]]:
    """The POSTs that can share one bulk insert, parsed; and for each POST the error it
    was answered with already, or None."""
    early: list[Response | None] = [None] * len(posts)
    parser = DraftParser(service.registry)
    together: list[Together] = []
    for i, (request, path, options) in enumerate(posts):
        shape = _shareable(service, path, options)
        if shape is None:
            continue
        et, parent = shape
        try:
            _require_json(request)
            data = load_json(request.body)
            if parent is not None and isinstance(data, dict) and set(data) <= {"@iot.id", "id"}:
                continue  # links an existing entity
            draft = parser.parse(et, data, Mode.CREATE)
        except CitytwinError as exc:
            early[i] = Response.error(exc)
            continue
        if not draft.many:
            together.append(Together(i, draft, parent))
    return together, early


@dataclass
class Together:
    index: int  # among the POSTs
    draft: Draft
    parent: tuple[Navigation, int] | None  # Datastreams(5)/Observations: (Datastream, 5)


def _shareable(
    service: Service, path: ResourcePath, options: QueryOptions
) -> tuple[EntityType, tuple[Navigation, int] | None] | None:
    """What a POST creates and the parent its path names, if it can share a transaction."""
    if options.select is not None or options.expand:
        return None  # answered by reading back
    segments = path.segments
    first = service.registry.by_set(segments[0].name)
    if first is None:
        return None
    if len(segments) == 1:
        return (first, None) if segments[0].id is None else None
    if len(segments) != 2 or segments[0].id is None or segments[1].id is not None:
        return None
    nav = first.navigation(segments[1].name)
    if nav is None or not nav.many:
        return None
    inverse = service.registry.inverse(nav)
    if inverse.fk is None:
        return None  # related through a link table
    return service.registry.target(nav), (inverse, segments[0].id)


@set_up_first
async def _store_together(
    service: Service, planner: ReadPlanner, together: Sequence[Together], origin: Origin
) -> list[tuple[Together, int, dict[str, Any]]]:
    async with service.transaction(origin, planner.compiler.now) as unit:
        stored = await _store_in(service, unit, together)
    await service.bus.publish(unit.events)
    return stored


async def _store_in(
    service: Service, unit: Unit, together: Sequence[Together]
) -> list[tuple[Together, int, dict[str, Any]]]:
    """Store the drafts with one bulk insert per entity type; each with its id and row."""
    await _parents_exist(service, unit, together)
    by_type: dict[str, list[Together]] = {}
    for item in together:
        by_type.setdefault(item.draft.et.name, []).append(item)
    stored = []
    for name, group in by_type.items():
        implied = [{p[0].name: p[1]} if (p := t.parent) else {} for t in group]
        ids = await unit.create_many([t.draft for t in group], implied)
        for item, new_id in zip(group, ids, strict=True):
            stored.append((item, new_id, unit.written[(name, new_id)]))
    return stored


async def _parents_exist(service: Service, unit: Unit, together: Sequence[Together]) -> None:
    """Check, in one query per entity type, that the parents the paths name exist."""
    wanted: dict[str, set[int]] = {}
    for item in together:
        if item.parent is not None:
            nav, parent_id = item.parent
            wanted.setdefault(nav.target, set()).add(parent_id)
    for name, ids in wanted.items():
        missing = ids - await unit.existing(service.registry.type(name), ids)
        if missing:
            raise NotFound(f"no such {name}: {sorted(missing)}")


async def update(
    service: Service,
    request: Request,
    path: ResourcePath,
    options: QueryOptions,
    unit: Unit | None = None,
) -> Response:
    media = _require_json(request, patch_allowed=request.method == "PATCH")
    data = load_json(request.body)
    parser = DraftParser(service.registry)

    async def write(planner: ReadPlanner, target: Target, unit: Unit) -> Written:
        et = target.et
        entity_id = await _entity_id(unit.w, planner, target)
        current = await unit.row(et, entity_id)
        assert current is not None
        if media == JSON_PATCH:
            document = _apply_json_patch(service, request, et, current, data)
            draft = parser.parse(et, document, Mode.PUT)
        else:
            draft = parser.parse(et, data, Mode.PUT if request.method == "PUT" else Mode.PATCH)
        replace = media == JSON_PATCH or request.method == "PUT"
        await unit.update(et, entity_id, draft, replace=replace, current=current)
        return Written(et, entity_id, 200)

    return await _write(service, request, path, options, write, unit)


def _apply_json_patch(
    service: Service, request: Request, et: Any, current: Any, ops: Any
) -> dict[str, Any]:
    if not isinstance(ops, list):
        raise InvalidEntity("a JSON-Patch body must be an array of operations (RFC 6902)")
    ser = service.serializer(request)
    document: dict[str, Any] = {}
    for prop in et.properties:
        value = ser.plain(prop, current)
        if value is not None:
            document[prop.name] = value
    try:
        patch = jsonpatch.JsonPatch(ops)
        result = patch.apply(document)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise InvalidEntity(f"JSON-Patch cannot be applied: {exc}") from None
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        raise InvalidEntity(f"JSON-Patch is malformed: {exc}") from None
    if not isinstance(result, dict):
        raise InvalidEntity("JSON-Patch must leave the entity a JSON object")
    return result


async def delete(
    service: Service,
    request: Request,
    path: ResourcePath,
    options: QueryOptions,
    unit: Unit | None = None,
) -> Response:
    if any(k.startswith("$") for k, _ in request.query):
        raise BadRequest("DELETE of an entity takes no query options")

    async def write(planner: ReadPlanner, target: Target, unit: Unit) -> Response:
        entity_id = await _entity_id(unit.w, planner, target)
        await unit.delete(target.et, entity_id)
        return Response(200, b"", None)

    return await _write(service, request, path, options, write, unit)


async def delete_matching(
    service: Service,
    request: Request,
    path: ResourcePath,
    options: QueryOptions,
    unit: Unit | None = None,
) -> Response:
    """``DELETE /Observations?$filter=...``: every match, in one transaction (retention and
    clean-up). Switched on by the setting ``filtered_delete``; a $filter is required so
    that a mistyped URL cannot empty the collection. Answers 200 ``{"deleted": n}``."""
    if not service.filtered_delete:
        raise MethodNotAllowed(
            "DELETE of a collection is switched off; the setting filtered_delete "
            "(CITYTWIN_FILTERED_DELETE=true) allows DELETE /Observations?$filter=...",
            ("GET", "HEAD", "POST"),
        )
    if addressed_type(path, service.registry).name != "Observation":
        raise MethodNotAllowed(
            "DELETE of a collection is only supported for Observations; delete other "
            "entities one by one, e.g. DELETE /Things(1)",
            ("GET", "HEAD", "POST"),
        )
    condition = options.filter
    if condition is None:
        raise BadRequest(
            "DELETE of a collection needs a $filter naming what to delete, e.g. "
            "DELETE /Observations?$filter=phenomenonTime lt 2020-01-01T00:00:00Z"
        )
    others = sorted({k for k, _ in request.query if k.startswith("$") and k != "$filter"})
    if others:
        raise BadRequest(f"DELETE of a collection takes only $filter, not {', '.join(others)}")

    async def write(planner: ReadPlanner, target: Target, unit: Unit) -> Response:
        await check_ancestors(unit.w, planner, target)
        match = planner.compiler.condition(condition, target.scope)
        conditions = [*target.conditions, match]
        if unit.access is not None:  # only the principal's own Observations
            own = unit.access.writable(target.et, target.scope.table)
            conditions += [] if own is None else [own]
        deleted = await unit.delete_observations(target.scope.table, conditions)
        return Response.json({"deleted": deleted})

    return await _write(service, request, path, options, write, unit)
