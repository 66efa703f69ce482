"""Chat V2 REST requests and responses (neo ``/chats/``, ``/chat/``, ``/turns/`` …). No I/O.

Every parser first checks for an error reported inside a 2xx body (a ``neo_error`` object,
or the plus-style ``{"status": "NOT_OK", "error": …}`` / ``{"error": …}``; the one reader is
:func:`caiclient.protocol.http.refusal`) and raises the typed error for it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..endpoints import Endpoints
from ..errors import NotFound
from ..models import Chat, Turn, TurnKey
from . import neo
from .http import Request, check_refusal, decode

__all__ = [
    "archive",
    "check_body",
    "copy_chat",
    "create_annotation",
    "get_chat",
    "list_chats",
    "parse_annotation_id",
    "parse_chat",
    "parse_chats",
    "parse_new_chat_id",
    "parse_turns_page",
    "recent_chats",
    "remove_annotation",
    "remove_turns",
    "rename",
    "set_model",
    "turns_page",
]


# --- requests --------------------------------------------------------------------------------


def turns_page(
    endpoints: Endpoints,
    chat_id: str,
    next_token: str | None = None,
    *,
    pinned_only: bool = False,
    all_candidates: bool = False,
) -> Request:
    """``GET /turns/{chat_id}/``: one page, newest first (§7.3)."""
    params: dict[str, str] = {}
    if next_token:
        params["next_token"] = next_token
    if pinned_only:
        params["pinned_only"] = "true"
    if all_candidates:
        params["candidate_filter"] = "all"
    return Request("GET", f"{endpoints.neo}/turns/{chat_id}/", params=params or None)


def recent_chats(endpoints: Endpoints, character_id: str | None = None) -> Request:
    suffix = character_id if character_id else ""
    return Request("GET", f"{endpoints.neo}/chats/recent/{suffix}")


def get_chat(endpoints: Endpoints, chat_id: str) -> Request:
    return Request("GET", f"{endpoints.neo}/chat/{chat_id}/")


def list_chats(endpoints: Endpoints, character_id: str) -> Request:
    """``GET /chats/?character_ids=<id>``: every chat with one character (any order)."""
    return Request("GET", f"{endpoints.neo}/chats/", params={"character_ids": character_id})


def rename(endpoints: Endpoints, chat_id: str, name: str) -> Request:
    return Request(
        "PATCH", f"{endpoints.neo}/chat/{chat_id}/update_name", json={"name": name}, idempotent=True
    )


def archive(endpoints: Endpoints, chat_id: str, archived: bool) -> Request:
    """``PATCH /chat/{id}/archive`` or ``/unarchive`` (body ``{}``)."""
    action = "archive" if archived else "unarchive"
    return Request("PATCH", f"{endpoints.neo}/chat/{chat_id}/{action}", json={}, idempotent=True)


def set_model(endpoints: Endpoints, chat_id: str, model: str) -> Request:
    return Request(
        "PATCH",
        f"{endpoints.neo}/chat/{chat_id}/preferred-model-type",
        json={"preferred_model_type": model},
        idempotent=True,
    )


def copy_chat(endpoints: Endpoints, chat_id: str, end_turn_id: str) -> Request:
    """``POST /chat/{id}/copy``: a new chat with the turns up to and including the end turn."""
    return Request(
        "POST", f"{endpoints.neo}/chat/{chat_id}/copy", json={"end_turn_id": end_turn_id}
    )


def remove_turns(endpoints: Endpoints, chat_id: str, turn_ids: list[str]) -> Request:
    """``POST /turns/{chat_id}/remove``: the web client's way to delete turns (§15.1)."""
    return Request(
        "POST",
        f"{endpoints.neo}/turns/{chat_id}/remove",
        json={"turn_ids": turn_ids},
        # Deleting what is already gone changes nothing.
        idempotent=True,
    )


