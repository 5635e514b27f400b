"""GET: collections, entities, properties, ``$value`` and ``$ref``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import orjson

from citytwin.errors import NotFound
from citytwin.model import EntityType, Kind
from citytwin.planner.reads import (
    Page,
    ReadPlanner,
    Target,
    encode_skiptoken,
)
from citytwin.query import unparse
from citytwin.query.ast import Expand, QueryOptions
from citytwin.query.path import ResourcePath
from citytwin.serialize.sta import Missing, Serializer, walk
from citytwin.service.messages import Request, Response
from citytwin.storage.base import Reader, Row

if TYPE_CHECKING:
    from citytwin.service import Service

_PAGING = ("$top", "$skip", "$skiptoken")


async def read(
    service: Service, request: Request, path: ResourcePath, options: QueryOptions
) -> Response:
    planner = service.planner(principal=request.principal)
    ser = service.serializer(request)
    target = planner.resolve(path)
    async with service.storage.reader() as r:
        await check_ancestors(r, planner, target)
        if path.property is not None:
            return await _property(service, r, planner, ser, target, path)
        if path.ref and target.single:
            rows = await r.fetch(planner.page(target, QueryOptions(top=1)).statement)
            if not rows:
                raise NotFound(f"no such {target.et.name}")
            return Response.json({"@iot.selfLink": ser.self_link(target.et, rows[0]["id"])})
        if path.ref:
            return Response.json(
                await read_collection(request, r, planner, ser, target, options, refs=True)
            )
        if target.single:
            entity = await read_entity(r, planner, ser, target, options)
            if entity is None:
                raise NotFound(f"no such {target.et.name}: {request.path}")
            return Response.json(entity)
        return Response.json(await read_collection(request, r, planner, ser, target, options))


async def check_ancestors(r: Reader, planner: ReadPlanner, target: Target) -> None:
    check = planner.ancestors_exist(target)
    if check is not None and await r.scalar(check) is None:
        raise NotFound(
            "the path names an entity that does not exist or is not related to the entity before it"
        )


async def read_entity(
    r: Reader, planner: ReadPlanner, ser: Serializer, target: Target, options: QueryOptions
) -> dict[str, Any] | None:
    single = QueryOptions(select=options.select, expand=options.expand, top=1)
    page = planner.page(target, single)
    rows = await r.fetch(page.statement)
    if not rows:
        return None
    sel = planner.selection(target.et, single, top_level=True)
    entities = [ser.entity(target.et, rows[0], sel)]
    await expand(r, planner, ser, target.et, rows[:1], entities, options.expand)
    return entities[0]


async def read_collection(
    request: Request,
    r: Reader,
    planner: ReadPlanner,
    ser: Serializer,
    target: Target,
    options: QueryOptions,
    *,
    refs: bool = False,
) -> dict[str, Any]:
    """A page of a collection (or of its ``$ref`` links) with count and nextLink."""
    if refs:
        options = replace(options, select=None, expand=())
    page = planner.page(target, options)
    rows, more = _split(await r.fetch(page.statement), page.top)
    out: dict[str, Any] = {}
    if page.count is not None:
        out["@iot.count"] = await count(r, page)
    if refs:
        out["value"] = [{"@iot.selfLink": ser.self_link(target.et, row["id"])} for row in rows]
    else:
        sel = planner.selection(target.et, options, top_level=True)
        entities = [ser.entity(target.et, row, sel) for row in rows]
        await expand(r, planner, ser, target.et, rows, entities, options.expand)
        out["value"] = entities
    if more and rows:
        out["@iot.nextLink"] = next_link(request, options, page, rows[-1])
    return out


async def count(r: Reader, page: Page) -> int:
    """``@iot.count``: exact, or above the count limit the database's estimate."""
    assert page.count is not None
    if page.count_probe is None or page.count_rows is None:
        return int(await r.scalar(page.count) or 0)
    probed = int(await r.scalar(page.count_probe) or 0)
    if probed <= (page.count_limit or 0):
        return probed
    estimate = await r.estimate_count(page.count_rows)
    if estimate is None:
        return int(await r.scalar(page.count) or 0)
    return max(estimate, probed)


def _split(rows: list[Row], top: int) -> tuple[list[Row], bool]:
    return rows[:top], len(rows) > top


