"""The planner alone: exact SQL and bound parameters for the SQLite dialect."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from citytwin.errors import QueryTypeError
from citytwin.planner.postgres import PostgresDialect
from citytwin.planner.reads import ReadPlanner
from citytwin.planner.sqlite import SqliteDialect
from citytwin.planner.tables import Tables
from citytwin.plugins.manager import build_registry, plugin_manager
from citytwin.query.parser import parse_query
from citytwin.query.path import parse_path

NOW = datetime(2024, 1, 1, tzinfo=UTC)
MICROS_2024 = 1704067200000000
REGISTRY = build_registry(plugin_manager(entry_points=False))
DIALECT = SqliteDialect()
TABLES = Tables(REGISTRY, DIALECT.column_types)


def plan(path: str, **options: str) -> tuple[str, list[Any]]:
    planner = ReadPlanner(REGISTRY, TABLES, DIALECT, default_top=100, max_top=1000, now=NOW)
    target = planner.resolve(parse_path(path, REGISTRY))
    query = [("$select", "id")] + [(f"${k}", v) for k, v in options.items()]
    page = planner.page(target, parse_query(query))
    sql, params = DIALECT.compile(page.statement)
    return re.sub(r"\s+", " ", sql).strip(), params


def where(path: str, **options: str) -> tuple[str, list[Any]]:
    """Only the WHERE clause and its parameters (the page's LIMIT/OFFSET dropped)."""
    sql, params = plan(path, **options)
    m = re.search(r" WHERE (.*) ORDER BY ", sql)
    assert m is not None, sql
    return m.group(1), params[:-2]


def test_collection_page_shape() -> None:
    sql, params = plan("Things")
    assert sql == ("SELECT th1.id AS id FROM things AS th1 ORDER BY th1.id ASC LIMIT ? OFFSET ?")
    assert params == [101, 0]


def test_navigation_by_id_uses_the_foreign_key() -> None:
    assert where("Datastreams(3)/Observations") == ("ob2.datastream_id = ?", [3])


def test_to_one_relation_path_is_an_uncorrelated_semijoin() -> None:
    assert where("Observations", filter="Datastream/Thing/name eq 'x'") == (
        "ob1.datastream_id IN (SELECT da2.id FROM datastreams AS da2 WHERE da2.thing_id IN "
        "(SELECT th3.id FROM things AS th3 WHERE th3.name = ?))",
        ["x"],
    )


def test_to_many_relation_eq_null_means_no_related_entity() -> None:
    sql, params = where("Things", filter="Datastreams/id eq null")
    assert sql == (
        "th1.id IN (SELECT da2.thing_id FROM datastreams AS da2 WHERE da2.id IS NULL) "
        "OR (th1.id NOT IN (SELECT da2.thing_id FROM datastreams AS da2))"
    )
    assert params == []


def test_link_table_relation() -> None:
    assert where("Things", filter="Locations/name eq 'Markt'") == (
        "th1.id IN (SELECT lk3.thing_id FROM thing_locations AS lk3 JOIN locations AS lo2 "
        "ON lo2.id = lk3.location_id WHERE lo2.name = ?)",
        ["Markt"],
    )


def test_condition_mixing_relation_and_own_property_is_correlated_exists() -> None:
    sql, params = where("Things", filter="Datastreams/name eq name")
    assert sql == (
        "EXISTS (SELECT 1 FROM datastreams AS da2 WHERE da2.thing_id = th1.id "
        "AND da2.name = th1.name)"
    )
    assert params == []


def test_interval_lt_instant() -> None:
    assert where("Observations", filter="phenomenonTime lt 2024-01-01T00:00:00Z") == (
        "ob1.phenomenon_time_end <= ? AND ob1.phenomenon_time_start < ?",
        [MICROS_2024, MICROS_2024],
    )


def test_literal_on_the_left_flips_the_operator() -> None:
    assert where("Observations", filter="2024-01-01T00:00:00Z lt phenomenonTime") == (
        "ob1.phenomenon_time_start > ?",
        [MICROS_2024],
    )


def test_now_minus_duration_is_folded_into_one_parameter() -> None:
    assert where("Observations", filter="resultTime gt now() sub duration'P1D'") == (
        "ob1.result_time > ?",
        [MICROS_2024 - 86400 * 10**6],
    )


def test_ne_on_a_nullable_column_is_null_safe() -> None:
    assert where("Observations", filter="resultTime ne 2024-01-01T00:00:00Z") == (
        "ob1.result_time IS NOT ?",
        [MICROS_2024],
    )


def test_not_of_a_nullable_comparison_is_two_valued() -> None:
    assert where("Observations", filter="not (resultTime gt 2024-01-01T00:00:00Z)") == (
        "coalesce(ob1.result_time > ?, 0) = 0",
        [MICROS_2024],
    )


def test_result_compared_with_number_uses_the_numeric_column() -> None:
    assert where("Observations", filter="result gt 3") == ("ob1.result_number > ?", [3])


def test_json_number_comparison_only_matches_json_numbers() -> None:
    assert where("Things", filter="properties/floor ge 2") == (
        "CASE WHEN (json_type(th1.properties, ?) = ? OR json_type(th1.properties, ?) = ?) "
        "THEN json_extract(th1.properties, ?) ELSE NULL END >= ?",
        ["$.floor", "integer", "$.floor", "real", "$.floor", 2],
    )


def test_json_ne_is_null_safe() -> None:
    sql, _ = where("Things", filter="properties/floor ne 2")
    assert sql.endswith("ELSE NULL END IS NOT ?")


def test_json_path_keys_are_bound_not_inlined() -> None:
    sql, params = where("Things", filter="properties/drop-table eq 1")
    assert "drop" not in sql
    assert params[0] == '$."drop-table"'


def test_spatial_predicate_gets_rtree_prefilter() -> None:
    sql, params = where(
        "Locations", filter="st_within(location, geography'POLYGON((0 0,2 0,2 1,0 1,0 0))')"
    )
    assert sql == (
        "lo1.id IN (SELECT locations_location_rtree.id FROM locations_location_rtree "
        "WHERE locations_location_rtree.minx <= ? AND locations_location_rtree.maxx >= ? "
        "AND locations_location_rtree.miny <= ? AND locations_location_rtree.maxy >= ?) "
        "AND ct_st_within(lo1.location_geom, ?) = 1"
    )
    assert params[:4] == [2.0, 0.0, 1.0, 0.0]
    assert isinstance(params[4], bytes)


def test_disjoint_has_no_prefilter() -> None:
    sql, _ = where("Locations", filter="st_disjoint(location, geography'POINT(1 1)')")
    assert sql == "ct_st_disjoint(lo1.location_geom, ?) = 1"


def test_distance_below_a_bound_uses_an_expanded_box() -> None:
    sql, params = where("Locations", filter="geo.distance(location, geography'POINT(8 51)') lt 0.5")
    assert "locations_location_rtree" in sql
    assert params[:4] == [8.5, 7.5, 51.5, 50.5]


def test_orderby_time_is_keyset_ready() -> None:
    sql, _ = plan("Observations", orderby="phenomenonTime desc")
    assert sql == (
        "SELECT ob1.id AS id, ob1.phenomenon_time_start AS _k0, ob1.phenomenon_time_end AS _k1 "
        "FROM observations AS ob1 ORDER BY ob1.phenomenon_time_start DESC, "
        "ob1.phenomenon_time_end DESC, ob1.id ASC LIMIT ? OFFSET ?"
    )


def test_skiptoken_continues_after_the_last_key() -> None:
    from citytwin.planner.reads import encode_skiptoken

    token = encode_skiptoken([5])
    sql, params = where("Things", skiptoken=token)
    assert (sql, params) == ("th1.id > ?", [5])


def test_orderby_through_to_one_relation_is_a_scalar_subquery_and_not_keyset() -> None:
    sql, _ = plan("Observations", orderby="Datastream/name")
    assert "_k0" not in sql
    assert "(SELECT da2.name FROM datastreams AS da2 WHERE da2.id = ob1.datastream_id) ASC" in sql


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        ("name gt 5", "cannot compare a string with a number"),
        ("year(name) eq 2024", "year() needs a date-time, got a string"),
        ("nmae eq 'x'", "Thing has no property or navigation property 'nmae'"),
        ("Datastreams eq 1", "navigation property"),
        ("substringof('x')", "substringof() takes 2 argument(s), got 1"),
        ("frobnicate(name)", "unknown function frobnicate()"),
        ("name", "expected a condition"),
        ("location eq 1", "cannot compare"),
        ("name eq null or name lt null", "null can only be compared with eq or ne"),
        ("st_relate(location, location, 'nonsense')", "DE-9IM"),
    ],
)
def test_type_errors_name_the_problem(flt: str, message: str) -> None:
    path = "Locations" if "location" in flt else "Things"
    with pytest.raises(QueryTypeError) as err:
        plan(path, filter=flt)
    assert message in err.value.message
    assert err.value.position is not None


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_template_run_many_times_binds_each_set_as_compiling_it_alone_would(
    dialect: str,
) -> None:
    from citytwin.planner.postgres import PostgresDialect

    d = SqliteDialect() if dialect == "sqlite" else PostgresDialect()
    t = TABLES.entity["Datastream"]
    s, i = sa.bindparam("s"), sa.bindparam("i")
    template = (
        sa.update(t)
        .where(t.c.id == sa.bindparam("ds"))
        .values(
            observation_count=t.c.observation_count + sa.bindparam("n"),
            last_observation_id=sa.case((t.c.last_observation_start < s, i), else_=i + 1),
        )
    )
    sets = [{"ds": k, "n": k * 2, "s": f"t{k}", "i": k * 3} for k in range(5)]
    sql, args = d.compile_many(template, sets)
    assert [(sql, a) for a in args] == [d.compile(template, p) for p in sets]
    in_list = sa.select(t.c.id).where(t.c.id.in_(sa.bindparam("ids", expanding=True)))
    sets = [{"ids": [1, 2]}, {"ids": [3, 4, 5]}]
    _, args = d.compile_many(in_list, sets)
    assert args == [d.compile(in_list, p)[1] for p in sets]  # each IN list expanded


