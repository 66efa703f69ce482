"""The chat V2 REST API of ``neo.character.ai`` (PROTOCOL.md §7), under ``/neo``."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from ._http import ApiError, authenticate, json_response, neo_error_body
from ._util import b64url, b64url_decode
from .state import STATE
from .store import ChatRecord, Store

__all__ = ["PAGE_SIZE", "register"]

PAGE_SIZE = 50
_TOKEN_PREFIX = b"turns:"


def _chat_or_404(request: web.Request) -> ChatRecord:
    """The requested chat if the caller owns it; 404 for unknown *and* foreign chats alike."""
    user = authenticate(request)
    rec = request.app[STATE].store.chat_for(user, request.match_info["chat_id"])
    if rec is None:
        raise ApiError(404, neo_error_body("Chat not found", 404))
    return rec


def encode_cursor(seq: int) -> str:
    return b64url(_TOKEN_PREFIX + str(seq).encode("ascii"))


def decode_cursor(token: str) -> int:
    """Inverse of :func:`encode_cursor`; raises ApiError(400) for anything else."""
    try:
        raw = b64url_decode(token)
        if not raw.startswith(_TOKEN_PREFIX):
            raise ValueError(token)
        digits = raw[len(_TOKEN_PREFIX) :]
        if not digits.isdigit():
            raise ValueError(token)
        return int(digits)
    except ValueError:
        raise ApiError(400, neo_error_body("Invalid next_token", 400)) from None


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


async def get_turns(request: web.Request) -> web.Response:
    """``GET /turns/{chat_id}/``: newest first, 50 a page, opaque ``next_token`` (§7.3)."""
    rec = _chat_or_404(request)
    token = request.query.get("next_token")
    before = decode_cursor(token) if token else None
    turns, cursor = Store.page(rec, before, PAGE_SIZE, pinned_only=_flag(request, "pinned_only"))
    if request.query.get("candidate_filter") != "all":
        turns = [t.primary_only() for t in turns]
    next_token = encode_cursor(cursor) if cursor is not None else None
    return json_response({"turns": turns, "meta": {"next_token": next_token}})


async def get_chat(request: web.Request) -> web.Response:
    return json_response({"chat": _chat_or_404(request).chat})


def _with_character(rec: ChatRecord) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.structs.asdict(rec.chat)
    body["character_name"] = rec.character.name
    body["character_avatar_uri"] = rec.character.avatar_file_name
    return body


async def recent_chats(request: web.Request) -> web.Response:
    """``GET /chats/recent/``: all the user's chats, with character name and avatar."""
    user = authenticate(request)
    chats = request.app[STATE].store.recent(user)
    return json_response({"chats": [_with_character(rec) for rec in chats]})


async def recent_chats_with(request: web.Request) -> web.Response:
    """``GET /chats/recent/{character_id}``: the user's chats with one character."""
    user = authenticate(request)
    store = request.app[STATE].store
    chats = store.recent(user, request.match_info["character_id"])
    return json_response({"chats": [rec.chat for rec in chats]})


async def ping(request: web.Request) -> web.Response:
    return json_response({"status": "pong"})


def register(app: web.Application) -> None:
    """Add this area's routes to ``app`` (trailing slash optional where clients differ)."""
    add = app.router.add_get
    add("/neo/ping/", ping)
    for path in ("/neo/turns/{chat_id}/", "/neo/turns/{chat_id}"):
        add(path, get_turns)
    for path in ("/neo/chat/{chat_id}/", "/neo/chat/{chat_id}"):
        add(path, get_chat)
    add("/neo/chats/recent/", recent_chats)
    for path in ("/neo/chats/recent/{character_id}", "/neo/chats/recent/{character_id}/"):
        add(path, recent_chats_with)
