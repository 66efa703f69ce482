"""The account area (docs/protocol.md §4): own account, public profiles, follows, settings,
personas.

State (personas, settings) in :mod:`.store`; routes in :mod:`.routes` and :mod:`.personas`.
Users themselves are in the core store.
"""

from __future__ import annotations

from aiohttp import web

from ..state import STATE
from . import personas, routes
from .store import ACCOUNT, AccountStore

__all__ = ["ACCOUNT", "AccountStore", "register"]


def register(app: web.Application) -> None:
    """Create the account store and add the account and persona routes to ``app``."""
    app[ACCOUNT] = AccountStore(app[STATE].store)
    routes.add_routes(app)
    personas.add_routes(app)
