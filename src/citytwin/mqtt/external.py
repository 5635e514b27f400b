"""An external MQTT broker (Mosquitto, EMQX, ...) shared by several citytwin instances.

citytwin is a client of the broker (MQTT 5, persistent session):

* Observations published to create topics reach it through shared subscriptions
  (``$share/citytwin/...``), on a connection of their own (:mod:`citytwin.mqtt.link`,
  client id ``citytwin-<instance>-ingest``), so each publish is stored by exactly one
  instance; the delivery is acknowledged only after the Observation is stored or its
  refusal is reported. While the database cannot be reached the delivery waits,
  unacknowledged: if the process ends meanwhile, the broker delivers it again when the
  persistent session reconnects.
* The broker reports subscriptions on ``$SYS/broker/log/M/(un)subscribe`` (Mosquitto:
  ``log_dest topic`` with ``log_type subscribe`` and ``log_type unsubscribe``); instances
  keep what they learn as retained messages under ``citytwin/subscriptions/`` so that an
  instance started later knows them too.
* A create is stored as the principal of the API key in its MQTT 5 user property
  ``api-key``; without one it is anonymous (refused with access control on), with a bad
  one it is refused (401 on the error topic). The broker passes user properties on to
  every subscriber of the topic: see docs/security.md for the broker ACLs this needs.
* Notifications are what an anonymous request may read (open data, with access control
  on): the broker sends them to whoever subscribes, and citytwin cannot tell who that is.
  They carry the user property ``citytwin=notification`` and are ignored as creates;
  only the instance that made a change announces it.
* The change-event bus travels between instances on ``citytwin/events/<instance>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from citytwin.access import ANONYMOUS, Principal
from citytwin.bus import Bus, ChangeEvent, events_to_json
from citytwin.errors import CitytwinError, ConfigurationError, Unavailable
from citytwin.metrics import Metrics
from citytwin.mqtt.audiences import Receives
from citytwin.mqtt.ingest import Ingest
from citytwin.mqtt.link import IngestLink
from citytwin.mqtt.notify import Subscriptions
from citytwin.mqtt.topics import CREATES, VERSIONS
from citytwin.mqtt.wire import Publish
from citytwin.tasking.drivers import ANSWER_PREFIX

log = logging.getLogger("citytwin.mqtt")

SHARE = "$share/citytwin"
SYS_SUBSCRIBE = "$SYS/broker/log/M/subscribe"
SYS_UNSUBSCRIBE = "$SYS/broker/log/M/unsubscribe"
REGISTRY = "citytwin/subscriptions"
EVENTS = "citytwin/events"
MARK = ("citytwin", "notification")  # user property of our own notifications
API_KEY = "api-key"  # user property of a publish: the API key it is sent with
BATCH = 1000  # creates taken from the queue at a time
_LOG_LINE = re.compile(r"^\d+: (?P<client>\S+) (?:(?P<qos>\d) )?(?P<topic>.+)$")


class ExternalBroker:
    def __init__(
        self,
        url: str,
        instance: str,
        ingest: Ingest,
        subscriptions: Subscriptions,
        bus: Bus,
        metrics: Metrics,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigurationError(f"not an MQTT broker URL: {url}")
        self.host = parts.hostname
        self.port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        self.tls = parts.scheme == "mqtts"
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.instance = instance
        self.ingest = ingest
        self.subscriptions = subscriptions
        self.bus = bus
        self.metrics = metrics
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._inbox: list[Any] = []  # filled by paho's thread, emptied into the queue
        self._inbox_lock = threading.Lock()
        self._inbox_scheduled = False
        self._connected = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self.reports_subscriptions = False
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"citytwin-{instance}",  # stable, so its session survives a restart
            protocol=paho.MQTTv5,
        )
        self.client.manual_ack_set(True)
        if self.username:
            self.client.username_pw_set(self.username, self.password)
        if self.tls:
            self.client.tls_set()
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.link = IngestLink(
            self.host,
            self.port,
            f"citytwin-{instance}-ingest",
            [
                *(f"{SHARE}/{v}/{p}{c}" for v in VERSIONS for c in CREATES for p in ("", "+/")),
                f"{SHARE}/{ANSWER_PREFIX}/+/answer",  # devices answering Tasks
            ],
            self._take_in,
            tls=self.tls,
            username=self.username,
            password=self.password,
        )

    # --- paho's thread ----------------------------------------------------------------------
    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s:%s refused the connection: %s", self.host, self.port, reason)
            return
        topics = [
            (SYS_SUBSCRIBE, SubscribeOptions(qos=0)),
            (SYS_UNSUBSCRIBE, SubscribeOptions(qos=0)),
            (f"{REGISTRY}/#", SubscribeOptions(qos=1)),
            (f"{EVENTS}/#", SubscribeOptions(qos=1, noLocal=True)),
        ]
        client.subscribe(topics)
        # creates come through the ingest link; a session kept from an older release may
        # still hold them, and would take its share of the publishes
        client.unsubscribe(self.link.filters)
        self._loop.call_soon_threadsafe(self._connected.set)

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._loop.call_soon_threadsafe(self._connected.clear)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        # one wake-up of the event loop for all that arrives before it takes them
        with self._inbox_lock:
            self._inbox.append(message)
            if self._inbox_scheduled:
                return
            self._inbox_scheduled = True
        self._loop.call_soon_threadsafe(self._take_inbox)

    def _take_inbox(self) -> None:
        with self._inbox_lock:
            messages, self._inbox = self._inbox, []
            self._inbox_scheduled = False
        for message in messages:
            self._queue.put_nowait(message)

    # --- the event loop ---------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 24 * 3600  # undelivered creates wait a day for us
        self.client.connect_async(self.host, self.port, clean_start=False, properties=props)
        self.client.loop_start()
        self._worker = asyncio.create_task(self._run(), name="citytwin-mqtt-external")
        try:
            await asyncio.gather(
                asyncio.wait_for(self._connected.wait(), timeout=15), self.link.start(15)
            )
        except TimeoutError:
            log.error(
                "MQTT broker %s:%s not reachable yet; retrying in the background",
                self.host,
                self.port,
            )

    async def stop(self) -> None:
        await self.link.stop()
        self.client.disconnect()
        self.client.loop_stop()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def publish(self, topic: str, payload: bytes, receives: Receives | None = None) -> None:
        """Publish to every subscriber: the broker's clients cannot be told apart, so
        ``receives`` is ignored and callers publish here only what anyone may read."""
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.UserProperty = [MARK]
        self.client.publish(topic, payload, qos=1, properties=props)

    async def publish_events(self, events: Sequence[ChangeEvent]) -> None:
        """Bus listener: tell the other instances about this instance's changes, those
        of one write in one message."""
        mine = [e for e in events if e.origin is None]
        if mine:
            records = events_to_json(mine)
            self.client.publish(f"{EVENTS}/{self.instance}", orjson.dumps(records), qos=1)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())  # what arrived meanwhile
            for message in batch:
                await self._settle(message)
                self._ack(message)

    async def _take_in(self, publishes: list[Publish]) -> None:
        """Publishes on create topics, from the ingest link; citytwin's own notifications
        (of Observations, on the same topics) are not creates."""
        creates = [
            p for p in publishes if MARK not in p.user_properties and self.ingest.is_create(p.topic)
        ]
        if creates:
            await self._create(creates)

    async def _settle(self, message: Any) -> None:
        """Handle a message (not a create) until it may be acknowledged."""
        try:
            await self._handle(message)
        except Exception:
            log.exception("MQTT message on %s failed", message.topic)

    async def _senders(self, messages: list[Publish]) -> list[Principal | CitytwinError]:
        """For each message the principal of its API key, or why the key is refused; one
        look-up a key. Raises Unavailable when the database cannot be reached."""
        if not self.ingest.service.auth:
            return [ANONYMOUS] * len(messages)  # access control off: keys are not looked at
        found: dict[str | None, Principal | CitytwinError] = {None: ANONYMOUS}
        out = []
        for message in messages:
            key = _api_key(message)
            if key not in found:
                assert key is not None
                try:
                    found[key] = await self.ingest.service.authenticate(key)
                except Unavailable:
                    raise
                except CitytwinError as exc:
                    found[key] = exc
            out.append(found[key])
        return out

    async def _create(self, messages: list[Publish]) -> None:
        """Store creates together (one transaction where they can share it), each as the
        principal of its API key; those that meet an unreachable database wait,
        unacknowledged: should this process end meanwhile, the broker delivers them again
        to this client's persistent session."""
        delay = 0.5
        while messages:
            try:
                taken: list[tuple[Publish, Principal]] = []
                for m, sender in zip(messages, await self._senders(messages), strict=True):
                    if isinstance(sender, Principal):
                        taken.append((m, sender))
                    else:  # acknowledged: it is settled by its report
                        await self.ingest.report(m.topic, m.payload, None, 401, sender.message)
                messages = [m for m, _ in taken]
                outcomes = await self.ingest.handle_many(
                    [(m.topic, m.payload, p) for m, p in taken]
                )
            except Unavailable as exc:
                outcomes = [exc] * len(messages)
            except Exception:
                log.exception("%d MQTT creates failed", len(messages))
                return
            waiting = [m for m, o in zip(messages, outcomes, strict=True) if o is not None]
            if waiting:
                reason = next(o for o in outcomes if o is not None)
                log.warning(
                    "database unavailable; %d publishes wait (%s)", len(waiting), reason.message
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            messages = waiting

    def _ack(self, message: Any) -> None:
        if message.qos > 0:
            self.client.ack(message.mid, message.qos)

    async def _handle(self, message: Any) -> None:
        """Anything but a create: subscriptions learned, remembered; events of others."""
        topic: str = message.topic
        if topic in (SYS_SUBSCRIBE, SYS_UNSUBSCRIBE):
            self._learn(topic == SYS_SUBSCRIBE, message.payload.decode("utf-8", "replace"))
        elif topic.startswith(REGISTRY + "/"):
            self._remember(message.payload)
        elif topic.startswith(EVENTS + "/"):
            origin = topic[len(EVENTS) + 1 :]
            if origin != self.instance:
                data = orjson.loads(message.payload)
                events = [
                    event
                    for item in (data if isinstance(data, list) else [data])
                    for event in ChangeEvent.from_json(item, origin)
                ]
                self.metrics.inc("citytwin_bus_remote_events_total", len(events))
                await self.bus.publish(events)

    def _learn(self, subscribed: bool, line: str) -> None:
        match = _LOG_LINE.match(line)
        if match is None:
            return
        client, topic = match.group("client"), match.group("topic")
        if client == f"citytwin-{self.instance}":
            self.reports_subscriptions = True  # the broker reports subscriptions: good
            return
        if subscribed and self.subscriptions.add(client, topic) is None:
            return  # not a SensorThings topic
        if not subscribed:
            self.subscriptions.remove(client, topic)
        key = hashlib.sha1(f"{client}\0{topic}".encode(), usedforsecurity=False).hexdigest()
        body = orjson.dumps({"client": client, "topic": topic}) if subscribed else b""
        self.client.publish(f"{REGISTRY}/{key}", body, qos=1, retain=True)

    def _remember(self, payload: bytes) -> None:
        if not payload:
            return  # a cleared record: the unsubscribe was learned from the log already
        try:
            record = orjson.loads(payload)
            self.subscriptions.add(str(record["client"]), str(record["topic"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignoring a malformed subscription record")


def _api_key(message: Publish) -> str | None:
    return next((v for k, v in message.user_properties if k == API_KEY), None)
