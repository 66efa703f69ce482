"""The group-chat area (docs/protocol.md §9): murooms REST routes and the Centrifugo socket.

State (rooms, turns, channels) in :mod:`.store`, REST routes in :mod:`.rest`, the socket in
:mod:`.socket`.
"""

from __future__ import annotations

from aiohttp import web

from ..state import STATE
from . import rest
from .store import ROOMS, RoomStore

__all__ = ["ROOMS", "RoomStore", "register"]


def register(app: web.Application) -> None:
    """Create the room store and add the room routes and socket to ``app``."""
    app[ROOMS] = RoomStore(app[STATE].store)
    rest.add_routes(app)
