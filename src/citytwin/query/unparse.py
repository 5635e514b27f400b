"""Write query options back as text (for nextLinks of expanded collections)."""

from __future__ import annotations

from datetime import date, datetime, time

import orjson
import shapely
import shapely.geometry

from citytwin.model.values import Duration, Interval, format_instant
from citytwin.query.ast import (
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

_PREC = {
    "or": 1,
    "and": 2,
    "eq": 4,
    "ne": 4,
    "gt": 5,
    "ge": 5,
    "lt": 5,
    "le": 5,
    "add": 6,
    "sub": 6,
    "mul": 7,
    "div": 7,
    "mod": 7,
}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _duration(d: Duration) -> str:
    sign = "-" if d.months < 0 or (d.months == 0 and d.micros < 0) else ""
    months, micros = abs(d.months), abs(d.micros)
    out = "P"
    if months:
        out += f"{months}M"
    seconds, frac = divmod(micros, 1_000_000)
    out += "T" + (f"{seconds}.{frac:06d}S" if frac else f"{seconds}S")
    return sign + out


def literal(lit: Literal) -> str:
    v = lit.value
    t = lit.type
    if t is LitType.STRING:
        return _quote(v)
    if t is LitType.BOOLEAN:
        return "true" if v else "false"
    if t is LitType.NULL:
        return "null"
    if t is LitType.NUMBER:
        return repr(v)
    if t is LitType.DATETIME:
        assert isinstance(v, datetime)
        return format_instant(v)
    if t is LitType.INTERVAL:
        assert isinstance(v, Interval)
        return f"{format_instant(v.start)}/{format_instant(v.end)}"
    if t is LitType.DATE:
        assert isinstance(v, date)
        return v.isoformat()
    if t is LitType.TIME:
        assert isinstance(v, time)
        return v.isoformat()
    if t is LitType.DURATION:
        return "duration" + _quote(_duration(v))
    # GeoJSON keeps every coordinate exactly (shortest round-trip floats)
    return "geography" + _quote(orjson.dumps(shapely.geometry.mapping(v)).decode())


def path(p: Path) -> str:
    out = ""
    for seg in p.segments:
        if isinstance(seg, int):
            out += f"[{seg}]"
        else:
            out += ("/" if out else "") + seg
    return out


def expr(e: Expr, parent: int = 0) -> str:
    if isinstance(e, Literal):
        text = literal(e)
        return f"({text})" if text.startswith("-") and parent >= _PREC["mul"] else text
    if isinstance(e, Path):
        return path(e)
    if isinstance(e, Call):
        return f"{e.name}({','.join(expr(a) for a in e.args)})"
    if isinstance(e, Unary):
        if e.op == "not":
            text = f"not {expr(e.operand, 3)}"
            return f"({text})" if parent > 3 else text
        return f"-({expr(e.operand)})"
    if isinstance(e, In):
        text = f"{expr(e.left, 6)} in ({','.join(expr(i) for i in e.items)})"
        return f"({text})" if parent >= 4 else text
    prec = _PREC[e.op]
    text = f"{expr(e.left, prec)} {e.op} {expr(e.right, prec + 1)}"
    return f"({text})" if prec < parent else text


def orderby(items: tuple[OrderBy, ...]) -> str:
    return ",".join(expr(o.expr) + (" desc" if o.descending else "") for o in items)


def expand(items: tuple[Expand, ...]) -> str:
    out = []
    for item in items:
        inner = options(item.options, sep=";")
        out.append(item.navigation + (f"({inner})" if inner else ""))
    return ",".join(out)


def option_pairs(o: QueryOptions) -> list[tuple[str, str]]:
    """The options as (name, value) pairs, without $skiptoken."""
    pairs: list[tuple[str, str]] = []
    if o.select is not None:
        pairs.append(("$select", ",".join(path(p) for p in o.select)))
    if o.expand:
        pairs.append(("$expand", expand(o.expand)))
    if o.filter is not None:
        pairs.append(("$filter", expr(o.filter)))
    if o.orderby:
        pairs.append(("$orderby", orderby(o.orderby)))
    if o.top is not None:
        pairs.append(("$top", str(o.top)))
    if o.skip:
        pairs.append(("$skip", str(o.skip)))
    if o.count:
        pairs.append(("$count", "true"))
    return pairs


def options(o: QueryOptions, sep: str = "&") -> str:
    return sep.join(f"{k}={v}" for k, v in option_pairs(o))
