"""The login area (docs/protocol.md §3): guest tokens, Firebase e-mail links, tRPC + polling.

State (accounts, codes, attempts, the mailbox) in :mod:`.store`; routes in :mod:`.routes`.
"""

from __future__ import annotations

from aiohttp import web

from ..state import STATE
from . import routes
from .store import AUTH, AuthStore, Mail

__all__ = ["AUTH", "AuthStore", "Mail", "register"]


def register(app: web.Application) -> None:
    """Create the login store and add the login routes and procedures to ``app``."""
    app[AUTH] = AuthStore(app[STATE].store)
    routes.add_routes(app)
