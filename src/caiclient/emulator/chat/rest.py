"""The chat V2 REST API of ``neo.character.ai`` (docs/protocol.md §7), under ``/neo``.

Bodies the captures leave open are our choice (docs/protocol.md): chat changes answer
``{"chat": Chat}``, removals ``{}``. Another user's chat, turn or annotation answers exactly
like a missing one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from .._http import (
    json_response,
    limited_user,
    neo_error,
    query_count,
    read_json,
)
from .._util import b64url, b64url_decode, new_id, now_iso
from ..rooms.store import ROOMS, RoomStore
from ..wire import Chat, Turn, WireTurnKey, pin_view
from .store import CHAT, Annotation, ChatRecord, ChatStore

__all__ = ["MAX_PREVIEW_TURNS", "PAGE_SIZE", "add_routes"]

PAGE_SIZE = 50
MAX_PREVIEW_TURNS = 1000
"""Largest ``num_preview_turns`` of ``GET /chats/`` (our choice; clients ask for a few)."""
_TOKEN_PREFIX = b"turns:"
_STAR_VALUES = range(1, 5)


# ---- request bodies (lenient: unknown keys ignored) -------------------------------------


class _NameBody(msgspec.Struct):
    name: str


class _CopyBody(msgspec.Struct):
    end_turn_id: str


class _ModelBody(msgspec.Struct):
    preferred_model_type: str


class _RemoveBody(msgspec.Struct):
    turn_ids: list[str]


class _PinBody(msgspec.Struct):
    is_pinned: bool
    turn_key: WireTurnKey


class _AnnotationFields(msgspec.Struct):
    annotation_type: str
    annotation_value: int | None = None
    annotation_raw_content: str | None = None


class _AnnotateBody(msgspec.Struct):
    annotation: _AnnotationFields
    candidate_id: str
    turn_key: WireTurnKey


class _UnannotateBody(msgspec.Struct):
    annotation_id: str


# ---- helpers ----------------------------------------------------------------------------


def _store(request: web.Request) -> ChatStore:
    return request.app[CHAT]


def _chat_by_id(request: web.Request, chat_id: str) -> ChatRecord:
    """The chat if the caller owns it; 404 for unknown *and* foreign chats alike."""
    rec = _store(request).chat_for(limited_user(request), chat_id)
    if rec is None:
        raise neo_error(404, "Chat not found")
    return rec


def _chat_or_404(request: web.Request) -> ChatRecord:
    return _chat_by_id(request, request.match_info["chat_id"])


def _writable(rec: ChatRecord) -> ChatRecord:
    if rec.archived:
        raise neo_error(400, "Chat is archived")
    return rec


def _turn_or_404(store: ChatStore, rec: ChatRecord, turn_id: str | None) -> Turn:
    turn = store.turn(rec, turn_id or "")
    if turn is None:
        raise neo_error(404, "Turn not found")
    return turn


async def _body(request: web.Request, type_: type[Any]) -> Any:
    return msgspec.convert(await read_json(request), type_)


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
        raise neo_error(400, "Invalid next_token") from None


def _query(request: web.Request) -> dict[str, str]:
    """The query, tolerating N2's ``?character_ids=X?num_preview_turns=N`` (§15.10)."""
    query = dict(request.query)
    for key, value in list(query.items()):
        if "?" in value:
            query[key], _, rest = value.partition("?")
            for extra, extra_value in parse_qsl(rest):
                query.setdefault(extra, extra_value)
    return query


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("true", "1")


def _chat_body(rec: ChatRecord) -> dict[str, Any]:
    return {"chat": rec.chat}


# ---- chats ------------------------------------------------------------------------------


async def get_chat(request: web.Request) -> web.Response:
    """``GET /chat/{chat_id}/`` → ``{"chat": Chat}``."""
    return json_response(_chat_body(_chat_or_404(request)))


async def resurrect(request: web.Request) -> web.Response:
    """``GET /chat/{chat_id}/resurrect``: revive the chat (an archived one becomes active)."""
    rec = _chat_or_404(request)
    if rec.archived:
        rec.chat.state = "STATE_ACTIVE"
        _store(request).save_chat(rec)
    return json_response(_chat_body(rec))


async def update_name(request: web.Request) -> web.Response:
    """``PATCH /chat/{chat_id}/update_name`` ``{"name"}``; an empty name removes it."""
    rec = _chat_or_404(request)
    body: _NameBody = await _body(request, _NameBody)
    rec.chat.name = body.name or None
    _store(request).save_chat(rec)
    return json_response(_chat_body(rec))


async def _set_state(request: web.Request, state: str) -> web.Response:
    rec = _chat_or_404(request)
    if rec.chat.state != state:
        rec.chat.state = state
        _store(request).save_chat(rec)
    return json_response(_chat_body(rec))


async def archive(request: web.Request) -> web.Response:
    """``PATCH /chat/{chat_id}/archive`` (idempotent; archived chats leave the recents)."""
    return await _set_state(request, "STATE_ARCHIVED")


