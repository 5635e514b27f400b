"""``POST /v1.1/$batch``: many requests in one (SensorThings API 1.1 chapter 11, OData 11.7).

The batch is read in either wire format (:mod:`citytwin.service.batch_formats`) and
answered in the same one, always with 200 and a status for each request; only a batch
that cannot be read at all is answered 4xx, and then nothing of it runs.

* Requests outside change sets run one after the other, each exactly as if it had come
  alone. One that fails does not stop those after it, unless the client sends
  ``Prefer: continue-on-error=false`` (or ``odata.continue-on-error=false``): then the
  batch ends with the first failure. Consecutive POSTs of Observations share a
  transaction, as concurrent ones do (:mod:`citytwin.service.batching`).
* A change set (multipart) or atomicity group (JSON) is atomic: all its writes run in
  one database transaction; if one fails, none is stored, no change event is published,
  and the whole change set is answered with the error of the request that failed. The
  change events of a change set are published after its commit.
* ``$<id>`` names the entity that an earlier request with that id (Content-ID) created:
  as the first segment of a URL (``$1/Observations``) and as an id in a body
  (``"Datastream": {"@iot.id": "$1"}``). A name that no earlier request created is a
  400 naming it; a request that depends on one that failed is answered 424.
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Collection, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from citytwin.access.audit import Origin
from citytwin.errors import (
    BadRequest,
    CitytwinError,
    FailedDependency,
    MethodNotAllowed,
    UnsupportedMediaType,
)
from citytwin.model import EntityType
from citytwin.model.types import ID_NAMES
from citytwin.query.path import addressed_type, parse_path
from citytwin.service.batch_formats import (
    ChangeSet,
    Item,
    Outcome,
    Part,
    format_json,
    format_multipart,
    is_json,
    media_type,
    parse_json,
    parse_multipart,
)
from citytwin.service.messages import Request, Response
from citytwin.service.unit import Unit
from citytwin.service.writing import Post, create_together_in, set_up_first

if TYPE_CHECKING:
    from citytwin.service import Service

Created = Mapping[str, tuple[EntityType, int]]  # request id -> the entity it created
_ENTITY_LINK = re.compile(r"/(\w+)\((\d+)\)$")


async def run_batch(service: Service, request: Request) -> Response:
    """Answer a ``$batch`` request."""
    if request.method != "POST":
        raise MethodNotAllowed("a $batch request is a POST", ("POST",))
    if any(k.startswith("$") for k, _ in request.query):
        raise BadRequest("$batch takes no query options")
    media = media_type(request.content_type)
    limit = service.max_batch_requests
    if media == "application/json":
        items = parse_json(request.body, limit)
    elif media == "multipart/mixed":
        items = parse_multipart(request.body, request.content_type or "", limit)
    else:
        raise UnsupportedMediaType(
            "send a batch as application/json (OData JSON batch) or as "
            "multipart/mixed; boundary=... (OData multipart batch); got "
            f"{request.content_type or 'no Content-Type'}"
        )
    preference = _continue_on_error(request.prefer)
    runner = Runner(service, request, stop_on_error=preference is not None and not preference[1])
    outcomes = await runner.run(items)
    headers = {}
    if preference is not None and preference[1] and any(o.failed for o in outcomes):
        headers["Preference-Applied"] = f"{preference[0]}=true"
    if media == "application/json":
        return Response(200, format_json(outcomes), "application/json", headers)
    body, content_type = format_multipart(outcomes)
    return Response(200, body, content_type, headers)


def _continue_on_error(prefer: str) -> tuple[str, bool] | None:
    """The continue-on-error preference as sent (its name, its value), if it was."""
    for token in prefer.split(","):
        name, _, value = token.strip().partition("=")
        name = name.strip().lower()
        if name in ("continue-on-error", "odata.continue-on-error"):
            return name, value.strip().strip('"').lower() != "false"
    return None


class Runner:
    """Runs the items of one batch in their order."""

    def __init__(self, service: Service, batch: Request, *, stop_on_error: bool) -> None:
        self.service = service
        self.batch = batch
        self.stop_on_error = stop_on_error
        self.prefix = urlsplit(batch.base_url).path.rstrip("/")  # of the service root
        self.created: dict[str, tuple[EntityType, int]] = {}
        self.failed: set[str] = set()  # ids of requests and names of change sets

    async def run(self, items: list[Item]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        together: list[tuple[Part, Request]] = []  # Observation POSTs not yet stored
        for item in items:
            if isinstance(item, Part) and not self.stop_on_error:
                request = self._shareable(item)
                if request is not None:
                    together.append((item, request))
                    continue
            outcomes += await self._store_together(together)
            together = []
            if isinstance(item, Part):
                outcome = await self._single(item)
            else:
                outcome = await self._change_set(item)
            outcomes.append(outcome)
            if self.stop_on_error and outcome.failed:
                return outcomes
        outcomes += await self._store_together(together)
        return outcomes

    # --- requests outside change sets ---------------------------------------------------------
    async def _single(self, part: Part) -> Outcome:
        try:
            self._check_dependencies(part)
            request = self._request(part, self.created)
        except CitytwinError as exc:
            response = Response.error(exc)
        else:
            response = await self.service.handle(request)
        self._remember(part, response, self.created)
        return Outcome(part, [(part, response)])

    def _shareable(self, part: Part) -> Request | None:
        """The request of a POST of Observations that names no other request, which may
        share one bulk insert with those next to it."""
        if not _names_nothing(part):
            return None
        try:
            request = self._request(part, self.created)
            return request if self.service.shared_post(request) is not None else None
        except CitytwinError:
            return None  # answered on its own, with this error

    async def _store_together(self, together: list[tuple[Part, Request]]) -> list[Outcome]:
        if not together:
            return []
        responses = await self.service.handle_many([request for _, request in together])
        outcomes = []
        for (part, _), response in zip(together, responses, strict=True):
            self._remember(part, response, self.created)
            outcomes.append(Outcome(part, [(part, response)]))
        return outcomes

    # --- change sets --------------------------------------------------------------------------
    async def _change_set(self, change_set: ChangeSet) -> Outcome:
        members = {p.id for p in change_set.parts if p.id is not None} | {change_set.name}
        try:
            for part in change_set.parts:
                try:
                    self._check_dependencies(part, members)
                except FailedDependency as exc:
                    raise _Failed(part, Response.error(exc)) from None
            try:
                answers, created = await self._attempt(change_set, grouped=True)
            except _GroupFailed:  # rolled back; one by one, to find the request at fault
                answers, created = await self._attempt(change_set, grouped=False)
        except _Failed as failed:
            return self._failure(change_set, failed.part, failed.response)
        except Exception as exc:  # the store, while beginning or committing; or a bug
            return self._failure(change_set, None, self.service.failure(self.batch, exc))
        self.created.update(created)
        return Outcome(change_set, answers)

    @set_up_first
    async def _attempt(
        self, change_set: ChangeSet, *, grouped: bool
    ) -> tuple[list[tuple[Part, Response]], dict[str, tuple[EntityType, int]]]:
        """Every write of the change set in one transaction, committed when all succeed.
        With ``grouped``, consecutive POSTs of Observations share one bulk insert."""
        created: dict[str, tuple[EntityType, int]] = {}
        known = ChainMap(created, self.created)
        answers: list[tuple[Part, Response]] = []
        service = self.service
        origin = Origin(self.batch.principal, "batch")  # the parts' own, whatever they say
        async with service.transaction(origin, datetime.now(UTC)) as unit:
            group: list[tuple[Part, Post]] = []
            for part in change_set.parts:
                request = None
                if grouped and _names_nothing(part):
                    request = self._request_of(part, known)
                    post = self._post_of(request)
                    if post is not None:
                        group.append((part, post))
                        continue
                answers += await self._store_group(unit, group, created)
                group = []
                request = request or self._request_of(part, known)
                answers.append(await self._write_one(unit, part, request, created))
            answers += await self._store_group(unit, group, created)
        await service.bus.publish(unit.events)
        return answers, created

    async def _store_group(
        self,
        unit: Unit,
        group: list[tuple[Part, Post]],
        created: MutableMapping[str, tuple[EntityType, int]],
    ) -> list[tuple[Part, Response]]:
        if not group:
            return []
        if len(group) > 1:
            try:
                responses = await create_together_in(self.service, unit, [p for _, p in group])
            except CitytwinError:
                raise _GroupFailed from None
            if responses is not None:
                for (part, _), response in zip(group, responses, strict=True):
                    self._remember(part, response, created)
                return [(part, r) for (part, _), r in zip(group, responses, strict=True)]
        return [await self._write_one(unit, part, post[0], created) for part, post in group]

    async def _write_one(
        self,
        unit: Unit,
        part: Part,
        request: Request,
        created: MutableMapping[str, tuple[EntityType, int]],
    ) -> tuple[Part, Response]:
        try:
            response = await self.service.write_in(unit, request)
        except CitytwinError as exc:
            raise _Failed(part, Response.error(exc)) from None
        self._remember(part, response, created)
        return part, response

    def _request_of(self, part: Part, created: Created) -> Request:
        try:
            return self._request(part, created)
        except CitytwinError as exc:
            raise _Failed(part, Response.error(exc)) from None

    def _post_of(self, request: Request) -> Post | None:
        try:
            return self.service.shared_post(request)
        except CitytwinError:
            return None  # written alone, which raises the error for this request

    def _failure(self, change_set: ChangeSet, part: Part | None, response: Response) -> Outcome:
        """A change set that stored nothing: the answer of the request that failed (None:
        the transaction itself failed), its message saying which it was, applies to all
        of it; in JSON the other requests are answered 424."""
        self.failed.add(change_set.name)
        self.failed.update(p.id for p in change_set.parts if p.id is not None)
        culprit = _label(part) if part is not None else "its transaction"
        failure = _amended(
            response, f"{culprit} failed, so nothing of {_set_label(change_set)} was stored"
        )
        answers = []
        for p in change_set.parts:
            if p is part or part is None:
                answers.append((p, failure))
            else:
                blocked = FailedDependency(f"{_label(p)} was not stored: {culprit} failed")
                answers.append((p, Response.error(blocked)))
        return Outcome(change_set, answers, (part, failure))

    # --- requests, references and dependencies ------------------------------------------------
    def _check_dependencies(self, part: Part, members: Collection[str] = ()) -> None:
        for name in part.depends_on:
            if name in self.failed and name not in members:
                raise FailedDependency(
                    f"{_label(part)} was not run: it depends on {name}, which failed"
                )

    def _request(self, part: Part, created: Created) -> Request:
        """The request a part stands for, its references replaced."""
        version, path, query = self._locate(part)
        head, slash, rest = path.partition("/")
        if head == "$batch":
            raise BadRequest(f"{part.where}: a batch cannot hold another $batch request")
        if head.startswith("$"):
            et, entity_id = self._reference(head[1:], created, part.where)
            path = f"{et.set_name}({entity_id}){slash}{rest}"
        body = part.body
        content_type = part.headers.get("content-type")
        if b'"$' in body and is_json(content_type):
            body = self._resolve_body(path, body, created, part.where)
        prefer = part.headers.get("prefer", "")
        return Request(
            method=part.method,
            version=version,
            path=path,
            query=query,
            body=body,
            content_type=content_type,
            base_url=self.batch.base_url,
            minimal="return=minimal" in prefer.lower().replace(" ", ""),
            prefer=prefer,
            principal=self.batch.principal,  # each part acts as the batch's sender
            transport="batch",
        )

    def _locate(self, part: Part) -> tuple[str, str, list[tuple[str, str]]]:
        """API version, resource path and query of a request URL, which is absolute, an
        absolute path, or relative to the service root the batch was sent to."""
        url = urlsplit(part.url)
        query = parse_qsl(url.query, keep_blank_values=True)
        if not url.path.startswith("/"):
            return self.batch.version, url.path, query
        path = url.path
        if self.prefix and path.startswith(self.prefix + "/"):
            path = path[len(self.prefix) :]
        version, _, rest = path[1:].partition("/")
        return version, rest, query

    def _reference(self, name: str, created: Created, where: str) -> tuple[EntityType, int]:
        found = created.get(name)
        if found is not None:
            return found
        if name in self.failed:
            raise FailedDependency(f"{where}: ${name} names a request that failed")
        raise BadRequest(
            f"{where}: unknown reference ${name}; no earlier request of this batch with the "
            f"id (Content-ID) {name} created an entity"
        )

    def _resolve_body(self, path: str, body: bytes, created: Created, where: str) -> bytes:
        """The body with ``"@iot.id": "$name"`` replaced by the id of that entity; the
        entity must be of the type expected there."""
        try:
            data = orjson.loads(body)
            et = self._entity_type(path)
        except (orjson.JSONDecodeError, CitytwinError):
            return body  # the request fails on its own with the precise message
        if et is None or not isinstance(data, dict):
            return body

        def resolve(et: EntityType, value: Any, at: str) -> Any:
            if isinstance(value, list):
                return [resolve(et, v, f"{at}[{i}]") for i, v in enumerate(value)]
            if not isinstance(value, dict):
                return value
            out = {}
            for key, v in value.items():
                nav = et.navigation(key)
                if key in ID_NAMES and isinstance(v, str) and v.startswith("$"):
                    ref_et, ref_id = self._reference(v[1:], created, f"{where}: {at}")
                    if ref_et.name != et.name:
                        raise BadRequest(
                            f"{where}: {at}: {v} refers to {ref_et.set_name}({ref_id}), but "
                            f"this place takes one of the {et.set_name}"
                        )
                    out[key] = ref_id
                elif nav is not None:
                    out[key] = resolve(self.service.registry.target(nav), v, f"{at}.{key}")
                else:
                    out[key] = v
            return out

        return orjson.dumps(resolve(et, data, et.name))

    def _entity_type(self, path: str) -> EntityType | None:
        """The type of the entities a path names (what its body describes)."""
        parsed = parse_path(path, self.service.registry)
        if parsed.property is not None:
            return None
        return addressed_type(parsed, self.service.registry)

    def _remember(
        self, part: Part, response: Response, created: MutableMapping[str, tuple[EntityType, int]]
    ) -> None:
        """Note the entity a request created (for ``$id``), or that it failed."""
        if part.id is None:
            return
        if response.status >= 400:
            self.failed.add(part.id)
            return
        match = _ENTITY_LINK.search(response.headers.get("Location", ""))
        et = self.service.registry.by_set(match.group(1)) if match else None
        if match and et is not None:
            created[part.id] = (et, int(match.group(2)))


def _names_nothing(part: Part) -> bool:
    """A POST that names no other request of the batch (so it may be stored with others)."""
    return (
        part.method == "POST"
        and not part.depends_on
        and "$" not in part.url
        and b'"$' not in part.body
    )


class _GroupFailed(Exception):
    """A bulk insert of a change set failed; it is rolled back and run request by request."""


class _Failed(Exception):
    """A request of a change set failed; the transaction is rolled back."""

    def __init__(self, part: Part, response: Response) -> None:
        super().__init__(part.where)
        self.part = part
        self.response = response


def _label(part: Part) -> str:
    named = f" (id {part.id})" if part.id is not None else ""
    return f"{part.where}{named}, {part.method} {part.url}"


def _set_label(change_set: ChangeSet) -> str:
    if change_set.name.startswith("change set "):
        return "its change set"
    return f"atomicityGroup {change_set.name!r}"


def _amended(response: Response, note: str) -> Response:
    """An error answer with ``note`` added to its message."""
    try:
        body = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        body = {"code": response.status, "type": "error", "message": ""}
    message = str(body.get("message") or "").rstrip(".")
    body["message"] = f"{note}: {message}" if message else note
    return Response.json(body, response.status, dict(response.headers))
