"""Schemathesis against a real ``citytwin serve``, driven by the service's own OpenAPI
description: no answer is a server error, and every answer matches the description.

Each backend gets a server on a store seeded with a few entities of every type; the
path ids are drawn mostly from the seeded ones, so that GETs, PATCHes and PUTs reach
stored entities. DELETEs run in a second pass, after everything else, so that they do
not take the seeded entities away from the other operations. The run is bounded by
the number of examples per operation (see docs/openapi.md to run it by hand, longer).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from citytwin.openapi import OPENAPI_PATH
from tests.servers import StaServer, running_server
from tests.support import Databases, datastream, location, point, thing

SEEDED = 4  # Things, each with its own Location, Datastream, Sensor, ObservedProperty
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
# longer runs by hand: CITYTWIN_FUZZ_EXAMPLES=50 CITYTWIN_FUZZ_PHASES=examples,coverage,...
MAX_EXAMPLES = int(os.environ.get("CITYTWIN_FUZZ_EXAMPLES", "8"))
PHASES = os.environ.get("CITYTWIN_FUZZ_PHASES", "examples,fuzzing")
SEED = int(os.environ.get("CITYTWIN_FUZZ_SEED", "20261122"))
RUN_TIMEOUT = 300 * max(1, MAX_EXAMPLES // 8)  # seconds for one pass; 8 take about one minute


def seed(root: str) -> None:
    with httpx.Client(base_url=root, timeout=30) as http:
        for i in range(SEEDED):
            body = thing(
                f"Thing {i}",
                locations=[location(f"Location {i}")],
                datastreams=[datastream(f"Datastream {i}")],
                properties={"n": i, "owner": "city"},
            )
            body["Datastreams"][0]["Observations"] = [
                {
                    "result": 20.5 + i,
                    "phenomenonTime": f"2024-01-0{i + 1}T00:00:00Z",
                    "FeatureOfInterest": {
                        "name": f"Feature {i}",
                        "description": "where it was observed",
                        "encodingType": "application/geo+json",
                        "feature": point(8.06 + i / 100, 51.4),
                    },
                },
                {"result": "text", "resultTime": "2024-01-01T00:00:00Z"},
            ]
            resp = http.post("/Things", json=body)
            assert resp.status_code == 201, resp.text


def config(tmp: Path) -> Path:
    path = tmp / "schemathesis.toml"
    ids = ", ".join(str(i) for i in range(1, SEEDED + 1))
    path.write_text(
        f"""
[dictionaries.ids]
values = [{ids}]

[parameters]
"path.id" = {{ dictionary = "ids", probability = 0.8 }}
"""
    )
    return path


def run_schemathesis(server: StaServer, tmp: Path, *which: str) -> None:
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config(tmp)),
        "run",
        f"{server.base_url}{OPENAPI_PATH}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        PHASES,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--no-color",
        *which,
    ]
    proc = subprocess.run(
        cmd,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, (
        f"schemathesis found problems ({' '.join(which)}):\n{proc.stdout}\n{proc.stderr}"
        f"\n--- server output ---\n{server.output()}"
    )
    assert "Tested:" in proc.stdout, proc.stdout
    assert " passed" in proc.stdout, proc.stdout


@pytest.fixture
def server(backend: str, databases: Databases, tmp_path: Path) -> Iterator[tuple[StaServer, Path]]:
    url = databases.create(backend, tmp_path)
    try:
        with running_server(tmp_path, url) as srv:
            seed(srv.root)
            yield srv, tmp_path
    finally:
        databases.drop(url)


def count(root: str, entity_set: str) -> int:
    resp = httpx.get(f"{root}/{entity_set}", params={"$count": "true", "$top": "0"}, timeout=30)
    assert resp.status_code == 200, resp.text
    return int(resp.json()["@iot.count"])


def test_schemathesis_finds_no_server_error(server: tuple[StaServer, Path]) -> None:
    srv, tmp = server
    seeded = count(srv.root, "Observations")
    run_schemathesis(srv, tmp, "--exclude-method", "DELETE")
    # generated requests got past validation into the store, not only 4xx answers
    assert count(srv.root, "Observations") > seeded
    run_schemathesis(srv, tmp, "--include-method", "DELETE")
    assert "Traceback" not in srv.output()
