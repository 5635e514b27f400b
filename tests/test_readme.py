"""The README's first-five-minutes walk-through, run as written against a real server."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.servers import run_steps

README = Path(__file__).resolve().parent.parent / "README.md"
CITYTWIN = str(Path(sys.executable).parent / "citytwin")


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _shell_blocks(section: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def test_readme_starts_with_the_two_setup_commands() -> None:
    first_block = _shell_blocks(README.read_text())[0]
    lines = [ln.split("#")[0].strip() for ln in first_block.strip().splitlines()]
    assert lines == ["make demo", "make test"]


def test_first_five_minutes_walk_through(tmp_path: Path) -> None:
    assert shutil.which("curl"), "the walk-through uses curl"
    blocks = _shell_blocks(_section(README.read_text(), "First five minutes"))
    serve, *steps = blocks
    assert serve.strip().endswith("citytwin serve --port 8080")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYTWIN_")}
    proc = subprocess.Popen(
        [CITYTWIN, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).raise_for_status()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        outputs = run_steps(steps, port, tmp_path)
    finally:
        proc.terminate()
        proc.wait(timeout=20)

    created = json.loads(outputs[0])
    assert created["name"] == "Air quality Neumarkt"
    decoder = json.JSONDecoder()
    things_doc, end = decoder.raw_decode(outputs[2])
    filtered, _ = decoder.raw_decode(outputs[2][end:].lstrip())
    things = things_doc["value"]
    latest = things[0]["Datastreams"][0]["Observations"]
    assert [o["result"] for o in latest] == [31.2, 18.0]
    assert filtered["@iot.count"] == 2
    assert sorted(o["result"] for o in filtered["value"]) == [18.0, 31.2]
