"""The legacy Chat V1 area (docs/protocol.md §10): histories, messages, NDJSON streaming.

State in :mod:`.store`, routes in :mod:`.routes`.
"""

from __future__ import annotations

from aiohttp import web

from ..state import STATE
from . import routes
from .routes import FILTER_TRIGGER, PAGE_SIZE
from .store import DEFAULT_GUEST_LIMIT, V1, V1Store

__all__ = ["DEFAULT_GUEST_LIMIT", "FILTER_TRIGGER", "PAGE_SIZE", "V1", "V1Store", "register"]


def register(app: web.Application) -> None:
    """Create the Chat V1 store and add its routes to ``app``."""
    app[V1] = V1Store(app[STATE].store)
    routes.add_routes(app)
