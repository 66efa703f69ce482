"""Group chats ("murooms", docs/protocol.md §9): the neo REST routes, and registration of the
Centrifugo socket (``emulator/rooms_socket.py``).

A room is visible only to its members: to anyone else it reads exactly like a missing one
(404 ``neo_error`` "Room not found") until they join it with its join token.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from .._http import json_response, limited_user, neo_error, read_json
from .._util import new_id, now_iso
from ..characters.cast import SeedCharacter
from ..state import STATE
from ..store import User
from ..wire import Author, complete_turn
from .socket import websocket
from .store import (
    CHARACTER_LIMIT,
    ROLE_MEMBER,
    ROLE_OWNER,
    ROOMS,
    Member,
    Room,
    RoomRecord,
    RoomSettings,
    RoomStore,
)

__all__ = ["add_routes", "room_view"]

VISIBILITIES = ("VISIBILITY_UNLISTED", "VISIBILITY_PRIVATE", "VISIBILITY_PUBLIC")
PREVIEW_TURNS = 50
_UPDATED = "update_mu_room_response"


class _SettingsBody(msgspec.Struct):
    anyone_can_join: bool = True
    require_approval: bool = False
    auto_smart_reply: bool = False
    smart_reply_timer: bool = False


class _CreateBody(msgspec.Struct):
    characters: list[str]
    title: str = ""
    description: str = ""
    settings: _SettingsBody = msgspec.field(default_factory=_SettingsBody)
    visibility: str = "VISIBILITY_UNLISTED"
    with_greeting: bool = False


class _PatchOp(msgspec.Struct):
    op: str
    path: str
    value: dict[str, Any] = msgspec.field(default_factory=dict)


class _JoinBody(msgspec.Struct):
    join_token: str


# ---- helpers ----------------------------------------------------------------------------


def _rooms(request: web.Request) -> RoomStore:
    return request.app[ROOMS]


def _room_or_404(request: web.Request, user: User) -> RoomRecord:
    rec = _rooms(request).room_for(user, request.match_info["room_id"])
    if rec is None:
        raise neo_error(404, "Room not found")
    return rec


async def _body(request: web.Request, type_: type[Any]) -> Any:
    return msgspec.convert(await read_json(request), type_)


def room_view(rooms: RoomStore, rec: RoomRecord, *, include_turns: bool) -> dict[str, Any]:
    """The room object of §9 (``preview_turns`` newest first, primary candidates only)."""
    room = rec.room
    turns = (
        [t.primary_only() for t in reversed(rec.turns[-PREVIEW_TURNS:])] if include_turns else []
    )
    users = rooms.core.users_by_id
    return {
        "id": room.id,
        "title": room.title,
        "description": room.description,
        "visibility": room.visibility,
        "picture": room.picture,
        "characters": [
            {"id": c.id, "name": c.name, "avatar_url": c.avatar_file_name}
            for c in rooms.characters_of(rec)
        ],
        "users": [_user_view(users.get(m.user_id), m) for m in room.members],
        "permissions": [],
        "preview_turns": {"turns": turns, "meta": {"next_token": None}},
        "settings": room.settings,
    }


def _user_view(user: User | None, member: Member) -> dict[str, Any]:
    return {
        "id": member.user_id,
        "username": user.username if user else "",
        "name": user.name if user else "",
        "avatar_url": (user.avatar_file_name or "") if user else "",
        "role": member.role,
        "state": member.state,
    }


# ---- create / list ----------------------------------------------------------------------


def _cast(request: web.Request, user: User, ids: list[str]) -> list[SeedCharacter]:
    core = request.app[STATE].store
    unique = list(dict.fromkeys(ids))
    if not unique:
        raise neo_error(400, "A room needs at least one character")
    if len(unique) > CHARACTER_LIMIT:
        raise neo_error(400, "Character limit reached")
    cast = [core.character_for(user, cid) for cid in unique]
    found = [c for c in cast if c is not None]
    if len(found) != len(cast):
        raise neo_error(404, "Character not found")
    return found


async def create_room(request: web.Request) -> web.Response:
    """``POST /muroom/create`` → the new room; the caller is its owner."""
    user = limited_user(request)
    body: _CreateBody = await _body(request, _CreateBody)
    if body.visibility not in VISIBILITIES:
        raise neo_error(400, "Invalid visibility")
    cast = _cast(request, user, body.characters)
    wanted = body.settings
    settings = RoomSettings(
        anyone_can_join=wanted.anyone_can_join,
        require_approval=wanted.require_approval,
        auto_smart_reply=wanted.auto_smart_reply,
        smart_reply_timer=wanted.smart_reply_timer,
    )
    now = now_iso()
    room = Room(
        id=new_id(),
        title=body.title,
        description=body.description,
        visibility=body.visibility,
        creator_id=user.id,
        create_time=now,
        characters=[c.id for c in cast],
        members=[Member(user.id, ROLE_OWNER)],
        settings=settings,
    )
    rooms = _rooms(request)
    rec = rooms.create(room)
    if body.with_greeting:
        for character in cast:
            author = Author(character.id, character.name)
            rooms.append_turn(rec, complete_turn(room.id, author, character.greeting, now))
    return json_response(room_view(rooms, rec, include_turns=True))


async def list_rooms(request: web.Request) -> web.Response:
    """``GET /murooms/?include_turns=false`` → ``{"rooms": [...]}`` of the caller's rooms."""
    user = limited_user(request)
    include = request.query.get("include_turns", "true").lower() not in ("false", "0")
    rooms = _rooms(request)
    views = [room_view(rooms, rec, include_turns=include) for rec in rooms.rooms_of(user)]
    return json_response({"rooms": views})


