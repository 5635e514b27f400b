"""Time-bucketed aggregates of one Datastream's numeric Observations, as one statement.

Buckets are ``size`` microseconds long and counted from the interval's start, on
phenomenonTime (its start). The range condition on ``(datastream_id,
phenomenon_time_start)`` is the one the Observations index (and on PostgreSQL the
monthly partitions) are keyed on, so only the interval's rows are read. Only numeric
results (integer or floating point) take part; the others are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from citytwin.model import Registry
from citytwin.model.values import RESULT_FLOAT, RESULT_INT
from citytwin.planner.dialect import AnySelect, Dialect, Sql, param
from citytwin.planner.tables import Tables

FUNCTIONS = ("avg", "min", "max", "sum", "count", "first", "last")


@dataclass(frozen=True)
class Aggregation:
    datastream: int
    start: datetime
    end: datetime  # exclusive
    size: int  # bucket length in microseconds
    functions: tuple[str, ...]  # of FUNCTIONS, in the order asked


def statement(registry: Registry, tables: Tables, dialect: Dialect, agg: Aggregation) -> AnySelect:
    """Rows of ``bucket`` (the bucket's start as the backend stores times) and one column
    per function, in time order; empty buckets have no row."""
    obs = tables.of(registry.type("Observation"))
    time = obs.c.phenomenon_time_start
    value = obs.c.result_number
    bucket = dialect.time_bucket(time, agg.start, agg.size)
    cols: list[Sql] = [bucket.label("bucket"), value.label("v")]
    order = [time.asc(), obs.c.id.asc()]
    if "first" in agg.functions:
        cols.append(sa.func.first_value(value).over(partition_by=bucket, order_by=order).label("f"))
    if "last" in agg.functions:
        whole = (None, None)  # the bucket's last row, not the current one
        last = sa.func.last_value(value).over(partition_by=bucket, order_by=order, rows=whole)
        cols.append(last.label("l"))
    rows = (
        sa.select(*cols)
        .where(
            obs.c.datastream_id == param(agg.datastream),
            time >= dialect.time_param(agg.start),
            time < dialect.time_param(agg.end),
            obs.c.result_type.in_([RESULT_INT, RESULT_FLOAT]),
        )
        .subquery("numeric_results")
    )
    return (
        sa.select(rows.c.bucket, *_aggregates(rows, agg.functions))
        .group_by(rows.c.bucket)
        .order_by(rows.c.bucket)
    )


def _aggregates(rows: sa.Subquery, functions: Sequence[str]) -> list[Sql]:
    v = rows.c.v
    by_name: dict[str, Sql] = {
        "avg": sa.func.avg(v),
        "min": sa.func.min(v),
        "max": sa.func.max(v),
        "sum": sa.func.sum(v),
        "count": sa.func.count(v),
    }
    if "first" in functions:
        by_name["first"] = sa.func.min(rows.c.f)  # the same in every row of a bucket
    if "last" in functions:
        by_name["last"] = sa.func.min(rows.c.l)
    return [by_name[name].label(name) for name in functions]
