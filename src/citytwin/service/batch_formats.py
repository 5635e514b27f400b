"""The two wire formats of a ``$batch`` request and of its answer.

* JSON (OData JSON Format 4.01, section 19): ``{"requests": [...]}`` in, ``{"responses":
  [...]}`` out; the requests that share an ``atomicityGroup`` form a change set.
* Multipart (OData 4.0 Protocol 11.7, SensorThings API 1.1 chapter 11): ``multipart/mixed``
  with one ``application/http`` part per request; a change set is a nested
  ``multipart/mixed`` part, and a change set that failed is answered by one part.

Both are parsed into the same :class:`Part` and :class:`ChangeSet` items, which
:mod:`citytwin.service.batch` runs, and the :class:`Outcome` of each item is written back
in the format of the request. Whatever is malformed is a :class:`BadRequest` that says
where (``requests[2].method``, ``part 3.1``), so that nothing of a broken batch runs.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import email.parser
import email.policy
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson

from citytwin.errors import BadRequest, TooLarge
from citytwin.service.messages import Response

METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
JSON_MEMBERS = frozenset({"id", "method", "url", "headers", "body", "atomicityGroup", "dependsOn"})
CRLF = b"\r\n"


@dataclass(frozen=True)
class Part:
    """One request of a batch."""

    id: str | None  # the request id (JSON) or Content-ID (multipart)
    method: str  # GET, POST, PATCH, PUT or DELETE
    url: str  # as given: absolute, an absolute path, or relative to the service root
    headers: dict[str, str]  # names in lower case
    body: bytes = b""
    where: str = ""  # where the request is in the batch, for messages: "requests[2]"
    depends_on: tuple[str, ...] = ()  # ids and atomicity groups (JSON only)


@dataclass
class ChangeSet:
    """Requests stored all together or not at all."""

    name: str  # the atomicityGroup, or "change set N" of a multipart batch
    parts: list[Part] = field(default_factory=list)


Item = Part | ChangeSet


@dataclass
class Outcome:
    """What became of one item: the answers of its requests that ran, in their order. A
    change set that failed also has ``failure``, the answer that applies to all of it."""

    item: Item
    answers: list[tuple[Part, Response]]
    failure: tuple[Part | None, Response] | None = None  # None: no request to blame

    @property
    def failed(self) -> bool:
        return self.failure is not None or any(r.status >= 400 for _, r in self.answers)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(content_type: str | None) -> bool:
    media = media_type(content_type)
    return media == "application/json" or media.endswith("+json")


def _check_limit(count: int, limit: int) -> None:
    if count > limit:
        raise TooLarge(
            f"the batch holds more than {limit} requests (the setting max_batch_requests); "
            "send it in several batches"
        )


def _check_ids(items: Sequence[Item]) -> None:
    """Request ids are unique, and no change set is named like a request."""
    ids: set[str] = set()
    for item in items:
        for part in item.parts if isinstance(item, ChangeSet) else [item]:
            if part.id is not None:
                if part.id in ids:
                    raise BadRequest(f"{part.where}: the id {part.id!r} is used twice")
                ids.add(part.id)
    for item in items:
        if isinstance(item, ChangeSet) and item.name in ids:
            raise BadRequest(
                f"the atomicityGroup {item.name!r} is also the id of a request; use another name"
            )


def _no_get_in_change_set(part: Part) -> None:
    if part.method == "GET":
        raise BadRequest(
            f"{part.where}: a GET cannot be part of a change set (atomicity group); put it outside"
        )


# --- JSON -------------------------------------------------------------------------------------
def parse_json(body: bytes, limit: int) -> list[Item]:
    """The items of a JSON batch (``{"requests": [...]}``)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the batch is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("requests"), list):
        raise BadRequest('a JSON batch is an object {"requests": [...]}')
    unknown = sorted(k for k in data if k != "requests" and not k.startswith("@"))
    if unknown:
        raise BadRequest(f"a JSON batch has only requests, not {', '.join(unknown)}")
    requests: list[Any] = data["requests"]
    _check_limit(len(requests), limit)
    items: list[Item] = []
    seen: set[str] = set()  # ids of earlier requests, names of closed atomicity groups
    closed: set[str] = set()
    for i, raw in enumerate(requests):
        part, group = _json_request(raw, f"requests[{i}]")
        current = items[-1] if items and isinstance(items[-1], ChangeSet) else None
        if current is not None and current.name != group:
            closed.add(current.name)  # a group closes when a request outside it follows
            seen.add(current.name)
            current = None
        for name in part.depends_on:
            if name not in seen:
                raise BadRequest(
                    f"{part.where}.dependsOn: {name!r} is not the id of an earlier request "
                    "or the atomicityGroup of earlier requests"
                )
        if group is None:
            items.append(part)
        elif current is not None:
            current.parts.append(part)
        elif group in closed:
            raise BadRequest(
                f"{part.where}: the requests of atomicityGroup {group!r} must be adjacent"
            )
        else:
            items.append(ChangeSet(group, [part]))
        if group is not None:
            _no_get_in_change_set(part)
        if part.id is not None:
            seen.add(part.id)
    _check_ids(items)
    return items


