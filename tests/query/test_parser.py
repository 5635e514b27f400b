"""Query option parsing: text to AST, errors with positions, and round trips."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from citytwin.errors import QuerySyntaxError, UnknownQueryOption
from citytwin.model.values import Duration, Interval
from citytwin.query import unparse
from citytwin.query.ast import (
    Binary,
    Call,
    Expand,
    Expr,
    In,
    Literal,
    LitType,
    OrderBy,
    Path,
    QueryOptions,
    Unary,
)
from citytwin.query.parser import (
    parse_expand,
    parse_filter,
    parse_orderby,
    parse_query,
    parse_select,
)


def P(*segments: str | int) -> Path:
    return Path(tuple(segments))


def N(v: float) -> Literal:
    return Literal(v, LitType.NUMBER)


def S(v: str) -> Literal:
    return Literal(v, LitType.STRING)


def B(op: str, a: Expr, b: Expr) -> Binary:
    return Binary(op, a, b)


@pytest.mark.parametrize(
    ("text", "ast"),
    [
        ("name eq 'x'", B("eq", P("name"), S("x"))),
        ("name eq 'O''Brien'", B("eq", P("name"), S("O'Brien"))),
        ("Datastream/Thing/name ne ''", B("ne", P("Datastream", "Thing", "name"), S(""))),
        ("result gt -2.5", B("gt", P("result"), N(-2.5))),
        ("result le 1e3", B("le", P("result"), N(1000.0))),
        ("properties/tags[1] eq 'a'", B("eq", P("properties", "tags", 1), S("a"))),
        ("@iot.id eq 3", B("eq", P("@iot.id"), N(3))),
        ("resultTime eq null", B("eq", P("resultTime"), Literal(None, LitType.NULL))),
        ("properties/on eq true", B("eq", P("properties", "on"), Literal(True, LitType.BOOLEAN))),
        ("name in ('a', 'b')", In(P("name"), (S("a"), S("b")))),
        ("properties/active", P("properties", "active")),
        # precedence: or < and < not < eq < gt < add < mul < unary minus
        (
            "a eq 1 or b eq 2 and c eq 3",
            B("or", B("eq", P("a"), N(1)), B("and", B("eq", P("b"), N(2)), B("eq", P("c"), N(3)))),
        ),
        (
            "not a eq 1 and b eq 2",
            B("and", Unary("not", B("eq", P("a"), N(1))), B("eq", P("b"), N(2))),
        ),
        (
            "1 add result mul 2 sub -1 eq 4",
            B("eq", B("sub", B("add", N(1), B("mul", P("result"), N(2))), N(-1)), N(4)),
        ),
        ("a sub b sub c eq 0", B("eq", B("sub", B("sub", P("a"), P("b")), P("c")), N(0))),
        ("-(a) lt 0", B("lt", Unary("neg", P("a")), N(0))),
        (
            "(a eq 1 or b eq 2) and c",
            B("and", B("or", B("eq", P("a"), N(1)), B("eq", P("b"), N(2))), P("c")),
        ),
        ("A EQ 1 AnD B Gt 2", B("and", B("eq", P("A"), N(1)), B("gt", P("B"), N(2)))),
        (
            "substringof('x', tolower(name))",
            Call("substringof", (S("x"), Call("tolower", (P("name"),)))),
        ),
        (
            "Geo.Distance(location, location) lt 1",
            B("lt", Call("geo.distance", (P("location"), P("location"))), N(1)),
        ),
        ("now() gt resultTime", B("gt", Call("now", ()), P("resultTime"))),
    ],
)
def test_filter_ast(text: str, ast: Expr) -> None:
    assert parse_filter(text) == ast


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), LitType.DATETIME),
        ("2024-01-02T04:04:05+01:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), LitType.DATETIME),
        ("2024-01-02T04:04:05 01:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), LitType.DATETIME),
        (
            "2024-01-02T03:04:05.250Z",
            datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=UTC),
            LitType.DATETIME,
        ),
        ("2024-01-02", date(2024, 1, 2), LitType.DATE),
        ("12:30:00", time(12, 30), LitType.TIME),
        ("duration'P1DT2H'", Duration(0, (26 * 3600) * 10**6), LitType.DURATION),
        ("duration'P1M'", Duration(1, 0), LitType.DURATION),
        (
            "2024-01-01T00:00:00Z/2024-01-02T00:00:00Z",
            Interval(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)),
            LitType.INTERVAL,
        ),
    ],
)
def test_literals(text: str, value: object, kind: LitType) -> None:
    ast = parse_filter(f"x eq {text}")
    assert isinstance(ast, Binary)
    assert ast.right == Literal(value, kind)


@pytest.mark.parametrize(
    "text",
    [
        "geography'POINT(8 51)'",
        "geometry'SRID=4326;POINT(8 51)'",
        """geography'{"type":"Point","coordinates":[8,51]}'""",
    ],
)
def test_geometry_literals_accept_wkt_and_geojson(text: str) -> None:
    ast = parse_filter(f"st_equals(location, {text})")
    assert isinstance(ast, Call)
    lit = ast.args[1]
    assert isinstance(lit, Literal)
    assert lit.type is LitType.GEOMETRY
    assert shapely.equals(lit.value, shapely.Point(8, 51))


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("name eq", "unexpected end", 8),
        ("name eq 'x", "unexpected character", 9),
        ("name eq eq 'x'", "unexpected \"'x'\"", 12),
        ("(name eq 'x'", "unexpected end", 13),
        ("x eq 2021-02-30", "day is out of range", 6),
        ("x eq duration'P1X'", "not an ISO 8601 duration", 6),
        ("st_within(location, geography'POINT(1)')", "WKT", 21),
        ("st_within(location, geography'POINT(200 0)')", "WGS 84", 21),
        ("x eq 1 $ 2", "unexpected character", 8),
    ],
)
def test_syntax_errors_name_the_problem_and_position(
    text: str, message: str, position: int
) -> None:
    with pytest.raises(QuerySyntaxError) as err:
        parse_filter(text)
    assert err.value.position == position
    assert message in err.value.message
    assert err.value.message.startswith("$filter:")


def test_orderby_and_select() -> None:
    assert parse_orderby("phenomenonTime desc, Datastream/name,result asc") == (
        OrderBy(P("phenomenonTime"), True),
        OrderBy(P("Datastream", "name"), False),
        OrderBy(P("result"), False),
    )
    assert parse_select("id,name,properties/owner") == (
        P("id"),
        P("name"),
        P("properties", "owner"),
    )


def test_expand_nested_options_and_path_form_merge() -> None:
    got = parse_expand(
        "Datastreams($filter=name eq 'a;b)';$top=2;$count=true;"
        "$expand=Observations($orderby=phenomenonTime desc;$top=1)),"
        "Datastreams/Sensor,Locations"
    )
    assert got == (
        Expand(
            "Datastreams",
            QueryOptions(
                filter=B("eq", P("name"), S("a;b)")),
                top=2,
                count=True,
                expand=(
                    Expand(
                        "Observations",
                        QueryOptions(orderby=(OrderBy(P("phenomenonTime"), True),), top=1),
                    ),
                    Expand("Sensor", QueryOptions()),
                ),
            ),
        ),
        Expand("Locations", QueryOptions()),
    )


def test_expand_conflicting_duplicates_are_rejected() -> None:
    with pytest.raises(QuerySyntaxError, match="expanded twice"):
        parse_expand("Datastreams($top=1),Datastreams($top=2)")


def test_query_string_options() -> None:
    opts = parse_query([("$top", "5"), ("$SKIP", "2"), ("$count", "TRUE"), ("other", "x")])
    assert opts == QueryOptions(top=5, skip=2, count=True)
    with pytest.raises(UnknownQueryOption, match=r"\$bogus"):
        parse_query([("$bogus", "1")])
    with pytest.raises(UnknownQueryOption, match="more than once"):
        parse_query([("$top", "1"), ("$top", "2")])
    with pytest.raises(QuerySyntaxError, match="non-negative"):
        parse_query([("$top", "-1")])
    with pytest.raises(QuerySyntaxError, match="is empty"):
        parse_query([("$filter", "  ")])


# --- round trips through the unparser -------------------------------------------------------
names = st.sampled_from(["name", "result", "phenomenonTime", "properties", "Datastream", "x_1"])
paths = st.builds(
    lambda a, b: Path(tuple(a) + tuple(b)),
    st.lists(names, min_size=1, max_size=3),
    st.lists(st.integers(0, 3), max_size=1),
)
literals = st.one_of(
    st.builds(lambda v: Literal(v, LitType.NUMBER), st.integers(-(10**9), 10**9)),
    st.builds(
        lambda v: Literal(v, LitType.NUMBER),
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    ),
    st.builds(lambda v: Literal(v, LitType.STRING), st.text(max_size=8)),
    st.builds(lambda v: Literal(v, LitType.BOOLEAN), st.booleans()),
    st.just(Literal(None, LitType.NULL)),
    st.builds(
        lambda v: Literal(v, LitType.DATETIME),
        st.datetimes(
            min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
        ),
    ),
    st.builds(
        lambda m, s: Literal(Duration(m, s), LitType.DURATION),
        st.integers(0, 24),
        st.integers(0, 10**12),
    ),
    st.builds(
        lambda x, y: Literal(shapely.Point(x, y), LitType.GEOMETRY),
        st.floats(-180, 180),
        st.floats(-90, 90),
    ),
)


def _exprs() -> st.SearchStrategy[Expr]:
    leaves = st.one_of(literals, paths)

    def extend(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
        ops = ["and", "or", "eq", "ne", "gt", "ge", "lt", "le", "add", "sub", "mul", "div", "mod"]
        return st.one_of(
            st.builds(Binary, st.sampled_from(ops), children, children),
            st.builds(Unary, st.just("not"), children),
            st.builds(
                lambda n, a: Call(n, tuple(a)),
                st.sampled_from(["tolower", "geo.distance", "now", "substring"]),
                st.lists(children, max_size=3),
            ),
            st.builds(
                lambda a, items: In(a, tuple(items)),
                children,
                st.lists(literals, min_size=1, max_size=3),
            ),
        )

    return st.recursive(leaves, extend, max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(_exprs())
def test_unparse_then_parse_gives_the_same_tree(expr: Expr) -> None:
    text = unparse.expr(expr)
    assert parse_filter(text) == expr, text


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_exprs(), st.booleans()), min_size=1, max_size=3))
def test_orderby_round_trip(items: list[tuple[Expr, bool]]) -> None:
    orderby = tuple(OrderBy(e, d) for e, d in items)
    assert parse_orderby(unparse.orderby(orderby)) == orderby
