"""Whatever a client sends, the answer is never a server error.

Hypothesis feeds random and half-valid query options, paths and bodies through the real
application on a seeded store; every answer must be below 500 and, when it is an error,
carry a message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citytwin.model.core import SENSING_CORE
from citytwin.planner.functions import function_names
from citytwin.query import unparse
from citytwin.query.ast import Binary, Call, Expr, In, Literal, LitType, Path, Unary
from tests.support import Client, datastream, location, thing

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def seeded(new_client: Callable[..., Client]) -> Iterator[Client]:
    c = new_client("fuzz")
    tid = c.create(
        "Things",
        thing(
            "T",
            locations=[location()],
            datastreams=[datastream("A"), datastream("B")],
            properties={"n": 3, "s": "x", "b": True, "list": [1, "a"], "o": {"k": 1}},
        ),
    )
    for did in c.ids(f"Things({tid})/Datastreams"):
        for i, result in enumerate([1, 2.5, "text", True, None, {"value": 3}, [1, 2]]):
            c.create(
                f"Datastreams({did})/Observations",
                {
                    "result": result,
                    "phenomenonTime": f"2024-01-0{i + 1}T00:00:00Z",
                    "validTime": "2024-01-01T00:00:00Z/2024-01-02T00:00:00Z",
                },
            )
    yield c
    c.close()


def check(resp: Any) -> None:
    assert resp.status_code < 500, (resp.request.method, str(resp.request.url), resp.text)
    if resp.status_code >= 400 and resp.request.method != "HEAD":
        body = resp.json()
        assert body["type"] == "error"
        assert body["message"]


SETS = [et.set_name for et in SENSING_CORE]
PROPS = sorted({p.name for et in SENSING_CORE for p in et.properties} | {"id", "@iot.id"})
NAVS = sorted({n.name for et in SENSING_CORE for n in et.navigations})
WORDS = PROPS + NAVS + ["unknown", "owner", "n", "s", "b", "list", "value", "k"]

tokens = st.sampled_from(
    [
        *WORDS,
        "eq",
        "ne",
        "gt",
        "ge",
        "lt",
        "le",
        "and",
        "or",
        "not",
        "add",
        "sub",
        "mul",
        "div",
        "mod",
        "in",
        "(",
        ")",
        ",",
        "/",
        "'x'",
        "''",
        "'",
        "0",
        "-1",
        "1.5",
        "1e400",
        "null",
        "true",
        "false",
        "now()",
        "2024-01-01T00:00:00Z",
        "2024-01-01",
        "2024-01-01T00:00:00Z/2024-01-02T00:00:00Z",
        "duration'P1D'",
        "duration'P1M'",
        "geography'POINT(8 51)'",
        "geography'POLYGON((8 51,9 51,9 52,8 51))'",
        "[0]",
        "12:00:00",
        "$",
        ";",
        "=",
        "*",
        *[f"{f}(" for f in function_names()],
    ]
)
token_soup = st.lists(tokens, min_size=1, max_size=12).map(" ".join)

paths = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(lambda s: Path(tuple(s)))
literals = st.one_of(
    st.builds(lambda v: Literal(v, LitType.NUMBER), st.integers(-5, 5) | st.floats(-1e6, 1e6)),
    st.builds(lambda v: Literal(v, LitType.STRING), st.text(max_size=4)),
    st.builds(lambda v: Literal(v, LitType.BOOLEAN), st.booleans()),
    st.just(Literal(None, LitType.NULL)),
)


def _typed_exprs() -> st.SearchStrategy[Expr]:
    def extend(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
        ops = ["and", "or", "eq", "ne", "gt", "ge", "lt", "le", "add", "sub", "mul", "div", "mod"]
        return st.one_of(
            st.builds(Binary, st.sampled_from(ops), children, children),
            st.builds(Unary, st.sampled_from(["not", "neg"]), children),
            st.builds(
                lambda n, a: Call(n, tuple(a)),
                st.sampled_from(function_names()),
                st.lists(children, max_size=3),
            ),
            st.builds(
                lambda a, i: In(a, tuple(i)), children, st.lists(literals, max_size=3, min_size=1)
            ),
        )

    return st.recursive(st.one_of(paths, literals), extend, max_leaves=8)


def q(value: str) -> str:
    return quote(value, safe="")


@SETTINGS
@given(set_name=st.sampled_from(SETS), text=token_soup)
def test_random_filters(seeded: Client, set_name: str, text: str) -> None:
    check(seeded.get(f"{set_name}?$filter={q(text)}"))


@SETTINGS
@given(set_name=st.sampled_from(SETS), expr=_typed_exprs())
def test_well_formed_but_ill_typed_filters(seeded: Client, set_name: str, expr: Expr) -> None:
    check(seeded.get(f"{set_name}?$filter={q(unparse.expr(expr))}"))


@SETTINGS
@given(
    set_name=st.sampled_from(SETS),
    option=st.sampled_from(
        ["$orderby", "$select", "$expand", "$top", "$skip", "$count", "$skiptoken", "$resultFormat"]
    ),
    text=token_soup,
)
def test_random_other_options(seeded: Client, set_name: str, option: str, text: str) -> None:
    check(seeded.get(f"{set_name}?{option}={q(text)}"))


@SETTINGS
@given(
    nav=st.sampled_from(NAVS),
    inner=st.lists(
        st.tuples(
            st.sampled_from(
                ["$filter", "$select", "$orderby", "$top", "$skip", "$count", "$expand"]
            ),
            token_soup,
        ),
        max_size=3,
    ),
)
def test_random_expand_options(seeded: Client, nav: str, inner: list[tuple[str, str]]) -> None:
    options = ";".join(f"{k}={v}" for k, v in inner)
    check(seeded.get(f"Things?$expand={q(f'{nav}({options})')}"))


segments = st.one_of(
    st.sampled_from(SETS + NAVS + PROPS + ["$value", "$ref", "", "..", "%20"]),
    st.builds(
        lambda s, i: f"{s}({i})",
        st.sampled_from(SETS + NAVS),
        st.sampled_from(["1", "2", "0", "-1", "'1'", "x", "99999999999999999999", ""]),
    ),
)


@SETTINGS
@given(
    method=st.sampled_from(["GET", "HEAD", "DELETE", "POST", "PATCH", "PUT"]),
    parts=st.lists(segments, min_size=1, max_size=5),
)
def test_random_paths(seeded: Client, method: str, parts: list[str]) -> None:
    path = "/".join(parts)
    body = {"name": "n"} if method in ("POST", "PATCH", "PUT") else None
    if method == "DELETE" and parts[0] in SETS:
        path = "Nowhere/" + path  # keep the seeded data for the other examples
    check(seeded.request(method, f"/v1.1/{path}", json=body))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.sampled_from(["2024-01-01T00:00:00Z", "application/geo+json"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from([*WORDS, "type", "coordinates", "@iot.id"]), children, max_size=4
        )
    ),
    max_leaves=10,
)


@SETTINGS
@given(
    method=st.sampled_from(["POST", "PATCH", "PUT"]),
    target=st.sampled_from(
        [
            *SETS,
            "Things(1)",
            "Datastreams(1)",
            "Observations(1)",
            "Datastreams(1)/Observations",
            "Things(1)/Locations",
            "Locations(1)",
            "Sensors(1)",
            "FeaturesOfInterest(1)",
        ]
    ),
    body=json_values,
)
def test_random_bodies(seeded: Client, method: str, target: str, body: Any) -> None:
    check(seeded.request(method, f"/v1.1/{target}", json=body))


@SETTINGS
@given(
    raw=st.binary(max_size=40),
    ctype=st.sampled_from(
        ["application/json", "text/plain", "application/json-patch+json", "", "application/xml"]
    ),
)
def test_random_bytes(seeded: Client, raw: bytes, ctype: str) -> None:
    headers = {"content-type": ctype} if ctype else {}
    check(seeded.request("PATCH", "/v1.1/Things(1)", content=raw, headers=headers))
    check(seeded.request("POST", "/v1.1/Things", content=raw, headers=headers))
