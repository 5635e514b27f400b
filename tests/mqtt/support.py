"""Real MQTT clients for the tests (paho-mqtt), and a private Mosquitto broker."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Message:
    topic: str
    payload: bytes

    def json(self) -> Any:
        return orjson.loads(self.payload)


@dataclass
class MqttClient:
    """A paho client that records what it receives."""

    port: int
    name: str = "test"
    version: int = paho.MQTTv311
    clean: bool = True
    websocket: bool = False
    username: str | None = None
    password: str | None = None
    received: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.name,
            protocol=self.version,
            transport="websockets" if self.websocket else "tcp",
            **({"clean_session": self.clean} if self.version != paho.MQTTv5 else {}),
        )
        if self.websocket:
            self.client.ws_set_options(path="/mqtt")
        if self.username is not None or self.password is not None:
            self.client.username_pw_set(self.username or "", self.password)
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.refusal: Any = None  # the broker's reason, if it refused the connection

        def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            if reason.is_failure:
                self.refusal = reason
                client.disconnect()  # no retries
            connected.set()

        self.client.on_connect = on_connect
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert connected.wait(10), f"{self.name} could not connect to port {self.port}"

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            self.received.append(Message(message.topic, bytes(message.payload)))
            self._lock.notify_all()

    def subscribe(self, *topics: str, qos: int = 1) -> None:
        for topic in topics:
            result, _mid = self.client.subscribe(topic, qos=qos)
            assert result == paho.MQTT_ERR_SUCCESS
        time.sleep(0.3)  # let the broker (and citytwin) register the subscriptions

    def publish(self, topic: str, payload: Any, qos: int = 1, user_properties: Any = None) -> None:
        """Publish and wait for the acknowledgement; ``user_properties`` (MQTT 5 only):
        [(name, value), ...]."""
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        props = None
        if user_properties:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.UserProperty = list(user_properties)
        info = self.client.publish(topic, body, qos=qos, properties=props)
        info.wait_for_publish(timeout=10)
        assert info.is_published(), f"no acknowledgement for {topic}"

    def on(self, topic: str) -> list[Message]:
        with self._lock:
            return [m for m in self.received if m.topic == topic]

    def wait(self, topic: str, count: int = 1, timeout: float = 5.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len([m for m in self.received if m.topic == topic]) < count:
                left = deadline - time.monotonic()
                got = self.on(topic)
                assert left > 0, f"{count} message(s) on {topic} expected, got {len(got)}: " + (
                    f"{got}" if len(got) <= 5 else f"{got[:3]} ... {got[-2:]}"
                )
                self._lock.wait(left)
        return self.on(topic)

    def quiet(self, topic: str, seconds: float = 0.6) -> list[Message]:
        """What arrived on ``topic`` after waiting long enough for anything more."""
        time.sleep(seconds)
        return self.on(topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def mqtt_client(port: int, name: str, **kw: Any) -> Iterator[MqttClient]:
    c = MqttClient(port, name, **kw)
    try:
        yield c
    finally:
        c.close()


# a private listener, and what docs/mosquitto.conf tells operators to set
MOSQUITTO_CONF = "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
DOCUMENTED_CONF = Path(__file__).parents[2] / "docs" / "mosquitto.conf"


@contextmanager
def mosquitto(workdir: Path, port: int | None = None) -> Iterator[int]:
    """A private Mosquitto on a free port (or ``port``), set up as docs/mosquitto.conf says."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto.conf"
    conf.write_text(MOSQUITTO_CONF.format(port=port) + DOCUMENTED_CONF.read_text())
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, "mosquitto exited"
                assert time.monotonic() < deadline, "mosquitto did not start"
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
