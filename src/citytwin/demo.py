"""``citytwin demo``: a live simulated city on the embedded default.

The server runs as its own process, exactly as ``citytwin serve``; the simulator is a
client of it and feeds it over HTTP and MQTT like a city's sensors would. The history
(a day by default) is stored first, then the city goes live until interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from citytwin.access.keys import ADMIN_KEY_FILE, read_admin_key
from citytwin.settings import Settings
from citytwin.simulate.session import Options, Session

READY_TIMEOUT = 60.0


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str, preferred: int) -> int:
    """``preferred`` if nothing listens there, else a free port the system picks."""
    if preferred and port_free(host, preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def demo_settings(settings: Settings) -> dict[str, str]:
    """The server's environment: the settings given, with the embedded broker moved to
    free ports when another broker (a system Mosquitto, say) holds the usual ones."""
    env = settings.as_env()
    if settings.mqtt == "embedded":
        env["CITYTWIN_MQTT_PORT"] = str(free_port(settings.mqtt_host, settings.mqtt_port))
        if settings.mqtt_ws_port:
            env["CITYTWIN_MQTT_WS_PORT"] = str(free_port(settings.mqtt_host, settings.mqtt_ws_port))
    return env


def broker_url(settings: Settings, env: dict[str, str]) -> str | None:
    if settings.mqtt == "off":
        return None
    if settings.mqtt == "embedded":
        return f"mqtt://{settings.mqtt_host}:{env['CITYTWIN_MQTT_PORT']}"
    return str(settings.mqtt)


def run(
    settings: Settings,
    options: Options,
    say: Callable[[str], None],
    *,
    seconds: float | None = None,
) -> int:
    """Serve the platform, set up the simulated city and run it live (for ``seconds``, or
    until interrupted); return the process's exit status."""
    data = Path(settings.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **demo_settings(settings)}
    base = f"http://{_client_host(settings.host)}:{settings.port}"
    log_path = data / "server.log"
    began = time.monotonic()
    # SIGTERM while the city is being set up ends the demo as Ctrl-C does, so that the
    # server goes with it (once live, the event loop takes SIGTERM over)
    signal.signal(signal.SIGTERM, _interrupt)
    with open(log_path, "ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "citytwin", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        if not _wait_ready(base, server):
            say(f"the server did not start; see {log_path}:")
            say(_tail(log_path))
            return 1
        say(f"citytwin is serving {settings.database_url} at {base}")
        mqtt_url = broker_url(settings, env)
        api_key = None
        if settings.auth == "on":
            api_key = read_admin_key(data)
            if api_key is None:
                say(f"no admin key in {data / ADMIN_KEY_FILE}; the simulator needs one")
                return 1
            say(f"the simulator uses the admin key in {data / ADMIN_KEY_FILE}")
        key_file = data / ADMIN_KEY_FILE if api_key else None
        # the embedded broker takes the key as the connection's password; an external
        # one cannot pass it on, so the readings go over HTTP there
        over_mqtt = api_key is None or settings.mqtt == "embedded"
        return asyncio.run(
            _simulate(
                base, mqtt_url, options, env, say, began, seconds, api_key, key_file, over_mqtt
            )
        )
    except KeyboardInterrupt:
        return 0
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def _simulate(
    base: str,
    mqtt_url: str | None,
    options: Options,
    env: dict[str, str],
    say: Callable[[str], None],
    began: float,
    seconds: float | None,
    api_key: str | None = None,
    key_file: Path | None = None,
    readings_over_mqtt: bool = True,
) -> int:
    session = Session(
        base,
        options,
        mqtt_url=mqtt_url,
        say=say,
        api_key=api_key,
        readings_over_mqtt=readings_over_mqtt,
    )
    try:
        await session.prepare()
        say(f"live after {time.monotonic() - began:.0f} s")
        say(tour(base, mqtt_url, env, key_file, keyed_mqtt=readings_over_mqtt))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGTERM, stop.set)
        if seconds is not None:
            loop.call_later(seconds, stop.set)
        await session.run(stop)
        return 0
    finally:
        await session.close()


def tour(
    base: str,
    mqtt_url: str | None,
    env: dict[str, str],
    key_file: Path | None = None,
    *,
    keyed_mqtt: bool = False,
) -> str:
    """What to open and try; with access control on, how to use the admin key (also on
    the MQTT broker when ``keyed_mqtt``: it takes the key as the connection's password)."""
    auth = ' -H "Authorization: Bearer $KEY"' if key_file else ""
    lines = [
        "",
        "Open the city:",
        f"  {base}/                      the digital twin (map, dashboards)",
        f"  {base}/v1.1                  the SensorThings API",
        f"  {base}/api/v1/domains        domains and their KPIs",
    ]
    if key_file:
        lines += [
            "",
            "Access control is on. Without a key you see the open data (counters, car parks,",
            "charging points, rain and overflows, air quality). On the page, 'Sign in' with the",
            f"admin key in {key_file} to see the utility's data too (household meters, grid,",
            "water network, the fleet) and to send Tasks. In a shell:",
            f"  KEY=$(cat {key_file})",
        ]
    lines += [
        "",
        "Try:",
        f"  curl{auth} '{base}/api/v1/kpis/energy/balance?area=district:Altstadt'",
        f"  curl '{base}/api/v1/kpis/environment/air_quality'",
        f"  curl{auth} '{base}/api/v1/kpis/water/night_flow'",
        f"  curl{auth} '{base}/v1.1/Things?$filter=properties/kind eq %27vehicle%27"
        "&$expand=Locations'",
    ]
    if mqtt_url:
        port = mqtt_url.rsplit(":", 1)[-1]
        key = ' -u demo -P "$KEY"' if key_file and keyed_mqtt else ""
        lines += [
            f"  mosquitto_sub -p {port}{key} -t 'v1.1/Observations' -v    (every new Observation)",
        ]
    lines += ["", "Stop with Ctrl-C."]
    return "\n".join(lines)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _wait_ready(base: str, server: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
