"""Observations that arrive one per message and are taken in many at a time (the MQTT
create topics).

A message to ``Observations`` or ``Datastreams(x)/Observations`` whose body is a plain
Observation (its own properties; its Datastream and FeatureOfInterest named by id) is
checked by the draft parser's rules (:meth:`DraftParser.plain`) and stored with the
others of its batch by one bulk insert (:meth:`Unit.create_many`, as POSTs that share a
transaction are), without a request and an answer object each. Every other message, and
every plain one that cannot be stored that way (a fault in its body, an unknown
Datastream or FeatureOfInterest, a shared write that failed), is answered as the POST it
stands for (:meth:`Service.handle_many`), so exactly as over HTTP: the same messages,
nothing partial stored, one message's fault never costing another its write.

Each message carries the principal of its sender. Messages of one principal share a
transaction, which checks the principal's writes as any other write does (the
:class:`~citytwin.access.guard.Guard` of the bulk insert); a sender that may not write at
all goes the general way at once and gets the refusal an HTTP POST gets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from citytwin.access import ANONYMOUS, Principal
from citytwin.access.audit import Origin
from citytwin.errors import CitytwinError, Unavailable
from citytwin.metrics import Metrics
from citytwin.query.path import Segment, parse_path
from citytwin.service import VERSIONS, Service
from citytwin.service.drafts import Draft, DraftParser
from citytwin.service.messages import Request, Response
from citytwin.service.unit import Unit
from citytwin.service.writing import set_up_first

log = logging.getLogger("citytwin.service")

STREAM = "Datastream"
NAMED = (STREAM, "FeatureOfInterest")  # the relations a plain Observation may name by id
NOT_PLAIN = -1  # a topic whose messages all go the general way

Message = tuple[str, bytes, Principal]  # topic, payload, the sender's principal


@dataclass(slots=True)
class Plain:
    index: int  # among the messages
    principal: Principal
    draft: Draft
    related: dict[str, int]  # Datastream (always) and FeatureOfInterest ids


class Intake:
    """Creates Observations from messages of topics ``<version>/<path>``."""

    def __init__(self, service: Service, base_url: str, metrics: Metrics | None = None) -> None:
        self.service = service
        self.metrics = metrics
        self.base_url = base_url.rstrip("/")
        self.et = service.registry.type("Observation")
        self.parser = DraftParser(service.registry)
        self._topics: dict[str, int | None] = {}  # topic -> Datastream of its path, if any

    def request(self, topic_text: str, payload: bytes, principal: Principal = ANONYMOUS) -> Request:
        """The POST that a message on a create topic stands for, sent by ``principal``."""
        version, _, rest = topic_text.partition("/")
        return Request(
            "POST",
            version,
            rest,
            body=payload,
            content_type="application/json",
            base_url=self.base_url,
            minimal=True,  # nobody reads the answer
            principal=principal,
            transport="mqtt",
        )

    async def create(self, messages: Sequence[Message]) -> list[Response | None]:
        """Store what the messages (topic, payload, sender's principal) stand for; for
        each, None when it is stored as a plain Observation, else the answer its POST got."""
        general: list[int] = []
        by_sender: dict[Principal, list[Plain]] = {}
        check = self.service.auth
        last: Principal | None = None  # a batch's messages mostly come from one sender
        mine: list[Plain] = []
        for i, (topic_text, payload, principal) in enumerate(messages):
            item = None
            if not check or principal.writes:
                item = self._plain(i, topic_text, payload, principal)
            if item is None:
                general.append(i)
                continue
            if principal is not last:
                mine = by_sender.setdefault(principal, [])
                last = principal
            mine.append(item)
        out: list[Response | None] = [None] * len(messages)
        for items in by_sender.values():
            general += await self._store(items, out)
        if general:
            general.sort()
            requests = [self.request(*messages[i]) for i in general]
            for i, response in zip(general, await self.service.handle_many(requests), strict=True):
                out[i] = response
        return out

    def _plain(
        self, index: int, topic_text: str, payload: bytes, principal: Principal
    ) -> Plain | None:
        parent = self._parent(topic_text)
        if parent == NOT_PLAIN:
            return None
        try:
            taken = self.parser.plain(self.et, orjson.loads(payload))
        except Exception:  # not JSON, or anything else: the general way says what it is
            return None
        if taken is None:
            return None
        values, related = taken
        if parent is not None and related.setdefault(STREAM, parent) != parent:
            return None  # names another Datastream than its path
        if STREAM not in related or "MultiDatastream" in related:
            return None  # a MultiDatastream's, or one without a Datastream
        # every argument given by position: the dataclass's defaults cost a third more
        draft = Draft(self.et, self.et.name, None, values, {}, {})
        return Plain(index, principal, draft, related)

    def _parent(self, topic_text: str) -> int | None:
        """The Datastream a topic's path names (None: ``Observations``), or NOT_PLAIN."""
        if topic_text not in self._topics:
            if len(self._topics) >= 10_000:
                self._topics.clear()
            self._topics[topic_text] = self._parent_of(topic_text)
        return self._topics[topic_text]

    def _parent_of(self, topic_text: str) -> int | None:
        version, _, rest = topic_text.partition("/")
        if version not in VERSIONS:
            return NOT_PLAIN
        try:
            path = parse_path(rest, self.service.registry)
        except CitytwinError:
            return NOT_PLAIN
        if path.single or path.property is not None or path.ref:
            return NOT_PLAIN
        match path.segments:
            case (Segment(name="Observations"),):
                return None
            case (Segment(name="Datastreams", id=int(parent)), Segment(name="Observations")):
                return parent
        return NOT_PLAIN

    async def _store(self, plain: list[Plain], out: list[Response | None]) -> list[int]:
        """Store the plain Observations of one sender in one transaction; the indices of
        those that go the general way instead."""
        try:
            return await self._together(plain)
        except Unavailable as exc:  # each would wait for the database alike
            for item in plain:
                out[item.index] = Response.error(exc)
            return []
        except CitytwinError as exc:  # a fault of some message: going alone finds which
            log.debug("a shared write of %d Observations failed (%s); each alone", len(plain), exc)
            return [item.index for item in plain]
        except Exception:  # not the messages' fault: each alone still stores them, slower
            log.exception("a shared write of %d Observations failed; each alone", len(plain))
            if self.metrics is not None:
                self.metrics.inc("citytwin_mqtt_shared_write_failures_total")
            return [item.index for item in plain]

    @set_up_first
    async def _together(self, plain: list[Plain]) -> list[int]:
        service = self.service
        async with service.transaction(Origin(plain[0].principal, "mqtt")) as unit:
            missing = await _unknown(unit, plain)
            kept = (
                [item for item in plain if not missing & item.related.items()] if missing else plain
            )
            if kept:
                await unit.create_many([item.draft for item in kept], [i.related for i in kept])
        await service.bus.publish(unit.events)
        if not missing:
            return []
        return [item.index for item in plain if missing & item.related.items()]


async def _unknown(unit: Unit, plain: list[Plain]) -> set[tuple[str, Any]]:
    """The (relation, id) pairs the messages name that do not exist, one query a type."""
    missing: set[tuple[str, Any]] = set()
    for name in NAMED:
        named = {item.related[name] for item in plain if name in item.related}
        if not named:
            continue
        if name == STREAM:  # locked for the insert, their generated features found
            found = await unit.existing_streams(named)
        else:
            found = await unit.existing(unit.registry.type(name), named)
        missing |= {(name, i) for i in named - found}
    return missing
