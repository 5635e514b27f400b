"""The set of entity types a running service knows, checked for consistency."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from citytwin.model.types import EntityType, Navigation


class Registry:
    """Entity types by name and by entity-set name, with navigation checked both ways."""

    def __init__(self, types: Iterable[EntityType]) -> None:
        self._by_name: dict[str, EntityType] = {}
        self._by_set: dict[str, EntityType] = {}
        for et in types:
            if et.name in self._by_name or et.set_name in self._by_set:
                raise ValueError(f"entity type {et.name} is registered twice")
            self._by_name[et.name] = et
            self._by_set[et.set_name] = et
        for et in self._by_name.values():
            for nav in et.navigations:
                self._check(et, nav)

    def _check(self, et: EntityType, nav: Navigation) -> None:
        target = self._by_name.get(nav.target)
        if target is None:
            raise ValueError(f"{et.name}.{nav.name} points to unknown type {nav.target}")
        inverse = target.navigation(nav.inverse)
        if inverse is None or inverse.target != et.name or inverse.inverse != nav.name:
            raise ValueError(f"{et.name}.{nav.name} has no matching inverse {nav.inverse}")
        if sum(x is not None for x in (nav.fk, nav.reverse_fk, nav.link)) != 1:
            raise ValueError(f"{et.name}.{nav.name} needs exactly one of fk, reverse_fk, link")

    def __iter__(self) -> Iterator[EntityType]:
        return iter(self._by_name.values())

    def type(self, name: str) -> EntityType:
        return self._by_name[name]

    def by_set(self, set_name: str) -> EntityType | None:
        return self._by_set.get(set_name)

    def target(self, nav: Navigation) -> EntityType:
        return self._by_name[nav.target]

    def inverse(self, nav: Navigation) -> Navigation:
        inv = self._by_name[nav.target].navigation(nav.inverse)
        assert inv is not None  # checked in __init__
        return inv
