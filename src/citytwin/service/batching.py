"""Group commit: Observations POSTed concurrently are stored in one transaction.

While one write is under way, the POSTs that arrive wait; the next write takes all of
them (up to a limit) at once. A lone client pays nothing for this (its POST is written
as soon as it comes), and sixteen clients share their round trips and their commit.
Every POST is still answered on its own, as if it had come alone: one that fails takes
no other with it (see :func:`citytwin.service.writing.create_together`). Publishes that
MQTT hands over in batches go to ``create_together`` directly (:meth:`Service.handle_many`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from citytwin.service.messages import Response
from citytwin.service.writing import Post

log = logging.getLogger("citytwin.service")

Store = Callable[[Sequence[Post]], Awaitable[list[Response | BaseException]]]


class Batcher:
    def __init__(self, store: Store, *, limit: int = 1000) -> None:
        self.store = store
        self.limit = limit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[tuple[Post, asyncio.Future[Response]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, post: Post) -> Response:
        return await self._enqueue([post])[0]

    def _enqueue(self, posts: Sequence[Post]) -> list[asyncio.Future[Response]]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (a restart in the same process)
            self._loop, self._waiting, self._writer = loop, [], None
        futures: list[asyncio.Future[Response]] = []
        for post in posts:
            future: asyncio.Future[Response] = loop.create_future()
            self._waiting.append((post, future))
            futures.append(future)
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write(), name="citytwin-group-commit")
        return futures

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self.limit], self._waiting[self.limit :]
            try:
                results: Sequence[Response | BaseException] = await self.store(
                    [post for post, _ in batch]
                )
            except Exception as exc:
                results = [exc] * len(batch)
            except BaseException:  # cancelled: the server is stopping
                for _, future in batch + self._waiting:
                    future.cancel()
                raise
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue  # its client went away
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
