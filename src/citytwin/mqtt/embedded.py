"""The embedded MQTT broker (amqtt), for zero-setup installations.

What goes beyond a plain broker, through amqtt's own extension points:

* a publish to a create topic is stored (or refused on the error topic) *before* the broker
  acknowledges it, by a protocol handler that runs the ingest first; the raw publish is
  not forwarded to subscribers, who receive the created entity as a notification instead;
* subscriptions are reported to citytwin by a broker plugin, so that notifications are
  computed for exactly the topics somebody listens to;
* with access control on, a client authenticates at CONNECT with an API key as its
  password (any user name), or as its user name with no password; without either it
  is anonymous, and a bad key is refused (CONNACK "not authorised"; "server unavailable"
  while the database cannot be reached); the keys of connected clients are asked again
  every ``recheck_seconds``, and a client whose key was revoked is disconnected. Its
  publishes are stored as its principal, and notifications reach it only where its
  principal may read them (they are delivered to chosen clients, not broadcast by
  topic); clients' publishes on notification and error topics are dropped, so none
  passes for citytwin's.

When the database cannot be reached, a QoS 1 or 2 publish is not acknowledged: the
connection is closed and the client sends the publish again after reconnecting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from amqtt.broker import Broker
from amqtt.errors import AMQTTError, BrokerError
from amqtt.mqtt.connack import NOT_AUTHORIZED, SERVER_UNAVAILABLE, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BasePlugin
from amqtt.session import INCOMING

from citytwin.access import ANONYMOUS, Principal
from citytwin.errors import CitytwinError, Unavailable
from citytwin.metrics import Metrics
from citytwin.mqtt.audiences import Audiences, Receives
from citytwin.mqtt.ingest import Ingest
from citytwin.mqtt.notify import Subscriptions

Authenticate = Callable[[str], Awaitable[Principal]]  # an API key -> its principal

log = logging.getLogger("citytwin.mqtt")
CONNACK_NOT_AUTHORISED: int = NOT_AUTHORIZED  # a bad key
CONNACK_UNAVAILABLE: int = SERVER_UNAVAILABLE  # the keys cannot be read: come again


class _StaHandler(BrokerProtocolHandler):  # type: ignore[misc]
    """Stores creates before the acknowledgement of the protocol flow."""

    citytwin: CitytwinBroker

    async def _ingest_first(self, app_message: Any) -> None:
        if app_message.direction != INCOMING or not self.citytwin.sta_ingest.is_create(
            app_message.topic
        ):
            return
        client = self.session.client_id if self.session else None
        try:
            await self.citytwin.sta_ingest.handle(
                app_message.topic, bytes(app_message.data), client, self.citytwin.principal(client)
            )
        except Unavailable as exc:
            if app_message.qos == 0:
                raise
            log.warning(
                "database unavailable, publish on %s not acknowledged: %s",
                app_message.topic,
                exc.message,
            )
            if self.writer is not None:
                await self.writer.close()  # the client reconnects and sends it again
            raise

    async def _handle_qos0_message_flow(self, app_message: Any) -> None:
        try:
            await self._ingest_first(app_message)
        except Unavailable as exc:  # QoS 0 is at most once: not stored, and said so
            client = self.session.client_id if self.session else None
            await self.citytwin.sta_ingest.report(
                app_message.topic,
                bytes(app_message.data),
                client,
                503,
                exc.message,
                self.citytwin.principal(client),
            )
            return
        await super()._handle_qos0_message_flow(app_message)

    async def _handle_qos1_message_flow(self, app_message: Any) -> None:
        await self._ingest_first(app_message)
        await super()._handle_qos1_message_flow(app_message)

    async def _handle_qos2_message_flow(self, app_message: Any) -> None:
        await self._ingest_first(app_message)
        await super()._handle_qos2_message_flow(app_message)


class CitytwinBroker(Broker):  # type: ignore[misc]
    def __init__(
        self,
        config: dict[str, Any],
        ingest: Ingest,
        subscriptions: Subscriptions,
        authenticate: Authenticate | None = None,
        audiences: Audiences | None = None,
    ) -> None:
        super().__init__(config)
        self.session_queue = 1000  # messages kept for a client that is away
        self.recheck_seconds = 60.0  # how often connected clients' keys are asked again
        self.metrics = Metrics()
        self._rechecking: asyncio.Task[None] | None = None
        self.sta_ingest = ingest
        self.sta_subscriptions = subscriptions
        self.sta_authenticate = authenticate
        self.sta_audiences = audiences
        self._delivering: set[asyncio.Task[Any]] = set()

    def _citytwins(self, topic: str) -> bool:
        """With access control on, the topics where only citytwin publishes: those of
        notifications and of refusal reports (a client's publish there would pass for
        citytwin's)."""
        if self.sta_audiences is None:
            return False
        prefix = self.sta_ingest.error_prefix + "/"
        return topic.startswith(("v1.0/", "v1.1/", prefix))

    def principal(self, client: str | None) -> Principal:
        """Who a client acts as (anonymous with access control off)."""
        if self.sta_audiences is None or client is None:
            return ANONYMOUS
        return self.sta_audiences.of(client)

    async def sta_connect(self, session: Any) -> bool:
        """Whether a connecting client may connect; its principal is kept meanwhile."""
        if self.sta_authenticate is None or self.sta_audiences is None:
            return True
        principal = getattr(session, "citytwin_principal", None)  # checked at CONNECT
        if principal is None:
            principal = await self._principal_of(session)
        if not isinstance(principal, Principal):
            return False
        self.sta_audiences.connected(session.client_id, principal, session)
        return True

    async def _principal_of(self, session: Any) -> Principal | int:
        """The principal of a CONNECT's key (anonymous without one), or the CONNACK code
        that refuses it: "not authorised" for a bad key, "server unavailable" while the
        keys cannot be read, so that the client tries again rather than giving up."""
        username, password = session.username or "", session.password or ""
        if not (username or password) or self.sta_authenticate is None:
            return ANONYMOUS
        key = password or username  # the key as password, or as user name alone
        try:
            return await self.sta_authenticate(key)
        except Unavailable as exc:
            log.warning("MQTT client %s not let in: %s", session.client_id, exc.message)
            return CONNACK_UNAVAILABLE
        except CitytwinError as exc:  # a bad key
            log.warning("MQTT client %s refused: %s", session.client_id, exc.message)
            return CONNACK_NOT_AUTHORISED

    def subscribers(self, topic: str) -> set[str]:
        """The client ids whose subscriptions match ``topic``."""
        return {
            session.client_id
            for topic_filter, subscriptions in list(self._subscriptions.items())
            if self._matches(topic, topic_filter)
            for session, _qos in subscriptions
        }

    async def deliver(self, topic: str, data: bytes, qos: int, receives: Receives) -> None:
        """Send a message to the subscribers of ``topic`` that ``receives`` names (by
        client id), as the broker's own broadcast would to all of them."""
        for topic_filter, subscriptions in list(self._subscriptions.items()):
            if not self._matches(topic, topic_filter):
                continue
            for session, _qos in subscriptions:
                if not receives(session.client_id):
                    continue
                if session.transitions.state != "connected":
                    # kept for the client's return, but not for anonymous clients: their
                    # queues would grow without bound (amqtt keeps none for them either)
                    if (
                        not session.clean_session
                        and not self.principal(session.client_id).anonymous
                    ):
                        message = {"session": None, "topic": topic, "data": data}
                        await self._retain_broadcast_message(message, qos, session)
                    continue
                handler = self._get_handler(session)
                if handler is None:
                    continue
                task = asyncio.ensure_future(handler.mqtt_publish(topic, data, qos, retain=False))
                self._delivering.add(task)
                task.add_done_callback(self._delivered)

    async def recheck_keys(self) -> int:
        """Ask again for the principal of each connected client's key, once a key: a
        client whose key was revoked (or whose token ran out) since it connected is
        disconnected, and its next CONNECT is refused. While the keys cannot be read,
        clients stay as they are. Returns how many clients were disconnected."""
        if self.sta_authenticate is None or self.sta_audiences is None:
            return 0
        by_key: dict[str, list[tuple[Any, Any]]] = {}
        for session, handler in list(self._sessions.values()):
            key = session.password or session.username
            if key and session.transitions.state == "connected":
                by_key.setdefault(key, []).append((session, handler))
        dropped = 0
        for key, held in by_key.items():
            try:
                principal = await self.sta_authenticate(key)
            except Unavailable:
                return dropped  # asked again next time
            except CitytwinError as exc:
                for session, handler in held:
                    log.warning("MQTT client %s disconnected: %s", session.client_id, exc.message)
                    self.sta_audiences.forget(session.client_id, session)
                    if handler is not None and handler.writer is not None:
                        await handler.writer.close()
                    dropped += 1
                continue
            for session, _ in held:  # the key's organisation may have been renamed
                self.sta_audiences.connected(session.client_id, principal, session)
        if dropped:
            self.metrics.inc("citytwin_mqtt_clients_disconnected_total", dropped)
        return dropped

    def start_rechecking(self) -> None:
        """Check connected clients' keys every ``recheck_seconds`` from now on."""
        if self._rechecking is not None:
            self._rechecking.cancel()
        self._rechecking = asyncio.create_task(self._recheck_forever(), name="citytwin-mqtt-keys")

    def stop_rechecking(self) -> None:
        if self._rechecking is not None:
            self._rechecking.cancel()
            self._rechecking = None

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_seconds)
            try:
                await self.recheck_keys()
            except Exception:
                log.exception("checking the keys of connected MQTT clients failed")

    async def _retain_broadcast_message(
        self, broadcast: dict[str, Any], qos: int, target_session: Any
    ) -> None:
        """Keep a message for a client that is away, as the broker does, but no more than
        ``session_queue`` of them: a client that never returns would otherwise fill the
        memory. The oldest go first; what a returning dashboard needs is the newest."""
        queue = target_session.retained_messages
        dropped = 0
        while queue.qsize() >= self.session_queue:
            queue.get_nowait()
            dropped += 1
        if dropped:
            self.metrics.inc("citytwin_mqtt_session_dropped_total", dropped)
            if not getattr(target_session, "citytwin_overflowed", False):
                target_session.citytwin_overflowed = True  # said once per session
                log.warning(
                    "MQTT client %s is away and its kept session holds %d messages: older "
                    "ones are dropped (mqtt_session_queue)",
                    target_session.client_id,
                    self.session_queue,
                )
        await super()._retain_broadcast_message(broadcast, qos, target_session)

    def _delivered(self, task: asyncio.Task[Any]) -> None:
        self._delivering.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("MQTT delivery failed: %s", task.exception())

    async def _handle_message_delivery(
        self, client_session: Any, handler: Any, wait_deliver: asyncio.Future[Any]
    ) -> bool:
        message = wait_deliver.result()
        if message is not None and message.topic and self.sta_ingest.is_create(message.topic):
            return True  # stored before it was acknowledged; subscribers get the notification
        if message is not None and message.topic and self._citytwins(message.topic):
            log.warning(
                "dropped a publish of client %s on %s: only citytwin publishes there",
                client_session.client_id,
                message.topic,
            )
            return True
        return bool(await super()._handle_message_delivery(client_session, handler, wait_deliver))

    async def _handle_disconnect(
        self, client_session: Any, handler: Any, disconnect_waiter: asyncio.Future[Any]
    ) -> None:
        # amqtt acknowledges a publish before passing it on, and would end the session of a
        # publisher that disconnects at once with its last publishes still waiting: pass
        # them on first
        waiting = client_session.delivered_message_queue
        while not waiting.empty():
            taken: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            taken.set_result(waiting.get_nowait())
            await self._handle_message_delivery(client_session, handler, taken)
        await super()._handle_disconnect(client_session, handler, disconnect_waiter)

    async def _initialize_client_session(
        self, reader: Any, writer: Any, *where: Any, **more: Any
    ) -> Any:
        # amqtt reads the CONNECT here and, before it checks the credentials, ends the
        # session kept under the same client id (clean start) or gives it the newcomer's
        # credentials and will; it then takes over a connected client of that id even
        # for a CONNECT it refuses. With access control on, the CONNECT is checked first,
        # and a refused one touches nothing of the client whose id it names.
        checking = self.sta_authenticate is not None and self.sta_audiences is not None
        deferred: list[str] = []
        kept = {c: _settings(s) for c, (s, _) in self._sessions.items()} if checking else {}
        token = _DEFERRED.set(deferred if checking else None)
        try:
            handler, session = await super()._initialize_client_session(
                reader, writer, *where, **more
            )
        finally:
            _DEFERRED.reset(token)
        if checking:
            principal = await self._principal_of(session)
            if not isinstance(principal, Principal):
                if session.client_id in kept and getattr(session, "parent", 0) == 1:
                    _restore(session, kept[session.client_id])
                await ConnackPacket.build(0, principal).to_stream(writer)
                await writer.close()
                raise AMQTTError(f"client {session.client_id} refused (CONNACK {principal})")
            session.citytwin_principal = principal
            for client in deferred:
                await super()._delete_session(client)
        # amqtt has no public hook between receiving a PUBLISH and acknowledging it; the
        # handler it builds for a new connection becomes ours before it reads any packet
        handler.__class__ = _StaHandler
        handler.citytwin = self
        return handler, session

    async def _delete_session(self, client_id: str) -> None:
        deferred = _DEFERRED.get()
        if deferred is not None:  # a CONNECT not yet checked: once it is accepted
            deferred.append(client_id)
            return
        await super()._delete_session(client_id)


