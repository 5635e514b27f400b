"""Registers the environment domain as a built-in plugin."""

from __future__ import annotations

from collections.abc import Sequence

from citytwin.domains.base import Domain
from citytwin.domains.environment import DOMAIN
from citytwin.plugins.hookspecs import hookimpl


@hookimpl
def citytwin_domains() -> Sequence[Domain]:
    return (DOMAIN,)
