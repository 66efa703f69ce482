from __future__ import annotations

from .._core import ClientCore

__all__ = ["PersonasAPI"]


class PersonasAPI:
    """Your personas (``client.personas``)."""

    def __init__(self, core: ClientCore) -> None:
        self._core = core