# the client ids whose kept sessions a CONNECT being checked would end (per connection)
_DEFERRED: ContextVar[list[str] | None] = ContextVar("citytwin_mqtt_deferred", default=None)
# what amqtt copies from a CONNECT into the kept session of its client id
_CONNECT_SETTINGS = (
    "will_flag",
    "will_message",
    "will_topic",
    "will_qos",
    "keep_alive",
    "username",
    "password",
    "parent",
)


def _settings(session: Any) -> tuple[Any, ...]:
    return tuple(getattr(session, name, None) for name in _CONNECT_SETTINGS)


def _restore(session: Any, settings: tuple[Any, ...]) -> None:
    for name, value in zip(_CONNECT_SETTINGS, settings, strict=True):
        setattr(session, name, value)


def _broker(context: Any) -> CitytwinBroker:
    broker = context._broker_instance  # amqtt gives plugins their broker only this way
    assert isinstance(broker, CitytwinBroker)
    return broker


class KeyAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Turns the API key a client connects with into its principal."""

    @dataclass
    class Config:
        pass

    async def authenticate(self, *, session: Any) -> bool:
        return await _broker(self.context).sta_connect(session)


class SubscriptionPlugin(BasePlugin[Any]):  # type: ignore[misc]
    """Keeps citytwin's table of subscribed topics in step with the broker."""

    async def on_broker_client_subscribed(self, *, client_id: str, topic: str, qos: int) -> None:
        _broker(self.context).sta_subscriptions.add(client_id, topic)

    async def on_broker_client_unsubscribed(self, *, client_id: str, topic: str) -> None:
        _broker(self.context).sta_subscriptions.remove(client_id, topic)

    async def on_broker_client_disconnected(self, *, client_id: str, client_session: Any) -> None:
        if getattr(client_session, "clean_session", True):
            broker = _broker(self.context)
            broker.sta_subscriptions.remove_client(client_id)
            if broker.sta_audiences is not None:
                broker.sta_audiences.forget(client_id, client_session)


