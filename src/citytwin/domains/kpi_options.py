"""Reading the options a KPI request may carry besides area, interval and bucket, and
the local-time helpers that KPIs counted in calendar days or night hours share.

A KPI's options default to its domain's ``settings`` (which a city may change); a
request overrides them with query parameters such as ``?tz=Europe/Vienna``. Unknown or
malformed options are a :class:`~citytwin.errors.BadRequest` naming the option.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from citytwin.errors import BadRequest

DEFAULT_TZ = "Europe/Berlin"


def check_options(options: Mapping[str, str], allowed: Collection[str], kpi: str) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise BadRequest(f"KPI {kpi} has no option {unknown[0]!r}; its options are: {known}")


def tz_option(options: Mapping[str, str], settings: Mapping[str, Any]) -> ZoneInfo:
    """The time zone that local days and night hours are counted in: option ``tz`` (an
    IANA name), else the domain setting ``tz``, else Europe/Berlin."""
    name = options.get("tz", str(settings.get("tz", DEFAULT_TZ)))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"option tz: {name!r} is not an IANA time zone name") from None


def float_option(
    options: Mapping[str, str],
    settings: Mapping[str, Any],
    name: str,
    *,
    minimum: float = 0.0,
    positive: bool = True,
) -> float:
    """Option ``name`` as a finite number (greater than ``minimum`` when ``positive``,
    else at least ``minimum``), defaulting to the domain setting of the same name."""
    raw: Any = options.get(name, settings.get(name))
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"option {name}: {raw!r} is not a number") from None
    if not math.isfinite(value) or (value <= minimum if positive else value < minimum):
        relation = "greater than" if positive else "at least"
        raise BadRequest(f"option {name}: it must be a finite number {relation} {minimum:g}")
    return value


def ceil_time(t: datetime, step: timedelta) -> datetime:
    """``t`` rounded up to a multiple of ``step`` since 1970-01-01 UTC."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch - ((epoch - t) // step) * step


def local_date(t: datetime, tz: ZoneInfo) -> date:
    return t.astimezone(tz).date()


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` begins in ``tz``."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
