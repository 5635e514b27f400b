"""Typed syntax trees of query options. Frozen, comparable, free of SQL.

Every node carries ``pos``, the 1-based position of its first character in the option
value, for error messages; positions do not take part in equality.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class LitType(enum.Enum):
    NUMBER = "number"
    STRING = "string"
    BOOLEAN = "boolean"
    NULL = "null"
    DATETIME = "datetime"
    DATE = "date"
    TIME = "time"
    DURATION = "duration"
    GEOMETRY = "geometry"
    INTERVAL = "interval"


@dataclass(frozen=True)
class Node:
    pos: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True)
class Literal(Node):
    value: Any
    type: LitType


@dataclass(frozen=True)
class Path(Node):
    """``Datastream/Thing/name`` or ``properties/tags[0]``: names, and indexes as ints."""

    segments: tuple[str | int, ...]


@dataclass(frozen=True)
class Call(Node):
    name: str  # lower-cased, e.g. "geo.distance"
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "not" | "neg"
    operand: Expr


@dataclass(frozen=True)
class Binary(Node):
    op: str  # and or | eq ne gt ge lt le | add sub mul div mod
    left: Expr
    right: Expr


@dataclass(frozen=True)
class In(Node):
    left: Expr
    items: tuple[Expr, ...]


Expr = Literal | Path | Call | Unary | Binary | In

LOGICAL = frozenset({"and", "or"})
COMPARISON = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
ARITHMETIC = frozenset({"add", "sub", "mul", "div", "mod"})


@dataclass(frozen=True)
class OrderBy:
    expr: Expr
    descending: bool = False


@dataclass(frozen=True)
class Expand:
    navigation: str
    options: QueryOptions


@dataclass(frozen=True)
class QueryOptions:
    """All query options of one request or of one level of ``$expand``."""

    select: tuple[Path, ...] | None = None
    expand: tuple[Expand, ...] = ()
    filter: Expr | None = None
    orderby: tuple[OrderBy, ...] = ()
    top: int | None = None
    skip: int = 0
    count: bool = False
    skiptoken: str | None = None
    result_format: str | None = None
