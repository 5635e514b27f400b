"""Change events: every committed write announces what it created, changed or deleted.

MQTT notifications, rules and KPI aggregation listen here, never to storage. Listeners
are called after the transaction commits, each with the events in the order they were
made; a failing listener is logged and does not affect the write or the other listeners.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import operator
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

    @classmethod
    def from_json(cls, data: object, origin: str) -> list[ChangeEvent]:
        """The events of one record another instance announced (:func:`events_to_json`,
        or a single event with ``id``); ValueError if the record is not one."""
        if not isinstance(data, dict):
            raise ValueError("a change event is a JSON object")
        kind, changed = data.get("kind"), data.get("changed", [])
        ids = data["ids"] if "ids" in data else [data.get("id")]
        if kind not in ("created", "updated", "deleted") or not isinstance(changed, list):
            raise ValueError(f"not a change event: {data!r}")
        if not isinstance(ids, list) or not all(type(i) is int for i in ids):
            raise ValueError(f"not a change event: {data!r}")
        entity_type = str(data.get("entityType"))
        names = frozenset(str(c) for c in changed)
        return [cls(entity_type, i, kind, names, origin) for i in ids]


_ALL_BUT_ID = operator.attrgetter("entity_type", "kind", "changed")


def events_to_json(events: Sequence[ChangeEvent]) -> list[dict[str, object]]:
    """Events as records for other instances: each run of events that differ only in
    their ids is one record with the ids in order (a batch of Observations is one), so
    that the order of the events is kept."""
    return [
        {
            "entityType": entity_type,
            "kind": kind,
            "changed": sorted(changed),
            "ids": [e.entity_id for e in run],
        }
        for (entity_type, kind, changed), run in itertools.groupby(events, _ALL_BUT_ID)
    ]


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
