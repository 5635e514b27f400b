"""Task drivers: how a Task reaches its device.

A TaskingCapability names its driver and the driver's configuration in its properties::

    "properties": {"driver": {"name": "mqtt", "topic": "devices/heatpump-7/commands"}}
    "properties": {"driver": {"name": "webhook", "url": "https://gw.example/dim"}}

The driver is checked when the capability is stored (unknown name or bad configuration:
400). Once a Task's transaction has committed, its driver gets an :class:`Order` and
returns an :class:`Outcome`, which becomes the Task's ``status``, ``statusMessage`` and
``answer``. Drivers come from the ``citytwin_task_drivers`` hook; the built-in ones are
:class:`MqttDriver` and :class:`WebhookDriver`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

Status = Literal["created", "sent", "accepted", "rejected", "failed", "done"]
ANSWERS: tuple[Status, ...] = ("accepted", "rejected", "failed", "done")
ANSWER_PREFIX = "citytwin/tasks"  # a device answers Task 7 on citytwin/tasks/7/answer


def answer_topic(task_id: int) -> str:
    return f"{ANSWER_PREFIX}/{task_id}/answer"


@dataclass(frozen=True)
class Order:
    """A stored Task as its device receives it."""

    task_id: int
    self_link: str
    capability_id: int
    capability: str  # its name
    thing_id: int
    actuator_id: int
    parameters: Mapping[str, Any]
    creation_time: str
    config: Mapping[str, Any]  # the capability's driver configuration

    def message(self, *, answer_to: str | None = None) -> dict[str, Any]:
        """The JSON sent to the device."""
        out: dict[str, Any] = {
            "task": self.task_id,
            "selfLink": self.self_link,
            "taskingCapability": {"id": self.capability_id, "name": self.capability},
            "thing": self.thing_id,
            "actuator": self.actuator_id,
            "creationTime": self.creation_time,
            "taskingParameters": dict(self.parameters),
        }
        if answer_to is not None:
            out["answerTopic"] = answer_to
        return out


@dataclass(frozen=True)
class Outcome:
    status: Status
    message: str | None = None
    answer: Any = None


@dataclass
class DriverContext:
    """What citytwin offers drivers: its MQTT side, the time a device may take, and the
    private addresses webhooks may reach (setting ``task_webhook_allow``)."""

    publish: Callable[[str, bytes], Awaitable[None]]
    mqtt_on: Callable[[], bool]
    timeout: float
    webhook_allow: WebhookTargets = field(default_factory=lambda: WebhookTargets(()))


class WebhookTargets:
    """Which hosts a webhook may reach: every public address, and private, loopback and
    link-local ones only where the setting names their host or network. An operator who
    may create TaskingCapabilities must not be able to make the server POST to its own
    network (a database, a metadata service)."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self.hosts: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in (a.strip() for a in allowed):
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry.lower())

    @classmethod
    def parse(cls, setting: str | None) -> WebhookTargets:
        return cls((setting or "").split(","))

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be reached, or None; resolves its host (blocking)."""
        host = urllib.parse.urlsplit(url).hostname or ""
        if host.lower() in self.hosts:
            return None
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            return f"the device could not be reached: {host} does not resolve ({exc})"
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if address.is_global or any(address in n for n in self.networks):
                continue
            return (
                f"the webhook's host {host} is at {address}, a private, loopback or "
                "link-local address; the setting task_webhook_allow must name it to allow it"
            )
        return None


class TaskDriver(Protocol):
    name: str

    def check(self, config: Mapping[str, Any]) -> None:
        """Raise ValueError naming what is wrong with a capability's configuration."""

    async def send(self, order: Order, context: DriverContext) -> Outcome:
        """Hand the Task over; a device's failure is an Outcome, not an exception."""


def outcome_of(reply: Any, *, default: Status) -> Outcome:
    """A device's answer: a JSON object with ``status`` (accepted, rejected, failed or
    done) and optionally ``message``; the whole answer is kept."""
    if isinstance(reply, Mapping):
        status = reply.get("status", default)
        message = reply.get("message")
        if status in ANSWERS and (message is None or isinstance(message, str)):
            return Outcome(status, message, reply)
        return Outcome(
            "failed",
            f"the device's answer has status {status!r}; expected one of {', '.join(ANSWERS)}",
            reply,
        )
    if reply is None and default in ANSWERS:
        return Outcome(default)
    return Outcome("failed", "the device's answer is not a JSON object", reply)


TOPIC = re.compile(r"[^#+\x00]+")


class MqttDriver:
    """Publishes the Task to the capability's ``topic`` (QoS 1); the device answers on
    ``citytwin/tasks/<task id>/answer`` (named in the message as ``answerTopic``)."""

    name = "mqtt"

    def check(self, config: Mapping[str, Any]) -> None:
        topic = config.get("topic")
        if not isinstance(topic, str) or not TOPIC.fullmatch(topic):
            raise ValueError("the mqtt driver needs a topic without wildcards, e.g. devices/x/cmd")
        if topic.startswith(("v1.0/", "v1.1/", ANSWER_PREFIX + "/", "$")):
            raise ValueError(f"the mqtt driver's topic {topic!r} is reserved")

    async def send(self, order: Order, context: DriverContext) -> Outcome:
        if not context.mqtt_on():
            return Outcome("failed", "MQTT is off in this citytwin; the Task was not sent")
        topic = str(order.config["topic"])
        body = orjson.dumps(order.message(answer_to=answer_topic(order.task_id)))
        await context.publish(topic, body)
        return Outcome("sent", f"published on {topic}")


class WebhookDriver:
    """POSTs the Task as JSON to the capability's ``url``; the device answers in the
    response. 2xx: the body's status (accepted when it names none); 4xx: rejected;
    anything else, no answer within the timeout, or no connection: failed."""

    name = "webhook"

    def __init__(self, workers: int = 8) -> None:
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None

    def check(self, config: Mapping[str, Any]) -> None:
        url = config.get("url")
        if not isinstance(url, str) or not re.match(r"https?://[^\s/]+", url):
            raise ValueError("the webhook driver needs a url starting with http:// or https://")
        headers = config.get("headers", {})
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ValueError("the webhook driver's headers must be an object of strings")

    async def send(self, order: Order, context: DriverContext) -> Outcome:
        url = str(order.config["url"])
        body = orjson.dumps(order.message())
        headers = {"Content-Type": "application/json", **order.config.get("headers", {})}
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        # the standard library's client blocks: it runs in a thread, so the event loop
        # (and the client that POSTed the Task) never waits for the device; in threads of
        # its own, so that slow devices cannot hold up what asyncio runs in its default
        # pool (such as DNS lookups of database and broker connections)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="citytwin-webhook")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, _post, request, context.timeout, context.webhook_allow
        )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is the device's answer, not a new address to POST to (it could point
    into the server's own network)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _post(request: urllib.request.Request, timeout: float, targets: WebhookTargets) -> Outcome:
    refusal = targets.refusal(request.full_url)
    if refusal is not None:
        return Outcome("failed", refusal)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Outcome("failed", f"the device could not be reached: {reason}")
    reply = _json(raw)
    if 200 <= status < 300:
        return outcome_of(reply, default="accepted")
    message = f"the device answered HTTP {status}"
    if isinstance(reply, Mapping) and isinstance(reply.get("message"), str):
        message += f": {reply['message']}"
    return Outcome("rejected" if 400 <= status < 500 else "failed", message, reply)


def _json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:2000].decode("utf-8", errors="replace")


BUILT_IN: tuple[TaskDriver, ...] = (MqttDriver(), WebhookDriver())