def next_link(request: Request, options: QueryOptions, page: Page, last: Row) -> str:
    pairs = [(k, v) for k, v in request.query if k not in _PAGING]
    pairs.append(("$top", str(page.top)))
    if page.keyset is not None:
        token = encode_skiptoken([last[label] for label, _, _ in page.keyset])
        pairs.append(("$skiptoken", token))
    else:
        pairs.append(("$skip", str(options.skip + page.top)))
    query = urlencode(pairs, quote_via=quote, safe="$")
    return f"{request.root}/{request.path.strip('/')}?{query}"


async def _property(
    service: Service,
    r: Reader,
    planner: ReadPlanner,
    ser: Serializer,
    target: Target,
    path: ResourcePath,
) -> Response:
    assert path.property is not None
    prop = target.et.property(path.property)
    assert prop is not None
    page = planner.page(target, QueryOptions(top=1))
    rows = await r.fetch(page.statement)
    if not rows:
        raise NotFound(f"no such {target.et.name}")
    value = ser.plain(prop, rows[0])
    name = prop.name
    if path.subpath:
        value = walk(value, path.subpath)
        value = None if value is Missing else value
        last = path.subpath[-1]
        name = (
            f"{path.subpath[-2]}[{last}]"
            if isinstance(last, int) and len(path.subpath) > 1
            else str(last)
        )
    if value is None:
        return Response(204, b"", None)
    if path.value:
        if isinstance(value, dict | list) or prop.kind is Kind.GEOMETRY:
            return Response(200, orjson.dumps(value), "application/json")
        text = orjson.dumps(value).decode() if not isinstance(value, str) else value
        return Response(200, text.encode(), "text/plain; charset=utf-8")
    return Response.json({name: value})


# --- $expand --------------------------------------------------------------------------------
async def expand(
    r: Reader,
    planner: ReadPlanner,
    ser: Serializer,
    et: EntityType,
    rows: Sequence[Row],
    entities: list[dict[str, Any]],
    expands: Sequence[Expand],
) -> None:
    """Fill in expanded navigation properties of ``entities`` (one query per level)."""
    if not rows:
        return
    for exp in expands:
        nav = et.navigation(exp.navigation)
        assert nav is not None  # checked when planning
        if nav.fk is not None:
            keys = sorted({row[nav.fk] for row in rows if row[nav.fk] is not None})
        else:
            keys = [row["id"] for row in rows]
        if not keys:
            continue
        plan = planner.expand(et, exp, keys)
        child_rows = await r.fetch(plan.statement)
        counts: dict[Any, int] = {}
        if plan.totals:
            counts = {row["_parent"]: row["_total"] for row in child_rows}
        elif plan.count is not None:
            counts = {row["_parent"]: row["n"] for row in await r.fetch(plan.count)}
        children = [ser.entity(plan.et, row, plan.selection) for row in child_rows]
        await expand(r, planner, ser, plan.et, child_rows, children, plan.children)
        next_query = _expand_next_query(exp, plan.top) if nav.many else ""
        by_parent: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for row, child in zip(child_rows, children, strict=True):
            by_parent[row["_parent"]].append(child)
        for row, entity in zip(rows, entities, strict=True):
            if not nav.many:
                found = by_parent.get(row[nav.fk] if nav.fk else row["id"])
                if found:
                    entity[nav.name] = found[0]
                continue
            items = by_parent.get(row["id"], [])
            if plan.options.count:
                entity[f"{nav.name}@iot.count"] = counts.get(row["id"], 0)
            entity[nav.name] = items[: plan.top]
            more = counts.get(row["id"], 0) > plan.top if plan.totals else len(items) > plan.top
            if more:
                link = ser.self_link(et, row["id"])
                entity[f"{nav.name}@iot.nextLink"] = f"{link}/{exp.navigation}?{next_query}"


def _expand_next_query(exp: Expand, top: int) -> str:
    """The query of an expanded collection's nextLink (the same for every parent)."""
    o = exp.options
    nxt = QueryOptions(
        select=o.select,
        expand=o.expand,
        filter=o.filter,
        orderby=o.orderby,
        top=top,
        skip=o.skip + top,
        count=o.count,
    )
    return urlencode(unparse.option_pairs(nxt), quote_via=quote, safe="$")
