"""Energy from cumulative meter registers, and the 15-minute interval grid.

A register (OBIS 1-0:1.8.0 import, 1-0:2.8.0 export) only grows; the energy of a period is
the difference of readings. Real data breaks that in known ways (ThingsBoard #11090 shows
what naive differences do), and every one is handled here:

- late and out-of-order deliveries: readings are ordered by phenomenonTime, not arrival;
- duplicates: a second reading for the same time is ignored;
- resets: a register that drops was restarted from 0, so the energy since the last
  reading is the new value (never a negative difference);
- meter swaps: a new meter serial (``parameters.meter``) starts a new register. If its
  first value is below the old meter's last one, it is taken as a fresh register counted
  from 0 (like a reset); otherwise its first reading is a baseline and the energy between
  the two meters' readings is unknown and counted as 0. A swap without a serial shows as
  a drop and is counted as a reset.

The energy between two readings is spread evenly over the time between them, so a period
that starts or ends between readings gets its share.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

STEP = timedelta(minutes=15)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Increment:
    """Energy ``kwh`` registered between two readings at ``start`` and ``end``."""

    start: datetime
    end: datetime
    kwh: float


@dataclass
class RegisterEnergy:
    increments: list[Increment] = field(default_factory=list)
    readings: int = 0  # numeric readings used
    duplicates: int = 0
    resets: int = 0
    swaps: int = 0


def register_increments(
    readings: Iterable[tuple[datetime, object, str | None]],
) -> RegisterEnergy:
    """The increments of a register from ``(time, value, meter serial or None)`` readings
    in any order; see the module docstring for resets, swaps and duplicates."""
    out = RegisterEnergy()
    valid = [(t, v, m) for t, v, m in readings if isinstance(v, (int, float)) and _number(v)]
    valid.sort(key=lambda r: r[0])
    prev: tuple[datetime, float, str | None] | None = None
    for t, raw, meter in valid:
        value = float(raw)
        if prev is not None and t == prev[0]:
            out.duplicates += 1
            continue
        out.readings += 1
        if prev is not None:
            p_time, p_value, p_meter = prev
            if meter is not None and p_meter is not None and meter != p_meter:
                out.swaps += 1
                kwh = value if value < p_value else 0.0
            elif value < p_value:
                out.resets += 1
                kwh = value
            else:
                kwh = value - p_value
            out.increments.append(Increment(p_time, t, kwh))
        # a reading without a serial keeps the last known one
        prev = (t, value, meter if meter is not None else prev[2] if prev else None)
    return out


def energy_between(increments: Iterable[Increment], start: datetime, end: datetime) -> float:
    """The energy of ``increments`` falling into [start, end), each spread evenly."""
    total = 0.0
    for inc in increments:
        overlap = min(inc.end, end) - max(inc.start, start)
        if overlap > timedelta(0):
            total += inc.kwh * (overlap / (inc.end - inc.start))
    return total


def ceil_time(t: datetime, step: timedelta = STEP) -> datetime:
    """``t`` rounded up to a multiple of ``step`` since 1970-01-01 UTC."""
    floored = _EPOCH + ((t - _EPOCH) // step) * step
    return floored if floored == t else floored + step


def intervals(start: datetime, end: datetime, step: timedelta = STEP) -> list[datetime]:
    """Starts of the ``step`` intervals on the UTC grid lying wholly inside [start, end)."""
    out = []
    t = ceil_time(start, step)
    while t + step <= end:
        out.append(t)
        t += step
    return out


def rebucket(
    values: Mapping[datetime, float], origin: datetime, size: timedelta
) -> dict[datetime, float]:
    """Sums of ``values`` per bucket of ``size`` counted from ``origin``."""
    out: dict[datetime, float] = {}
    for t, v in values.items():
        key = origin + ((t - origin) // size) * size
        out[key] = out.get(key, 0.0) + v
    return out


def _number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )
