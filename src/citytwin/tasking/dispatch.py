"""Hands committed Tasks to their drivers and keeps what the devices answer.

The dispatcher listens to the change-event bus: a Task created by this instance (over
HTTP or MQTT) is handed to its capability's driver in a background task, so the client
that created it never waits for the device. Every change of status is written to the
Task and announced on the bus like any update, so that MQTT subscribers see it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from citytwin.access import SYSTEM, Principal, audit
from citytwin.access.audit import Action, Origin
from citytwin.bus import ChangeEvent
from citytwin.service import Request, Service
from citytwin.storage.base import Json
from citytwin.tasking.drivers import (
    ANSWER_PREFIX,
    DriverContext,
    Order,
    Outcome,
    TaskDriver,
    outcome_of,
)
from citytwin.tasking.rules import driver_config

# a listener of answers: topic, payload, the sender; returns why it refuses one, or None
Answered = Callable[[str, bytes, Principal], Awaitable[str | None]]
# publishes to the subscribers whose principal may read the message (Mqtt.publish_to_readers)
PublishToReaders = Callable[[str, bytes, Callable[[Principal], Awaitable[bool]]], Awaitable[None]]

log = logging.getLogger("citytwin.tasking")

EXPAND = "TaskingCapability($expand=Thing($select=id),Actuator($select=id))"
# a Task's status kept from its device's answer: the platform's own write
TASKING = Origin(SYSTEM, "tasking")


class Dispatcher:
    def __init__(
        self,
        service: Service,
        drivers: Mapping[str, TaskDriver],
        context: DriverContext,
        base_url: str,
        publish_to_readers: PublishToReaders | None = None,
    ) -> None:
        self.service = service
        self.drivers = drivers
        self.context = context
        self.base_url = base_url.rstrip("/")
        self.publish_to_readers = publish_to_readers
        self._running: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    def start(self, listen: Callable[[str, Answered], None]) -> None:
        """Listen to the bus, and (through ``listen``) to answers published over MQTT."""
        self._unsubscribe = self.service.bus.subscribe_batches(self.on_events)
        listen(ANSWER_PREFIX + "/", self.on_answer)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def idle(self) -> None:
        """Wait until every hand-over under way has finished."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    def on_events(self, events: Sequence[ChangeEvent]) -> None:
        for event in events:
            if event.entity_type == "Task" and event.kind == "created" and event.origin is None:
                task = asyncio.get_running_loop().create_task(self.hand_over(event.entity_id))
                self._running.add(task)
                task.add_done_callback(self._running.discard)

    async def hand_over(self, task_id: int) -> None:
        try:
            order, driver = await self._order(task_id)
            if order is None or driver is None:
                return
            outcome = await driver.send(order, self._context_of(task_id))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("handing Task %s to its driver failed", task_id)
            outcome = Outcome("failed", f"the driver failed: {exc}")
        await self.record(task_id, outcome)

    def _context_of(self, task_id: int) -> DriverContext:
        """The drivers' context for one Task: where the broker tells its clients apart,
        what a driver publishes reaches only clients that may read the Task."""
        to_readers = self.publish_to_readers
        if to_readers is None:
            return self.context

        async def publish(topic: str, payload: bytes) -> None:
            await to_readers(topic, payload, lambda p: self.may_read(p, task_id))

        return replace(self.context, publish=publish)

    async def _order(self, task_id: int) -> tuple[Order | None, TaskDriver | None]:
        request = Request(
            "GET",
            "v1.1",
            f"Tasks({task_id})",
            query=(("$expand", EXPAND),),
            base_url=self.base_url,
            principal=SYSTEM,  # the Task's creator was checked when it was stored
        )
        response = await self.service.handle(request)
        if response.status != 200:
            return None, None  # deleted meanwhile
        task = orjson.loads(response.body)
        capability = task["TaskingCapability"]
        config = driver_config(capability.get("properties"))
        if config is None:
            return None, None  # no driver: the Task stays "created" for someone to fetch
        driver = self.drivers.get(str(config.get("name")))
        if driver is None:
            await self.record(task_id, Outcome("failed", f"no driver {config.get('name')!r}"))
            return None, None
        order = Order(
            task_id=task_id,
            self_link=task["@iot.selfLink"],
            capability_id=capability["@iot.id"],
            capability=capability["name"],
            thing_id=capability["Thing"]["@iot.id"],
            actuator_id=capability["Actuator"]["@iot.id"],
            parameters=task["taskingParameters"],
            creation_time=task["creationTime"],
            config=config,
        )
        return order, driver

    async def on_answer(self, topic: str, payload: bytes, sender: Principal) -> str | None:
        """A device's answer on citytwin/tasks/<id>/answer, kept if its sender may change
        the Task (an operator of the Thing's organisation, an admin); otherwise why not."""
        parts = topic[len(ANSWER_PREFIX) + 1 :].split("/")
        if len(parts) != 2 or parts[1] != "answer" or not parts[0].isdigit():
            log.warning("ignored a publish on %s: not a Task's answer topic", topic)
            return None
        task_id = int(parts[0])
        if not await self.may_answer(sender, task_id):
            # the same words whether the Task is missing or not the sender's: ids do not leak
            return f"there is no Task {task_id} that the sender may answer"
        try:
            reply: Any = orjson.loads(payload)
        except orjson.JSONDecodeError:
            reply = payload[:2000].decode("utf-8", errors="replace")
        await self.record(task_id, outcome_of(reply, default="failed"))
        return None

    async def may_answer(self, sender: Principal, task_id: int) -> bool:
        """Whether ``sender`` may change Task ``task_id`` (always, with access control off)."""
        return await self._task_allows(sender, task_id, write=True)

    async def may_read(self, principal: Principal, task_id: int) -> bool:
        """Whether ``principal`` may read Task ``task_id`` (and so its command)."""
        return await self._task_allows(principal, task_id, write=False)

    async def _task_allows(self, principal: Principal, task_id: int, *, write: bool) -> bool:
        policy = self.service.policy(principal)
        if policy is None:
            return True
        storage = self.service.storage
        et = self.service.registry.type("Task")
        task = storage.tables.alias(storage.tables.of(et), "checked")
        condition = policy.writable(et, task) if write else policy.visible(et, task)
        query = sa.select(task.c.id).where(
            task.c.id == task_id, *([] if condition is None else [condition])
        )
        async with storage.reader() as r:
            return bool(await r.fetch(query))

    async def record(self, task_id: int, outcome: Outcome) -> None:
        """Keep a Task's status and answer, and announce the change."""
        table = self.service.storage.tables.entity["Task"]
        values: dict[str, Any] = {"status": outcome.status, "status_message": outcome.message}
        changed = {"status", "statusMessage"}
        if outcome.answer is not None:
            values["answer"] = Json(outcome.answer)
            changed.add("answer")
        async with self.service.storage.writer() as w:
            found = await w.fetch(
                sa.select(table.c.status).where(table.c.id == task_id).with_for_update()
            )
            if not found:
                return  # deleted meanwhile
            if outcome.status == "sent" and found[0][0] not in ("created", "sent"):
                return  # the device answered before the driver came back
            await w.update("tasks", task_id, values)
            done = Action("update", "Task", [task_id], 1, {"status": outcome.status})
            await audit.record(w, self.service.storage, TASKING, [done], datetime.now(UTC))
        event = ChangeEvent("Task", task_id, "updated", frozenset(changed))
        await self.service.bus.publish([event])
