"""The characters area (PROTOCOL.md §6): the seed cast, the catalog, search and discovery."""

from __future__ import annotations

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
    "split_cumulative",
]
