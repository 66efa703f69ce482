"""The chat V2 area (docs/protocol.md §7, §8): neo REST routes and the ``/neo/ws/`` socket.

State in :mod:`.store`, REST routes in :mod:`.rest`, the socket in :mod:`.ws`.
"""

from __future__ import annotations

from aiohttp import web

from ..state import STATE
from . import rest, ws
from .store import CHAT, ChatStore

__all__ = ["CHAT", "ChatStore", "register"]


def register(app: web.Application) -> None:
    """Create the chat store and add the chat routes and socket to ``app``."""
    app[CHAT] = ChatStore(app[STATE].store)
    rest.add_routes(app)
    ws.add_routes(app)
