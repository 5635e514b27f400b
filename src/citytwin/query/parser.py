"""Parse query option values into the AST of :mod:`citytwin.query.ast`.

Only syntax is checked here; whether a path exists or types fit is the planner's job.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, time
from importlib import resources
from typing import Any

import lark
from lark import Token, Transformer, v_args

from citytwin.errors import QuerySyntaxError, UnknownQueryOption
from citytwin.model import values
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

_OPTIONS = (
    "$filter",
    "$orderby",
    "$select",
    "$expand",
    "$top",
    "$skip",
    "$count",
    "$skiptoken",
    "$resultFormat",
)


@functools.cache
def _parser() -> lark.Lark:
    grammar = resources.files("citytwin.query").joinpath("grammar.lark").read_text("utf-8")
    return lark.Lark(
        grammar,
        parser="lalr",
        start=["filter", "orderby", "select", "expand"],
        propagate_positions=False,
        maybe_placeholders=True,
    )


def _unquote(text: str) -> str:
    return text.replace("''", "'")


def _typed_body(token: Token) -> str:
    """The text between the quotes of ``duration'...'`` or ``geography'...'``."""
    return _unquote(token.value[token.value.index("'") + 1 : -1])


class _Literal(ValueError):
    """A literal that lexes but has no valid value (e.g. 2021-02-30)."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


