"""Chat V2 REST requests and responses (neo ``/chats/``, ``/turns/`` …). No I/O."""

from __future__ import annotations

import msgspec

from ..endpoints import Endpoints
from ..models import Chat, Turn
from .http import Request, decode

__all__ = ["parse_chats", "parse_turns_page", "recent_chats", "turns_page"]


def turns_page(endpoints: Endpoints, chat_id: str, next_token: str | None = None) -> Request:
    params = {"next_token": next_token} if next_token else None
    return Request("GET", f"{endpoints.neo}/turns/{chat_id}/", params=params)


def recent_chats(endpoints: Endpoints, character_id: str | None = None) -> Request:
    suffix = character_id if character_id else ""
    return Request("GET", f"{endpoints.neo}/chats/recent/{suffix}")


class _Meta(msgspec.Struct):
    next_token: str | None = None


class _TurnsBody(msgspec.Struct):
    turns: list[Turn] = msgspec.field(default_factory=list)
    meta: _Meta = msgspec.field(default_factory=_Meta)


class _ChatsBody(msgspec.Struct):
    chats: list[Chat] | None = None


def parse_turns_page(body: bytes) -> tuple[list[Turn], str | None]:
    """One page of ``GET /turns/{chat_id}/``: turns newest first, and the next page's token."""
    page = decode(body, _TurnsBody, "/turns/")
    return page.turns, page.meta.next_token or None


def parse_chats(body: bytes) -> list[Chat]:
    """``{"chats": [...]}``; a missing or null list means no chats (PROTOCOL.md §7.3)."""
    return decode(body, _ChatsBody, "/chats/").chats or []
