"""The webhook task driver against a small HTTP server acting as the device."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.mqtt.support import free_port
from tests.support import ROOT, Client, make_client
from tests.tasking_support import dim, heat_pump

Behaviour = Callable[[dict[str, Any]], tuple[int, bytes, float]]  # status, body, delay


class Device:
    """An HTTP device: records what it receives and answers as ``behaviour`` says."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.behaviour: Behaviour = lambda order: (200, b'{"status": "accepted"}', 0.0)
        device = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                device.received.append(body)
                device.headers.append(dict(self.headers))
                status, answer, delay = device.behaviour(body)
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server gave up waiting, as it should

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dim"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def device() -> Iterator[Device]:
    d = Device()
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Client]:
    # the devices of these tests listen on loopback, which webhooks reach only when allowed
    c = make_client(
        tmp_path,
        db=db_url,
        task_timeout=1.0,
        service_root_url="http://testserver",
        task_webhook_allow="127.0.0.0/8",
    )
    try:
        yield c
    finally:
        c.close()


def capability_for(client: Client, url: str, **driver: Any) -> int:
    config = {"name": "webhook", "url": url, **driver}
    thing_id = client.create("Things", heat_pump(properties={"driver": config}))
    (cap,) = client.ids(f"Things({thing_id})/TaskingCapabilities")
    return cap


def settled(client: Client, task_id: int) -> dict[str, Any]:
    """The Task once every hand-over under way has finished."""
    client.call(client.app.state.tasks.idle())
    task: dict[str, Any] = client.ok("GET", f"Tasks({task_id})")
    return task


def test_the_device_gets_the_task_and_its_answer_is_kept(app: Client, device: Device) -> None:
    cap = capability_for(app, device.url, headers={"Authorization": "Bearer grid-operator"})
    device.behaviour = lambda order: (
        200,
        orjson.dumps({"status": "done", "message": "limited to 4.2 kW", "appliedKw": 4.2}),
        0.0,
    )
    task_id = app.create(f"TaskingCapabilities({cap})/Tasks", dim())
    task = settled(app, task_id)
    assert task["status"] == "done"
    assert task["statusMessage"] == "limited to 4.2 kW"
    assert task["answer"] == {"status": "done", "message": "limited to 4.2 kW", "appliedKw": 4.2}
    (order,) = device.received
    assert order["task"] == task_id
    assert order["selfLink"] == f"{ROOT}/Tasks({task_id})"
    assert order["taskingCapability"] == {"id": cap, "name": "Dim"}
    assert order["taskingParameters"] == {"powerLimit": 4.2, "duration": 120}
    assert order["creationTime"] == task["creationTime"]
    assert "answerTopic" not in order  # the answer comes in the HTTP response
    assert device.headers[0]["Authorization"] == "Bearer grid-operator"


def test_an_empty_2xx_answer_means_accepted(app: Client, device: Device) -> None:
    device.behaviour = lambda order: (204, b"", 0.0)
    cap = capability_for(app, device.url)
    task = settled(app, app.create(f"TaskingCapabilities({cap})/Tasks", dim()))
    assert task["status"] == "accepted"
    assert "answer" not in task


@pytest.mark.parametrize(
    ("status", "body", "expected", "fragment"),
    [
        (409, b'{"message": "already dimmed by another operator"}', "rejected", "another"),
        (500, b"boom", "failed", "HTTP 500"),
        (200, b'{"status": "maybe"}', "failed", "maybe"),
        (200, b"[1, 2]", "failed", "not a JSON object"),
    ],
)
def test_refusals_and_failures_of_the_device_are_recorded(
    app: Client, device: Device, status: int, body: bytes, expected: str, fragment: str
) -> None:
    device.behaviour = lambda order: (status, body, 0.0)
    cap = capability_for(app, device.url)
    resp = app.post(f"TaskingCapabilities({cap})/Tasks", dim())
    assert resp.status_code == 201  # the device's trouble is not the client's
    task = settled(app, resp.json()["@iot.id"])
    assert task["status"] == expected
    assert fragment in task["statusMessage"]


