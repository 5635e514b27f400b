"""The simulated devices' MQTT connection: publishes Observations and Task answers at
QoS 1 and collects Tasks from the command topics."""

from __future__ import annotations

import queue
import uuid
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class SimMqtt:
    def __init__(self, url: str, api_key: str | None = None) -> None:
        """``url``: mqtt://[user:password@]host:port of the platform's broker. Without a
        user in it, ``api_key`` is the connection's password: the embedded broker's
        clients act as the key's principal (docs/mqtt.md)."""
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ValueError(f"expected mqtt://host:port, not {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 1883
        self._inbox: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self._topics: list[str] = []
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"citytwin-sim-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv311,
        )
        if parts.username:
            self.client.username_pw_set(parts.username, parts.password)
        elif api_key:
            self.client.username_pw_set("citytwin-simulator", api_key)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(1000)

    def connect(self, timeout: float = 10.0) -> None:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def subscribe(self, topic: str) -> None:
        self._topics.append(topic)
        self.client.subscribe(topic, qos=1)

    def received(self) -> list[tuple[str, bytes]]:
        out = []
        while True:
            try:
                out.append(self._inbox.get_nowait())
            except queue.Empty:
                return out

    def _on_connect(self, client: paho.Client, *args: object) -> None:
        for topic in self._topics:  # again after a reconnect
            client.subscribe(topic, qos=1)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        self._inbox.put((msg.topic, bytes(msg.payload)))
