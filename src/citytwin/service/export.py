"""GET in the tabular result formats (``$resultFormat=CSV``, ``GeoJSON``), streamed.

Without ``$top`` such a request asks for the whole result, up to the
``result_format_max_rows`` setting, so the answer is never built in memory: rows are read
in pages of ``max_page_size`` (each page in its own short read, continued by keyset
where the ordering allows, else by offset), written, and sent before the next page is
read. The first page is read before the answer starts, so a bad request or a missing
entity still gets its 4xx. A failure after that cannot change the status any more: the
HTTP adapter logs it and ends the connection without finishing the body, so the client
sees an incomplete transfer rather than a complete-looking short file.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from citytwin.errors import BadRequest, NotFound
from citytwin.planner.reads import ReadPlanner, Target, encode_skiptoken
from citytwin.query.ast import QueryOptions
from citytwin.query.path import ResourcePath
from citytwin.serialize.flat import layout
from citytwin.serialize.formats import WriterFactory
from citytwin.serialize.sta import Serializer
from citytwin.service.messages import Request, Response
from citytwin.service.reading import check_ancestors, expand

if TYPE_CHECKING:
    from citytwin.service import Service


@dataclass
class _Pages:
    """Reads a result page by page."""

    service: Service
    planner: ReadPlanner
    ser: Serializer
    target: Target
    options: QueryOptions
    remaining: int

    async def next(self) -> list[dict[str, Any]]:
        """The next page of entities; empty when done."""
        if self.remaining <= 0:
            return []
        options = replace(self.options, top=min(self.remaining, self.planner.max_top))
        page = self.planner.page(self.target, options)
        et = self.target.et
        async with self.service.storage.reader() as r:
            rows = await r.fetch(page.statement)
            more = len(rows) > page.top
            rows = rows[: page.top]
            sel = self.planner.selection(et, options, top_level=True)
            entities = [self.ser.entity(et, row, sel) for row in rows]
            await expand(r, self.planner, self.ser, et, rows, entities, options.expand)
        self.remaining = self.remaining - len(rows) if more else 0
        if rows and page.keyset is not None:
            token = encode_skiptoken([rows[-1][label] for label, _, _ in page.keyset])
            self.options = replace(self.options, skip=0, skiptoken=token)
        else:
            self.options = replace(self.options, skip=self.options.skip + len(rows))
        return entities


async def export(
    service: Service,
    request: Request,
    path: ResourcePath,
    options: QueryOptions,
    writer_for: WriterFactory,
) -> Response:
    if path.property is not None or path.ref:
        raise BadRequest(
            f"$resultFormat={options.result_format} applies to entities and collections, "
            "not to a property, $value or $ref"
        )
    planner = service.planner(principal=request.principal)
    target = planner.resolve(path)
    writer = writer_for(layout(service.registry, planner, target.et, options))
    limit = service.max_export_rows
    wanted = limit if options.top is None else min(options.top, limit)
    if target.single:
        wanted = 1
        options = replace(options, skip=0)
    pages = _Pages(service, planner, service.serializer(request), target, options, wanted)
    async with service.storage.reader() as r:
        await check_ancestors(r, planner, target)
    first = await pages.next()
    if target.single and not first:
        raise NotFound(f"no such {target.et.name}: {request.path}")

    async def body() -> AsyncGenerator[bytes, None]:
        yield writer.head() + writer.rows(first)
        while entities := await pages.next():
            yield writer.rows(entities)
        yield writer.tail()

    return Response(200, b"", writer.media_type, stream=body())
