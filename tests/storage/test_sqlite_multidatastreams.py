"""The SQLite migration to MultiDatastreams keeps the Observations stored before it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from citytwin.plugins.manager import build_registry, plugin_manager
from citytwin.storage.sqlite.store import SqliteStore, _split_sql

REGISTRY = build_registry(plugin_manager(entry_points=False))


def test_observations_survive_the_rebuild_and_ids_are_not_reused(tmp_path: Path) -> None:
    store = SqliteStore(f"sqlite:///{tmp_path}/old.db", REGISTRY)
    before = [m for m in store.migrations() if m[0] < 3]
    conn = sqlite3.connect(store.path)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(
        "CREATE TABLE schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    for version, name, sql in before:
        for statement in _split_sql(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 'x')", (version, name))
    conn.executescript(
        """
        INSERT INTO things (id, name, description) VALUES (1, 't', 'd');
        INSERT INTO sensors (id, name, description, encoding_type, metadata)
            VALUES (1, 's', 'd', 'text/html', '"m"');
        INSERT INTO observed_properties (id, name, definition, description)
            VALUES (1, 'o', 'd', 'd');
        INSERT INTO datastreams (id, name, description, unit_of_measurement,
            observation_type, thing_id, sensor_id, observed_property_id)
            VALUES (1, 'ds', 'd', '{}', 'x', 1, 1, 1);
        INSERT INTO features (id, name, description, encoding_type, feature)
            VALUES (1, 'f', 'd', 'text/plain', '"x"');
        INSERT INTO observations (id, phenomenon_time_start, phenomenon_time_end,
            result_type, result_number, datastream_id, feature_id)
            VALUES (7, 10, 20, 1, 42.0, 1, 1), (9, 30, 30, 1, 43.0, 1, 1);
        DELETE FROM observations WHERE id = 9;
        """
    )
    conn.commit()
    conn.close()

    assert asyncio.run(store.migrate()) == [
        "0003_multidatastreams.sql",
        "0004_tasking.sql",
        "0005_domain_packages.sql",
        "0006_access.sql",
        "0007_audit.sql",
    ]
    conn = sqlite3.connect(store.path)
    rows = conn.execute(
        "SELECT id, phenomenon_time_start, result_number, datastream_id, multi_datastream_id "
        "FROM observations"
    ).fetchall()
    assert rows == [(7, 10, 42.0, 1, None)]
    conn.execute(
        "INSERT INTO observations (phenomenon_time_start, phenomenon_time_end, result_type, "
        "datastream_id, feature_id) VALUES (1, 1, 0, 1, 1)"
    )
    new_id = conn.execute("SELECT max(id) FROM observations").fetchone()[0]
    assert new_id == 10  # after the deleted 9, as before the rebuild
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(observations)")}
    assert {"observations_datastream_time", "observations_multi_datastream_time"} <= indexes
    conn.close()
