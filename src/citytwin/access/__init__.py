"""Who is asking, and what they may read and write (docs/security.md).

Every request carries a :class:`Principal` into the service layer; the service decides
there, once for every transport, what the principal may see (conditions the planner adds
to every query, see :mod:`citytwin.access.policy`) and change (checks inside the write
transaction, see :mod:`citytwin.access.guard`). Adapters only turn credentials into a
principal (:mod:`citytwin.access.keys`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ANONYMOUS", "SYSTEM", "Principal", "Role"]


class Role(enum.StrEnum):
    """What a principal may do with the data it can see.

    admin: everything; operator: read and write its organisation's data (and create
    Tasks); reader: read its organisation's data except personal data; household: read
    one Thing (a household's meter) with its personal data, and open data; public: read
    open data only (the role of anonymous requests).
    """

    ADMIN = "admin"
    OPERATOR = "operator"
    READER = "reader"
    HOUSEHOLD = "household"
    PUBLIC = "public"


@dataclass(frozen=True)
class Principal:
    """The identity a request acts as."""

    identity: str  # "anonymous", "key:<id>" for an API key, "oidc:<sub>" for a token
    organisation: int | None = None  # the organisation's id; None: belongs to none
    role: Role = Role.PUBLIC
    organisation_name: str | None = None
    thing: int | None = None  # a household key's one Thing

    @property
    def anonymous(self) -> bool:
        return self.identity == "anonymous"

    @property
    def writes(self) -> bool:
        return self.role in (Role.ADMIN, Role.OPERATOR)

    def describe(self) -> str:
        """How messages name the principal ("this request is anonymous", ...)."""
        if self.anonymous:
            return (
                "this request is anonymous (send an API key: over HTTP as Authorization: "
                "Bearer <key>, over MQTT as docs/mqtt.md says)"
            )
        org = f" of organisation {self.organisation_name}" if self.organisation_name else ""
        if self.role is Role.HOUSEHOLD:
            org = f" for Thing {self.thing}"
        if self.identity.startswith("oidc:"):
            who = f"the token of {self.identity.removeprefix('oidc:')}"
        else:
            who = f"the API key {self.identity.removeprefix('key:')}"
        return f"{who}{org} has the role {self.role}"


ANONYMOUS = Principal("anonymous")
# the platform's own requests (handing an authorised Task to its device): not a client
SYSTEM = Principal("system", role=Role.ADMIN)
