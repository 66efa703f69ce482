from __future__ import annotations

from .._core import ClientCore

__all__ = ["V1API"]


class V1API:
    """Legacy Chat V1 over HTTP (``client.v1``)."""

    def __init__(self, core: ClientCore) -> None:
        self._core = core
