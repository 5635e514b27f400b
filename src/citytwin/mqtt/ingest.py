"""Observations and Tasks published over MQTT, stored through the same service as HTTP
POSTs; publishes on topics that other parts of citytwin listen to (a device's answer to
a Task) are handed to them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson

from citytwin.access import ANONYMOUS, Principal
from citytwin.errors import Unavailable
from citytwin.metrics import Metrics
from citytwin.mqtt.topics import is_create_topic, try_parse_topic
from citytwin.service import Response, Service
from citytwin.service.intake import Intake, Message

log = logging.getLogger("citytwin.mqtt")

# topic, payload, and the sender (its principal, its client id if known) of the publish
# the report is about: it goes to clients that act as the sender (citytwin.mqtt.Mqtt.report)
Publish = Callable[[str, bytes, Principal, str | None], Awaitable[None]]
# a listener of topics that are not create topics (a device answering a Task): it is given
# the sender's principal and returns None, or why it refuses the publish, which is then
# reported on the error topic as a refused create is
Handler = Callable[[str, bytes, Principal], Awaitable[str | None]]


class Ingest:
    """Turns a publish on a create topic into a POST; reports refusals on the error topic."""

    def __init__(
        self,
        service: Service,
        publish: Publish,
        base_url: str,
        error_prefix: str,
        metrics: Metrics,
    ) -> None:
        self.service = service
        self.publish = publish
        self.intake = Intake(service, base_url, metrics)
        self.error_prefix = error_prefix.rstrip("/")
        self.metrics = metrics
        self._creates: dict[str, bool] = {}  # topic text -> is it a create topic
        self._listeners: list[tuple[str, Handler]] = []
        self._handlers: dict[str, Handler | None] = {}  # topic text -> its listener

    def listen(self, prefix: str, handler: Handler) -> None:
        """Hand publishes on topics starting with ``prefix`` to ``handler``."""
        self._listeners.append((prefix, handler))
        self._creates.clear()
        self._handlers.clear()

    def _listener(self, topic_text: str) -> Handler | None:
        if topic_text in self._handlers:
            return self._handlers[topic_text]
        found = next((h for p, h in self._listeners if topic_text.startswith(p)), None)
        if len(self._handlers) >= 10_000:
            self._handlers.clear()
        self._handlers[topic_text] = found
        return found

    def is_create(self, topic_text: str) -> bool:
        """Whether a publish on the topic is taken in here (stored, or handed on)."""
        known = self._creates.get(topic_text)
        if known is None:
            topic = try_parse_topic(topic_text, self.service.registry)
            known = self._listener(topic_text) is not None or (
                topic is not None and is_create_topic(topic)
            )
            if len(self._creates) >= 10_000:
                self._creates.clear()
            self._creates[topic_text] = known
        return known

    def error_topic(self, topic_text: str) -> str:
        return f"{self.error_prefix}/{topic_text}"

    async def handle(
        self,
        topic_text: str,
        payload: bytes,
        sender: str | None = None,
        principal: Principal = ANONYMOUS,
    ) -> None:
        """Store the Observation as ``principal`` (the sender's), or publish why not.
        Raises Unavailable when the database cannot be reached, so that the publish is
        not acknowledged and comes again."""
        self.metrics.inc("citytwin_mqtt_received_total")
        handler = self._listener(topic_text)
        if handler is not None:
            refusal = await handler(topic_text, payload, principal)
            if refusal is not None:
                await self.report(topic_text, payload, sender, 403, refusal, principal)
            return
        request = self.intake.request(topic_text, payload, principal)
        response = await self.service.handle(request)
        await self._settle(topic_text, payload, sender, response, principal)

    async def handle_many(self, publishes: list[Message]) -> list[Unavailable | None]:
        """Store several publishes (topic, payload, the sender's principal) together; for
        each, None when it is settled (stored or reported), Unavailable when the database
        could not be reached."""
        self.metrics.inc("citytwin_mqtt_received_total", len(publishes))
        handed = [self._listener(t) for t, _, _ in publishes]
        creates = [p for p, h in zip(publishes, handed, strict=True) if h is None]
        answers = iter(await self.intake.create(creates))
        outcomes: list[Unavailable | None] = []
        stored = 0
        for (topic_text, payload, principal), handler in zip(publishes, handed, strict=True):
            outcomes.append(None)
            if handler is not None:
                refusal = await handler(topic_text, payload, principal)
                if refusal is not None:
                    await self.report(topic_text, payload, None, 403, refusal, principal)
                continue
            answer = next(answers)
            if answer is None:
                stored += 1
                continue
            try:
                await self._settle(topic_text, payload, None, answer, principal)
            except Unavailable as exc:
                outcomes[-1] = exc
        self.metrics.inc("citytwin_mqtt_created_total", stored)
        return outcomes

    async def _settle(
        self,
        topic_text: str,
        payload: bytes,
        sender: str | None,
        response: Response,
        principal: Principal,
    ) -> None:
        if response.status in (201, 204):
            self.metrics.inc("citytwin_mqtt_created_total")
            return
        if response.status == 503:
            raise Unavailable(orjson.loads(response.body).get("message", "unavailable"))
        message = orjson.loads(response.body).get("message", "") if response.body else ""
        await self.report(topic_text, payload, sender, response.status, message, principal)

    async def report(
        self,
        topic_text: str,
        payload: bytes,
        sender: str | None,
        status: int,
        message: str,
        principal: Principal = ANONYMOUS,
    ) -> None:
        """Explain on the error topic why a publish was not stored; where the broker can
        tell its clients apart, only to those acting as the sender's principal (and to
        admins), since the report repeats what was sent."""
        self.metrics.inc("citytwin_mqtt_rejected_total")
        log.warning("refused MQTT publish on %s from %s: %s", topic_text, sender or "?", message)
        report = {
            "code": status,
            "type": "error",
            "message": message,
            "topic": topic_text,
            "sender": sender,
            "payload": payload[:2000].decode("utf-8", errors="replace"),
        }
        await self.publish(self.error_topic(topic_text), orjson.dumps(report), principal, sender)
