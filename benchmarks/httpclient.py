"""A small HTTP/1.1 keep-alive client on asyncio streams.

It is the load generator: on a 2-core machine shared with the server and the database,
every microsecond the client spends is taken from them, so it does no more than write a
request and read one response (``Content-Length`` or chunked) per call.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson


class HttpError(Exception):
    """A response that was not what the benchmark expected."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    location: str | None

    def json(self) -> object:
        return orjson.loads(self.body)

    def expect(self, status: int, what: str) -> Reply:
        if self.status != status:
            raise HttpError(f"{what}: HTTP {self.status}, expected {status}: {self.body[:500]!r}")
        return self


class Connection:
    """One keep-alive connection; requests on it run one after the other."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"not an http:// URL: {base_url}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self._host_header = f"{self.host}:{self.port}".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
            self._reader = self._writer = None

    async def __aenter__(self) -> Connection:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, target: str, body: bytes | None = None) -> Reply:
        """Send one request (``target`` is the path with its query) and read the reply."""
        if self._writer is None or self._reader is None:
            await self.open()
        assert self._writer is not None
        assert self._reader is not None
        head = b"%s %s HTTP/1.1\r\nHost: %s\r\n" % (
            method.encode(),
            target.encode(),
            self._host_header,
        )
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        self._writer.write(head + b"\r\n" + (body or b""))
        return await self._read_reply(method)

    async def get(self, target: str) -> Reply:
        return await self.request("GET", target)

    async def post(self, target: str, body: bytes) -> Reply:
        return await self.request("POST", target, body)

    async def _read_reply(self, method: str) -> Reply:
        assert self._reader is not None
        raw = await self._reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise HttpError(f"not an HTTP status line: {lines[0]!r}") from None
        length: int | None = None
        chunked = False
        location: str | None = None
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif key == b"location":
                location = value.strip().decode()
            elif key == b"connection":
                close = value.strip().lower() == b"close"
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif chunked:
            body = await self._read_chunked()
        elif length is not None:
            body = await self._reader.readexactly(length)
        else:
            body = await self._reader.read()
            close = True
        if close:
            await self.close()
        return Reply(status, body, location)

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")  # no trailers are sent to us
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)