async def unarchive(request: web.Request) -> web.Response:
    """``PATCH /chat/{chat_id}/unarchive`` (idempotent)."""
    return await _set_state(request, "STATE_ACTIVE")


async def set_model(request: web.Request) -> web.Response:
    """``PATCH /chat/{chat_id}/preferred-model-type`` ``{"preferred_model_type"}``."""
    rec = _chat_or_404(request)
    body: _ModelBody = await _body(request, _ModelBody)
    model = body.preferred_model_type
    if not model.startswith("MODEL_TYPE_") or len(model) == len("MODEL_TYPE_"):
        raise neo_error(400, f"Invalid preferred_model_type: {model}")
    rec.chat.preferred_model_type = model
    _store(request).save_chat(rec)
    return json_response(_chat_body(rec))


async def copy_chat(request: web.Request) -> web.Response:
    """``POST /chat/{chat_id}/copy`` ``{"end_turn_id"}`` → ``{"new_chat_id"}``: a new chat
    holding the turns up to and including that one."""
    rec = _chat_or_404(request)
    body: _CopyBody = await _body(request, _CopyBody)
    store = _store(request)
    end = store.position(rec, body.end_turn_id)
    if end is None:
        raise neo_error(404, "Turn not found")
    source = rec.chat
    chat = Chat(
        chat_id=new_id(),
        create_time=now_iso(),
        creator_id=source.creator_id,
        character_id=source.character_id,
        state="STATE_ACTIVE",
        type=source.type,
        visibility=source.visibility,
        preferred_model_type=source.preferred_model_type,
    )
    store.copy_chat(rec, end, chat)
    return json_response({"new_chat_id": chat.chat_id})


def _with_character(rec: ChatRecord) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(rec.chat)
    body["character_name"] = rec.character.name
    body["character_avatar_uri"] = rec.character.avatar_file_name
    return body


async def list_chats(request: web.Request) -> web.Response:
    """``GET /chats/?character_ids=<id>[,<id>…]&num_preview_turns=<n>``: every chat
    (archived too) in creation order, each with up to n newest turns when n is given."""
    user = limited_user(request)
    query = _query(request)
    ids = query.get("character_ids")
    wanted = {i for i in ids.split(",") if i} if ids else None
    try:
        previews = query_count(query.get("num_preview_turns"), 0, MAX_PREVIEW_TURNS)
    except ValueError:
        detail = f"Invalid num_preview_turns: a whole number from 0 to {MAX_PREVIEW_TURNS}"
        raise neo_error(400, detail) from None
    chats = []
    for rec in _store(request).chats_of(user, wanted):
        body = _with_character(rec)
        if previews is not None:
            turns, _ = ChatStore.page(rec, None, previews) if previews else ([], None)
            body["preview_turns"] = [t.primary_only() for t in turns]
        chats.append(body)
    return json_response({"chats": chats})


async def recent_chats(request: web.Request) -> web.Response:
    """``GET /chats/recent/``: the user's active chats, with character name and avatar."""
    chats = _store(request).recent(limited_user(request))
    return json_response({"chats": [_with_character(rec) for rec in chats]})


async def recent_chats_with(request: web.Request) -> web.Response:
    """``GET /chats/recent/{character_id}``: the user's active chats with one character,
    newest first; ``{}`` without a ``chats`` key when there are none (§7.3: a maintained
    JS client creates a chat only when the key is absent)."""
    chats = _store(request).recent(limited_user(request), request.match_info["character_id"])
    return json_response({"chats": [rec.chat for rec in chats]} if chats else {})


# ---- turns ------------------------------------------------------------------------------


async def get_turns(request: web.Request) -> web.Response:
    """``GET /turns/{chat_id}/``: newest first, 50 a page, opaque ``next_token`` (§7.3);
    ``pinned_only=true`` keeps pinned turns, ``candidate_filter=all`` every candidate
    (newest first), otherwise only the primary one. A group chat's id pages its room's
    turns the same way (its members only; §9 names no other history route)."""
    query = request.query
    token = query.get("next_token")
    before = decode_cursor(token) if token else None
    pinned = _flag(query, "pinned_only")
    user = limited_user(request)
    chat_id = request.match_info["chat_id"]
    rec = _store(request).chat_for(user, chat_id)
    room = request.app[ROOMS].room_for(user, chat_id) if rec is None else None
    if rec is not None:
        turns, cursor = ChatStore.page(rec, before, PAGE_SIZE, pinned_only=pinned)
    elif room is not None:
        turns, cursor = RoomStore.page(room, before, PAGE_SIZE, pinned_only=pinned)
    else:
        raise neo_error(404, "Chat not found")
    if query.get("candidate_filter") != "all":
        turns = [t.primary_only() for t in turns]
    next_token = encode_cursor(cursor) if cursor is not None else None
    return json_response({"turns": turns, "meta": {"next_token": next_token}})