def test_latest_observation_of_many_datastreams_is_probed_per_datastream_on_postgresql() -> None:
    latest = [("$expand", "Observations($top=1;$orderby=phenomenonTime desc;$select=result)")]
    shapes = {}
    for dialect in (DIALECT, PostgresDialect()):
        tables = Tables(REGISTRY, dialect.column_types)
        planner = ReadPlanner(REGISTRY, tables, dialect, default_top=100, max_top=1000, now=NOW)
        expand = parse_query(latest).expand[0]
        found = planner.expand(REGISTRY.type("Datastream"), expand, [1, 2])
        sql, _ = dialect.compile(found.statement)
        shapes[dialect.name] = re.sub(r"\s+", " ", sql)
    probe = (
        "ob1.datastream_id = da2.id AND ob1.id = da2.last_observation_id"
        " AND ob1.phenomenon_time_start = da2.last_observation_start"
    )
    # SQLite has no LATERAL; its planner probes the maintained reference by itself
    assert "FROM datastreams AS da2 JOIN observations AS ob1 ON " + probe in shapes["sqlite"]
    assert "LATERAL" not in shapes["sqlite"]
    # PostgreSQL would hash-join all partitions of a large table: one probe per Datastream
    pg = shapes["postgresql"]
    assert "FROM datastreams AS da2 JOIN LATERAL (SELECT ob1.id AS id" in pg
    assert "FROM observations AS ob1 WHERE " + probe + " LIMIT " in pg
