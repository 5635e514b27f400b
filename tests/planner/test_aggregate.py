"""The aggregation planner alone: the exact SQL of time buckets on both dialects."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from citytwin.planner.aggregate import Aggregation, statement
from citytwin.planner.dialect import Dialect
from citytwin.planner.postgres import PostgresDialect
from citytwin.planner.sqlite import SqliteDialect
from citytwin.planner.tables import Tables
from citytwin.plugins.manager import build_registry, plugin_manager

REGISTRY = build_registry(plugin_manager(entry_points=False))
MARCH = datetime(2024, 3, 1, tzinfo=UTC)
APRIL = datetime(2024, 4, 1, tzinfo=UTC)
HOUR = 3_600_000_000
MARCH_MICROS = 1709251200000000
APRIL_MICROS = 1711929600000000


def sql(dialect: Dialect, *functions: str) -> tuple[str, list[Any]]:
    tables = Tables(REGISTRY, dialect.column_types)
    agg = Aggregation(7, MARCH, APRIL, HOUR, functions)
    text, params = dialect.compile(statement(REGISTRY, tables, dialect, agg))
    return re.sub(r"\s+", " ", text).strip(), params


def test_sqlite_buckets_by_integer_arithmetic_on_the_indexed_range() -> None:
    text, params = sql(SqliteDialect(), "avg", "count")
    assert text == (
        "SELECT numeric_results.bucket, avg(numeric_results.v) AS avg, "
        "count(numeric_results.v) AS count FROM (SELECT ? + ((observations.phenomenon_time_start"
        " - ?) / ?) * ? AS bucket, observations.result_number AS v FROM observations "
        "WHERE observations.datastream_id = ? AND observations.phenomenon_time_start >= ? "
        "AND observations.phenomenon_time_start < ? AND observations.result_type IN (?, ?)) "
        "AS numeric_results GROUP BY numeric_results.bucket ORDER BY numeric_results.bucket"
    )
    assert params == [MARCH_MICROS, MARCH_MICROS, HOUR, HOUR, 7, MARCH_MICROS, APRIL_MICROS, 1, 2]


def test_postgres_buckets_with_date_bin_and_bound_parameters() -> None:
    text, params = sql(PostgresDialect(), "max")
    assert text.startswith(
        "SELECT numeric_results.bucket, max(numeric_results.v) AS max FROM (SELECT "
        "date_bin($1::INTERVAL, observations.phenomenon_time_start, "
        "$2::TIMESTAMP WITH TIME ZONE) AS bucket"
    )
    assert "observations.phenomenon_time_start >= $4::TIMESTAMP WITH TIME ZONE" in text
    assert params == [timedelta(hours=1), MARCH, 7, MARCH, APRIL, 1, 2]


def test_first_and_last_are_windows_ordered_by_time_then_id() -> None:
    text, _ = sql(SqliteDialect(), "first", "last")
    order = "ORDER BY observations.phenomenon_time_start ASC, observations.id ASC"
    assert "first_value(observations.result_number) OVER (PARTITION BY" in text
    assert text.count(order) == 2
    assert "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS l" in text
    assert "min(numeric_results.f) AS first, min(numeric_results.l) AS last" in text


def test_without_first_or_last_there_is_no_window() -> None:
    text, _ = sql(PostgresDialect(), "avg", "min", "max", "sum", "count")
    assert " OVER " not in text
