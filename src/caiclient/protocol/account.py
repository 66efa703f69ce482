"""Account requests and responses (plus ``/chat/user/`` …). No I/O."""

from __future__ import annotations

import msgspec

from ..endpoints import Endpoints
from ..models import User
from .http import Request, decode

__all__ = ["me", "parse_user"]


def me(endpoints: Endpoints) -> Request:
    return Request("GET", f"{endpoints.plus}/chat/user/")


class _Account(msgspec.Struct, kw_only=True):
    name: str | None = None
    avatar_file_name: str | None = None


class _InnerUser(msgspec.Struct, kw_only=True):
    id: int | str
    username: str
    account: _Account | None = None
    is_staff: bool = False


class _OuterUser(msgspec.Struct, kw_only=True):
    user: _InnerUser
    name: str | None = None
    email: str | None = None
    bio: str | None = None


class _UserBody(msgspec.Struct):
    user: _OuterUser


def parse_user(body: bytes) -> User:
    """``GET /chat/user/`` → :class:`User` (the integer id becomes a digit string)."""
    outer = decode(body, _UserBody, "/chat/user/").user
    inner = outer.user
    account = inner.account or _Account()
    return User(
        id=str(inner.id),
        username=inner.username,
        name=account.name or outer.name or inner.username,
        avatar_file_name=account.avatar_file_name,
        bio=outer.bio,
        email=outer.email,
        is_staff=inner.is_staff,
    )
