"""Group chats ("rooms", docs/protocol.md §9): REST descriptions, room envelopes and the
Centrifugo JSON protocol of their socket. No I/O.

The socket ``wss://neo.character.ai/connection/websocket`` speaks Centrifugo: each command
object carries an integer ``id`` its reply echoes; a frame may hold several JSON objects;
the server pings with ``{}`` and the client answers ``{}``. Room commands travel as ``rpc``
wrapping the chat socket's §8.2 envelope; their turns arrive as publications (``push``) on
the channel ``room:<id>``, each with an ``offset`` in the channel's ``epoch``, so a client
that reconnects can ask for what it missed (``recover``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from ..endpoints import Endpoints
from ..errors import CaiError, NotFound, ProtocolError, RoomNotFound
from ..models import Room, RoomCharacter, RoomMember, RoomSettings, Turn
from . import neo
from .http import Request, check_refusal, decode

__all__ = [
    "ROOM_TYPE",
    "Ping",
    "Publication",
    "Reply",
    "ServerUnsubscribe",
    "create_room",
    "create_turn",
    "delete_room",
    "encode_command",
    "generate_turn",
    "join_room",
    "list_rooms",
    "parse_frame",
    "parse_room",
    "parse_rooms",
    "patch_room",
    "preview_room",
    "regenerate",
    "rpc_error",
    "select_candidate",
]

ROOM_TYPE = "TYPE_MU_ROOM"
_encode = msgspec.json.Encoder().encode


# --- REST ----------------------------------------------------------------------------------------


def list_rooms(endpoints: Endpoints, *, include_turns: bool = False) -> Request:
    """``GET /murooms/``: the rooms the user is a member of."""
    flag = "true" if include_turns else "false"
    return Request("GET", f"{endpoints.neo}/murooms/", params={"include_turns": flag})


def create_room(
    endpoints: Endpoints,
    characters: list[str],
    *,
    title: str,
    description: str,
    visibility: str,
    anyone_can_join: bool,
    require_approval: bool,
    with_greeting: bool,
) -> Request:
    body = {
        "characters": characters,
        "title": title,
        "description": description,
        "settings": {"anyone_can_join": anyone_can_join, "require_approval": require_approval},
        "visibility": visibility,
        "with_greeting": with_greeting,
    }
    return Request("POST", f"{endpoints.neo}/muroom/create", json=body)


def delete_room(endpoints: Endpoints, room_id: str) -> Request:
    return Request("DELETE", f"{endpoints.neo}/muroom/{room_id}/")


def patch_room(endpoints: Endpoints, room_id: str, ops: list[dict[str, Any]]) -> Request:
    """``PATCH /muroom/{id}/`` with a JSON-Patch array (§9): rename, add or remove
    characters, change settings."""
    return Request("PATCH", f"{endpoints.neo}/muroom/{room_id}/", json=ops, idempotent=True)


def rename_op(room_id: str, title: str) -> dict[str, Any]:
    return {"op": "replace", "path": f"/muroom/{room_id}", "value": {"title": title}}


def character_op(room_id: str, character_id: str, *, add: bool) -> dict[str, Any]:
    op = "add" if add else "remove"
    return {"op": op, "path": f"/muroom/{room_id}/characters", "value": {"id": character_id}}


def settings_op(room_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    return {"op": "replace", "path": f"/muroom/{room_id}/settings", "value": changes}


def preview_room(endpoints: Endpoints, join_token: str) -> Request:
    """``GET /muroom/?join_token=``: the room a join token opens."""
    return Request("GET", f"{endpoints.neo}/muroom/", params={"join_token": join_token})


def join_room(endpoints: Endpoints, join_token: str) -> Request:
    return Request(
        "POST", f"{endpoints.neo}/muroom/join", json={"join_token": join_token}, idempotent=True
    )


class _WirePreview(msgspec.Struct):
    turns: list[Turn] = msgspec.field(default_factory=list)


class _WireRoom(msgspec.Struct, kw_only=True):
    id: str
    title: str = ""
    description: str = ""
    visibility: str = ""
    picture: str | None = None
    characters: list[RoomCharacter] = msgspec.field(default_factory=list)
    users: list[RoomMember] = msgspec.field(default_factory=list)
    settings: RoomSettings = msgspec.field(default_factory=RoomSettings)
    preview_turns: _WirePreview | list[Turn] | None = None


class _RoomsBody(msgspec.Struct):
    rooms: list[_WireRoom] | None = None


def _room(wire: _WireRoom) -> Room:
    preview = wire.preview_turns
    turns = preview.turns if isinstance(preview, _WirePreview) else (preview or [])
    return Room(
        id=wire.id,
        title=wire.title,
        description=wire.description,
        visibility=wire.visibility,
        picture=wire.picture,
        characters=wire.characters,
        users=wire.users,
        settings=wire.settings,
        preview_turns=turns,
    )


def parse_rooms(body: bytes) -> list[Room]:
    check_refusal(body, "/murooms/", not_found=NotFound)
    return [_room(w) for w in decode(body, _RoomsBody, "/murooms/").rooms or []]


def parse_room(body: bytes, what: str, *, not_found: type[NotFound]) -> Room:
    """One room object (create, join, preview)."""
    check_refusal(body, what, not_found=not_found)
    return _room(decode(body, _WireRoom, what))


# --- room envelopes (sent inside an rpc) ---------------------------------------------------------


def create_turn(
    *,
    request_id: str,
    room_id: str,
    turn_id: str,
    candidate_id: str,
    author_id: str,
    text: str,
    user_name: str = "",
) -> bytes:
    """``create_turn``: the user's message in a room (§9; stored and pushed, no reply)."""
    payload = {"chat_type": ROOM_TYPE, **_turn(room_id, turn_id, candidate_id, author_id, text)}
    payload["turn"]["author"]["name"] = user_name
    payload["user_name"] = user_name
    return neo.envelope("create_turn", request_id, payload)


