"""Account models: the user behind a token."""

from __future__ import annotations

import msgspec

__all__ = ["User"]


class User(msgspec.Struct, frozen=True, kw_only=True):
    """The account behind a token (``GET /chat/user/``)."""

    id: str
    username: str
    name: str = ""
    avatar_file_name: str | None = None
    bio: str | None = None
    email: str | None = None
    is_staff: bool = False

    @property
    def is_guest(self) -> bool:
        """Guest ("lazy") accounts have usernames starting with ``Guest`` (PROTOCOL.md §3.1)."""
        return self.username.startswith("Guest")
