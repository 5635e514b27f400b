"""Change events: every committed write announces what it created, changed or deleted.

MQTT notifications, rules and KPI aggregation listen here, never to storage. Listeners
are called after the transaction commits, each with the events in the order they were
made; a failing listener is logged and does not affect the write or the other listeners.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, NamedTuple

log = logging.getLogger("citytwin.bus")

ChangeKind = Literal["created", "updated", "deleted"]


class ChangeEvent(NamedTuple):  # a tuple: a bulk insert makes thousands
    entity_type: str  # "Observation"
    entity_id: int
    kind: ChangeKind
    changed: frozenset[str] = frozenset()  # property names, for "updated"
    origin: str | None = None  # the instance that made the change; None: this one

    def to_json(self) -> dict[str, object]:
        return {
            "entityType": self.entity_type,
            "id": self.entity_id,
            "kind": self.kind,
            "changed": sorted(self.changed),
        }

    @classmethod
    def from_json(cls, data: object, origin: str) -> ChangeEvent:
        """An event another instance announced; ValueError if the message is not one."""
        if not isinstance(data, dict):
            raise ValueError("a change event is a JSON object")
        kind, entity_id, changed = data.get("kind"), data.get("id"), data.get("changed", [])
        if kind not in ("created", "updated", "deleted") or not isinstance(entity_id, int):
            raise ValueError(f"not a change event: {data!r}")
        if not isinstance(changed, list):
            raise ValueError(f"not a change event: {data!r}")
        return cls(
            str(data.get("entityType")), entity_id, kind, frozenset(str(c) for c in changed), origin
        )


Listener = Callable[[ChangeEvent], Awaitable[None] | None]
BatchListener = Callable[[Sequence[ChangeEvent]], Awaitable[None] | None]


class Bus:
    def __init__(self) -> None:
        self._listeners: list[tuple[Listener | BatchListener, bool]] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add a listener of single events; returns a function that removes it again."""
        return self._add((listener, False))

    def subscribe_batches(self, listener: BatchListener) -> Callable[[], None]:
        """Add a listener that takes the events of one write at once (to pass them on in
        one message, say); returns a function that removes it again."""
        return self._add((listener, True))

    def _add(self, entry: tuple[Listener | BatchListener, bool]) -> Callable[[], None]:
        self._listeners.append(entry)
        return lambda: self._listeners.remove(entry)

    async def publish(self, events: Sequence[ChangeEvent]) -> None:
        """Hand the events of one write to every listener, each in their order."""
        if not events:
            return
        for listener, batches in list(self._listeners):
            for item in [events] if batches else events:
                try:
                    result = listener(item)  # type: ignore[arg-type]
                    if result is not None and inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("change listener failed for %s", item)