def _turn(room_id: str, turn_id: str, candidate_id: str, author_id: str, text: str) -> Any:
    return neo.turn_payload(
        chat_id=room_id,
        character_id="",
        turn_id=turn_id,
        candidate_id=candidate_id,
        author_id=author_id,
        text=text,
        user_name="",
    )


def generate_turn(
    *, request_id: str, room_id: str, character_id: str | None, user_name: str = ""
) -> bytes:
    """``generate_turn``: a character's reply; without ``character_id`` the service picks who
    speaks, as the web client's smart reply does (§9)."""
    payload: dict[str, Any] = {"chat_type": ROOM_TYPE, "chat_id": room_id}
    if character_id is None:
        payload.update(user_name=user_name, smart_reply="CHARACTERS", smart_reply_delay=0)
    else:
        payload["character_id"] = character_id
    return neo.envelope("generate_turn", request_id, payload)


def regenerate(*, request_id: str, room_id: str, turn_id: str, character_id: str) -> bytes:
    """``generate_turn_candidate`` on a room's character turn (a swipe)."""
    payload = {
        "chat_type": ROOM_TYPE,
        "character_id": character_id,
        "turn_key": neo.turn_key(room_id, turn_id),
        "tts_enabled": False,
        "selected_language": "",
        "user_name": "",
        "previous_annotations": neo.previous_annotations(),
    }
    return neo.envelope("generate_turn_candidate", request_id, payload)


def edit(*, request_id: str, room_id: str, turn_id: str, candidate_id: str, text: str) -> bytes:
    payload = {
        "chat_type": ROOM_TYPE,
        "turn_key": neo.turn_key(room_id, turn_id),
        "current_candidate_id": candidate_id,
        "new_candidate_raw_content": text,
    }
    return neo.envelope("edit_turn_candidate", request_id, payload)


def select_candidate(*, request_id: str, room_id: str, turn_id: str, candidate_id: str) -> bytes:
    """``update_primary_candidate`` in a room (our choice: sent as an rpc like the others,
    answered by an ``update_turn`` publication of the turn)."""
    payload = {
        "chat_type": ROOM_TYPE,
        "candidate_id": candidate_id,
        "turn_key": neo.turn_key(room_id, turn_id),
    }
    return neo.envelope("update_primary_candidate", request_id, payload)


# --- the Centrifugo protocol ---------------------------------------------------------------------


def encode_command(command_id: int, method: str, params: dict[str, Any] | msgspec.Raw) -> bytes:
    """One Centrifugo command object: ``{"<method>": params, "id": n}``."""
    return _encode({method: params, "id": command_id})


def connect(command_id: int) -> bytes:
    return encode_command(command_id, "connect", {"name": "js"})


def subscribe(command_id: int, channel: str, *, since: tuple[int, str] | None = None) -> bytes:
    """Subscribe to ``channel``; ``since=(offset, epoch)`` asks for the publications missed
    after that offset (Centrifugo recovery)."""
    params: dict[str, Any] = {"channel": channel}
    if since is not None:
        params.update(recover=True, offset=since[0], epoch=since[1])
    return encode_command(command_id, "subscribe", params)


