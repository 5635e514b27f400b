from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt.support import free_port, mosquitto
from tests.support import REQUIRE_ENV, Client, make_client


@pytest.fixture
def broker_port() -> int:
    return free_port()


@pytest.fixture
def embedded(db_url: str, tmp_path: Path, broker_port: int) -> Iterator[Client]:
    """The application with its embedded broker on a free port."""
    c = make_client(
        tmp_path,
        db=db_url,
        mqtt="embedded",
        mqtt_port=broker_port,
        mqtt_ws_port=0,
        service_root_url="http://testserver",
    )
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def mosquitto_port(tmp_path: Path) -> Iterator[int]:
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        message = "mosquitto is not installed; apt-get install mosquitto to run these tests"
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(message)
        pytest.skip(message)
    with mosquitto(tmp_path) as port:
        yield port
