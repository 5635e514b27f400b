"""Conformance of ``$filter`` (and ``$orderby``) with OGC 18-088 §9.3.3 and the FROST-Server tests.

Each module-scoped "world" below is one application on its own fresh store, seeded once and
then only read; tests that need to write use the function-scoped ``client`` fixture.
Expected results are always exact sets (or exact ordered lists) of entities.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.support import (
    Client,
    datastream,
    location,
    observed_property,
    sensor,
    thing,
)

# --- helpers ----------------------------------------------------------------------------------


def enc(expr: str) -> str:
    """Percent-encode a query option value completely (so '+' stays a plus sign)."""
    return quote(expr, safe="")


def filtered(c: Client, entity_set: str, expr: str, extra: str = "") -> list[dict[str, Any]]:
    return c.values(f"{entity_set}?$filter={enc(expr)}{extra}")


def filtered_ids(c: Client, entity_set: str, expr: str) -> list[int]:
    """Ids matched by a filter, sorted; duplicates are kept so that they show up as failures."""
    return sorted(e["@iot.id"] for e in filtered(c, entity_set, expr))


def filtered_names(c: Client, entity_set: str, expr: str) -> list[str]:
    return sorted(e["name"] for e in filtered(c, entity_set, expr))


def assert_bad_request(c: Client, url: str, *fragments: str, position: bool = True) -> str:
    """The request must fail with 400 and the standard error body; returns the message."""
    resp = c.get(url)
    assert resp.status_code == 400, f"GET {url}: {resp.status_code} {resp.text}"
    body = resp.json()
    assert body["code"] == 400, body
    assert body["type"] == "error", body
    message = body["message"]
    assert isinstance(message, str), body
    assert message, body
    if position:
        assert "position" in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# ==============================================================================================
# World "series": one Datastream with Observations whose results are 1..12.
#   result i: phenomenonTime 2024-01-01T{i:02}:00:00Z,
#             resultTime 2023-{i:02}-20T08:30:00Z for even i, null for odd i.
# ==============================================================================================

RESULTS = list(range(1, 13))


@dataclass
class Series:
    c: Client
    id_of: dict[int, int]  # result -> Observation id

    def results(self, expr: str, entity_set: str = "Observations") -> list[int]:
        by_id = {v: k for k, v in self.id_of.items()}
        return sorted(by_id[e["@iot.id"]] for e in filtered(self.c, entity_set, expr))

    def ordered(self, query: str) -> list[int]:
        return [e["result"] for e in self.c.values(f"Observations?{query}")]


@pytest.fixture(scope="module")
def series(new_client: Callable[..., Client]) -> Iterator[Series]:
    c = new_client("series")
    try:
        tid = c.create(
            "Things", thing("Series thing", locations=[location()], datastreams=[datastream("S")])
        )
        (ds,) = c.ids(f"Things({tid})/Datastreams")
        id_of: dict[int, int] = {}
        for i in RESULTS:
            body: dict[str, Any] = {"result": i, "phenomenonTime": f"2024-01-01T{i:02}:00:00Z"}
            if i % 2 == 0:
                body["resultTime"] = f"2023-{i:02}-20T08:30:00Z"
            id_of[i] = c.create(f"Datastreams({ds})/Observations", body)
        yield Series(c, id_of)
    finally:
        c.close()


def _r(pred: Callable[[int], bool]) -> list[int]:
    return [i for i in RESULTS if pred(i)]


COMPARISONS = [
    ("result eq 5", [5]),
    ("result ne 5", _r(lambda r: r != 5)),
    ("result gt 10", [11, 12]),
    ("result ge 10", [10, 11, 12]),
    ("result lt 3", [1, 2]),
    ("result le 3", [1, 2, 3]),
    ("result eq 5.0", [5]),
    ("result gt 10.5", [11, 12]),
    ("result gt -1", RESULTS),
    ("3 gt result", [1, 2]),
    ("10 le result", [10, 11, 12]),
    ("5 eq result", [5]),
    ("result eq 99", []),
]

LOGIC = [
    ("result gt 2 and result lt 5", [3, 4]),
    ("result lt 2 or result gt 11", [1, 12]),
    ("not (result le 10)", [11, 12]),
    ("not result eq 1 and result lt 4", [2, 3]),
    ("result lt 3 or result gt 4 and result gt 10", [1, 2, 11, 12]),
    ("(result lt 3 or result gt 4) and result gt 10", [11, 12]),
    ("(result lt 3 or result gt 10) and result ne 2", [1, 11, 12]),
    ("not (result gt 3 or result lt 2)", [2, 3]),
    ("not (result gt 3 and result lt 11)", [1, 2, 3, 11, 12]),
    ("result ge 1 and result le 12 and result ne 6", _r(lambda r: r != 6)),
    ("true", RESULTS),
    ("false", []),
    ("result gt 3 and false", []),
    ("result gt 11 or true", RESULTS),
]

ARITHMETIC = [
    ("result add 1 eq 3", [2]),
    ("result sub 1 eq 3", [4]),
    ("result mul 2 eq 8", [4]),
    ("result div 2 eq 2.5", [5]),
    ("result div 4 eq 0.5", [2]),
    ("result mod 5 eq 0", [5, 10]),
    ("result mod 5 eq 1", [1, 6, 11]),
    ("result add 1 mul 2 eq 7", [5]),
    ("(result add 1) mul 2 eq 8", [3]),
    ("result sub 2 sub 3 eq 1", [6]),
    ("result div 2 div 2 eq 1", [4]),
    ("12 div result eq 4", [3]),
    ("result sub -1 eq 3", [2]),
    ("-result lt -10", [11, 12]),
    ("result mul 1.5 eq 6", [4]),
]

# FROST-Server Capability3Tests.checkAndOrPrecendece / checkArithmeticPrecendece.
FROST_PRECEDENCE = [
    ("result eq 2 and result eq 1 or result eq 1", [1]),
    ("(result eq 2 and result eq 1) or result eq 1", [1]),
    ("result eq 2 and (result eq 1 or result eq 1)", []),
    ("not result lt 1 and not result gt 1", [1]),
    ("1 add result mul 2 sub -1 eq 4", [1]),
    ("6 div 2 sub result eq 2", [1]),
    ("1 add 2.0 mod (result add 1) eq 1", [1]),
    ("14 div (result add 1) mod 3 mul 3 eq 3", [1]),
]

MATH = [
    # OData: the midpoint rounds away from zero (2.5 -> 3), so results 5 and 6 give 3.
    ("round(result div 2) eq 3", [5, 6]),
    ("round(result div 2) eq 2", [3, 4]),
    ("round(result div 4) eq 1", [2, 3, 4, 5]),
    ("round(result div 4) eq 2", [6, 7, 8, 9]),
    ("floor(result div 4) eq 1", [4, 5, 6, 7]),
    ("ceiling(result div 4) eq 1", [1, 2, 3, 4]),
    ("floor(result div 5) eq 2", [10, 11, 12]),
    ("ceiling(result div 5) eq 3", [11, 12]),
    ("round(result) eq result", RESULTS),
    ("floor(result mul 0.5) eq ceiling(result mul 0.5)", [2, 4, 6, 8, 10, 12]),
]

IN_AND_NULL = [
    ("result in (2, 5, 13)", [2, 5]),
    ("result in (7)", [7]),
    ("not (result in (1, 2, 3))", _r(lambda r: r > 3)),
    ("result add 1 in (3, 4)", [2, 3]),
    ("resultTime eq null", [1, 3, 5, 7, 9, 11]),
    ("resultTime ne null", [2, 4, 6, 8, 10, 12]),
    ("null eq resultTime", [1, 3, 5, 7, 9, 11]),
    ("resultTime eq null and result gt 8", [9, 11]),
    ("result eq null", []),
    ("result ne null", RESULTS),
]

SERIES_TIMES = [
    ("phenomenonTime eq 2024-01-01T05:00:00Z", [5]),
    ("phenomenonTime gt 2024-01-01T10:00:00Z", [11, 12]),
    ("phenomenonTime le 2024-01-01T02:00:00Z", [1, 2]),
    ("phenomenonTime ge 2024-01-01T11:30:00Z", [12]),
    ("hour(phenomenonTime) eq 5", [5]),
    ("hour(phenomenonTime) ge 10", [10, 11, 12]),
    ("hour(phenomenonTime) eq result", RESULTS),
    ("day(phenomenonTime) eq 1", RESULTS),
    ("year(resultTime) eq 2023", [2, 4, 6, 8, 10, 12]),
    ("month(resultTime) eq 4", [4]),
    ("month(resultTime) gt 8", [10, 12]),
    ("month(resultTime) eq result", [2, 4, 6, 8, 10, 12]),
    ("resultTime gt 2023-06-01T00:00:00Z", [6, 8, 10, 12]),
    ("resultTime lt phenomenonTime", [2, 4, 6, 8, 10, 12]),
    ("phenomenonTime add duration'PT2H' eq 2024-01-01T05:00:00Z", [3]),
    ("phenomenonTime sub duration'PT30M' lt 2024-01-01T02:00:00Z", [1, 2]),
    ("phenomenonTime lt 2024-01-01T00:00:00Z add duration'PT3H'", [1, 2]),
    ("phenomenonTime sub 2024-01-01T00:00:00Z eq duration'PT7H'", [7]),
    ("phenomenonTime sub 2024-01-01T00:00:00Z gt duration'PT10H'", [11, 12]),
    ("resultTime add duration'P1D' eq 2023-08-21T08:30:00Z", [8]),
]


@pytest.mark.parametrize(
    ("expr", "expected"),
    COMPARISONS + LOGIC + ARITHMETIC + FROST_PRECEDENCE + MATH + IN_AND_NULL + SERIES_TIMES,
)
def test_series_filter(series: Series, expr: str, expected: list[int]) -> None:
    assert series.results(expr) == expected, expr


def test_filter_by_id_and_id_list(series: Series) -> None:
    i3, i7 = series.id_of[3], series.id_of[7]
    assert series.results(f"id eq {i3}") == [3]
    assert series.results(f"@iot.id eq {i7}") == [7]
    assert series.results(f"id in ({i3}, {i7})") == [3, 7]


def test_result_gt_string_compares_result_text(series: Series) -> None:
    # The text of 4..9 sorts after '3'; '10', '11', '12' sort before it.
    assert series.results("result gt '3'") == [4, 5, 6, 7, 8, 9]
    assert series.results("result eq '5'") == [5]
    assert series.results("result lt '2'") == [1, 10, 11, 12]


def test_query_option_evaluation_order(series: Series) -> None:
    """FROST Capability3Tests.checkQueriesPriorityOrdering."""
    query = "$count=true&$top=1&$skip=2&$orderby=phenomenonTime%20asc&$filter=" + enc(
        "result gt '3'"
    )
    body = series.c.ok("GET", f"Observations?{query}")
    assert body["@iot.count"] == 6
    assert [e["result"] for e in body["value"]] == [6]


def test_filter_and_count_without_top(series: Series) -> None:
    body = series.c.ok("GET", f"Observations?$count=true&$filter={enc('result mod 3 eq 0')}")
    assert body["@iot.count"] == 4
    assert sorted(e["result"] for e in body["value"]) == [3, 6, 9, 12]


def test_filter_applies_on_navigation_collection(series: Series) -> None:
    (ds,) = series.c.ids("Datastreams")
    got = [
        e["result"] for e in filtered(series.c, f"Datastreams({ds})/Observations", "result gt 9")
    ]
    assert sorted(got) == [10, 11, 12]


def test_filter_sent_with_literal_spaces_in_url(series: Series) -> None:
    # The option sent without percent-encoding: spaces become %20 on the wire.
    got = series.c.values("Observations?$filter=result lt 3 or result gt 11")
    assert sorted(e["result"] for e in got) == [1, 2, 12]


@pytest.mark.parametrize(
    ("orderby", "expected"),
    [
        ("result desc", list(reversed(RESULTS))),
        ("result", RESULTS),
        ("result asc", RESULTS),
        ("phenomenonTime desc", list(reversed(RESULTS))),
        # nulls first when ascending, last when descending
        ("resultTime asc,result desc", [11, 9, 7, 5, 3, 1, 2, 4, 6, 8, 10, 12]),
        ("resultTime desc,result asc", [12, 10, 8, 6, 4, 2, 1, 3, 5, 7, 9, 11]),
        ("resultTime,result", [1, 3, 5, 7, 9, 11, 2, 4, 6, 8, 10, 12]),
        ("result mod 3 asc,result desc", [12, 9, 6, 3, 10, 7, 4, 1, 11, 8, 5, 2]),
        ("result mod 3,result", [3, 6, 9, 12, 1, 4, 7, 10, 2, 5, 8, 11]),
        ("result  desc", list(reversed(RESULTS))),
        ("result DESC", list(reversed(RESULTS))),
    ],
)
def test_series_orderby(series: Series, orderby: str, expected: list[int]) -> None:
    assert series.ordered(f"$orderby={enc(orderby)}") == expected


def test_orderby_combined_with_filter_and_paging(series: Series) -> None:
    query = f"$filter={enc('result gt 4')}&$orderby={enc('result desc')}&$top=3&$skip=1"
    body = series.c.ok("GET", f"Observations?{query}")
    assert [e["result"] for e in body["value"]] == [11, 10, 9]


# ==============================================================================================
# World "clock": date and time functions, durations and literal forms.
# ==============================================================================================

CLOCK = {
    1: ("2016-01-01T08:00:00Z", "2016-01-01T08:00:00Z"),
    2: ("2016-01-01T09:00:00Z", "2016-01-01T09:00:00Z"),
    3: ("2016-02-29T23:59:58.250Z", "2016-02-29T23:59:58.250Z"),
    4: ("2017-12-31T10:30:45.750Z", "2017-12-31T10:30:45.750Z"),
    # an interval phenomenonTime: functions use its start
    5: ("2018-06-15T14:20:10Z/2018-06-16T00:00:00Z", "2018-06-16T00:00:00Z"),
}
ALL_CLOCK = sorted(CLOCK)


@pytest.fixture(scope="module")
def clock(new_client: Callable[..., Client]) -> Iterator[Series]:
    c = new_client("clock")
    try:
        tid = c.create(
            "Things", thing("Clock thing", locations=[location()], datastreams=[datastream("C")])
        )
        (ds,) = c.ids(f"Things({tid})/Datastreams")
        id_of = {
            key: c.create(
                f"Datastreams({ds})/Observations",
                {"result": key, "phenomenonTime": pt, "resultTime": rt},
            )
            for key, (pt, rt) in CLOCK.items()
        }
        yield Series(c, id_of)
    finally:
        c.close()


DATE_FUNCTIONS = [
    ("year(phenomenonTime) eq 2016", [1, 2, 3]),
    ("year(phenomenonTime) eq 2018", [5]),
    ("year(phenomenonTime) gt 2016", [4, 5]),
    ("month(phenomenonTime) eq 2", [3]),
    ("month(phenomenonTime) eq 6", [5]),
    ("day(phenomenonTime) eq 29", [3]),
    ("day(phenomenonTime) eq 15", [5]),
    ("day(phenomenonTime) eq 16", []),
    ("day(resultTime) eq 16", [5]),
    ("hour(phenomenonTime) eq 14", [5]),
    ("hour(phenomenonTime) eq 23", [3]),
    ("hour(resultTime) eq 0", [5]),
    ("minute(phenomenonTime) eq 30", [4]),
    ("minute(phenomenonTime) eq 20", [5]),
    ("minute(phenomenonTime) eq 0", [1, 2]),
    ("second(phenomenonTime) eq 45", [4]),
    ("second(phenomenonTime) eq 58", [3]),
    ("second(phenomenonTime) eq 10", [5]),
    ("fractionalseconds(phenomenonTime) eq 0.25", [3]),
    ("fractionalseconds(phenomenonTime) gt 0.5", [4]),
    ("fractionalseconds(phenomenonTime) eq 0", [1, 2, 5]),
    ("date(phenomenonTime) eq 2016-02-29", [3]),
    ("date(phenomenonTime) lt 2017-01-01", [1, 2, 3]),
    ("date(resultTime) eq 2018-06-16", [5]),
    ("time(phenomenonTime) eq 08:00:00", [1]),
    ("time(phenomenonTime) gt 12:00:00", [3, 5]),
    ("time(phenomenonTime) eq 10:30:45.75", [4]),
    ("time(phenomenonTime) lt 09:30", [1, 2]),
    ("totaloffsetminutes(phenomenonTime) eq 0", ALL_CLOCK),
    ("totaloffsetminutes(2016-01-01T09:00:00+01:30) eq 90", ALL_CLOCK),
    ("totaloffsetminutes(2016-01-01T09:00:00-02:00) eq -120", ALL_CLOCK),
    ("totaloffsetminutes(2016-01-01T09:00:00+01:30) eq 0", []),
    ("phenomenonTime gt mindatetime()", ALL_CLOCK),
    ("phenomenonTime lt maxdatetime()", ALL_CLOCK),
    ("resultTime lt mindatetime()", []),
    ("resultTime gt maxdatetime()", []),
    ("phenomenonTime lt now()", ALL_CLOCK),
    ("resultTime gt now()", []),
    ("year(now()) ge 2024", ALL_CLOCK),
]

DURATIONS = [
    ("phenomenonTime sub 2016-01-01T08:00:00Z eq duration'PT1H'", [2]),
    ("phenomenonTime sub 2016-01-01T08:00:00Z lt duration'PT1H'", [1]),
    ("resultTime sub 2016-01-01T08:00:00Z eq duration'PT1H'", [2]),
    ("phenomenonTime add duration'PT1H' eq 2016-01-01T10:00:00Z", [2]),
    ("phenomenonTime sub duration'P1D' eq 2016-02-28T23:59:58.250Z", [3]),
    ("phenomenonTime add duration'PT0.75S' eq 2016-02-29T23:59:59Z", [3]),
    ("resultTime add duration'P1D' gt 2018-01-01T00:00:00Z", [4, 5]),
    ("resultTime sub duration'PT10H30M' eq 2017-12-31T00:00:45.750Z", [4]),
    ("2016-01-01T10:00:00Z sub duration'PT1H' eq phenomenonTime", [2]),
    ("duration'PT1H' eq duration'PT60M'", ALL_CLOCK),
    ("duration'P1D' gt duration'PT23H'", ALL_CLOCK),
    # an interval shifts at both ends
    (
        "phenomenonTime sub duration'PT1H' eq 2018-06-15T13:20:10Z/2018-06-15T23:00:00Z",
        [5],
    ),
    ("phenomenonTime sub 2018-06-15T14:00:00Z eq duration'PT20M10S'", [5]),
]

# One instant written in several ways: all are 2016-01-01T08:00:00Z.
SAME_INSTANT = [
    "2016-01-01T08:00:00Z",
    "2016-01-01T08:00:00.000Z",
    "2016-01-01T09:00:00+01:00",
    "2016-01-01T07:00:00-01:00",
    "2016-01-01T13:30:00+05:30",
]


@pytest.mark.parametrize(("expr", "expected"), DATE_FUNCTIONS + DURATIONS)
def test_date_time_function(clock: Series, expr: str, expected: list[int]) -> None:
    assert clock.results(expr) == expected, expr


@pytest.mark.parametrize("literal", SAME_INSTANT)
def test_time_literal_forms_denote_the_same_instant(clock: Series, literal: str) -> None:
    assert clock.results(f"phenomenonTime eq {literal}") == [1]
    assert clock.results(f"resultTime le {literal}") == [1]
    assert clock.results(f"{literal} lt phenomenonTime") == [2, 3, 4, 5]


def test_fractional_second_literal(clock: Series) -> None:
    assert clock.results("resultTime eq 2016-02-29T23:59:58.25Z") == [3]
    assert clock.results("resultTime eq 2016-02-29T23:59:58.250+00:00") == [3]
    assert clock.results("resultTime eq 2016-02-29T23:59:58Z") == []


def test_plus_of_offset_turned_into_space_by_url_decoding(clock: Series) -> None:
    """An unencoded '+' in the query string decodes to a space; the instant is unchanged."""
    by_id = {v: k for k, v in clock.id_of.items()}

    def raw(query: str) -> list[int]:
        return sorted(by_id[e["@iot.id"]] for e in clock.c.values(f"Observations?{query}"))

    # '+' written literally in the URL (decoded as a space by the server) ...
    assert raw("$filter=phenomenonTime%20lt%202016-01-01T10:00:00+01:00") == [1]
    # ... and a literal space in the URL
    assert raw("$filter=phenomenonTime lt 2016-01-01T10:00:00 01:00") == [1]
    assert raw("$filter=phenomenonTime%20eq%202016-01-01T09:00:00%2001:00") == [1]
    # the same instant with an encoded plus, and in UTC
    assert raw("$filter=phenomenonTime%20lt%202016-01-01T10:00:00%2B01:00") == [1]
    assert raw("$filter=phenomenonTime%20lt%202016-01-01T09:00:00Z") == [1]


def test_filter_relative_to_now(client: Client) -> None:
    tid = client.create(
        "Things", thing("Now thing", locations=[location()], datastreams=[datastream("N")])
    )
    (ds,) = client.ids(f"Things({tid})/Datastreams")
    now = datetime.now(UTC)
    ids = {}
    for key, delta in {
        "2h ago": timedelta(hours=-2),
        "3d ago": timedelta(days=-3),
        "in 1h": timedelta(hours=1),
    }.items():
        when = (now + delta).isoformat(timespec="seconds").replace("+00:00", "Z")
        ids[key] = client.create(
            f"Datastreams({ds})/Observations", {"result": 1, "phenomenonTime": when}
        )

    def keys(expr: str) -> list[str]:
        by_id = {v: k for k, v in ids.items()}
        return sorted(by_id[i] for i in filtered_ids(client, "Observations", expr))

    assert keys("phenomenonTime gt now() sub duration'P1D'") == ["2h ago", "in 1h"]
    assert keys("phenomenonTime lt now()") == ["2h ago", "3d ago"]
    assert keys("phenomenonTime ge now() add duration'PT30M'") == ["in 1h"]
    assert keys("phenomenonTime lt now() sub duration'P2D'") == ["3d ago"]
    assert keys("now() sub phenomenonTime gt duration'PT1H'") == ["2h ago", "3d ago"]


# ==============================================================================================
# World "intervals": FROST DateTimeTests-like instants and intervals on 2016-01-01.
#   Instant Observations: phenomenonTime = resultTime = t, validTime null.
#   Interval Observations: phenomenonTime = validTime = [s, e], resultTime = e.
# ==============================================================================================

INSTANTS = ["06:00", "06:59", "07:00", "07:01", "07:59", "08:00", "08:01", "09:00"]
INTERVALS = [
    "06:00/06:59",
    "06:00/07:00",
    "06:00/07:01",
    "06:59/07:01",
    "07:00/07:59",
    "07:00/08:00",
    "07:01/07:59",
    "07:01/08:00",
    "07:59/08:01",
    "08:00/09:00",
    "06:00/09:00",
]

Span = tuple[int, int]


def minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def span(text: str) -> Span:
    if "/" in text:
        s, e = text.split("/")
        return minutes(s), minutes(e)
    return minutes(text), minutes(text)


def iso(hhmm: str) -> str:
    return f"2016-01-01T{hhmm}:00Z"


def literal(text: str) -> str:
    return "/".join(iso(part) for part in text.split("/"))


def time_rule(op: str, a: Span | None, b: Span) -> bool:
    """The comparison rules of the brief: an instant is the interval [t, t]; ne negates eq."""
    if op == "ne":
        return not time_rule("eq", a, b)
    if a is None:  # a missing value compares false
        return False
    (s1, e1), (s2, e2) = a, b
    if op == "eq":
        return s1 == s2 and e1 == e2
    if op == "gt":
        return s1 >= e2 and s1 > s2
    if op == "ge":
        return s1 >= s2 and e1 >= e2
    if op == "lt":
        return e1 <= s2 and s1 < s2
    if op == "le":
        return s1 <= s2 and e1 <= e2
    raise AssertionError(op)


FLIP = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
OPS = ["eq", "ne", "gt", "ge", "lt", "le"]
TIME_LITERALS = ["07:00", "08:00", "07:00/08:00", "06:59/07:01"]


@dataclass
class Timeline:
    c: Client
    id_of: dict[str, int]  # instant or interval text -> Observation id
    values: dict[str, dict[str, Span | None]] = field(default_factory=dict)

    def keys(self, expr: str) -> list[str]:
        by_id = {v: k for k, v in self.id_of.items()}
        return sorted(by_id[i] for i in filtered_ids(self.c, "Observations", expr))

    def oracle(self, prop: str, op: str, lit: str) -> list[str]:
        return sorted(k for k, v in self.values.items() if time_rule(op, v[prop], span(lit)))


@pytest.fixture(scope="module")
def timeline(new_client: Callable[..., Client]) -> Iterator[Timeline]:
    c = new_client("timeline")
    try:
        tid = c.create(
            "Things", thing("Time thing", locations=[location()], datastreams=[datastream("T")])
        )
        (ds,) = c.ids(f"Things({tid})/Datastreams")
        tl = Timeline(c, {})
        for i, t in enumerate(INSTANTS):
            tl.id_of[t] = c.create(
                f"Datastreams({ds})/Observations",
                {"result": i, "phenomenonTime": iso(t), "resultTime": iso(t)},
            )
            tl.values[t] = {"phenomenonTime": span(t), "resultTime": span(t), "validTime": None}
        for i, iv in enumerate(INTERVALS):
            end = iv.split("/")[1]
            tl.id_of[iv] = c.create(
                f"Datastreams({ds})/Observations",
                {
                    "result": 100 + i,
                    "phenomenonTime": literal(iv),
                    "validTime": literal(iv),
                    "resultTime": iso(end),
                },
            )
            tl.values[iv] = {
                "phenomenonTime": span(iv),
                "resultTime": span(end),
                "validTime": span(iv),
            }
        yield tl
    finally:
        c.close()


@pytest.mark.parametrize("lit", TIME_LITERALS)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("prop", ["phenomenonTime", "validTime", "resultTime"])
def test_time_comparison(timeline: Timeline, prop: str, op: str, lit: str) -> None:
    expr = f"{prop} {op} {literal(lit)}"
    assert timeline.keys(expr) == timeline.oracle(prop, op, lit), expr


@pytest.mark.parametrize("lit", ["07:00", "07:00/08:00"])
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("prop", ["phenomenonTime", "validTime"])
def test_time_comparison_with_literal_on_the_left(
    timeline: Timeline, prop: str, op: str, lit: str
) -> None:
    expr = f"{literal(lit)} {op} {prop}"
    assert timeline.keys(expr) == timeline.oracle(prop, FLIP[op], lit), expr


def test_interval_lt_instant_examples(timeline: Timeline) -> None:
    # FROST DateTimeTests: an interval that ends at t is before t.
    assert timeline.keys(f"validTime lt {iso('07:00')}") == ["06:00/06:59", "06:00/07:00"]
    assert timeline.keys(f"phenomenonTime lt {iso('07:00')}") == [
        "06:00",
        "06:00/06:59",
        "06:00/07:00",
        "06:59",
    ]


def test_interval_gt_instant_examples(timeline: Timeline) -> None:
    assert timeline.keys(f"validTime gt {iso('07:00')}") == [
        "07:01/07:59",
        "07:01/08:00",
        "07:59/08:01",
        "08:00/09:00",
    ]


def test_interval_equality_examples(timeline: Timeline) -> None:
    lit = literal("07:00/08:00")
    assert timeline.keys(f"validTime eq {lit}") == ["07:00/08:00"]
    assert timeline.keys(f"phenomenonTime eq {lit}") == ["07:00/08:00"]
    assert timeline.keys(f"phenomenonTime eq {iso('07:00')}") == ["07:00"]
    assert timeline.keys(f"resultTime eq {lit}") == []


def test_interval_ge_interval_includes_later_instants(timeline: Timeline) -> None:
    assert timeline.keys(f"phenomenonTime ge {literal('07:00/08:00')}") == [
        "07:00/08:00",
        "07:01/08:00",
        "07:59/08:01",
        "08:00",
        "08:00/09:00",
        "08:01",
        "09:00",
    ]


def test_instant_against_interval_literal_examples(timeline: Timeline) -> None:
    lit = literal("07:00/08:00")
    # resultTime is an instant: gt means at or after the end (and after the start).
    assert timeline.keys(f"resultTime gt {lit}") == sorted(
        k for k, v in timeline.values.items() if v["resultTime"] and v["resultTime"][0] >= 480
    )
    assert timeline.keys(f"resultTime lt {lit}") == sorted(
        k for k, v in timeline.values.items() if v["resultTime"] and v["resultTime"][0] < 420
    )


def test_two_valued_logic_on_missing_valid_time(timeline: Timeline) -> None:
    instants = sorted(INSTANTS)
    assert timeline.keys("validTime eq null") == instants
    assert sorted(timeline.keys("validTime ne null")) == sorted(INTERVALS)
    got = timeline.keys(f"not (validTime lt {iso('07:00')})")
    expected = sorted(set(INSTANTS) | set(INTERVALS) - {"06:00/06:59", "06:00/07:00"})
    assert got == expected


def test_time_functions_on_intervals_use_the_start(timeline: Timeline) -> None:
    assert timeline.keys("hour(validTime) eq 6") == [
        "06:00/06:59",
        "06:00/07:00",
        "06:00/07:01",
        "06:00/09:00",
        "06:59/07:01",
    ]
    assert timeline.keys("minute(phenomenonTime) eq 59") == [
        "06:59",
        "06:59/07:01",
        "07:59",
        "07:59/08:01",
    ]
    assert timeline.keys("year(validTime) eq 2016") == sorted(INTERVALS)


def test_interval_plus_duration(timeline: Timeline) -> None:
    lit = literal("08:00/09:00")
    assert timeline.keys(f"validTime add duration'PT1H' eq {lit}") == ["07:00/08:00"]
    assert timeline.keys(f"phenomenonTime add duration'PT1H' eq {iso('08:00')}") == ["07:00"]


def test_orderby_interval_phenomenon_time(timeline: Timeline) -> None:
    # intervals compare by start, then by end
    got = timeline.c.values(
        f"Observations?$filter={enc('validTime ne null')}&$orderby={enc('phenomenonTime asc')}"
    )
    by_id = {v: k for k, v in timeline.id_of.items()}
    assert [by_id[e["@iot.id"]] for e in got] == sorted(INTERVALS, key=span)


# ==============================================================================================
# World "json": JSON properties, parameters and object results.
# ==============================================================================================

JSON_THINGS: dict[str, dict[str, Any] | None] = {
    "J1": {
        "owner": "alice",
        "int": 5,
        "active": True,
        "a": {"b": "deep1", "n": 3},
        "list": ["x", "y", "z"],
        "intArray": [1, 5, 9],
        "strArray": ["s1", "s10"],
        "x": 2,
    },
    "J2": {
        "owner": "bob",
        "int": "5",
        "active": False,
        "a": {"b": "deep2", "n": 7},
        "list": ["p", "q"],
        "intArray": [2, 4],
        "strArray": ["s2"],
        "x": 1,
    },
    "J3": {
        "owner": "carol",
        "int": True,
        "active": True,
        "a": {"b": "deep1"},
        "intArray": [9],
        "x": 3,
    },
    "J4": {"int": 8},
    "J5": None,
    "J6": {"owner": "Alice", "int": 12.5, "active": False},
}
ALL_J = sorted(JSON_THINGS)

JSON_OBSERVATIONS: dict[str, dict[str, Any]] = {
    "O1": {"result": {"value": 5, "q": "good"}, "parameters": {"depth": 10, "mode": "auto"}},
    "O2": {"result": {"value": 2}, "parameters": {"depth": "10"}},
    "O3": {"result": {"value": "7"}, "parameters": {"mode": "manual", "list": [1, 2]}},
    "O4": {"result": 4},
    "O5": {"result": "text"},
    "O6": {"result": True},
    "O7": {"result": "5"},
}


@dataclass
class JsonWorld:
    c: Client
    obs: dict[str, int]
    ds: dict[str, int]

    def obs_keys(self, expr: str) -> list[str]:
        by_id = {v: k for k, v in self.obs.items()}
        return sorted(by_id[i] for i in filtered_ids(self.c, "Observations", expr))


@pytest.fixture(scope="module")
def jworld(new_client: Callable[..., Client]) -> Iterator[JsonWorld]:
    c = new_client("json")
    try:
        tids = {}
        for name, props in JSON_THINGS.items():
            extra: dict[str, Any] = {} if props is None else {"properties": props}
            tids[name] = c.create("Things", thing(name, locations=[location(name)], **extra))
        ds1 = c.create(
            "Datastreams",
            datastream("Celsius", Thing={"@iot.id": tids["J1"]}, properties={"calibrated": True}),
        )
        ds2 = c.create(
            "Datastreams",
            datastream(
                "Metres",
                Thing={"@iot.id": tids["J2"]},
                unitOfMeasurement={
                    "name": "metre",
                    "symbol": "m",
                    "definition": "http://unitsofmeasure.org/ucum#m",
                },
                properties={"calibrated": False, "tags": ["depth", "level"]},
            ),
        )
        obs = {
            key: c.create(
                f"Datastreams({ds1})/Observations",
                {"phenomenonTime": "2024-02-01T00:00:00Z", **body},
            )
            for key, body in JSON_OBSERVATIONS.items()
        }
        yield JsonWorld(c, obs, {"Celsius": ds1, "Metres": ds2})
    finally:
        c.close()


JSON_THING_FILTERS = [
    ("properties/owner eq 'alice'", ["J1"]),
    ("properties/owner eq 'Alice'", ["J6"]),
    ("tolower(properties/owner) eq 'alice'", ["J1", "J6"]),
    ("startswith(properties/owner, 'b')", ["J2"]),
    ("properties/a/b eq 'deep1'", ["J1", "J3"]),
    ("properties/a/n gt 4", ["J2"]),
    ("properties/a/n eq 3", ["J1"]),
    ("properties/list[1] eq 'y'", ["J1"]),
    ("properties/list[0] eq 'p'", ["J2"]),
    ("properties/intArray[2] eq 9", ["J1"]),
    ("properties/intArray[0] eq 9", ["J3"]),
    # numeric comparisons only match JSON numbers ("5" and true are skipped)
    ("properties/int gt 4", ["J1", "J4", "J6"]),
    ("properties/int lt 8", ["J1"]),
    ("properties/int ge 8", ["J4", "J6"]),
    ("properties/int eq 5", ["J1"]),
    ("properties/int eq 12.5", ["J6"]),
    ("properties/int add 1 eq 6", ["J1"]),
    # a string literal compares the text of any JSON scalar
    ("properties/int eq '5'", ["J1", "J2"]),
    ("properties/int eq 'true'", ["J3"]),
    # booleans
    ("properties/active", ["J1", "J3"]),
    ("properties/active eq true", ["J1", "J3"]),
    ("properties/active eq false", ["J2", "J6"]),
    ("properties/active ne null and not properties/active", ["J2", "J6"]),
    ("not properties/active and properties/owner eq 'bob'", ["J2"]),
    ("properties/active and properties/a/b eq 'deep1'", ["J1", "J3"]),
    # in
    ("9 in properties/intArray", ["J1", "J3"]),
    ("5 in properties/intArray", ["J1"]),
    ("'s10' in properties/strArray", ["J1"]),
    ("'s2' in properties/strArray", ["J2"]),
    ("properties/owner in ('alice', 'bob', 'zed')", ["J1", "J2"]),
    ("properties/int in (5, 8)", ["J1", "J4"]),
    # missing values: two-valued logic
    ("not (properties/x gt 1)", ["J2", "J4", "J5", "J6"]),
    ("properties/x gt 1", ["J1", "J3"]),
    ("properties/x ne 1", ["J1", "J3", "J4", "J5", "J6"]),
    ("properties/x eq null", ["J4", "J5", "J6"]),
    ("properties/x ne null", ["J1", "J2", "J3"]),
    ("properties/owner eq null", ["J4", "J5"]),
    ("properties eq null", ["J5"]),
    ("properties ne null", ["J1", "J2", "J3", "J4", "J6"]),
    ("not (properties/owner eq 'alice')", ["J2", "J3", "J4", "J5", "J6"]),
    ("properties/a/b ne 'deep1'", ["J2", "J4", "J5", "J6"]),
]


@pytest.mark.parametrize(("expr", "expected"), JSON_THING_FILTERS)
def test_json_property_filter(jworld: JsonWorld, expr: str, expected: list[str]) -> None:
    assert filtered_names(jworld.c, "Things", expr) == expected, expr


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("result/value gt 3", ["O1"]),
        ("result/value eq '7'", ["O3"]),
        ("result/value eq '5'", ["O1"]),
        ("result/q eq 'good'", ["O1"]),
        ("result gt 3", ["O4"]),
        ("result eq '5'", ["O7"]),
        ("result eq 'text'", ["O5"]),
        ("result eq true", ["O6"]),
        ("parameters/depth eq 10", ["O1"]),
        ("parameters/depth eq '10'", ["O1", "O2"]),
        ("parameters/mode eq 'auto'", ["O1"]),
        ("parameters/list[1] eq 2", ["O3"]),
        ("parameters/mode ne 'auto'", ["O2", "O3", "O4", "O5", "O6", "O7"]),
        ("parameters eq null", ["O4", "O5", "O6", "O7"]),
    ],
)
def test_json_observation_filter(jworld: JsonWorld, expr: str, expected: list[str]) -> None:
    assert jworld.obs_keys(expr) == expected, expr


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("unitOfMeasurement/symbol eq 'Cel'", ["Celsius"]),
        ("unitOfMeasurement/name eq 'metre'", ["Metres"]),
        (
            "startswith(unitOfMeasurement/definition, 'http://unitsofmeasure.org/')",
            [
                "Celsius",
                "Metres",
            ],
        ),
        ("properties/calibrated", ["Celsius"]),
        ("properties/calibrated eq false", ["Metres"]),
        ("properties/tags[1] eq 'level'", ["Metres"]),
        ("'depth' in properties/tags", ["Metres"]),
        ("Thing/properties/owner eq 'bob'", ["Metres"]),
    ],
)
def test_json_datastream_filter(jworld: JsonWorld, expr: str, expected: list[str]) -> None:
    assert filtered_names(jworld.c, "Datastreams", expr) == expected, expr


def test_json_paths_through_relations(jworld: JsonWorld) -> None:
    assert filtered_names(jworld.c, "Things", "Datastreams/unitOfMeasurement/symbol eq 'm'") == [
        "J2"
    ]
    assert jworld.obs_keys("Datastream/Thing/properties/owner eq 'alice'") == sorted(
        JSON_OBSERVATIONS
    )
    assert jworld.obs_keys("Datastream/Thing/properties/owner eq 'bob'") == []


def test_orderby_json_path(jworld: JsonWorld) -> None:
    got = jworld.c.values(
        f"Things?$filter={enc('properties/a/n ne null')}&$orderby={enc('properties/a/n desc')}"
    )
    assert [e["name"] for e in got] == ["J2", "J1"]
    # nulls first when ascending (J5, J4 by name desc), then the owners alice, bob, carol
    got = jworld.c.values(
        f"Things?$filter={enc('name ne ' + repr('J6'))}"
        f"&$orderby={enc('properties/owner asc,name desc')}"
    )
    assert [e["name"] for e in got] == ["J5", "J4", "J1", "J2", "J3"]
    got = jworld.c.values(f"Things?$orderby={enc('properties/int desc,name')}")
    # numbers order numerically; the ranking of other JSON types is not specified here
    numeric = [e["name"] for e in got if e["name"] in ("J1", "J4", "J6")]
    assert numeric == ["J6", "J4", "J1"]


# ==============================================================================================
# World "entities": every entity type, relations, string functions, orderby.
# ==============================================================================================

NAMES = {
    "Alpha": "first thing",
    "Beta": "second thing",
    "Gamma": "  padded  ",
    "Delta": "Sensor Things Delta",
    "Echo": "echo",
    "O'Brien": "it's",
}
RANKS = {"Alpha": 2, "Beta": 1, "Gamma": 2, "Echo": 1}


@dataclass
class Entities:
    c: Client
    things: dict[str, int]
    datastreams: dict[str, int]
    locations: dict[str, int]
    sensors: dict[str, int]
    properties: dict[str, int]
    features: dict[str, int]
    observations: dict[int, int]  # result -> id (results are unique)
    historical: dict[int, tuple[str, list[str], str]] = field(default_factory=dict)

    def names(self, entity_set: str, expr: str) -> list[str]:
        return filtered_names(self.c, entity_set, expr)

    def results(self, expr: str) -> list[int]:
        return sorted(e["result"] for e in filtered(self.c, "Observations", expr))


def _unit(name: str, symbol: str) -> dict[str, str]:
    return {
        "name": name,
        "symbol": symbol,
        "definition": f"http://unitsofmeasure.org/ucum#{symbol}",
    }


@pytest.fixture(scope="module")
def ents(new_client: Callable[..., Client]) -> Iterator[Entities]:
    c = new_client("entities")
    try:
        sensors = {
            "SensA": c.create(
                "Sensors",
                sensor(
                    "SensA",
                    encodingType="application/pdf",
                    metadata="https://example.org/a.pdf",
                    properties={"maker": "Acme"},
                ),
            ),
            "SensB": c.create(
                "Sensors", sensor("SensB", metadata="https://example.org/b", properties={})
            ),
        }
        props = {
            n: c.create("ObservedProperties", observed_property(n, properties={"group": g}))
            for n, g in [
                ("Temperature", "climate"),
                ("Humidity", "climate"),
                ("Pressure", "air"),
                ("Unused", "none"),
            ]
        }
        locs = {
            "Market Square": c.create(
                "Locations", location("Market Square", 8.0, 52.0, properties={"zone": "centre"})
            ),
            "Harbour": c.create(
                "Locations", location("Harbour", 9.0, 53.0, properties={"zone": "port"})
            ),
            "Market Hall": c.create(
                "Locations", location("Market Hall", 8.1, 52.1, properties={"zone": "centre"})
            ),
            "Notes": c.create(
                "Locations",
                {
                    "name": "Notes",
                    "description": "free text",
                    "encodingType": "text/plain",
                    "location": "near the river",
                },
            ),
        }
        thing_locs = {
            "Alpha": ["Market Square"],
            "Beta": ["Harbour"],
            "Gamma": ["Market Hall"],
            "Echo": ["Harbour"],
        }
        things = {}
        for name, desc in NAMES.items():
            body: dict[str, Any] = {"name": name, "description": desc}
            if name in RANKS:
                body["properties"] = {"rank": RANKS[name]}
            if name in thing_locs:
                body["Locations"] = [{"@iot.id": locs[n]} for n in thing_locs[name]]
            things[name] = c.create("Things", body)

        def ds(name: str, thing_name: str, sens: str, prop: str, unit: dict[str, str]) -> int:
            return c.create(
                "Datastreams",
                datastream(
                    name,
                    new_related=False,
                    Thing={"@iot.id": things[thing_name]},
                    Sensor={"@iot.id": sensors[sens]},
                    ObservedProperty={"@iot.id": props[prop]},
                    unitOfMeasurement=unit,
                    properties={"order": len(name)},
                ),
            )

        dss = {
            "Alpha temperature": ds(
                "Alpha temperature", "Alpha", "SensA", "Temperature", _unit("degree Celsius", "Cel")
            ),
            "Alpha humidity": ds(
                "Alpha humidity", "Alpha", "SensA", "Humidity", _unit("percent", "%")
            ),
            "Beta temperature": ds(
                "Beta temperature", "Beta", "SensB", "Temperature", _unit("degree Celsius", "Cel")
            ),
            "Beta spare": ds(
                "Beta spare", "Beta", "SensB", "Pressure", _unit("hectopascal", "hPa")
            ),
            "Echo": ds("Echo", "Echo", "SensB", "Pressure", _unit("hectopascal", "hPa")),
        }
        fois = {
            "Field one": c.create(
                "FeaturesOfInterest",
                {
                    "name": "Field one",
                    "description": "the first field",
                    "encodingType": "application/geo+json",
                    "feature": {"type": "Point", "coordinates": [8.0, 52.0]},
                    "properties": {"soil": "clay"},
                },
            ),
            "Field two": c.create(
                "FeaturesOfInterest",
                {
                    "name": "Field two",
                    "description": "the second field",
                    "encodingType": "application/geo+json",
                    "feature": {"type": "Point", "coordinates": [9.0, 53.0]},
                    "properties": {"soil": "sand"},
                },
            ),
        }
        obs_plan = [
            (10, "Alpha temperature", "2020-01-01T00:00:00Z", "Field one"),
            (25, "Alpha temperature", "2020-01-02T00:00:00Z", "Field one"),
            (60, "Alpha humidity", "2020-01-03T00:00:00Z", "Field one"),
            (5, "Beta temperature", "2020-01-01T12:00:00Z", "Field two"),
            (15, "Beta temperature", "2020-01-05T00:00:00Z", "Field two"),
            (1000, "Echo", "2021-06-01T00:00:00Z", "Field two"),
        ]
        observations = {
            result: c.create(
                "Observations",
                {
                    "result": result,
                    "phenomenonTime": when,
                    "Datastream": {"@iot.id": dss[ds_name]},
                    "FeatureOfInterest": {"@iot.id": fois[foi]},
                },
            )
            for result, ds_name, when, foi in obs_plan
        }
        c.create(
            "HistoricalLocations",
            {
                "time": "2001-01-01T00:00:00Z",
                "Thing": {"@iot.id": things["Alpha"]},
                "Locations": [{"@iot.id": locs["Market Square"]}],
            },
        )
        e = Entities(c, things, dss, locs, sensors, props, fois, observations)
        for hl in c.values("HistoricalLocations?$expand=Thing,Locations"):
            e.historical[hl["@iot.id"]] = (
                hl["Thing"]["name"],
                sorted(loc["name"] for loc in hl["Locations"]),
                hl["time"],
            )
        yield e
    finally:
        c.close()


def _names(pred: Callable[[str, str], bool]) -> list[str]:
    return sorted(n for n, d in NAMES.items() if pred(n, d))


STRING_FUNCTIONS = [
    ("substringof('ph', name)", _names(lambda n, d: "ph" in n)),
    ("substringof('a', name)", _names(lambda n, d: "a" in n)),
    ("substringof(name, 'xxAlphaBetaxx')", _names(lambda n, d: n in "xxAlphaBetaxx")),
    ("substringof('Things', description)", ["Delta"]),
    ("endswith(name, 'ta')", _names(lambda n, d: n.endswith("ta"))),
    ("endswith(description, 'thing')", _names(lambda n, d: d.endswith("thing"))),
    ("startswith(name, 'Al')", ["Alpha"]),
    ("startswith(description, 'Sensor')", ["Delta"]),
    ("contains(name, 'mm')", ["Gamma"]),
    ("contains(description, 'thing')", _names(lambda n, d: "thing" in d)),
    ("length(name) eq 4", _names(lambda n, d: len(n) == 4)),
    ("length(name) gt 5", _names(lambda n, d: len(n) > 5)),
    ("length(description) eq 10", _names(lambda n, d: len(d) == 10)),
    ("indexof(name, 'A') eq 1", ["Alpha"]),
    ("indexof(name, 'a') eq 5", _names(lambda n, d: n.find("a") + 1 == 5)),
    ("indexof(name, 'lt') eq 3", ["Delta"]),
    ("indexof(description, 'thing') eq 7", ["Alpha"]),
    ("substring(name, 1) eq 'lpha'", ["Alpha"]),
    ("substring(name, 4) eq 'a'", _names(lambda n, d: n[4:] == "a")),
    ("substring(name, 1, 3) eq 'elt'", ["Delta"]),
    ("substring(name, 0, 2) eq 'Be'", ["Beta"]),
    ("substring(description, 7) eq 'thing'", ["Beta"]),
    ("substring(name, 2, 1) eq 'm'", ["Gamma"]),
    ("tolower(name) eq 'alpha'", ["Alpha"]),
    ("toupper(name) eq 'BETA'", ["Beta"]),
    ("tolower(description) eq 'sensor things delta'", ["Delta"]),
    ("trim(description) eq 'padded'", ["Gamma"]),
    ("length(trim(description)) eq 6", ["Gamma"]),
    ("concat(name, ' x') eq 'Echo x'", ["Echo"]),
    ("concat(concat(name, '-'), description) eq 'Beta-second thing'", ["Beta"]),
    ("toupper(substring(name, 0, 1)) eq 'E'", ["Echo"]),
    ("name eq 'O''Brien'", ["O'Brien"]),
    ("startswith(name, 'O''')", ["O'Brien"]),
    ("description eq 'it''s'", ["O'Brien"]),
    ("name eq 'alpha'", []),
    ("name gt 'Charlie'", _names(lambda n, d: n > "Charlie")),
    ("name le 'Beta'", _names(lambda n, d: n <= "Beta")),
    ("name ne 'Alpha'", _names(lambda n, d: n != "Alpha")),
    ("name in ('Alpha', 'Echo', 'Zulu')", ["Alpha", "Echo"]),
    ("'Alpha' eq name", ["Alpha"]),
    # keywords and function names are case-insensitive
    ("Startswith(name, 'Al')", ["Alpha"]),
    ("TOLOWER(name) EQ 'alpha'", ["Alpha"]),
    ("length(name) Eq 4 AND name Ne 'Echo'", ["Beta"]),
    ("NOT (name eq 'Alpha') and length(name) eq 5", ["Delta", "Gamma"]),
    ("SubStringOf('ph', name) OR ENDSWITH(name, 'ho')", ["Alpha", "Echo"]),
    ("name IN ('Beta')", ["Beta"]),
]


@pytest.mark.parametrize(("expr", "expected"), STRING_FUNCTIONS)
def test_string_function(ents: Entities, expr: str, expected: list[str]) -> None:
    assert ents.names("Things", expr) == expected, expr


RELATION_FILTERS = [
    # to-many, any semantics; every Thing at most once
    ("Things", "Datastreams/name eq 'Alpha temperature'", ["Alpha"]),
    ("Things", "Datastreams/Sensor/name eq 'SensA'", ["Alpha"]),
    ("Things", "startswith(Datastreams/name, 'Alpha')", ["Alpha"]),
    ("Things", "Datastreams/ObservedProperty/name eq 'Temperature'", ["Alpha", "Beta"]),
    ("Things", "Datastreams/Sensor/name eq 'SensB'", ["Beta", "Echo"]),
    ("Things", "Locations/name eq 'Harbour'", ["Beta", "Echo"]),
    ("Things", "startswith(Locations/name, 'Market')", ["Alpha", "Gamma"]),
    ("Things", "Locations/properties/zone eq 'centre'", ["Alpha", "Gamma"]),
    ("Things", "Datastreams/Observations/result gt 100", ["Echo"]),
    ("Things", "Datastreams/Observations/FeatureOfInterest/name eq 'Field two'", ["Beta", "Echo"]),
    (
        "Things",
        "not (Datastreams/name eq 'Alpha temperature')",
        ["Beta", "Delta", "Echo", "Gamma", "O'Brien"],
    ),
    ("Things", "Datastreams/id eq null", ["Delta", "Gamma", "O'Brien"]),
    ("Things", "Datastreams/id ne null", ["Alpha", "Beta", "Echo"]),
    ("Things", "Locations/id eq null", ["Delta", "O'Brien"]),
    ("Things", "name eq Datastreams/name", ["Echo"]),
    ("Things", "Datastreams/name eq concat(name, ' temperature')", ["Alpha", "Beta"]),
    (
        "Things",
        "Datastreams/name eq 'Alpha humidity' and Datastreams/name eq 'Alpha temperature'",
        ["Alpha"],
    ),
    ("Things", "Datastreams/name eq 'Echo' or Locations/name eq 'Market Hall'", ["Echo", "Gamma"]),
    # to-one
    ("Datastreams", "Thing/name eq 'Alpha'", ["Alpha humidity", "Alpha temperature"]),
    ("Datastreams", "Sensor/name eq 'SensA'", ["Alpha humidity", "Alpha temperature"]),
    ("Datastreams", "ObservedProperty/properties/group eq 'air'", ["Beta spare", "Echo"]),
    (
        "Datastreams",
        "Thing/Locations/name eq 'Harbour'",
        ["Beta spare", "Beta temperature", "Echo"],
    ),
    ("Datastreams", "Observations/result gt 20", ["Alpha humidity", "Alpha temperature", "Echo"]),
    ("Datastreams", "Observations/id eq null", ["Beta spare"]),
    ("Sensors", "Datastreams/Thing/name eq 'Echo'", ["SensB"]),
    ("Sensors", "Datastreams/Observations/result eq 60", ["SensA"]),
    ("ObservedProperties", "Datastreams/Thing/name eq 'Beta'", ["Pressure", "Temperature"]),
    ("ObservedProperties", "Datastreams/id eq null", ["Unused"]),
    ("Locations", "Things/name eq 'Echo'", ["Harbour"]),
    ("Locations", "Things/id eq null", ["Notes"]),
    ("Locations", "Things/Datastreams/name eq 'Beta spare'", ["Harbour"]),
    ("FeaturesOfInterest", "Observations/result gt 100", ["Field two"]),
    ("FeaturesOfInterest", "Observations/Datastream/Thing/name eq 'Alpha'", ["Field one"]),
]


@pytest.mark.parametrize(("entity_set", "expr", "expected"), RELATION_FILTERS)
def test_relation_path_filter(
    ents: Entities, entity_set: str, expr: str, expected: list[str]
) -> None:
    assert ents.names(entity_set, expr) == expected, expr


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("Datastream/Thing/name eq 'Beta'", [5, 15]),
        ("Datastream/name eq 'Alpha humidity'", [60]),
        ("Datastream/ObservedProperty/name eq 'Temperature'", [5, 10, 15, 25]),
        ("Datastream/Sensor/properties/maker eq 'Acme'", [10, 25, 60]),
        ("Datastream/unitOfMeasurement/symbol eq 'Cel'", [5, 10, 15, 25]),
        ("FeatureOfInterest/name eq 'Field one'", [10, 25, 60]),
        ("FeatureOfInterest/properties/soil eq 'sand'", [5, 15, 1000]),
        ("Datastream/Thing/Locations/name eq 'Harbour'", [5, 15, 1000]),
        ("Datastream/Thing/name eq 'Alpha' and result gt 20", [25, 60]),
        ("Datastream/properties/order eq 4", [1000]),
    ],
)
def test_observation_relation_filter(ents: Entities, expr: str, expected: list[int]) -> None:
    assert ents.results(expr) == expected, expr


def test_filter_by_related_id(ents: Entities) -> None:
    alpha_t = ents.datastreams["Alpha temperature"]
    assert ents.results(f"Datastream/id eq {alpha_t}") == [10, 25]
    assert ents.results(f"Datastream/@iot.id eq {alpha_t}") == [10, 25]
    beta = ents.things["Beta"]
    assert ents.names("Datastreams", f"Thing/id eq {beta}") == ["Beta spare", "Beta temperature"]


@pytest.mark.parametrize(
    ("entity_set", "expr", "expected"),
    [
        ("Things", "description eq 'first thing'", ["Alpha"]),
        ("Things", "properties/rank eq 1", ["Beta", "Echo"]),
        ("Locations", "encodingType eq 'text/plain'", ["Notes"]),
        (
            "Locations",
            "encodingType eq 'application/geo+json'",
            ["Harbour", "Market Hall", "Market Square"],
        ),
        ("Locations", "properties/zone eq 'centre'", ["Market Hall", "Market Square"]),
        ("Locations", "description eq 'Harbour description'", ["Harbour"]),
        (
            "Datastreams",
            "unitOfMeasurement/symbol eq 'Cel'",
            ["Alpha temperature", "Beta temperature"],
        ),
        (
            "Datastreams",
            "observationType eq "
            "'http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement'",
            ["Alpha humidity", "Alpha temperature", "Beta spare", "Beta temperature", "Echo"],
        ),
        ("Datastreams", "properties/order gt 14", ["Alpha temperature", "Beta temperature"]),
        ("Datastreams", "description eq 'Echo description'", ["Echo"]),
        ("Sensors", "encodingType eq 'application/pdf'", ["SensA"]),
        ("Sensors", "metadata eq 'https://example.org/b'", ["SensB"]),
        ("Sensors", "properties/maker eq 'Acme'", ["SensA"]),
        ("Sensors", "endswith(description, 'description')", ["SensA", "SensB"]),
        ("ObservedProperties", "definition eq 'https://example.org/Humidity'", ["Humidity"]),
        ("ObservedProperties", "properties/group eq 'climate'", ["Humidity", "Temperature"]),
        ("ObservedProperties", "startswith(description, 'Pres')", ["Pressure"]),
        ("FeaturesOfInterest", "name eq 'Field one'", ["Field one"]),
        ("FeaturesOfInterest", "properties/soil eq 'sand'", ["Field two"]),
        ("FeaturesOfInterest", "description eq 'the second field'", ["Field two"]),
        (
            "FeaturesOfInterest",
            "encodingType eq 'application/geo+json'",
            ["Field one", "Field two"],
        ),
    ],
)
def test_entity_own_property_filter(
    ents: Entities, entity_set: str, expr: str, expected: list[str]
) -> None:
    assert ents.names(entity_set, expr) == expected, expr


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # Datastream phenomenonTime is the server-maintained interval of its Observations:
        # Alpha temperature 01-01/01-02, Alpha humidity 01-03, Beta temperature 01-01T12/01-05,
        # Echo 2021-06-01, Beta spare none.
        ("phenomenonTime eq 2020-01-01T00:00:00Z/2020-01-02T00:00:00Z", ["Alpha temperature"]),
        ("phenomenonTime lt 2020-01-03T00:00:00Z", ["Alpha temperature"]),
        ("phenomenonTime le 2020-01-03T00:00:00Z", ["Alpha humidity", "Alpha temperature"]),
        ("phenomenonTime gt 2020-01-02T00:00:00Z", ["Alpha humidity", "Echo"]),
        ("phenomenonTime ge 2020-01-01T12:00:00Z", ["Alpha humidity", "Beta temperature", "Echo"]),
        ("phenomenonTime gt 2020-01-01T00:00:00Z/2020-01-02T00:00:00Z", ["Alpha humidity", "Echo"]),
        ("year(phenomenonTime) eq 2021", ["Echo"]),
        ("phenomenonTime eq null", ["Beta spare"]),
        (
            "phenomenonTime ne null",
            ["Alpha humidity", "Alpha temperature", "Beta temperature", "Echo"],
        ),
    ],
)
def test_datastream_phenomenon_time_filter(ents: Entities, expr: str, expected: list[str]) -> None:
    assert ents.names("Datastreams", expr) == expected, expr


def test_historical_location_filters(ents: Entities) -> None:
    hls = ents.historical

    def hl_ids(pred: Callable[[str, list[str], str], bool]) -> list[int]:
        return sorted(i for i, (t, locs, time) in hls.items() if pred(t, locs, time))

    old = hl_ids(lambda t, locs, time: time.startswith("2001-"))
    assert len(old) == 1
    assert filtered_ids(ents.c, "HistoricalLocations", "time lt 2010-01-01T00:00:00Z") == old
    assert filtered_ids(ents.c, "HistoricalLocations", "time eq 2001-01-01T00:00:00Z") == old
    assert filtered_ids(ents.c, "HistoricalLocations", "year(time) eq 2001") == old
    recent = hl_ids(lambda t, locs, time: not time.startswith("2001-"))
    assert filtered_ids(ents.c, "HistoricalLocations", "time gt 2010-01-01T00:00:00Z") == recent
    assert filtered_ids(ents.c, "HistoricalLocations", "Thing/name eq 'Alpha'") == hl_ids(
        lambda t, locs, time: t == "Alpha"
    )
    assert filtered_ids(ents.c, "HistoricalLocations", "Locations/name eq 'Harbour'") == hl_ids(
        lambda t, locs, time: "Harbour" in locs
    )
    assert filtered_ids(ents.c, "HistoricalLocations", "Thing/name eq 'Delta'") == []


def _ordered(
    c: Client, entity_set: str, orderby: str, key: str = "name", flt: str = ""
) -> list[Any]:
    query = f"$orderby={enc(orderby)}" + (f"&$filter={enc(flt)}" if flt else "")
    return [e[key] for e in c.values(f"{entity_set}?{query}")]


@pytest.mark.parametrize(
    ("entity_set", "orderby", "expected"),
    [
        ("Things", "name desc", sorted(NAMES, reverse=True)),
        ("Things", "name", sorted(NAMES)),
        (
            "Things",
            "properties/rank asc,name asc",
            ["Delta", "O'Brien", "Beta", "Echo", "Alpha", "Gamma"],
        ),
        (
            "Things",
            "properties/rank desc,name desc",
            ["Gamma", "Alpha", "Echo", "Beta", "O'Brien", "Delta"],
        ),
        ("Things", "length(name) desc,name", sorted(NAMES, key=lambda n: (-len(n), n))),
        (
            "Datastreams",
            "Thing/name desc,name asc",
            ["Echo", "Beta spare", "Beta temperature", "Alpha humidity", "Alpha temperature"],
        ),
        (
            "Datastreams",
            "phenomenonTime asc",
            ["Beta spare", "Alpha temperature", "Beta temperature", "Alpha humidity", "Echo"],
        ),
        (
            "Datastreams",
            "phenomenonTime desc",
            ["Echo", "Alpha humidity", "Beta temperature", "Alpha temperature", "Beta spare"],
        ),
        (
            "Datastreams",
            "unitOfMeasurement/symbol asc,name desc",
            ["Alpha humidity", "Beta temperature", "Alpha temperature", "Echo", "Beta spare"],
        ),
        ("Sensors", "encodingType desc", ["SensB", "SensA"]),
        (
            "Locations",
            "properties/zone desc,name",
            ["Harbour", "Market Hall", "Market Square", "Notes"],
        ),
    ],
)
def test_orderby_entities(
    ents: Entities, entity_set: str, orderby: str, expected: list[str]
) -> None:
    assert _ordered(ents.c, entity_set, orderby) == expected


def test_orderby_through_to_one_relation_on_observations(ents: Entities) -> None:
    got = _ordered(ents.c, "Observations", "Datastream/name asc,result desc", key="result")
    assert got == [60, 25, 10, 15, 5, 1000]
    got = _ordered(
        ents.c, "Observations", "FeatureOfInterest/name desc,phenomenonTime desc", key="result"
    )
    assert got == [1000, 15, 5, 60, 25, 10]


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "fragments", "position"),
    [
        ("name gt 5", [], True),
        ("year(name) eq 1", ["year"], True),
        ("geo.distance(name, geography'POINT(1 2)') lt 1", ["geo.distance"], True),
        ("foo eq 1", ["foo"], False),
        ("Datastreams/foo eq 1", ["foo"], False),
        ("NAME eq 'Alpha'", ["NAME"], False),
        ("Name eq 'Alpha'", ["Name"], False),
        ("frobnicate(name) eq 1", ["frobnicate"], True),
        ("length(name, 'x') eq 1", ["length"], True),
        ("substring(name) eq 'x'", ["substring"], True),
        ("substring(name, 1, 2, 3) eq 'x'", ["substring"], True),
        ("now(name) lt 1", ["now"], True),
        ("name eq", [], True),
        ("name eq 'abc", [], True),
        ("(name eq 'a'", [], True),
        ("name eq 'a')", [], True),
        ("name eq 'a' and", [], True),
        ("name eq 'a' xor name eq 'b'", [], True),
        ("name eq eq 'a'", [], True),
        ("startswith(name 'a')", [], True),
        ("false gt (null eq '')", ["order", "gt"], True),
        ("properties/flag le true", ["order", "le"], True),
    ],
)
def test_filter_errors(ents: Entities, expr: str, fragments: list[str], position: bool) -> None:
    assert_bad_request(ents.c, f"Things?$filter={enc(expr)}", *fragments, position=position)


def test_filter_error_on_observations(ents: Entities) -> None:
    assert_bad_request(ents.c, f"Observations?$filter={enc('result eq')}")
    assert_bad_request(ents.c, f"Observations?$filter={enc('name eq 1')}", "name", position=False)


def test_bad_filter_on_head_answers_like_get(ents: Entities) -> None:
    assert ents.c.head(f"Things?$filter={enc('foo eq 1')}").status_code == 400
    assert ents.c.head(f"Things?$filter={enc('name eq')}").status_code == 400


def test_orderby_errors(ents: Entities) -> None:
    assert_bad_request(ents.c, f"Things?$orderby={enc('foo desc')}", "foo", position=False)
    assert_bad_request(ents.c, f"Things?$orderby={enc('name sideways')}", position=True)