def unsubscribe(command_id: int, channel: str) -> bytes:
    return encode_command(command_id, "unsubscribe", {"channel": channel})


def rpc(command_id: int, envelope: bytes) -> bytes:
    """A room command: the §8.2 envelope as the rpc's ``data`` (``method`` is unused, §9)."""
    return encode_command(
        command_id, "rpc", {"method": "unused_command", "data": msgspec.Raw(envelope)}
    )


class Reply(msgspec.Struct, frozen=True):
    """The answer to command ``id``: ``result`` (the method's object) or ``error``."""

    id: int
    method: str
    result: dict[str, Any]
    error: tuple[int, str] | None = None


class Publication(msgspec.Struct, frozen=True):
    """A push on ``channel``: ``data`` (a room event, shaped like a chat-socket frame) at
    ``offset``."""

    channel: str
    data: dict[str, Any]
    offset: int | None


class ServerUnsubscribe(msgspec.Struct, frozen=True):
    """The server ended the subscription to ``channel`` (e.g. the room was deleted)."""

    channel: str


class Ping(msgspec.Struct, frozen=True):
    """A bare ``{}``: the server's ping, answered with ``{}``."""


class Junk(msgspec.Struct, frozen=True):
    """Something that is not a Centrifugo object we know (logged and dropped)."""

    reason: str


Message = Reply | Publication | ServerUnsubscribe | Ping | Junk


def _values(text: str) -> Iterable[Any]:
    # Imported here: only the rooms socket needs it (msgspec cannot split concatenated
    # JSON values), and `import caiclient` should not pay for it.
    import json

    decoder = json.JSONDecoder()
    at, end = 0, len(text)
    while at < end:
        while at < end and text[at] in " \t\r\n":
            at += 1
        if at >= end:
            return
        try:
            value, at = decoder.raw_decode(text, at)
        except (json.JSONDecodeError, RecursionError):
            yield Junk("not JSON")
            return
        yield value


def parse_frame(data: str | bytes) -> list[Message]:
    """Every object of one received frame, in order. Never raises."""
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    return [_message(value) for value in _values(text)]


def _message(value: Any) -> Message:
    if isinstance(value, Junk):
        return value
    if not isinstance(value, dict):
        return Junk(f"expected an object, got {type(value).__name__}")
    if not value:
        return Ping()
    push = value.get("push")
    if isinstance(push, dict):
        return _push(push)
    command_id = value.get("id")
    if isinstance(command_id, int) and not isinstance(command_id, bool):
        return _reply(command_id, value)
    return Junk("an object without id or push")


def _push(push: dict[str, Any]) -> Message:
    channel = push.get("channel")
    if not isinstance(channel, str):
        return Junk("a push without a channel")
    pub = push.get("pub")
    if isinstance(pub, dict) and isinstance(pub.get("data"), dict):
        offset = pub.get("offset")
        return Publication(channel, pub["data"], offset if isinstance(offset, int) else None)
    if "unsubscribe" in push:
        return ServerUnsubscribe(channel)
    return Junk("a push of a kind this client does not follow")


def _reply(command_id: int, value: dict[str, Any]) -> Message:
    error = value.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        message = error.get("message")
        return Reply(command_id, "error", {}, (code if isinstance(code, int) else 0, str(message)))
    for method in ("connect", "subscribe", "unsubscribe", "rpc"):
        result = value.get(method)
        if isinstance(result, dict):
            return Reply(command_id, method, result)
    return Junk("a reply of an unknown method")


def rpc_error(code: int, message: str, *, request_id: str | None) -> neo.ErrorFrame:
    """An rpc refused (``{"id", "error": {"code", "message"}}``) as the chat socket's error
    frame, so the same classification applies (§8.6)."""
    return neo.ErrorFrame(request_id=request_id, comment=message, error_code=code)


def room_event(data: dict[str, Any]) -> neo.Event:
    """A publication's ``data`` as a chat-socket event (it has the same shape, §9)."""
    try:
        return neo.parse_frame(_encode(data))
    except (TypeError, ValueError, RecursionError) as exc:
        return neo.Malformed(reason=str(exc))


def centrifugo_error(code: int, message: str) -> CaiError:
    """A Centrifugo-level refusal (connect, subscribe) as a typed error."""
    if code in (103, 102):  # permission denied, unknown channel: not a member, or no room
        return RoomNotFound(f"no such room among yours ({message})")
    return ProtocolError(f"the rooms socket refused a command: {message} ({code})")
