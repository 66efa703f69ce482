from __future__ import annotations

from .._core import ClientCore

__all__ = ["UsersAPI"]


class UsersAPI:
    """Other users' public profiles and following (``client.users``)."""

    def __init__(self, core: ClientCore) -> None:
        self._core = core
