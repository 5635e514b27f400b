"""`citytwin orgs` and `citytwin keys`: keys are printed once and stored as digests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from citytwin.access.keys import hash_key
from citytwin.cli import main


def test_organisations_and_keys_are_managed_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/k.db"
    run = CliRunner().invoke
    assert (
        "created organisation 1: city" in run(main, ["orgs", "create", "city", "--db", url]).output
    )
    again = run(main, ["orgs", "create", "city", "--db", url])
    assert again.exit_code == 1
    assert "already" in again.output
    assert "1\tcity" in run(main, ["orgs", "list", "--db", url]).output
    made = run(main, ["keys", "create", "--org", "city", "--role", "reader", "--db", url])
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    assert key.startswith("ct_")
    stored = sqlite3.connect(f"{tmp_path}/k.db").execute("SELECT key_hash FROM api_keys").fetchall()
    assert stored == [(hash_key(key),)]  # the digest, never the key
    missing = run(main, ["keys", "create", "--role", "operator", "--db", url])
    assert missing.exit_code == 1
    assert "needs an organisation" in missing.output
    assert "1\treader\tcity\tactive" in run(main, ["keys", "list", "--db", url]).output
    assert run(main, ["keys", "revoke", "1", "--db", url]).exit_code == 0
    assert "1\treader\tcity\trevoked" in run(main, ["keys", "list", "--db", url]).output
    assert run(main, ["keys", "revoke", "1", "--db", url]).exit_code == 1


def test_the_first_start_makes_an_admin_key_only_its_owner_reads(tmp_path: Path) -> None:
    from tests.support import make_client

    client = make_client(tmp_path, db=f"sqlite:///{tmp_path}/a.db", auth="on")
    try:
        path = tmp_path / "admin-key.txt"
        assert path.stat().st_mode & 0o777 == 0o600
        key = path.read_text().strip()
        headers = {"Authorization": f"Bearer {key}"}
        assert client.post("Things", {"name": "a", "description": "b"}).status_code == 403
        resp = client.post("Things", {"name": "a", "description": "b"}, headers=headers)
        assert resp.status_code == 201
        assert client.get("Things").json()["value"] == []  # belongs to no organisation
    finally:
        client.close()
