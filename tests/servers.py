"""Real ``citytwin serve`` processes for tests that need one (interop, several instances).

Each server runs on a free port in its own process group; on exit the helper checks that
it and its worker processes have stopped, and fails the test with the server's output
otherwise.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 15.0
CITYTWIN = Path(sys.executable).parent / "citytwin"


@dataclass(frozen=True)
class StaServer:
    port: int
    base_url: str  # http://127.0.0.1:<port>
    root: str  # the versioned service root, without a trailing slash
    data_dir: Path
    log_file: Path

    def output(self) -> str:
        return self.log_file.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _health_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def _live_group_members(pgid: int) -> list[int]:
    """Processes (not zombies) still in the server's process group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    proc = Path("/proc")
    if not proc.is_dir():  # no way to tell zombies apart: assume they are live
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces, so split after ")"
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _stop(proc: subprocess.Popen[bytes], log_file: Path) -> None:
    """Terminate the server, then check that it and its workers have exited."""
    problems = []
    if proc.poll() is not None:
        problems.append(f"server exited early with status {proc.returncode}")
    else:
        proc.terminate()
        try:
            proc.wait(timeout=SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            problems.append(f"server did not exit within {SHUTDOWN_TIMEOUT}s of SIGTERM")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=SHUTDOWN_TIMEOUT)
        else:
            if proc.returncode not in (0, -signal.SIGTERM):
                problems.append(f"server exited with status {proc.returncode} after SIGTERM")
    deadline = time.monotonic() + SHUTDOWN_TIMEOUT
    while (left := _live_group_members(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        problems.append(f"server worker processes still running: {left}")
        os.killpg(proc.pid, signal.SIGKILL)
    if problems:
        output = log_file.read_text(errors="replace")
        pytest.fail("; ".join(problems) + f"\n--- server output ---\n{output}", pytrace=False)


def _wait_healthy(proc: subprocess.Popen[bytes], server: StaServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    status = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"citytwin serve exited with status {proc.returncode} before answering "
                f"/health\n--- server output ---\n{server.output()}",
                pytrace=False,
            )
        status = _health_status(f"{server.base_url}/health")
        if status == 200:
            return
        time.sleep(0.1)
    pytest.fail(
        f"GET {server.base_url}/health did not answer 200 within {STARTUP_TIMEOUT}s "
        f"(last status: {status})\n--- server output ---\n{server.output()}",
        pytrace=False,
    )


@contextmanager
def running_server(
    workdir: Path, db: str, *extra: str, insecure: bool = True
) -> Iterator[StaServer]:
    """``citytwin serve`` on a free port with database ``db``, stopped and checked on exit;
    with access control off unless ``insecure`` is False."""
    assert CITYTWIN.exists(), f"{CITYTWIN} not found: is citytwin installed in this environment?"
    data_dir = workdir / "data"
    log_file = workdir / "server.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYTWIN_")}
    env["PYTHONUNBUFFERED"] = "1"
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            [
                str(CITYTWIN),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                "--db",
                db,
                # most tests act as an all-powerful client; tests of access control do not
                *(["--insecure"] if insecure else []),
                *(extra or ("--mqtt", "off")),  # MQTT only where a test asks for it
            ],
            cwd=workdir,  # no ./citytwin.toml from the repository, nothing written there
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, for the worker check on exit
        )
    server = StaServer(
        port=port,
        base_url=f"http://127.0.0.1:{port}",
        root=f"http://127.0.0.1:{port}/v1.1",
        data_dir=data_dir,
        log_file=log_file,
    )
    try:
        _wait_healthy(proc, server)
    except BaseException:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=SHUTDOWN_TIMEOUT)
        raise
    try:
        yield server
    finally:
        _stop(proc, log_file)


def run_steps(steps: list[str], port: int, cwd: Path) -> list[str]:
    """Run documented shell steps (written against port 8080) against a server on
    ``port``, each under ``bash -euo pipefail``; what each printed."""
    outputs = []
    for step in steps:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", step.replace(":8080", f":{port}")],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=cwd,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    return outputs


READY_TIMEOUT = 240.0  # generous for a loaded CI machine; the figure is in the README


@dataclass(frozen=True)
class Demo:
    """A running ``citytwin demo``: its server's base URL and the demo's output."""

    base: str
    log: Path
    live_after: float

    @property
    def key(self) -> str:
        """The admin key the demo made (access control is on in the demo)."""
        return (self.log.parent / "data" / "admin-key.txt").read_text().strip()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def get(self, path: str) -> Any:
        resp = httpx.get(f"{self.base}{path}", timeout=30, headers=self.headers)
        assert resp.status_code == 200, (path, resp.text)
        return resp.json()


@contextmanager
def running_demo(tmp: Path, *args: str) -> Iterator[Demo]:
    """``citytwin demo`` on free ports until it says it is live; stopped with SIGTERM
    on exit, which must end it and its server with status 0."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYTWIN_")}
    env.update(
        PYTHONUNBUFFERED="1",
        CITYTWIN_MQTT_PORT=str(_free_port()),
        CITYTWIN_MQTT_WS_PORT=str(_free_port()),
    )
    log = tmp / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(CITYTWIN), "demo", "--port", str(port), "--data-dir", str(tmp / "data"), *args],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        live = None
        while live is None and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"demo exited with {proc.returncode}:\n{log.read_text()}")
            live = re.search(r"live after (\d+) s", log.read_text(errors="replace"))
            time.sleep(0.5)
        if live is None:
            pytest.fail(f"demo not live within {READY_TIMEOUT} s:\n{log.read_text()}")
        yield Demo(f"http://127.0.0.1:{port}", log, float(live.group(1)))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                status = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                pytest.fail(f"demo did not stop on SIGTERM:\n{log.read_text()}")
            deadline = time.monotonic() + 15
            while (left := _live_group_members(proc.pid)) and time.monotonic() < deadline:
                time.sleep(0.1)
            if left:
                os.killpg(proc.pid, signal.SIGKILL)
                pytest.fail(f"processes of the demo still running: {left}")
            assert status == 0, log.read_text()