class EmbeddedBroker:
    def __init__(
        self,
        host: str,
        port: int,
        ws_port: int,
        ingest: Ingest,
        subscriptions: Subscriptions,
        authenticate: Authenticate | None = None,
        audiences: Audiences | None = None,
        *,
        session_queue: int = 1000,
        recheck_seconds: float = 60.0,
        metrics: Metrics | None = None,
    ) -> None:
        """With ``authenticate`` and ``audiences`` (access control on), clients connect
        with API keys, which are asked again every ``recheck_seconds``; without, anyone
        connects and acts as anonymous. A kept session holds up to ``session_queue``
        messages while its client is away."""
        listeners: dict[str, Any] = {"default": {"type": "tcp", "bind": f"{host}:{port}"}}
        if ws_port:
            listeners["ws"] = {"type": "ws", "bind": f"{host}:{ws_port}"}
        checked = authenticate is not None and audiences is not None
        auth = (
            {f"{__name__}.KeyAuthPlugin": {}}
            if checked
            else {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
        )
        config = {
            "listeners": listeners,
            "plugins": {**auth, f"{__name__}.SubscriptionPlugin": {}},
        }
        self.broker = CitytwinBroker(config, ingest, subscriptions, authenticate, audiences)
        self.broker.session_queue = session_queue
        self.broker.recheck_seconds = recheck_seconds
        self.broker.metrics = metrics or Metrics()

    async def start(self) -> None:
        """Listen; OSError when a port cannot be had (the caller says so, once: the
        broker library's own traceback of it is kept out of the log)."""
        library = logging.getLogger("amqtt.broker")
        level = library.level
        library.setLevel(logging.CRITICAL)
        try:
            await self.broker.start()
        except BrokerError as exc:
            raise OSError(str(exc)) from None
        finally:
            library.setLevel(level)
        if self.broker.sta_authenticate is not None:
            self.broker.start_rechecking()

    async def stop(self) -> None:
        self.broker.stop_rechecking()
        await asyncio.wait_for(self.broker.shutdown(), timeout=10)

    async def publish(self, topic: str, payload: bytes, receives: Receives | None = None) -> None:
        if receives is None:
            await self.broker.internal_message_broadcast(topic, payload, 1)
        else:
            await self.broker.deliver(topic, payload, 1, receives)