async def remove_turns(request: web.Request) -> web.Response:
    """``POST /turns/{chat_id}/remove`` ``{"turn_ids"}`` → ``{}`` (unknown ids ignored)."""
    rec = _writable(_chat_or_404(request))
    body: _RemoveBody = await _body(request, _RemoveBody)
    _store(request).remove_turns(rec, body.turn_ids)
    return json_response({})


async def pin_turn(request: web.Request) -> web.Response:
    """``POST /turn/pin`` ``{"is_pinned", "turn_key"}`` → ``{"turn": Turn}``."""
    body: _PinBody = await _body(request, _PinBody)
    rec = _writable(_chat_by_id(request, body.turn_key.chat_id))
    store = _store(request)
    turn = _turn_or_404(store, rec, body.turn_key.turn_id)
    if turn.is_pinned != body.is_pinned:
        turn.is_pinned = body.is_pinned
        store.save_turn(rec, turn)
    return json_response({"turn": pin_view(turn)})


# ---- annotations ------------------------------------------------------------------------


def _check_annotation(fields: _AnnotationFields) -> None:
    kind, value = fields.annotation_type, fields.annotation_value
    if not kind:
        raise neo_error(400, "Invalid annotation: empty annotation_type")
    if kind == "star" and value not in _STAR_VALUES:
        raise neo_error(400, "Invalid annotation: a star rating is 1 to 4")


async def create_annotation(request: web.Request) -> web.Response:
    """``POST /annotation/create`` → ``{"annotation": {"annotation_id"}}``."""
    body: _AnnotateBody = await _body(request, _AnnotateBody)
    rec = _chat_by_id(request, body.turn_key.chat_id)
    store = _store(request)
    turn = _turn_or_404(store, rec, body.turn_key.turn_id)
    if all(c.candidate_id != body.candidate_id for c in turn.candidates):
        raise neo_error(404, "Turn candidate not found")
    _check_annotation(body.annotation)
    note = Annotation(
        annotation_id=new_id(),
        owner_id=rec.owner.id,
        chat_id=rec.chat.chat_id,
        turn_id=turn.turn_key.turn_id,
        candidate_id=body.candidate_id,
        annotation_type=body.annotation.annotation_type,
        annotation_value=body.annotation.annotation_value,
        annotation_raw_content=body.annotation.annotation_raw_content,
    )
    store.add_annotation(note)
    return json_response({"annotation": {"annotation_id": note.annotation_id}})


async def swipe_annotation(request: web.Request) -> web.Response:
    """``POST /annotations/{chat_id}/{turn_id}/{candidate_id}`` ``{}`` → ``{}`` (§7.3 [L]:
    the web client's swipe tracker, called before ``update_primary_candidate``); another
    user's or a missing chat, turn or candidate is a 404 ``neo_error``. Nothing is kept."""
    info = request.match_info
    rec = _chat_by_id(request, info["chat_id"])
    turn = _turn_or_404(_store(request), rec, info["turn_id"])
    if all(c.candidate_id != info["candidate_id"] for c in turn.candidates):
        raise neo_error(404, "Turn candidate not found")
    return json_response({})


async def remove_annotation(request: web.Request) -> web.Response:
    """``POST /annotation/remove`` ``{"annotation_id", …}`` → ``{}``."""
    user = limited_user(request)
    body: _UnannotateBody = await _body(request, _UnannotateBody)
    store = _store(request)
    note = store.annotations.get(body.annotation_id)
    if note is None or note.owner_id != user.id:
        raise neo_error(404, "Annotation not found")
    store.remove_annotation(note.annotation_id)
    return json_response({})


async def ping(request: web.Request) -> web.Response:
    return json_response({"status": "pong"})


def add_routes(app: web.Application) -> None:
    """Add this area's routes to ``app`` (trailing slash optional where clients differ)."""
    router = app.router

    def both(method: str, path: str, handler: Any) -> None:
        router.add_route(method, f"/neo{path}", handler)
        router.add_route(method, f"/neo{path}/", handler)

    router.add_get("/neo/ping/", ping)
    router.add_get("/neo/ping", ping)
    both("GET", "/turns/{chat_id}", get_turns)
    both("POST", "/turns/{chat_id}/remove", remove_turns)
    both("POST", "/turn/pin", pin_turn)
    both("GET", "/chat/{chat_id}", get_chat)
    both("GET", "/chat/{chat_id}/resurrect", resurrect)
    both("PATCH", "/chat/{chat_id}/update_name", update_name)
    both("PATCH", "/chat/{chat_id}/archive", archive)
    both("PATCH", "/chat/{chat_id}/unarchive", unarchive)
    both("PATCH", "/chat/{chat_id}/preferred-model-type", set_model)
    both("POST", "/chat/{chat_id}/copy", copy_chat)
    both("GET", "/chats", list_chats)
    both("GET", "/chats/recent", recent_chats)
    both("GET", "/chats/recent/{character_id}", recent_chats_with)
    both("POST", "/annotation/create", create_annotation)
    both("POST", "/annotation/remove", remove_annotation)
    both("POST", "/annotations/{chat_id}/{turn_id}/{candidate_id}", swipe_annotation)