def test_a_device_that_does_not_answer_in_time_fails_the_task(app: Client, device: Device) -> None:
    device.behaviour = lambda order: (200, b'{"status": "done"}', 2.5)
    cap = capability_for(app, device.url)
    started = time.monotonic()
    task_id = app.create(f"TaskingCapabilities({cap})/Tasks", dim())
    assert time.monotonic() - started < 1.0  # the POST does not wait for the device
    assert app.ok("GET", f"Tasks({task_id})")["status"] == "created"
    task = settled(app, task_id)
    assert task["status"] == "failed"
    assert "could not be reached" in task["statusMessage"]
    assert "timed out" in task["statusMessage"]


def test_a_device_that_is_not_there_fails_the_task(app: Client) -> None:
    cap = capability_for(app, f"http://127.0.0.1:{free_port()}/dim")
    task = settled(app, app.create(f"TaskingCapabilities({cap})/Tasks", dim()))
    assert task["status"] == "failed"
    assert "could not be reached" in task["statusMessage"]


def test_a_task_without_a_driver_waits_as_created(app: Client, device: Device) -> None:
    thing_id = app.create("Things", heat_pump())
    (cap,) = app.ids(f"Things({thing_id})/TaskingCapabilities")
    task = settled(app, app.create(f"TaskingCapabilities({cap})/Tasks", dim()))
    assert task["status"] == "created"
    assert device.received == []


@pytest.mark.parametrize("allow", ["", "10.0.0.0/8, gw.internal", "localhost"])
def test_webhooks_reach_private_addresses_only_where_allowed(
    db_url: str, tmp_path: Path, device: Device, allow: str
) -> None:
    c = make_client(tmp_path, db=db_url, task_timeout=1.0, task_webhook_allow=allow)
    try:
        cap = capability_for(c, device.url)  # 127.0.0.1: loopback, not in the allowed list
        task = settled(c, c.create(f"TaskingCapabilities({cap})/Tasks", dim()))
        assert task["status"] == "failed"
        assert "127.0.0.1 is at 127.0.0.1, a private, loopback" in task["statusMessage"]
        assert "task_webhook_allow" in task["statusMessage"]
        assert device.received == []  # nothing was sent
    finally:
        c.close()


def test_an_allowed_host_name_is_reached(db_url: str, tmp_path: Path, device: Device) -> None:
    c = make_client(tmp_path, db=db_url, task_timeout=1.0, task_webhook_allow="localhost")
    try:
        cap = capability_for(c, device.url.replace("127.0.0.1", "localhost"))
        task = settled(c, c.create(f"TaskingCapabilities({cap})/Tasks", dim()))
        assert task["status"] == "accepted", task
        assert len(device.received) == 1
    finally:
        c.close()


def test_a_redirect_is_the_devices_answer_not_a_new_address(app: Client, device: Device) -> None:
    device.behaviour = lambda order: (307, b"", 0.0)
    cap = capability_for(app, device.url)
    task = settled(app, app.create(f"TaskingCapabilities({cap})/Tasks", dim()))
    assert task["status"] == "failed"
    assert "HTTP 307" in task["statusMessage"]
    assert len(device.received) == 1  # not POSTed again anywhere


def test_targets_know_public_private_and_listed_addresses() -> None:
    from citytwin.tasking.drivers import WebhookTargets

    targets = WebhookTargets.parse("192.168.7.0/24, gw.internal")
    assert targets.refusal("http://192.168.7.20/x") is None
    assert targets.refusal("http://gw.internal/x") is None  # listed by name: not resolved
    assert "192.168.8.1" in (targets.refusal("http://192.168.8.1/x") or "")
    assert "169.254.169.254" in (targets.refusal("http://169.254.169.254/latest") or "")
    assert "::1" in (targets.refusal("http://[::1]:8080/x") or "")
    assert targets.refusal("http://8.8.8.8/x") is None  # public addresses are allowed
