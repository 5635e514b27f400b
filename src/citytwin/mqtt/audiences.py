"""Which principal each client of the broker acts as, and clients grouped by what they
may read (docs/security.md, MQTT)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from citytwin.access import ANONYMOUS, Principal, Role

Receives = Callable[[str], bool]  # which clients a message goes to, by client id
# a principal without what names it: what decides what it may read
AudienceKey = Principal


class Audiences:
    """The principal each client of the broker acts as (set when it connects).

    Principals that differ only in their names (the key or token, the organisation's
    name) read the same: same role and organisation (and a household key's Thing). They
    form one audience, whose notifications are computed once. Admins read everything,
    whatever their organisation.
    """

    def __init__(self) -> None:
        self._principals: dict[str, tuple[Principal, object]] = {}

    def connected(self, client: str, principal: Principal, connection: object = None) -> None:
        self._principals[client] = (principal, connection)

    def forget(self, client: str, connection: object = None) -> None:
        """Forget a client's principal; with ``connection``, only if it was set for that
        one (a client that connected anew meanwhile keeps its new principal)."""
        found = self._principals.get(client)
        if found is not None and (connection is None or found[1] is connection):
            del self._principals[client]

    def of(self, client: str) -> Principal:
        found = self._principals.get(client)
        return ANONYMOUS if found is None else found[0]

    @staticmethod
    def key(principal: Principal) -> AudienceKey:
        if principal.role is Role.ADMIN:
            return Principal("", role=Role.ADMIN)
        return replace(principal, identity="", organisation_name=None)

    def split(self, clients: Iterable[str]) -> list[tuple[Principal, frozenset[str]]]:
        """The clients grouped by audience, each group with a principal of it."""
        groups: dict[AudienceKey, tuple[Principal, set[str]]] = {}
        for client in clients:
            principal = self.of(client)
            groups.setdefault(self.key(principal), (principal, set()))[1].add(client)
        return [(p, frozenset(cs)) for p, cs in groups.values()]

    def reported_to(self, sender: Principal, client_id: str | None) -> Receives:
        """Who receives the report of a refused publish (it repeats what was sent):
        admins, the sending connection, and clients of the sender's audience; an
        anonymous sender's goes to no other anonymous client."""
        key = None if sender.anonymous else self.key(sender)

        def receives(client: str) -> bool:
            other = self.of(client)
            if other.role is Role.ADMIN or client == client_id:
                return True
            return key is not None and not other.anonymous and self.key(other) == key

        return receives