def _json_request(raw: Any, where: str) -> tuple[Part, str | None]:
    if not isinstance(raw, dict):
        raise BadRequest(f"{where}: a request is a JSON object with id, method and url")
    unknown = sorted(k for k in raw if k not in JSON_MEMBERS and not k.startswith("@"))
    if unknown:
        raise BadRequest(
            f"{where}: unknown member(s) {', '.join(unknown)}; a request has id, method, url "
            "and optionally headers, body, atomicityGroup and dependsOn"
        )
    rid = _text(raw, "id", where, required=True)
    method = _method(raw.get("method"), f"{where}.method")
    url = raw.get("url")
    if not isinstance(url, str):
        raise BadRequest(f'{where}: a request needs url, a string ("" is the service root)')
    group = _text(raw, "atomicityGroup", where)
    headers_raw = raw.get("headers") or {}
    if not isinstance(headers_raw, dict) or not all(
        isinstance(v, str) for v in headers_raw.values()
    ):
        raise BadRequest(f"{where}.headers must be an object of strings")
    headers = {str(k).lower(): v for k, v in headers_raw.items()}
    depends = raw.get("dependsOn") or []
    if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
        raise BadRequest(f"{where}.dependsOn must be an array of ids")
    body = b""
    if raw.get("body") is not None:
        if method in ("GET", "DELETE"):
            raise BadRequest(f"{where}: a {method} takes no body")
        headers.setdefault("content-type", "application/json")
        body = _json_body(raw["body"], headers["content-type"], f"{where}.body")
    return Part(rid, method, url, headers, body, where, tuple(depends)), group


