"""docs/batch.md: every example runs as written against a real server, and the answers
the page shows are the ones the server gives."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from tests.servers import run_steps, running_server

DOC = Path(__file__).resolve().parent.parent / "docs" / "batch.md"


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.S)


def _run_examples(tmp_path: Path) -> list[str]:
    serve, *steps = _blocks("sh")
    assert serve.strip() == "CITYTWIN_FILTERED_DELETE=true citytwin serve --port 8080"
    (tmp_path / "citytwin.toml").write_text("filtered_delete = true\n")  # as the variable does
    with running_server(tmp_path, f"sqlite:///{tmp_path}/data/citytwin.db") as server:
        return run_steps(steps, server.port, tmp_path)


def _by_id(output: str) -> dict[str, Any]:
    return {r["id"]: r for r in json.loads(output)["responses"]}


def test_batch_page_examples(tmp_path: Path) -> None:
    assert shutil.which("curl"), "the examples use curl"
    setup, failure, multipart, purge = _run_examples(tmp_path)

    out = _by_id(setup)
    assert [out[k]["status"] for k in ("tank", "level", "r1", "r2")] == [201] * 4
    assert out["check"]["body"] == {
        "name": "Fill level Eichholz",
        "phenomenonTime": "2025-06-01T08:00:00Z/2025-06-01T09:00:00Z",
        "Observations": [{"result": 81.5}, {"result": 79.0}],
    }

    shown = _by_id(_blocks("json")[1].replace('"...": "..."', '"x": 0'))
    out = _by_id(failure)
    for k in ("a", "b"):
        assert out[k]["status"] == shown[k]["status"]
        assert out[k]["body"] == shown[k]["body"]
    assert out["c"]["status"] == 201

    assert "HTTP/1.1 200 OK" in multipart
    assert '{"value":[{"name":"Water tank Eichholz"}]}' in multipart
    assert "Location: http://127.0.0.1:" in multipart
    assert multipart.count("HTTP/1.1 201 Created") == 1
    assert "Content-ID: 2\n\nHTTP/1.1 200 OK" in multipart  # (text mode: CRLF read as LF)
    assert "calibrated June 2025" in multipart

    assert purge == '{"deleted":1}{"deleted":1}'  # as the page shows, one line each
