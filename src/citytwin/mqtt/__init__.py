"""The SensorThings MQTT extension: create Observations by publishing, receive changes by
subscribing. See docs/mqtt.md for topics, delivery guarantees and broker set-up."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from citytwin.access import Principal
from citytwin.bus import Bus
from citytwin.errors import ConfigurationError
from citytwin.metrics import Metrics
from citytwin.mqtt.audiences import Audiences, Receives
from citytwin.mqtt.ingest import Ingest
from citytwin.mqtt.notify import Notifier, Subscriptions
from citytwin.service import Service
from citytwin.settings import Settings

log = logging.getLogger("citytwin.mqtt")


class Transport(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(
        self, topic: str, payload: bytes, receives: Receives | None = None
    ) -> None: ...


class Mqtt:
    """The MQTT side of one citytwin instance."""

    def __init__(
        self, service: Service, settings: Settings, bus: Bus, metrics: Metrics, base_url: str
    ) -> None:
        self.service = service
        self.settings = settings
        self.bus = bus
        self.metrics = metrics
        self.instance = settings.mqtt_client_id or f"{socket.gethostname()}-{settings.port}"
        self.subscriptions = Subscriptions(
            service.registry,
            expand=settings.mqtt_expand_topics,
            filter_=settings.mqtt_filter_topics,
        )
        # the principal of each client, where the broker tells (the embedded one)
        self.audiences = Audiences() if settings.mqtt == "embedded" and service.auth else None
        self.ingest = Ingest(service, self.report, base_url, settings.mqtt_error_topic, metrics)
        self.notifier = Notifier(
            service,
            self.subscriptions,
            self.publish,
            base_url,
            metrics,
            audiences=self.audiences,
        )
        self.transport: Transport | None = None
        self.state = "off"
        self._unsubscribe: list[object] = []
        self._slot_lock: int | None = None

    async def start(self) -> None:
        mode = self.settings.mqtt
        if mode == "off":
            return
        if mode == "embedded":
            from citytwin.mqtt.embedded import EmbeddedBroker

            broker = EmbeddedBroker(
                self.settings.mqtt_host,
                self.settings.mqtt_port,
                self.settings.mqtt_ws_port,
                self.ingest,
                self.subscriptions,
                self.service.authenticate if self.audiences is not None else None,
                self.audiences,
                session_queue=self.settings.mqtt_session_queue,
                recheck_seconds=self.settings.mqtt_key_recheck_seconds,
                metrics=self.metrics,
            )
            try:
                await broker.start()
            except OSError as exc:
                self.state = f"off: the embedded broker could not listen ({exc})"
                log.error(
                    "MQTT is off: the embedded broker could not listen on %s:%s (%s); "
                    "set mqtt_port, or mqtt to an external broker",
                    self.settings.mqtt_host,
                    self.settings.mqtt_port,
                    exc,
                )
                return
            self.transport = broker
            self.state = f"embedded on {self.settings.mqtt_host}:{self.settings.mqtt_port}"
            host = _public_host(self.settings.mqtt_host)
            self.service.mqtt_endpoints = [f"mqtt://{host}:{self.settings.mqtt_port}"]
            if self.settings.mqtt_ws_port:
                self.service.mqtt_endpoints.append(f"ws://{host}:{self.settings.mqtt_ws_port}/mqtt")
        else:
            from citytwin.mqtt.external import ExternalBroker

            if self.settings.workers > 1:
                self.instance = self._worker_slot()
            external = ExternalBroker(
                mode, self.instance, self.ingest, self.subscriptions, self.bus, self.metrics
            )
            self.bus.subscribe_batches(external.publish_events)
            await external.start()
            self.transport = external
            self.state = f"external at {external.host}:{external.port}"
            scheme = "mqtts" if external.tls else "mqtt"
            self.service.mqtt_endpoints = [f"{scheme}://{external.host}:{external.port}"]
        self.bus.subscribe_batches(self.notifier.on_events)
        self.notifier.start()

    def _worker_slot(self) -> str:
        """Worker processes of one server need client ids of their own, and the same ones
        after a restart (so that each finds its persistent session again): each takes
        the first free numbered lock in data_dir, held for the life of the process."""
        directory = Path(self.settings.data_dir)
        directory.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", self.instance)
        for slot in range(4 * self.settings.workers):
            fd = os.open(directory / f"mqtt-{name}-worker-{slot}.lock", os.O_CREAT | os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._slot_lock = fd  # released when the process ends
            return f"{self.instance}-{slot}"
        raise ConfigurationError(f"no free MQTT worker slot in {directory}")

    async def stop(self) -> None:
        self.service.mqtt_endpoints = []
        if self.transport is None:
            return
        await self.notifier.stop()
        await self.transport.stop()
        self.transport = None

    async def publish(self, topic: str, payload: bytes, receives: Receives | None = None) -> None:
        """Publish on ``topic`` to its subscribers, or to those of them ``receives`` names."""
        if self.transport is not None:
            await self.transport.publish(topic, payload, receives)

    async def publish_to_readers(
        self, topic: str, payload: bytes, may_read: Callable[[Principal], Awaitable[bool]]
    ) -> None:
        """Publish on ``topic`` to those of its subscribers whose principal ``may_read``
        says may read the message (asked once per audience). Where the broker cannot tell
        its clients apart (an external one, or access control off), to all of them."""
        from citytwin.mqtt.embedded import EmbeddedBroker  # amqtt is loaded only if used

        transport, audiences = self.transport, self.audiences
        if audiences is None or not isinstance(transport, EmbeddedBroker):
            await self.publish(topic, payload)
            return
        readers: set[str] = set()
        for principal, clients in audiences.split(transport.broker.subscribers(topic)):
            if await may_read(principal):
                readers |= clients
        await self.publish(topic, payload, readers.__contains__)

    async def report(
        self, topic: str, payload: bytes, principal: Principal, sender: str | None
    ) -> None:
        """Publish the report of a refused publish (it repeats what was sent): where
        clients are told apart, only to admins and to clients of the sender's
        organisation and role; an anonymous sender's only to its own connection."""
        audiences = self.audiences
        if audiences is None:
            await self.publish(topic, payload)
            return
        receives = audiences.reported_to(principal, sender)
        await self.publish(topic, payload, receives)


def _public_host(host: str) -> str:
    return "localhost" if host in ("0.0.0.0", "::", "") else host
