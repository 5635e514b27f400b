"""Household privacy in KPIs: personal meter data a principal may not read reaches it only
as sums over at least k households (k-anonymity, setting ``privacy_k``); see
docs/security.md.

A KPI that uses household meters splits them in two: those the principal may read
(its own organisation's, for an operator) count as usual; the others ("hidden") are
added up per cell (a 15-minute interval, or the whole period for register energies), and
a cell's sum is released only if it passes :func:`releasable`:

- at least k distinct households contribute to it, and
- it cannot be differenced against the released sums of the areas nested in it: the
  households of the area that lie outside every released finer area (its districts, its
  neighbourhoods) are none or at least k. Otherwise "district minus its neighbourhoods"
  would give the sum of fewer than k households, one at the extreme.

Areas are the predefined city, districts and neighbourhoods (never arbitrary polygons),
so these are the only sets a client can combine. What remains possible is written down in
docs/security.md (changes of the household set between two requests, neighbourhoods
that cross district borders).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from citytwin.domains.data import AREA_LEVELS, CITY, Stream


def _finer_levels(area: str) -> tuple[str, ...]:
    if area == CITY:
        return AREA_LEVELS
    level = area.partition(":")[0]
    return AREA_LEVELS[AREA_LEVELS.index(level) + 1 :]


def releasable(members: Mapping[int, Mapping[str, Any]], area: str, k: int) -> bool:
    """Whether the sum over the households ``members`` (Thing id -> Thing properties,
    those contributing to one cell of ``area``) may be released (module docstring)."""
    if len(members) < k:
        return False
    for level in _finer_levels(area):
        groups: dict[str, dict[int, Mapping[str, Any]]] = {}
        for thing, props in members.items():
            name = props.get(level)
            if isinstance(name, str) and name:
                groups.setdefault(name, {})[thing] = props
        released: set[int] = set()
        for name, group in groups.items():
            if releasable(group, f"{level}:{name}", k):
                released.update(group)
        rest = len(members) - len(released)
        if 0 < rest < k:
            return False
    return True


@dataclass
class Households:
    """What a KPI tells about the hidden households it aggregated (the ``privacy`` member
    of the response)."""

    k: int
    households: int  # hidden households in the area
    released: int = 0  # cells whose household sum was released
    withheld: int = 0  # cells left out because their sum could single households out
    notes: list[str] = field(default_factory=list)

    @property
    def aggregated(self) -> bool:
        return self.released > 0

    def document(self, cells: str = "intervals") -> dict[str, Any]:
        out: dict[str, Any] = {
            "k": self.k,
            "households": self.households,
            "aggregated": self.aggregated,
        }
        if self.withheld:
            out[f"withheld_{cells}"] = self.withheld
        if not self.aggregated and self.withheld:
            out["reason"] = (
                f"the area has {self.households} households whose meter data this request "
                f"may not read; their figures are given only as sums over at least "
                f"{self.k} households that cannot be told apart by comparing areas, and "
                "this area has no such sum, so every figure that includes them is null"
            )
        elif self.withheld:
            out["reason"] = (
                f"{self.withheld} {cells} are left out: fewer than {self.k} of the area's "
                "households have data in them, or comparing areas would tell them apart"
            )
        if self.notes:
            out["notes"] = self.notes
        return out


def interval_sums(
    streams: Sequence[Stream],
    means: Mapping[int, Mapping[datetime, float]],
    area: str,
    k: int,
) -> tuple[dict[datetime, float], set[datetime], Households]:
    """The hidden households' sum per interval where it may be released, the intervals
    where it may not, and the note for the response."""
    things = {s.thing_id: s.thing_properties for s in streams}
    per_time: dict[datetime, dict[int, float]] = {}
    for s in streams:
        for t, v in means.get(s.id, {}).items():
            cell = per_time.setdefault(t, {})
            cell[s.thing_id] = cell.get(s.thing_id, 0.0) + v
    note = Households(k, len(things))
    sums: dict[datetime, float] = {}
    withheld: set[datetime] = set()
    for t, cell in per_time.items():
        if releasable({thing: things[thing] for thing in cell}, area, k):
            sums[t] = sum(cell.values())
            note.released += 1
        else:
            withheld.add(t)
            note.withheld += 1
    return sums, withheld, note


def household_sum(
    values: Iterable[tuple[Stream, float | None]], area: str, k: int
) -> tuple[float | None, int]:
    """The sum over households of one figure (e.g. the energy each drew over the period),
    or None where it may not be released; and how many households it sums."""
    members: dict[int, Mapping[str, Any]] = {}
    out = 0.0
    for s, v in values:
        if v is not None:
            members[s.thing_id] = s.thing_properties
            out += v
    if not members or not releasable(members, area, k):
        return None, len(members)
    return out, len(members)
