from __future__ import annotations

from .._core import ClientCore

__all__ = ["CharactersAPI"]


class CharactersAPI:
    """Characters: info, search, discovery, your own (``client.characters``)."""

    def __init__(self, core: ClientCore) -> None:
        self._core = core
