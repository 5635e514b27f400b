"""Subscriptions and the notifications they receive.

The broker (embedded or external) tells the :class:`Subscriptions` which topics clients
subscribe to. The :class:`Notifier` listens to the change-event bus: for every entity
created or updated by this instance it finds the subscriptions the entity belongs to
and publishes, for each, exactly what a GET of the entity (with the topic's ``$select``)
would return. Events from other instances are left to the instance that made them, so
each change is announced once.

With access control on, a notification is what a GET *of the subscriber's principal*
returns: where the broker knows its clients' principals (the embedded broker, see
:class:`Audiences`), the subscribers of a topic are served in groups of principals that
read alike, each only what its principals may read; elsewhere everybody is served what an
anonymous request may read (open data).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from urllib.parse import quote, urlencode

import orjson
import sqlalchemy as sa

from citytwin.access import ANONYMOUS, Principal
from citytwin.bus import ChangeEvent
from citytwin.metrics import Metrics
from citytwin.model import Registry
from citytwin.mqtt.audiences import AudienceKey, Audiences, Receives
from citytwin.mqtt.topics import Topic, try_parse_topic
from citytwin.query import unparse
from citytwin.service import Request, Service
from citytwin.storage.base import Row

log = logging.getLogger("citytwin.mqtt")

# topic, payload, and the clients to send it to (None: every subscriber of the topic)
Publish = Callable[[str, bytes, Receives | None], Awaitable[None]]


class Subscriptions:
    """Which topics are subscribed, by whom; parsed once and indexed by what they name.

    A topic names the entities whose changes it announces in one of three ways, and each
    has its own index, so that a change looks only at the topics it can belong to (a map
    viewer subscribes to one topic per Datastream, 10,000 of them):

    - ``Things(1)`` (or a property of it): the entity with that id;
    - ``Datastreams(1)/Observations`` without ``$filter``: the entities whose foreign key
      (here ``datastream_id``) holds that id;
    - anything else: tested one by one, as the notifier always has.
    """

    def __init__(self, registry: Registry, *, expand: bool = False, filter_: bool = False) -> None:
        self.registry = registry
        self.expand = expand
        self.filter = filter_
        self._clients: dict[str, set[str]] = defaultdict(set)  # topic text -> client ids
        self._topics_of: dict[str, set[str]] = defaultdict(set)  # client id -> topic texts
        self._parsed: dict[str, Topic] = {}
        self._keys: dict[str, tuple[str, ...]] = {}  # topic text -> its index key
        # (type,) -> texts; (type, id) -> texts; (type, fk column, id) -> texts
        self._index: dict[tuple[str, ...], set[str]] = defaultdict(set)
        self._fks: dict[str, dict[str, int]] = defaultdict(dict)  # type -> fk column -> topics

    def add(self, client: str, topic_text: str) -> Topic | None:
        topic = self._parsed.get(topic_text) or try_parse_topic(
            topic_text, self.registry, expand=self.expand, filter_=self.filter
        )
        if topic is None:
            return None  # not a SensorThings topic (or a form not enabled): nothing to send
        if topic_text not in self._parsed:
            self._parsed[topic_text] = topic
            key = self._keys[topic_text] = self._key_of(topic)
            self._index[key].add(topic_text)
            if len(key) == 3:
                fks = self._fks[key[0]]
                fks[key[1]] = fks.get(key[1], 0) + 1
        self._clients[topic_text].add(client)
        self._topics_of[client].add(topic_text)
        return topic

    def remove(self, client: str, topic_text: str) -> None:
        clients = self._clients.get(topic_text)
        if clients is None:
            return
        clients.discard(client)
        mine = self._topics_of.get(client)
        if mine is not None:
            mine.discard(topic_text)
            if not mine:
                del self._topics_of[client]
        if not clients:
            del self._clients[topic_text]
            del self._parsed[topic_text]
            key = self._keys.pop(topic_text)
            texts = self._index[key]
            texts.discard(topic_text)
            if not texts:
                del self._index[key]
            if len(key) == 3:
                fks = self._fks[key[0]]
                fks[key[1]] -= 1
                if not fks[key[1]]:
                    del fks[key[1]]

    def remove_client(self, client: str) -> None:
        for topic_text in list(self._topics_of.get(client, ())):
            self.remove(client, topic_text)

    def for_type(self, entity_type: str) -> list[Topic]:
        """Every topic announcing changes of ``entity_type``, in text order."""
        texts = [t for t, key in self._keys.items() if key[0] == entity_type]
        return [self._parsed[t] for t in sorted(texts)]

    def foreign_keys(self, entity_type: str) -> list[str]:
        """The foreign-key columns of ``entity_type`` that some indexed topic names."""
        return list(self._fks.get(entity_type, ()))

    def candidates(
        self, entity_type: str, entity_id: int, fk_values: dict[str, object]
    ) -> list[Topic]:
        """The topics an entity may belong to, in text order: those tested one by one, those
        naming its id and those naming one of its foreign keys' values
        (``fk_values``: column -> value, for the columns :meth:`foreign_keys` gives)."""
        texts = set(self._index.get((entity_type,), ()))
        texts.update(self._index.get((entity_type, str(entity_id)), ()))
        for column, value in fk_values.items():
            if value is not None:
                texts.update(self._index.get((entity_type, column, str(value)), ()))
        return [self._parsed[t] for t in sorted(texts)]

    def __len__(self) -> int:
        return len(self._clients)

    def clients(self, topic_text: str) -> frozenset[str]:
        """The clients subscribed to a topic."""
        return frozenset(self._clients.get(topic_text, ()))

    def _key_of(self, topic: Topic) -> tuple[str, ...]:
        """Where a topic goes in the index (see the class docstring)."""
        segs = topic.path.segments
        et = self.registry.by_set(segs[0].name)
        assert et is not None  # the topic parsed
        if len(segs) == 1:
            return (et.name,) if segs[0].id is None else (et.name, str(segs[0].id))
        parent = et
        for seg in segs[1:]:
            nav = et.navigation(seg.name)
            assert nav is not None
            et = self.registry.target(nav)
        if (
            len(segs) == 2
            and segs[0].id is not None
            and segs[1].id is None
            and topic.options.filter is None
        ):
            nav = parent.navigation(segs[1].name)
            assert nav is not None
            fk = self.registry.inverse(nav).fk
            if fk is not None:
                return (et.name, fk, str(segs[0].id))
        return (et.name,)


class Notifier:
    """Publishes notifications for this instance's changes, in order, off the request."""

    def __init__(
        self,
        service: Service,
        subscriptions: Subscriptions,
        publish: Publish,
        base_url: str,
        metrics: Metrics,
        *,
        retry_seconds: float = 30.0,
        audiences: Audiences | None = None,
    ) -> None:
        self.service = service
        self.subscriptions = subscriptions
        self.publish = publish
        # None: the broker cannot tell its clients apart, everybody is served as anonymous
        self.audiences = audiences
        self.base_url = base_url.rstrip("/")
        self.metrics = metrics
        self.retry_seconds = retry_seconds
        self._queue: asyncio.Queue[ChangeEvent | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def on_events(self, events: Sequence[ChangeEvent]) -> None:
        """Bus listener of a write's events: queue local creations and updates, if
        anybody subscribes (a batch of Observations taken in with nobody listening costs
        one look)."""
        if not len(self.subscriptions):
            return
        put = self._queue.put_nowait
        for event in events:
            if event.origin is None and event.kind != "deleted":
                put(event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="citytwin-mqtt-notifier")

    async def stop(self) -> None:
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None

    async def drained(self) -> None:
        """Wait until every queued event has been announced (for tests and shutdown)."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                if event is None:
                    return
                await self.notify(event)
            except Exception:
                log.exception("notification for %s failed", event)
                self.metrics.inc("citytwin_mqtt_notification_failures_total")
            finally:
                self._queue.task_done()

    async def notify(self, event: ChangeEvent) -> None:
        et = self.service.registry.type(event.entity_type)
        fetched: list[Row | None] = []

        async def row() -> Row | None:
            if not fetched:
                fetched.append(await self._row(et.table, event.entity_id))
            return fetched[0]

        fk_values: dict[str, object] = {}
        fks = self.subscriptions.foreign_keys(event.entity_type)
        if fks:
            found = await row()
            if found is not None:
                fk_values = {column: found[column] for column in fks}
        topics = self.subscriptions.candidates(event.entity_type, event.entity_id, fk_values)
        if not topics:
            return

        payloads: dict[tuple[str, str, AudienceKey], bytes | None] = {}
        for topic in topics:
            if topic.is_property and (
                event.kind != "updated" or topic.path.property not in event.changed
            ):
                continue
            for principal, receives in self._audiences(topic):
                if not await self._matches(topic, event, row, principal):
                    continue
                if topic.is_property:
                    query = f"property:{topic.path.property}"
                else:
                    query = self._query_of(topic)
                key = (topic.version, query, Audiences.key(principal))
                if key not in payloads:
                    payloads[key] = await self._payload(
                        topic, et.set_name, event.entity_id, principal
                    )
                payload = payloads[key]
                if payload is not None:
                    await self.publish(topic.text, payload, receives)
                    self.metrics.inc("citytwin_mqtt_notifications_total")

    def _audiences(self, topic: Topic) -> list[tuple[Principal, Receives | None]]:
        """Who is served a topic's notification: (as which principal, which clients)."""
        if self.audiences is None or not self.service.auth:
            return [(ANONYMOUS, None)]
        return [
            (principal, clients.__contains__)
            for principal, clients in self.audiences.split(self.subscriptions.clients(topic.text))
        ]

    # --- which subscriptions an entity belongs to ---------------------------------------------
    async def _matches(
        self,
        topic: Topic,
        event: ChangeEvent,
        row: Callable[[], Awaitable[Row | None]],
        principal: Principal,
    ) -> bool:
        segs = topic.path.segments
        if len(segs) == 1:
            if segs[0].id is not None and segs[0].id != event.entity_id:
                return False
            return topic.options.filter is None or await self._in_target(topic, event, principal)
        if (
            len(segs) == 2
            and segs[0].id is not None
            and segs[1].id is None
            and topic.options.filter is None
        ):
            # Datastreams(1)/Observations: compare the foreign key, no query per topic
            parent = self.service.registry.by_set(segs[0].name)
            assert parent is not None
            nav = parent.navigation(segs[1].name)
            assert nav is not None
            inverse = self.service.registry.inverse(nav)
            if inverse.fk is not None:
                found = await row()
                return found is not None and found[inverse.fk] == segs[0].id
        return await self._in_target(topic, event, principal)

    async def _in_target(self, topic: Topic, event: ChangeEvent, principal: Principal) -> bool:
        """The general test: is the entity among those the topic's path and filter name,
        as far as ``principal`` may see them?"""
        planner = self.service.planner(principal=principal)
        target = planner.resolve(topic.path)
        conds = list(target.conditions)
        conds.append(target.scope.col(target.et.id_column) == event.entity_id)
        if topic.options.filter is not None:
            conds.append(planner.compiler.condition(topic.options.filter, target.scope))
        check = planner.ancestors_exist(target)
        stmt: sa.Select[tuple[int]] = (
            sa.select(sa.literal_column("1")).select_from(target.scope.table).where(*conds)
        )
        async with self.service.storage.reader() as r:
            if check is not None and await r.scalar(check) is None:
                return False
            return await r.scalar(stmt) is not None

    async def _row(self, table: str, entity_id: int) -> Row | None:
        t = self.service.storage.tables.metadata.tables[table]
        async with self.service.storage.reader() as r:
            rows = await r.fetch(sa.select(t).where(t.c.id == entity_id))
        return rows[0] if rows else None

    # --- what is sent -----------------------------------------------------------------------
    @staticmethod
    def _query_of(topic: Topic) -> str:
        opts = replace(topic.options, filter=None)
        return urlencode(unparse.option_pairs(opts), quote_via=quote, safe="$")

    async def _payload(
        self, topic: Topic, set_name: str, entity_id: int, principal: Principal
    ) -> bytes | None:
        """The body of GET on the entity (or its property) by ``principal``, retried while
        storage is down; None when the principal may not read it."""
        if topic.is_property:
            path = f"{set_name}({entity_id})/{topic.path.property}"
            query: list[tuple[str, str]] = []
        else:
            path = f"{set_name}({entity_id})"
            query = unparse.option_pairs(replace(topic.options, filter=None))
        request = Request(
            "GET", topic.version, path, query, base_url=self.base_url, principal=principal
        )
        delay = 0.2
        waited = 0.0
        while True:
            response = await self.service.handle(request)
            if response.status == 200:
                return response.body
            if response.status in (404, 204):
                return None  # deleted meanwhile, or a property without value
            if response.status < 500 or waited >= self.retry_seconds:
                log.warning(
                    "no notification on %s: %s %s",
                    topic.text,
                    response.status,
                    orjson.loads(response.body or b"{}").get("message"),
                )
                self.metrics.inc("citytwin_mqtt_notification_failures_total")
                return None
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 5.0)