@v_args(inline=True)
class _ToAst(Transformer[Token, Any]):
    # --- literals
    def string(self, tok: Token) -> Literal:
        return Literal(_unquote(tok.value[1:-1]), LitType.STRING, pos=_col(tok))

    def number(self, tok: Token) -> Literal:
        text = tok.value
        value: float | int = int(text) if text.isdigit() else float(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise _Literal(f"number {text} is out of range", _col(tok))
        return Literal(value, LitType.NUMBER, pos=_col(tok))

    def true(self, tok: Token) -> Literal:
        return Literal(True, LitType.BOOLEAN, pos=_col(tok))

    def false(self, tok: Token) -> Literal:
        return Literal(False, LitType.BOOLEAN, pos=_col(tok))

    def null(self, tok: Token) -> Literal:
        return Literal(None, LitType.NULL, pos=_col(tok))

    def datetime(self, tok: Token) -> Literal:
        value = self._convert(lambda s: values.parse_instant(s, keep_offset=True), tok)
        return Literal(value, LitType.DATETIME, pos=_col(tok))

    def interval(self, tok: Token) -> Literal:
        value = self._convert(lambda s: values.parse_interval(s, allow_instant=False), tok)
        return Literal(value, LitType.INTERVAL, pos=_col(tok))

    def date(self, tok: Token) -> Literal:
        return Literal(self._convert(date.fromisoformat, tok), LitType.DATE, pos=_col(tok))

    def timeofday(self, tok: Token) -> Literal:
        return Literal(self._convert(time.fromisoformat, tok), LitType.TIME, pos=_col(tok))

    def duration(self, tok: Token) -> Literal:
        value = self._convert(values.parse_duration, tok, _typed_body(tok))
        return Literal(value, LitType.DURATION, pos=_col(tok))

    def geo(self, tok: Token) -> Literal:
        value = self._convert(values.geometry_from_text, tok, _typed_body(tok))
        return Literal(value, LitType.GEOMETRY, pos=_col(tok))

    @staticmethod
    def _convert(fn: Any, tok: Token, text: str | None = None) -> Any:
        try:
            return fn(tok.value if text is None else text)
        except ValueError as exc:
            raise _Literal(str(exc), _col(tok)) from None

    # --- expressions
    def path(self, *segments: list[str | int]) -> Path:
        flat: list[str | int] = []
        for seg in segments:
            flat.extend(seg)
        first = segments[0][0]
        plain = tuple(str(s) if isinstance(s, str) else s for s in flat)
        return Path(plain, pos=getattr(first, "column", 0))

    def segment(self, name: Token, *indexes: Token) -> list[str | int]:
        head: Any = name  # keep the Token so that path() can read its column
        return [head, *(int(i.value) for i in indexes)]

    def call(self, name: Token, *args: Expr | None) -> Call:
        real = tuple(a for a in args if a is not None)
        return Call(name.value.lower(), real, pos=_col(name))

    def neg(self, minus: Token, operand: Expr) -> Expr:
        if isinstance(operand, Literal) and operand.type is LitType.NUMBER:
            return Literal(-operand.value, LitType.NUMBER, pos=_col(minus))
        return Unary("neg", operand, pos=_col(minus))

    def not_(self, tok: Token, operand: Expr) -> Expr:
        return Unary("not", operand, pos=_col(tok))

    def _chain(self, *items: Any) -> Expr:
        left: Expr = items[0]
        for i in range(1, len(items), 2):
            op: Token = items[i]
            left = Binary(op.value.lower(), left, items[i + 1], pos=_pos(left))
        return left

    or_expr = and_expr = eq_expr = rel_expr = add_expr = mul_expr = _chain

    def in_(self, left: Expr, _tok: Token, *items: Expr) -> In:
        return In(left, tuple(items), pos=_pos(left))

    # --- option lists
    def filter(self, expr: Expr) -> Expr:
        return expr

    def order_item(self, expr: Expr, direction: Token | None = None) -> OrderBy:
        return OrderBy(expr, direction is not None and direction.value.lower() == "desc")

    def orderby(self, *items: OrderBy) -> tuple[OrderBy, ...]:
        return items

    orderby_list = orderby

    def select_item(self, item: Path | Token) -> Path:
        if isinstance(item, Token):
            return Path(("*",), pos=_col(item))
        return item

    def select(self, *items: Path) -> tuple[Path, ...]:
        return items

    select_list = select

    def expand(self, *items: Expand) -> tuple[Expand, ...]:
        return items

    expand_list = expand

    def expand_item(self, path: Path, *options: tuple[str, Any] | None) -> Expand:
        opts: dict[str, Any] = {}
        for opt in options:
            if opt is None:
                continue
            name, value = opt
            if name in opts:
                raise _Literal(f"${name} given twice in $expand of {path.segments[0]}", path.pos)
            opts[name] = value
        for seg in path.segments:
            if not isinstance(seg, str):
                raise _Literal("$expand paths take no [index]", path.pos)
        names = [str(s) for s in path.segments]
        inner = Expand(names[-1], QueryOptions(**opts))
        for name in reversed(names[:-1]):
            inner = Expand(name, QueryOptions(expand=(inner,)))
        return inner

    def x_filter(self, expr: Expr) -> tuple[str, Any]:
        return "filter", expr

    def x_select(self, items: tuple[Path, ...]) -> tuple[str, Any]:
        return "select", items

    def x_expand(self, items: tuple[Expand, ...]) -> tuple[str, Any]:
        return "expand", merge_expands(items)

    def x_orderby(self, items: tuple[OrderBy, ...]) -> tuple[str, Any]:
        return "orderby", items

    def x_top(self, tok: Token) -> tuple[str, Any]:
        return "top", int(tok.value)

    def x_skip(self, tok: Token) -> tuple[str, Any]:
        return "skip", int(tok.value)

    def x_count(self, tok: Token) -> tuple[str, Any]:
        return "count", tok.value.lower() == "true"


def _col(tok: Token) -> int:
    return tok.column or 0


def _pos(node: Any) -> int:
    return getattr(node, "pos", 0) or 0


_TRANSFORMER = _ToAst()


def _parse(option: str, text: str, start: str) -> Any:
    if not text.strip():
        raise QuerySyntaxError(option, "is empty")
    try:
        tree = _parser().parse(text, start=start)
        return _TRANSFORMER.transform(tree)
    except lark.exceptions.VisitError as exc:
        orig = exc.orig_exc
        if isinstance(orig, _Literal):
            raise QuerySyntaxError(option, str(orig), orig.pos) from None
        raise
    except lark.exceptions.UnexpectedCharacters as exc:
        raise QuerySyntaxError(
            option, f"unexpected character {text[exc.pos_in_stream or 0]!r}", exc.column
        ) from None
    except lark.exceptions.UnexpectedToken as exc:
        if exc.token.type == "$END":
            raise QuerySyntaxError(option, "unexpected end of expression", len(text) + 1) from None
        raise QuerySyntaxError(option, f"unexpected {exc.token.value!r}", exc.column) from None
    except lark.exceptions.UnexpectedEOF:
        raise QuerySyntaxError(option, "unexpected end of expression", len(text) + 1) from None


def parse_filter(text: str, option: str = "$filter") -> Expr:
    result: Expr = _parse(option, text, "filter")
    return result


def parse_orderby(text: str) -> tuple[OrderBy, ...]:
    result: tuple[OrderBy, ...] = _parse("$orderby", text, "orderby")
    return result


def parse_select(text: str) -> tuple[Path, ...]:
    result: tuple[Path, ...] = _parse("$select", text, "select")
    return result


def parse_expand(text: str) -> tuple[Expand, ...]:
    return merge_expands(_parse("$expand", text, "expand"))


def merge_expands(items: Iterable[Expand]) -> tuple[Expand, ...]:
    """Merge ``Datastreams($top=2),Datastreams/Sensor`` into one Datastreams expansion."""
    merged: dict[str, Expand] = {}
    for item in items:
        have = merged.get(item.navigation)
        if have is None:
            merged[item.navigation] = item
            continue
        a, b = have.options, item.options
        defaults = QueryOptions()
        combined: dict[str, Any] = {}
        for field_name in ("select", "filter", "orderby", "top", "skip", "count"):
            va, vb = getattr(a, field_name), getattr(b, field_name)
            dv = getattr(defaults, field_name)
            if va != dv and vb != dv and va != vb:
                raise QuerySyntaxError(
                    "$expand", f"{item.navigation} is expanded twice with different ${field_name}"
                )
            combined[field_name] = va if va != dv else vb
        combined["expand"] = merge_expands((*a.expand, *b.expand))
        merged[item.navigation] = Expand(item.navigation, replace(a, **combined))
    return tuple(merged.values())


def _non_negative(option: str, text: str) -> int:
    if not text.isdigit():
        raise QuerySyntaxError(option, f"must be a non-negative integer, got {text!r}")
    return int(text)


def parse_query(params: Iterable[tuple[str, str]]) -> QueryOptions:
    """Parse the ``$``-options of a query string; other parameters are ignored."""
    seen: dict[str, str] = {}
    for key, value in params:
        if not key.startswith("$"):
            continue
        canonical = next((o for o in _OPTIONS if o.lower() == key.lower()), None)
        if canonical is None:
            raise UnknownQueryOption(
                f"unknown query option {key}; supported: {', '.join(_OPTIONS)}"
            )
        if canonical in seen:
            raise UnknownQueryOption(f"query option {canonical} is given more than once")
        seen[canonical] = value

    opts: dict[str, Any] = {}
    if "$filter" in seen:
        opts["filter"] = parse_filter(seen["$filter"])
    if "$orderby" in seen:
        opts["orderby"] = parse_orderby(seen["$orderby"])
    if "$select" in seen:
        opts["select"] = parse_select(seen["$select"])
    if "$expand" in seen:
        opts["expand"] = parse_expand(seen["$expand"])
    if "$top" in seen:
        opts["top"] = _non_negative("$top", seen["$top"])
    if "$skip" in seen:
        opts["skip"] = _non_negative("$skip", seen["$skip"])
    if "$count" in seen:
        flag = seen["$count"].lower()
        if flag not in ("true", "false"):
            raise QuerySyntaxError("$count", f"must be true or false, got {seen['$count']!r}")
        opts["count"] = flag == "true"
    if "$skiptoken" in seen:
        opts["skiptoken"] = seen["$skiptoken"]
    if "$resultFormat" in seen:
        opts["result_format"] = seen["$resultFormat"]
    return QueryOptions(**opts)