# ---- patch / delete ---------------------------------------------------------------------


def _plan(
    request: web.Request, user: User, rec: RoomRecord, ops: list[_PatchOp]
) -> tuple[str, list[str]]:
    """Check every operation first (all or nothing): the new title and character ids."""
    base = f"/muroom/{rec.room.id}"
    title, characters = rec.room.title, list(rec.room.characters)
    for op in ops:
        path = op.path.rstrip("/")
        if op.op == "replace" and path == base:
            new_title = op.value.get("title", title)
            if not isinstance(new_title, str):
                raise neo_error(400, "Invalid title")
            title = new_title
        elif op.op in ("add", "remove") and path == f"{base}/characters":
            _patch_cast(request, user, characters, op)
        elif op.op == "replace" and path == f"{base}/settings":
            _check_settings(op.value)
        else:
            raise neo_error(400, f"Unsupported patch operation: {op.op} {op.path}")
    if not characters:
        raise neo_error(400, "A room needs at least one character")
    if len(characters) > rec.room.settings.character_limit:
        raise neo_error(400, "Character limit reached")
    return title, characters


_SETTABLE = ("anyone_can_join", "require_approval", "auto_smart_reply", "smart_reply_timer")


def _check_settings(value: dict[str, Any]) -> None:
    """A settings change (our choice of path where §9 names only the keys): booleans of
    the four switches only."""
    if not value or any(k not in _SETTABLE or not isinstance(v, bool) for k, v in value.items()):
        raise neo_error(400, "Invalid settings")


def _apply_settings(rec: RoomRecord, ops: list[_PatchOp]) -> None:
    base = f"/muroom/{rec.room.id}/settings"
    for op in ops:
        if op.op == "replace" and op.path.rstrip("/") == base:
            for key, value in op.value.items():
                setattr(rec.room.settings, key, value)


def _patch_cast(request: web.Request, user: User, characters: list[str], op: _PatchOp) -> None:
    cid = op.value.get("id")
    if op.op == "add":
        if request.app[STATE].store.character_for(user, cid) is None:
            raise neo_error(404, "Character not found")
        if cid not in characters:
            characters.append(str(cid))
    elif cid in characters:
        characters.remove(str(cid))
    else:
        raise neo_error(404, "Character not found")


async def patch_room(request: web.Request) -> web.Response:
    """``PATCH /muroom/{id}/`` with a JSON-Patch array: rename, add/remove characters,
    change settings."""
    user = limited_user(request)
    rec = _room_or_404(request, user)
    ops: list[_PatchOp] = await _body(request, list[_PatchOp])
    title, characters = _plan(request, user, rec, ops)
    old = rec.room.characters
    added = [c for c in characters if c not in old]
    removed = [c for c in old if c not in characters]
    rec.room.title, rec.room.characters = title, characters
    _apply_settings(rec, ops)
    _rooms(request).save(rec)
    return json_response(
        {
            "id": rec.room.id,
            "users": {"added": [], "removed": []},
            "characters": {"added": added, "removed": removed},
            "title": title,
            "command": _UPDATED,
        }
    )


async def delete_room(request: web.Request) -> web.Response:
    """``DELETE /muroom/{id}/`` (its creator only) → ``{"id", "command": "delete_mu_room"}``."""
    user = limited_user(request)
    rec = _room_or_404(request, user)
    if rec.room.creator_id != user.id:
        raise neo_error(403, "Only the room's creator can delete it")
    _rooms(request).delete(rec)
    return json_response({"id": rec.room.id, "command": "delete_mu_room"})


# ---- join -------------------------------------------------------------------------------


def _by_token(request: web.Request, token: object) -> RoomRecord:
    rec = _rooms(request).by_join_token(token)
    if rec is None:
        raise neo_error(404, "Room not found")
    return rec


async def preview_room(request: web.Request) -> web.Response:
    """``GET /muroom/?join_token=<t>`` → the room that token opens (without its turns)."""
    limited_user(request)
    token = request.query.get("join_token")
    if not token:
        raise neo_error(400, "join_token is required")
    rec = _by_token(request, token)
    return json_response(room_view(_rooms(request), rec, include_turns=False))


async def join_room(request: web.Request) -> web.Response:
    """``POST /muroom/join`` ``{"join_token"}`` → the room plus ``command`` (idempotent)."""
    user = limited_user(request)
    body: _JoinBody = await _body(request, _JoinBody)
    rec = _by_token(request, body.join_token)
    if rec.member(user.id) is None:
        if len(rec.room.members) >= rec.room.settings.user_limit:
            raise neo_error(400, "Room is full")
        rec.room.members.append(Member(user.id, ROLE_MEMBER))
        _rooms(request).save(rec)
    view = room_view(_rooms(request), rec, include_turns=True)
    view["command"] = _UPDATED
    return json_response(view)


def add_routes(app: web.Application) -> None:
    """Add the room routes and the Centrifugo socket to ``app``."""
    router = app.router

    def both(method: str, path: str, handler: Any) -> None:
        router.add_route(method, f"/neo{path}", handler)
        router.add_route(method, f"/neo{path}/", handler)

    both("GET", "/murooms", list_rooms)
    both("POST", "/muroom/create", create_room)
    both("POST", "/muroom/join", join_room)
    both("GET", "/muroom", preview_room)
    both("PATCH", "/muroom/{room_id}", patch_room)
    both("DELETE", "/muroom/{room_id}", delete_room)
    both("GET", "/connection/websocket", websocket)
