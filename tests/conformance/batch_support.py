"""Helpers for the batch tests: multipart batch bodies built by hand, and multipart answers
read with the standard library's MIME parser (not the server's). Black-box HTTP only."""

from __future__ import annotations

import email.parser
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import Client


@dataclass
class HttpAnswer:
    """One answer inside a multipart batch answer."""

    content_id: str | None
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ChangeSetAnswer:
    answers: list[HttpAnswer]


def request_part(
    method: str,
    url: str,
    body: Any = None,
    *,
    content_id: str | None = None,
    headers: dict[str, str] | None = None,
    nl: str = "\r\n",
) -> str:
    """An application/http part (without its delimiter line)."""
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{method} {url} HTTP/1.1", "Host: testserver"]
    text = "" if body is None else body if isinstance(body, str) else json.dumps(body)
    if body is not None:
        lines.append("Content-Type: application/json")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines += ["", text]
    return nl.join(lines)


def change_set(parts: list[str], boundary: str = "changeset_1", nl: str = "\r\n") -> str:
    body = "".join(f"--{boundary}{nl}{part}{nl}" for part in parts) + f"--{boundary}--"
    return f"Content-Type: multipart/mixed; boundary={boundary}{nl}{nl}{body}"


def multipart(parts: list[str], boundary: str = "batch_1", nl: str = "\r\n") -> bytes:
    return ("".join(f"--{boundary}{nl}{part}{nl}" for part in parts) + f"--{boundary}--").encode()


def post_multipart(
    client: Client,
    parts: list[str] | bytes,
    *,
    boundary: str = "batch_1",
    headers: dict[str, str] | None = None,
    url: str = "$batch",
) -> httpx.Response:
    body = parts if isinstance(parts, bytes) else multipart(parts, boundary)
    all_headers = {"content-type": f"multipart/mixed; boundary={boundary}", **(headers or {})}
    return client.request("POST", url, content=body, headers=all_headers)


def post_json(
    client: Client,
    requests: list[dict[str, Any]],
    *,
    headers: dict[str, str] | None = None,
    url: str = "$batch",
) -> httpx.Response:
    return client.request("POST", url, json={"requests": requests}, headers=headers or {})


def responses(resp: httpx.Response) -> dict[str, dict[str, Any]]:
    """The answers of a JSON batch (which must have succeeded as a whole), by id."""
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    out = {}
    for entry in resp.json()["responses"]:
        assert entry["id"] not in out, f"two answers for {entry['id']}"
        out[entry["id"]] = entry
    return out


def read_multipart(resp: httpx.Response) -> list[HttpAnswer | ChangeSetAnswer]:
    """The parts of a multipart batch answer (which must have succeeded as a whole)."""
    assert resp.status_code == 200, resp.text
    content_type = resp.headers["content-type"]
    assert content_type.startswith("multipart/mixed"), content_type
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser().parsebytes(head + resp.content)
    assert not message.defects, message.defects
    out: list[HttpAnswer | ChangeSetAnswer] = []
    for part in message.get_payload():
        if part.is_multipart():
            out.append(ChangeSetAnswer([_http_answer(p) for p in part.get_payload()]))
        else:
            out.append(_http_answer(part))
    return out


def _http_answer(part: Any) -> HttpAnswer:
    assert part.get_content_type() == "application/http", part.get_content_type()
    raw = part.get_payload(decode=True)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    protocol, status, *_ = lines[0].split(" ")
    assert protocol == "HTTP/1.1", lines[0]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.lower()] = value.strip()
    if "content-length" in headers:
        assert int(headers["content-length"]) == len(body), (headers, body)
    content_id = part.get("content-id")
    return HttpAnswer(content_id, int(status), headers, body)


def entity_id_of(location: str) -> int:
    return int(location[location.rindex("(") + 1 : location.rindex(")")])
