"""Times, durations, geometry and result encoding."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from citytwin.model.values import (
    Duration,
    Interval,
    add_months,
    decode_result,
    encode_result,
    format_instant,
    from_micros,
    geometry_from_geojson,
    geometry_from_text,
    parse_duration,
    parse_instant,
    parse_interval,
    to_micros,
)

T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-02T03:04:05Z",
        "2024-01-02T03:04:05z",
        "2024-01-02t03:04:05Z",
        "2024-01-02T04:04:05+01:00",
        "2024-01-02T04:04:05+0100",
        "2024-01-02T04:04:05+01",
        "2024-01-02T04:04:05 01:00",
        "2024-01-02T02:04:05-01:00",
        "2024-01-02T03:04:05",
        "2024-01-02 03:04:05",
        "  2024-01-02T03:04:05.000Z ",
    ],
)
def test_tolerant_instants_are_the_same_utc_time(text: str) -> None:
    assert parse_instant(text) == T0


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "2024-01-01T25:00:00Z", ""])
def test_bad_instants_name_the_input(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_instant(text)


def test_format_instant_precision() -> None:
    assert format_instant(T0) == "2024-01-02T03:04:05Z"
    assert format_instant(T0.replace(microsecond=250000)) == "2024-01-02T03:04:05.250Z"
    assert format_instant(T0.replace(microsecond=7)) == "2024-01-02T03:04:05.000007Z"


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    )
)
def test_micros_and_text_round_trip(dt: datetime) -> None:
    assert from_micros(to_micros(dt)) == dt
    assert parse_instant(format_instant(dt)) == dt


def test_intervals() -> None:
    iv = parse_interval("2024-01-01T00:00:00Z/2024-01-02T00:00:00Z", allow_instant=False)
    assert iv == Interval(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC))
    assert parse_interval("2024-01-01T00:00:00Z/P1D", allow_instant=False) == iv
    assert parse_interval("P1D/2024-01-02T00:00:00Z", allow_instant=False) == iv
    assert parse_interval("2024-01-01T00:00:00Z", allow_instant=True).is_instant
    with pytest.raises(ValueError, match="not an ISO 8601 interval"):
        parse_interval("2024-01-01T00:00:00Z", allow_instant=False)
    with pytest.raises(ValueError, match="ends before it starts"):
        parse_interval("2024-01-02T00:00:00Z/2024-01-01T00:00:00Z", allow_instant=False)
    assert iv.format() == "2024-01-01T00:00:00Z/2024-01-02T00:00:00Z"


def test_durations_and_month_arithmetic() -> None:
    assert parse_duration("PT1H30M") == Duration(0, 5400 * 10**6)
    assert parse_duration("P1Y2M") == Duration(14, 0)
    assert parse_duration("-P1D") == Duration(0, -86400 * 10**6)
    with pytest.raises(ValueError, match="duration"):
        parse_duration("P1X")
    jan31 = datetime(2024, 1, 31, tzinfo=UTC)
    assert add_months(jan31, 1) == datetime(2024, 2, 29, tzinfo=UTC)
    assert add_months(jan31, -2) == datetime(2023, 11, 30, tzinfo=UTC)
    assert Duration(1, 3600 * 10**6).add_to(jan31) == datetime(2024, 2, 29, 1, tzinfo=UTC)


def test_geojson_geometry_checks() -> None:
    assert geometry_from_geojson({"type": "Point", "coordinates": [8, 51]}).equals(
        shapely.Point(8, 51)
    )
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Point", "coordinates": [1, 2]},
    }
    assert geometry_from_geojson(feature).equals(shapely.Point(1, 2))
    with pytest.raises(ValueError, match="WGS 84"):
        geometry_from_geojson({"type": "Point", "coordinates": [51, 100]})
    with pytest.raises(ValueError, match="Self-intersection"):
        geometry_from_geojson(
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
        )
    with pytest.raises(ValueError, match="unknown GeoJSON type"):
        geometry_from_geojson({"type": "Circle", "coordinates": [0, 0]})
    with pytest.raises(ValueError, match="invalid GeoJSON Point"):
        geometry_from_geojson({"type": "Point", "coordinates": "here"})
    with pytest.raises(ValueError, match="SRID 4326"):
        geometry_from_text("SRID=3857;POINT(1 2)")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # what a JSON request body can carry
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@given(json_values)
def test_results_decode_to_what_was_encoded(value: object) -> None:
    kind, number, string, text = encode_result(value)
    assert decode_result(kind, number, string, text) == value
    if isinstance(value, int | float) and not isinstance(value, bool):
        assert number == float(value)


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    )
)
def test_fast_time_writers_agree_with_format_instant(dt: datetime) -> None:
    from citytwin.model.values import format_micros, format_utc

    assert format_micros(to_micros(dt)) == format_instant(dt)
    assert format_utc(dt) == format_instant(dt)
