"""The ingest connection against a private Mosquitto: batches, back-pressure, redelivery."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Awaitable, Callable

import pytest

from citytwin.mqtt.link import IngestLink
from citytwin.mqtt.wire import Publish
from tests.mqtt.support import mqtt_client

FILTERS = ["$share/citytwin/v1.1/+/Observations"]
TOPIC = "v1.1/Datastreams(1)/Observations"


def publish_lines(port: int, n: int, qos: int) -> None:
    publisher = shutil.which("mosquitto_pub")
    if publisher is None:
        pytest.skip("mosquitto_pub is missing; apt-get install mosquitto-clients")
    subprocess.run(
        [publisher, "-p", str(port), "-q", str(qos), "-t", TOPIC, "-l"],
        input="".join(f"{i}\n" for i in range(n)).encode(),
        check=True,
        timeout=60,
    )


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.02)


def test_a_burst_waits_at_the_broker_while_storing_is_slow_and_arrives_whole(
    mosquitto_port: int,
) -> None:
    n, backlog = 5000, 200
    stored: list[bytes] = []
    most_waiting = 0

    async def main() -> None:
        nonlocal most_waiting
        gate = asyncio.Event()

        async def store(batch: list[Publish]) -> None:
            await gate.wait()
            stored.extend(p.payload for p in batch)

        link = IngestLink("127.0.0.1", mosquitto_port, "bp", FILTERS, store, backlog=backlog)
        await link.start(5)
        try:
            await asyncio.to_thread(publish_lines, mosquitto_port, n, 1)
            for _ in range(50):  # while nothing is stored, what waits here stays bounded
                most_waiting = max(most_waiting, len(link._pending))
                await asyncio.sleep(0.02)
            gate.set()
            await until(lambda: len(stored) >= n, 30)
        finally:
            await link.stop()

    asyncio.run(main())
    # reading stops at the backlog; one read of the socket may bring some more
    assert backlog <= most_waiting < backlog + 2000 < n
    assert stored == [str(i).encode() for i in range(n)]  # all, in the order published


def test_a_publish_not_yet_stored_comes_again_to_the_next_connection_of_the_session(
    mosquitto_port: int,
) -> None:
    taken: list[tuple[str, bytes]] = []

    async def main() -> None:
        started = asyncio.Event()

        async def never(batch: list[Publish]) -> None:
            started.set()
            await asyncio.Event().wait()  # the process ends before this is stored

        async def keep(batch: list[Publish]) -> None:
            taken.extend((p.topic, p.payload) for p in batch)

        def run(store: Callable[[list[Publish]], Awaitable[None]]) -> IngestLink:
            return IngestLink("127.0.0.1", mosquitto_port, "session", FILTERS, store)

        first = run(never)
        await first.start(5)
        with mqtt_client(mosquitto_port, "sensor") as sensor:
            await asyncio.to_thread(sensor.publish, TOPIC, b"42", 1)
        await asyncio.wait_for(started.wait(), 10)
        await first.stop()
        second = run(keep)
        await second.start(5)
        try:
            await until(lambda: bool(taken))
            await asyncio.sleep(0.3)
        finally:
            await second.stop()

    asyncio.run(main())
    assert taken == [(TOPIC, b"42")]


def test_while_a_batch_is_stored_what_arrives_gathers_into_the_next_one(
    mosquitto_port: int,
) -> None:
    sizes: list[int] = []
    stored: list[bytes] = []

    async def main() -> None:
        gate = asyncio.Event()

        async def store(batch: list[Publish]) -> None:
            sizes.append(len(batch))
            await gate.wait()
            stored.extend(p.payload for p in batch)

        link = IngestLink("127.0.0.1", mosquitto_port, "gather", FILTERS, store, gather=100)
        await link.start(5)
        try:
            await asyncio.to_thread(publish_lines, mosquitto_port, 1, 0)
            await until(lambda: sizes == [1])  # nothing else is being stored: at once
            await asyncio.to_thread(publish_lines, mosquitto_port, 60, 0)
            await until(lambda: len(link._pending) == 60)
            await asyncio.sleep(0.2)
            assert sizes == [1]  # fewer than 100 wait for the first store to end
            await asyncio.to_thread(publish_lines, mosquitto_port, 60, 0)
            await until(lambda: len(sizes) == 2)  # enough: stored beside the first
            assert sizes[1] >= 100
            gate.set()
            await until(lambda: len(stored) == 121)
        finally:
            await link.stop()

    asyncio.run(main())
    assert sum(sizes) == 121
    assert stored == [str(i).encode() for i in (0, *range(60), *range(60))]
