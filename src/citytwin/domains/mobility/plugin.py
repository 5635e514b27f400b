"""Registers the mobility domain with the platform."""

from __future__ import annotations

from collections.abc import Sequence

from citytwin.domains.base import Domain
from citytwin.domains.mobility import DOMAIN
from citytwin.plugins.hookspecs import hookimpl


@hookimpl
def citytwin_domains() -> Sequence[Domain]:
    return (DOMAIN,)
