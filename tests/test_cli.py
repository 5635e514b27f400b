"""The citytwin command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from citytwin import __version__
from citytwin.cli import main

CITYTWIN = str(Path(sys.executable).parent / "citytwin")


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"citytwin, version {__version__}"


def test_config_show_lists_values_sources_and_help(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("port = 9001\n")
    result = CliRunner().invoke(
        main, ["--config", str(cfg), "config", "show"], env={"CITYTWIN_HOST": "0.0.0.0"}
    )
    assert result.exit_code == 0, result.output
    assert f"port = 9001    [{cfg}]" in result.output
    assert "host = 0.0.0.0    [CITYTWIN_HOST]" in result.output
    assert "max_page_size = 1000    [default]" in result.output
    assert "Largest page served" in result.output


def test_config_show_reports_bad_settings_without_a_traceback() -> None:
    result = CliRunner().invoke(main, ["config", "show"], env={"CITYTWIN_PORT": "x"})
    assert result.exit_code == 2
    assert "CITYTWIN_PORT" in result.output
    assert "Traceback" not in result.output


def test_db_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    first = CliRunner().invoke(main, ["db", "migrate", "--db", url])
    assert first.exit_code == 0, first.output
    assert "applied 0001_sensing_core.sql" in first.output
    assert "applied 0002_datastream_summary.sql" in first.output
    assert "applied 0003_multidatastreams.sql" in first.output
    assert "applied 0004_tasking.sql" in first.output
    assert "applied 0005_domain_packages.sql" in first.output
    assert "applied 0006_access.sql" in first.output
    assert "applied 0007_audit.sql" in first.output
    second = CliRunner().invoke(main, ["db", "migrate", "--db", url])
    assert "schema version 7 (up to date)" in second.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_starts_with_one_command_and_settings_from_file_and_env(tmp_path: Path) -> None:
    port = _free_port()
    (tmp_path / "citytwin.toml").write_text(
        f"port = {port}\ndefault_page_size = 5\nmax_page_size = 7\n"
    )
    env = {**os.environ, "CITYTWIN_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [CITYTWIN, "serve", "--mqtt", "off"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/v1.1/Things?$top=100", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert resp.status_code == 200
        assert resp.json() == {"value": []}
        assert (tmp_path / "data" / "citytwin.db").exists()
        # access control is on: the first start made an admin key, for its owner only
        key_file = tmp_path / "data" / "admin-key.txt"
        assert key_file.stat().st_mode & 0o777 == 0o600
        admin = {"Authorization": f"Bearer {key_file.read_text().strip()}"}
        thing = {"name": "T", "description": "d"}
        url = f"http://127.0.0.1:{port}/v1.1/Things"
        assert httpx.post(url, json=thing).status_code == 403
        for i in range(9):
            httpx.post(url, json={**thing, "name": f"T{i}"}, headers=admin).raise_for_status()
        page = httpx.get(f"{url}?$top=100", headers=admin).json()
        assert len(page["value"]) == 7  # max_page_size from the settings file
        assert page["@iot.nextLink"].startswith(f"http://127.0.0.1:{port}/v1.1/Things?")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout:
            proc.stdout.close()
