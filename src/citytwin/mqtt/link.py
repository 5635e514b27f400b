"""The connection through which an instance takes in what sensors publish to create topics.

It is a connection of its own beside the general client of :mod:`citytwin.mqtt.external`,
speaking just the part of MQTT 5 it needs (:mod:`citytwin.mqtt.wire`), because taking
in Observations is the one place where the broker hands over tens of thousands of
messages a second. What it does:

* subscribes to the create topics through shared subscriptions, in a persistent session
  of its own (client id ``<instance>-ingest``), so that each publish reaches one instance
  and publishes not yet acknowledged come again after a reconnect;
* hands what arrived since the last batch to the store in one go, and sends the PUBACKs
  of a batch, in the order the publishes came, only once the batch is settled (stored,
  or its refusals reported);
* while a batch is being stored, lets what arrives meanwhile gather until there is
  ``gather`` of it or that store is done, so that a burst is stored in a few large
  transactions rather than many small ones, while a lone publish is stored at once;
* stops reading from the broker while ``backlog`` publishes wait to be stored, so that a
  burst beyond what the database takes in waits at the broker, not in this process;
* reconnects with a growing delay (1 s to 30 s) when the connection is lost.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import ssl
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable, Sequence

from citytwin.mqtt import wire

log = logging.getLogger("citytwin.mqtt")

Store = Callable[[list[wire.Publish]], Awaitable[None]]

READ_SIZE = 1 << 16


class IngestLink:
    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        filters: Sequence[str],
        store: Store,
        *,
        tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        keepalive: int = 60,
        session_expiry: int = 24 * 3600,
        batch: int = 5000,
        gather: int = 1000,
        depth: int = 2,
        backlog: int = 20_000,
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.client_id = client_id
        self.filters = list(filters)
        self.store = store
        self.username, self.password = username, password
        self.keepalive = keepalive
        self.session_expiry = session_expiry
        self.batch = batch
        self.gather = gather
        self.depth = depth
        self.backlog = backlog
        self.connected = asyncio.Event()
        self._pending: list[wire.Publish] = []
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._writer: asyncio.StreamWriter | None = None
        self._generation = 0  # one per connection: acks go only to the one that received
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, wait: float = 15.0) -> None:
        self._tasks = [
            asyncio.create_task(self._connect_forever(), name="citytwin-mqtt-ingest-link"),
            asyncio.create_task(self._consume(), name="citytwin-mqtt-ingest-store"),
        ]
        try:
            await asyncio.wait_for(self.connected.wait(), timeout=wait)
        except TimeoutError:
            log.error(
                "MQTT broker %s:%s not reachable yet for ingest; retrying in the background",
                self.host,
                self.port,
            )

    async def stop(self) -> None:
        writer = self._writer
        if writer is not None:
            try:
                writer.write(wire.DISCONNECT_PACKET)  # the session is kept: it has an expiry
                await writer.drain()
            except OSError:
                pass
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # --- the connection ---------------------------------------------------------------------
    async def _connect_forever(self) -> None:
        delay = 1.0
        while True:
            try:
                await self._session()
            except Exception as exc:
                if self.connected.is_set():
                    delay = 1.0  # it was up: a new outage starts with a short wait
                expected = isinstance(exc, OSError | EOFError | TimeoutError | wire.ProtocolError)
                log.log(
                    logging.WARNING if expected else logging.ERROR,
                    "MQTT ingest connection to %s:%s: %s; again in %.0f s",
                    self.host,
                    self.port,
                    exc or type(exc).__name__,
                    delay,
                    exc_info=not expected,
                )
            finally:
                self._lost()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _session(self) -> None:
        context = ssl.create_default_context() if self.tls else None
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection(self.host, self.port, ssl=context)
        try:
            packets = wire.Reader()
            writer.write(
                wire.connect(
                    self.client_id,
                    keepalive=self.keepalive,
                    clean_start=False,
                    session_expiry=self.session_expiry,
                    username=self.username,
                    password=self.password,
                )
            )
            connack = await self._expect(reader, packets, wire.CONNACK)
            resumed = wire.connack(connack.body)
            writer.write(wire.subscribe(1, [(f, 1) for f in self.filters]))
            suback = await self._expect(reader, packets, wire.SUBACK)
            codes = wire.suback(suback.body)
            refused = [f for f, code in zip(self.filters, codes, strict=False) if code >= 0x80]
            if refused:
                raise wire.ProtocolError(f"the broker refused the subscriptions {refused}")
            self._writer = writer
            self._generation += 1
            self.connected.set()
            log.info(
                "MQTT ingest connected to %s:%s as %s (%s session)",
                self.host,
                self.port,
                self.client_id,
                "resumed" if resumed else "new",
            )
            await self._read(reader, writer, packets)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _expect(
        self, reader: asyncio.StreamReader, packets: wire.Reader, kind: int
    ) -> wire.Control:
        """The next packet of ``kind``; publishes that come with it are kept."""
        async with asyncio.timeout(10):
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    raise EOFError("the broker closed the connection")
                found = None
                for packet in packets.feed(data):
                    if isinstance(packet, wire.Publish):  # resent from the kept session
                        self._pending.append(packet)
                        self._arrived.set()
                    elif packet.kind == kind and found is None:
                        found = packet
                    elif packet.kind == wire.DISCONNECT:
                        raise wire.ProtocolError(wire.disconnect_reason(packet.body))
                if found is not None:
                    return found

    async def _read(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, packets: wire.Reader
    ) -> None:
        idle = 0
        while True:
            if len(self._pending) >= self.backlog:
                self._room.clear()
                await self._room.wait()  # the broker keeps the rest meanwhile
            try:
                async with asyncio.timeout(self.keepalive / 2):
                    data = await reader.read(READ_SIZE)
            except TimeoutError:
                idle += 1
                if idle > 2:
                    raise TimeoutError("no answer to keep-alive pings") from None
                writer.write(wire.PINGREQ_PACKET)
                continue
            if not data:
                raise EOFError("the broker closed the connection")
            idle = 0
            arrived = False
            for packet in packets.feed(data):
                if isinstance(packet, wire.Publish):
                    self._pending.append(packet)
                    arrived = True
                elif packet.kind == wire.DISCONNECT:
                    raise wire.ProtocolError(wire.disconnect_reason(packet.body))
            if arrived:
                self._arrived.set()

    def _lost(self) -> None:
        self.connected.clear()
        self._writer = None
        # unacknowledged QoS 1 publishes come again in the resumed session; QoS 0 ones
        # arrived whole and are stored
        self._pending = [p for p in self._pending if p.qos == 0]
        self._room.set()

    # --- storing ----------------------------------------------------------------------------
    async def _consume(self) -> None:
        """Take batches as they arrive; up to ``depth`` are stored at once (the next is
        prepared while the database takes in the one before), acknowledged in order."""
        inflight: collections.deque[asyncio.Task[None]] = collections.deque()
        try:
            while True:
                await self._arrived.wait()
                # while a batch is being stored, what arrives meanwhile gathers into the
                # next one until there is enough of it or that store is done: a batch of a
                # few publishes costs a transaction all the same
                while inflight and not inflight[-1].done() and len(self._pending) < self.gather:
                    self._arrived.clear()
                    arrival = asyncio.ensure_future(self._arrived.wait())
                    await asyncio.wait((arrival, inflight[-1]), return_when=FIRST_COMPLETED)
                    arrival.cancel()
                batch = self._pending[: self.batch]
                del self._pending[: len(batch)]
                if self._pending:
                    self._arrived.set()
                else:
                    self._arrived.clear()
                if len(self._pending) < self.backlog // 2:
                    self._room.set()
                if not batch:
                    continue
                while inflight and (len(inflight) >= self.depth or inflight[0].done()):
                    await inflight.popleft()
                before = inflight[-1] if inflight else None
                inflight.append(asyncio.create_task(self._settle(batch, before)))
        finally:
            for task in inflight:
                task.cancel()

    async def _settle(self, batch: list[wire.Publish], before: asyncio.Task[None] | None) -> None:
        generation = self._generation
        try:
            await self.store(batch)
        except Exception:
            log.exception("%d MQTT creates failed", len(batch))
            return  # unacknowledged: QoS 1 publishes come again after a reconnect
        finally:
            if before is not None:
                await asyncio.shield(before)  # acknowledgements go in the order of arrival
        acks = [p.packet_id for p in batch if p.qos]
        writer = self._writer
        if acks and writer is not None and generation == self._generation:
            writer.write(wire.puback(acks))