def _annotation_target(key: TurnKey, candidate_id: str) -> dict[str, Any]:
    return {
        "candidate_id": candidate_id,
        "turn_key": {"chat_id": key.chat_id, "turn_id": key.turn_id},
    }


def create_annotation(
    endpoints: Endpoints, key: TurnKey, candidate_id: str, annotation_type: str, value: int
) -> Request:
    """``POST /annotation/create``: rate a candidate (``"star"`` 1–4, or a label with 1)."""
    body = {
        "annotation": {"annotation_type": annotation_type, "annotation_value": value},
        **_annotation_target(key, candidate_id),
    }
    return Request("POST", f"{endpoints.neo}/annotation/create", json=body)


def remove_annotation(
    endpoints: Endpoints, key: TurnKey, candidate_id: str, annotation_id: str
) -> Request:
    body = {"annotation_id": annotation_id, **_annotation_target(key, candidate_id)}
    return Request("POST", f"{endpoints.neo}/annotation/remove", json=body, idempotent=True)


# --- responses -------------------------------------------------------------------------------


def check_body(body: bytes, what: str) -> None:
    """Raise the typed error a 2xx body reports in-band, if any (one reader: http.refusal)."""
    check_refusal(body, what, not_found=NotFound)


class _Meta(msgspec.Struct):
    next_token: str | None = None


class _TurnsBody(msgspec.Struct):
    turns: list[Turn] = msgspec.field(default_factory=list)
    meta: _Meta = msgspec.field(default_factory=_Meta)


class _ChatsBody(msgspec.Struct):
    chats: list[Chat] | None = None


class _ChatBody(msgspec.Struct):
    chat: Chat | None = None


class _CopyBody(msgspec.Struct):
    new_chat_id: str


class _AnnotationId(msgspec.Struct):
    annotation_id: str


class _AnnotationBody(msgspec.Struct):
    annotation: _AnnotationId


def parse_turns_page(
    body: bytes, *, not_found: type[NotFound] = NotFound
) -> tuple[list[Turn], str | None]:
    """One page of ``GET /turns/{chat_id}/``: turns newest first, and the next page's token
    (an in-band "not found" raised as ``not_found``: rooms pass RoomNotFound)."""
    check_refusal(body, "/turns/", not_found=not_found)
    page = decode(body, _TurnsBody, "/turns/")
    return page.turns, page.meta.next_token or None


def parse_chats(body: bytes) -> list[Chat]:
    """``{"chats": [...]}``; a missing or null list means no chats (docs/protocol.md §7.3)."""
    check_body(body, "/chats/")
    return decode(body, _ChatsBody, "/chats/").chats or []


def parse_chat(body: bytes) -> Chat | None:
    """``{"chat": Chat}`` → the chat; None when the body has none (an empty 200 of a PATCH)."""
    check_body(body, "/chat/")
    if not body.strip():
        return None
    return decode(body, _ChatBody, "/chat/").chat


def parse_new_chat_id(body: bytes) -> str:
    """``POST /chat/{id}/copy`` → ``{"new_chat_id"}``."""
    check_body(body, "/chat/copy")
    return decode(body, _CopyBody, "/chat/copy").new_chat_id


def parse_annotation_id(body: bytes) -> str:
    """``POST /annotation/create`` → ``{"annotation": {"annotation_id"}}``."""
    check_body(body, "/annotation/create")
    return decode(body, _AnnotationBody, "/annotation/create").annotation.annotation_id


def message_frame(
    request_id: str, chat: Chat, turn_id: str, candidate_id: str, text: str, author_id: str
) -> bytes:
    """The frame sending ``text`` to ``chat`` (``create_and_generate_turn``, §8.5)."""
    return neo.create_and_generate_turn(
        request_id=request_id,
        chat_id=chat.chat_id,
        character_id=chat.character_id,
        turn_id=turn_id,
        candidate_id=candidate_id,
        author_id=author_id,
        text=text,
    )