def _text(raw: dict[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise BadRequest(f"{where}: a request needs {key}")
        return None
    if isinstance(value, int) and not isinstance(value, bool) and key == "id":
        return str(value)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{where}.{key} must be a non-empty string")
    return value


def _method(value: Any, where: str) -> str:
    method = value.upper() if isinstance(value, str) else None
    if method not in METHODS:
        raise BadRequest(
            f"{where}: unknown method {value!r}; a batch request is one of "
            + ", ".join(m.lower() for m in METHODS)
        )
    return method


def _json_body(value: Any, content_type: str, where: str) -> bytes:
    """A request body as sent: JSON for JSON media types, text for text/*, else base64url."""
    if is_json(content_type):
        return orjson.dumps(value)
    if not isinstance(value, str):
        raise BadRequest(f"{where}: a {media_type(content_type)} body must be a JSON string")
    if media_type(content_type).startswith("text/"):
        return value.encode()
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise BadRequest(f"{where}: not base64url text") from None


def format_json(outcomes: Iterable[Outcome]) -> bytes:
    responses = []
    for outcome in outcomes:
        group = outcome.item.name if isinstance(outcome.item, ChangeSet) else None
        for part, response in outcome.answers:
            entry: dict[str, Any] = {"id": part.id, "status": response.status}
            if group is not None:
                entry["atomicityGroup"] = group
            headers = {k.lower(): v for k, v in response.headers.items()}
            if response.body:
                if is_json(response.content_type):
                    entry["body"] = orjson.Fragment(response.body)
                elif media_type(response.content_type).startswith("text/"):
                    entry["body"] = response.body.decode("utf-8", "replace")
                else:
                    entry["body"] = base64.urlsafe_b64encode(response.body).decode().rstrip("=")
                if response.content_type != "application/json":
                    headers["content-type"] = response.content_type or ""
            if headers:
                entry["headers"] = headers
            responses.append(entry)
    return orjson.dumps({"responses": responses})


# --- multipart --------------------------------------------------------------------------------
def parse_multipart(body: bytes, content_type: str, limit: int) -> list[Item]:
    """The items of a ``multipart/mixed`` batch."""
    parts = _multipart(body, content_type)
    _check_limit(sum(len(_parts(p)) if p.is_multipart() else 1 for p in parts), limit)
    items: list[Item] = []
    for i, part in enumerate(parts, 1):
        where = f"part {i}"
        if part.get_content_type() != "multipart/mixed":
            items.append(_http_request(part, where))
            continue
        if not part.is_multipart():
            raise BadRequest(f"{where}: a change set needs a boundary parameter")
        change_set = ChangeSet(f"change set {i}")
        for j, sub in enumerate(_parts(part), 1):
            if sub.get_content_type().startswith("multipart/"):
                raise BadRequest(f"{where}.{j}: change sets cannot be nested")
            request = _http_request(sub, f"{where}.{j}")
            _no_get_in_change_set(request)
            change_set.parts.append(request)
        if not change_set.parts:
            raise BadRequest(f"{where}: the change set holds no requests")
        items.append(change_set)
    if not items:
        raise BadRequest("the batch holds no requests")
    _check_ids(items)
    return items


def _multipart(body: bytes, content_type: str) -> list[email.message.Message]:
    """The top-level parts of a multipart body, checked for defects down to change sets."""
    header = email.message.Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise BadRequest(
            "a multipart/mixed batch needs a boundary parameter, e.g. "
            "Content-Type: multipart/mixed; boundary=batch_1"
        )
    head = f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'.encode(
        "utf-8", "replace"
    )
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(head + body)
    problems = [_defect(d, boundary) for d in message.defects]
    if problems or not message.is_multipart():
        raise BadRequest(f"the batch is not a valid multipart body: {'; '.join(problems)}")
    parts = _parts(message)
    for i, part in enumerate(parts, 1):
        for sub in [part, *_parts(part)]:
            if sub.defects:
                inner = part.get_param("boundary")
                shown = inner if isinstance(inner, str) else boundary
                problems = [_defect(d, shown) for d in sub.defects]
                raise BadRequest(f"part {i} is not valid: {'; '.join(problems)}")
    return parts


def _parts(message: email.message.Message) -> list[email.message.Message]:
    payload = message.get_payload()
    if not isinstance(payload, list):
        return []
    return [p for p in payload if isinstance(p, email.message.Message)]


def _defect(defect: Exception, boundary: str) -> str:
    name = type(defect).__name__
    if name == "StartBoundaryNotFoundDefect":
        return f"no part starts with the delimiter --{boundary}"
    if name == "CloseBoundaryNotFoundDefect":
        return f"it does not end with the closing delimiter --{boundary}--"
    if name == "MultipartInvariantViolationDefect":
        return "it holds no parts"
    return (type(defect).__doc__ or name).strip().rstrip(".")


def _http_request(part: email.message.Message, where: str) -> Part:
    """A part holding one HTTP request: request line, headers, blank line, body."""
    if part.get_content_type() != "application/http":
        raise BadRequest(
            f"{where}: Content-Type {part.get_content_type()}; a request part is application/http"
        )
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        raise BadRequest(f"{where}: the part holds no HTTP request")
    raw = raw.lstrip(b"\r\n")
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    if ends:
        end = min(ends)
        head, body = raw[:end], raw[end:].removeprefix(b"\r\n\r\n").removeprefix(b"\n\n")
    else:
        head, body = raw.rstrip(b"\r\n"), b""
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    fields = lines[0].split()
    if len(fields) not in (2, 3) or (len(fields) == 3 and not fields[2].startswith("HTTP/")):
        raise BadRequest(
            f"{where}: {lines[0]!r} is not a request line such as 'GET Things(1) HTTP/1.1'"
        )
    method = _method(fields[0], where)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or name != name.strip():
            raise BadRequest(f"{where}: {line!r} is not a header line 'Name: value'")
        headers[name.lower()] = value.strip()
    content_id = part.get("content-id") or headers.get("content-id")
    return Part(
        str(content_id).strip() if content_id else None, method, fields[1], headers, body, where
    )


def format_multipart(outcomes: Iterable[Outcome]) -> tuple[bytes, str]:
    """The body and Content-Type of a multipart answer."""
    boundary = f"batchresponse_{uuid.uuid4()}".encode()
    out = bytearray()
    for outcome in outcomes:
        out += b"--" + boundary + CRLF
        if isinstance(outcome.item, ChangeSet) and outcome.failure is None:
            inner = f"changesetresponse_{uuid.uuid4()}".encode()
            out += b"Content-Type: multipart/mixed; boundary=" + inner + CRLF + CRLF
            for part, response in outcome.answers:
                out += b"--" + inner + CRLF + _http_response(part, response) + CRLF
            out += b"--" + inner + b"--" + CRLF
        else:
            blamed, response = outcome.failure or outcome.answers[0]
            out += _http_response(blamed, response) + CRLF
    out += b"--" + boundary + b"--" + CRLF
    return bytes(out), f"multipart/mixed; boundary={boundary.decode()}"


def _http_response(part: Part | None, response: Response) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if part is not None and part.id is not None:
        lines.append(f"Content-ID: {part.id}")
    lines += ["", f"HTTP/1.1 {response.status} {reason}".rstrip()]
    if response.content_type and response.body:
        lines.append(f"Content-Type: {response.content_type}")
    lines += [f"{k}: {v}" for k, v in response.headers.items()]
    lines += [f"Content-Length: {len(response.body)}", "", ""]
    return "\r\n".join(lines).encode("utf-8") + response.body
