from __future__ import annotations

from .._core import ClientCore

__all__ = ["ImagesAPI"]


class ImagesAPI:
    """Image upload and avatar generation (``client.images``)."""

    def __init__(self, core: ClientCore) -> None:
        self._core = core
