"""The characters area (docs/protocol.md §6): the seed cast, the catalog, search and discovery.

The cast (the built-in characters and their reply styles) is in :mod:`.cast`, state and
payload shapes in :mod:`.store` (key ``CHARACTERS``), routes in :mod:`.catalog` and
:mod:`.discovery`.
"""

from __future__ import annotations

from aiohttp import web

from .cast import (
    CAST,
    CAST_CREATOR_ID,
    CAST_CREATOR_USERNAME,
    GENERIC_STYLE,
    SeedCharacter,
    character_id,
    split_cumulative,
)

__all__ = [
    "CAST",
    "CAST_CREATOR_ID",
    "CAST_CREATOR_USERNAME",
    "GENERIC_STYLE",
    "SeedCharacter",
    "character_id",
    "register",
    "split_cumulative",
]


def register(app: web.Application) -> None:
    """Create the character store and add the character, search and discovery routes."""
    # Imported here, not above: the core store imports ``.cast`` (every character is a
    # SeedCharacter), and these modules import the core store back.
    from ..state import STATE
    from . import catalog, discovery
    from .store import CHARACTERS, CharacterStore

    app[CHARACTERS] = CharacterStore(app[STATE].store)
    catalog.add_routes(app)
    discovery.add_routes(app)
