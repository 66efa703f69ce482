from __future__ import annotations

from .._core import ClientCore

__all__ = ["VoicesAPI"]


class VoicesAPI:
    """Voices and text-to-speech (``client.voices``)."""

    def __init__(self, core: ClientCore) -> None:
        self._core = core
