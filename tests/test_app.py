"""The application's own life in its process."""

from __future__ import annotations

import gc
from pathlib import Path

from citytwin.http.app import create_app
from citytwin.settings import load_settings
from tests.support import Client


def test_a_server_process_settles_its_heap_while_it_serves_and_restores_it(
    tmp_path: Path,
) -> None:
    before = gc.get_threshold()
    settings = load_settings({"data_dir": str(tmp_path), "mqtt": "off"}, environ={})
    client = Client(create_app(settings, server_process=True))
    try:
        assert client.ok("GET", "/health")["status"] == "ok"
        assert gc.get_threshold() == (50_000, 50, 100)
        assert gc.get_freeze_count() > 0  # what start-up made is left out of collections
    finally:
        client.close()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_an_app_sharing_its_process_leaves_the_collector_alone(tmp_path: Path) -> None:
    before = gc.get_threshold()
    settings = load_settings({"data_dir": str(tmp_path), "mqtt": "off"}, environ={})
    client = Client(create_app(settings))
    try:
        assert client.ok("GET", "/health")["status"] == "ok"
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0
    finally:
        client.close()
