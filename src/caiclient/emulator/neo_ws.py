"""The chat V2 WebSocket ``/neo/ws/`` (PROTOCOL.md §8).

One reader per socket parses frames; each request runs in its own task so generations of
different chats interleave, while one chat's requests are serialised by the chat's lock.
All sends on a socket go through :class:`Connection.send`, which serialises them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from ._http import token_from_header
from ._util import encode, new_id, now_iso
from .characters import SeedCharacter, split_cumulative
from .state import STATE, State
from .store import ChatRecord, User
from .wire import (
    CHAT_INFO,
    GENERATION_MODE,
    Author,
    Candidate,
    Chat,
    CreateChatPayload,
    CreateTurnPayload,
    Turn,
    TurnEvent,
    TurnKey,
    WireTurn,
)

__all__ = ["register"]

log = logging.getLogger("caiclient.emulator")

_KEEPALIVE = b"{}"


class Connection:
    """One authenticated socket: serialised sends that become no-ops once it has closed."""

    def __init__(self, ws: web.WebSocketResponse, state: State, user: User) -> None:
        self.ws = ws
        self.state = state
        self.user = user
        self.closed = False
        self._lock = asyncio.Lock()

    async def send(self, frame: bytes) -> None:
        """Send one text frame; after the peer has gone, drop it silently."""
        if self.closed or self.ws.closed:
            self.closed = True
            return
        async with self._lock:
            try:
                await self.ws.send_frame(frame, WSMsgType.TEXT)
            except (ConnectionError, RuntimeError):
                self.closed = True

    async def error(self, request_id: object, comment: str, code: int) -> None:
        """Send a ``neo_error`` frame (§8.6); the socket stays open."""
        await self.send(
            encode(
                {
                    "command": "neo_error",
                    "request_id": request_id,
                    "comment": comment,
                    "error_code": code,
                    "sub_code": None,
                    "retry_after_seconds": None,
                }
            )
        )


class RequestError(Exception):
    """A request that must be answered with a neo_error frame."""

    def __init__(self, comment: str, code: int) -> None:
        super().__init__(comment)
        self.comment = comment
        self.code = code


Command = Callable[[Connection, object, Any], Awaitable[None]]


# ---- create_chat ------------------------------------------------------------------------


def _greeting_turn(rec: ChatRecord, now: str) -> Turn:
    character = rec.character
    candidate_id = new_id()
    candidate = Candidate(candidate_id, now, character.greeting, is_final=True)
    return Turn(
        turn_key=TurnKey(rec.chat.chat_id, new_id()),
        create_time=now,
        last_update_time=now,
        state="STATE_OK",
        author=Author(character.id, character.name),
        candidates=[candidate],
        primary_candidate_id=candidate_id,
    )


def _new_chat(conn: Connection, payload: Any) -> tuple[ChatRecord, Turn | None]:
    req = msgspec.convert(payload, CreateChatPayload)
    store = conn.state.store
    character = store.characters.get(req.chat.character_id)
    if character is None:
        raise RequestError("Character not found", 404)
    chat_id = req.chat.chat_id or new_id()
    if chat_id in store.chats:
        raise RequestError("create_chat already exists", 400)
    model = req.chat.preferred_model_type or "MODEL_TYPE_SMART"
    now = now_iso()
    chat = Chat(
        chat_id=chat_id,
        create_time=now,
        creator_id=conn.user.id,
        character_id=character.id,
        state="STATE_ACTIVE",
        type="TYPE_ONE_ON_ONE",
        visibility="VISIBILITY_PRIVATE",
        preferred_model_type=model,
    )
    rec = store.create_chat(conn.user, character, chat)
    greeting = _greeting_turn(rec, now) if req.with_greeting else None
    if greeting is not None:
        store.append_turn(rec, greeting)
    return rec, greeting


async def create_chat(conn: Connection, request_id: object, payload: Any) -> None:
    """``create_chat`` → ``create_chat_response`` and, iff asked, the greeting ``add_turn``."""
    # Everything is stored before the first await, so a request queued right behind this
    # one on the same socket already finds the chat.
    rec, greeting = _new_chat(conn, payload)
    response = {"command": "create_chat_response", "request_id": request_id, "chat": rec.chat}
    await conn.send(encode(response))
    if greeting is not None:
        await conn.send(encode(TurnEvent("add_turn", request_id, greeting, CHAT_INFO)))


# ---- create_and_generate_turn -----------------------------------------------------------


def _human_turn(conn: Connection, chat_id: str, wire: WireTurn) -> Turn:
    """The user's turn as stored and echoed, minting any id the client left out."""
    candidates = wire.candidates or []
    primary = next(
        (c for c in candidates if c.candidate_id and c.candidate_id == wire.primary_candidate_id),
        candidates[0] if candidates else None,
    )
    candidate_id = (primary.candidate_id if primary else None) or new_id()
    now = now_iso()
    candidate = Candidate(
        candidate_id,
        now,
        primary.raw_content if primary else "",
        tti_image_rel_path=primary.tti_image_rel_path if primary else None,
        is_final=True,
    )
    return Turn(
        turn_key=TurnKey(chat_id, wire.turn_key.turn_id or new_id()),
        create_time=now,
        last_update_time=now,
        state="STATE_OK",
        author=Author(conn.user.id, conn.user.username, True),
        candidates=[candidate],
        primary_candidate_id=candidate_id,
    )


def _reply_text(character: SeedCharacter, text: str, turn: int, chunks: int) -> str:
    reply = character.reply(text, turn)
    if len(reply) < chunks:
        # Pad so the reply can be cut into the promised number of distinct pieces.
        reply += " …" * ((chunks - len(reply) + 1) // 2)
    return reply


async def _stream_reply(conn: Connection, request_id: object, rec: ChatRecord, text: str) -> None:
    """Send the bot ``add_turn`` and cumulative ``update_turn``s, then store the final turn.

    The turn is stored even when the socket closes mid-stream; sends just stop.
    """
    state = conn.state
    chunks = state.chunks
    reply = _reply_text(rec.character, text, rec.human_turns, chunks)
    pieces = split_cumulative(reply, chunks)
    now = now_iso()
    candidate_id = new_id()
    turn_key = TurnKey(rec.chat.chat_id, new_id())
    author = Author(rec.character.id, rec.character.name)
    model = rec.chat.preferred_model_type

    def snapshot(piece: str, stamp: str, final: bool | None) -> Turn:
        candidate = Candidate(candidate_id, now, piece, model_type=model, is_final=final)
        return Turn(turn_key, now, stamp, "STATE_OK", author, [candidate], candidate_id)

    turn = snapshot(pieces[0], now, None)
    await conn.send(encode(TurnEvent("add_turn", request_id, turn, CHAT_INFO, GENERATION_MODE)))
    for i, piece in enumerate(pieces[1:], start=2):
        if state.chunk_delay > 0:
            await asyncio.sleep(state.chunk_delay)
        # is_final is absent (not false) until the last frame (PROTOCOL.md §8.4).
        turn = snapshot(piece, now_iso(), True if i == len(pieces) else None)
        event = TurnEvent("update_turn", request_id, turn, CHAT_INFO, GENERATION_MODE)
        await conn.send(encode(event))
    state.store.append_turn(rec, turn)


async def create_and_generate_turn(conn: Connection, request_id: object, payload: Any) -> None:
    """Store and echo the user's turn, then stream the character's reply (§8.4, §8.5)."""
    req = msgspec.convert(payload, CreateTurnPayload)
    store = conn.state.store
    rec = store.chat_for(conn.user, req.turn.turn_key.chat_id)
    if rec is None:
        raise RequestError("Chat not found", 404)
    if req.character_id and req.character_id != rec.character.id:
        raise RequestError("Character not found", 404)
    async with rec.lock:
        # The request is accepted once it holds the chat: the history then reads
        # user, reply, user, reply even when sends to one chat overlap.
        human = _human_turn(conn, rec.chat.chat_id, req.turn)
        if human.turn_key.turn_id in rec.turn_ids:
            raise RequestError("create_and_generate_turn already exists", 400)
        store.append_turn(rec, human, human=True)
        await conn.send(encode(TurnEvent("add_turn", request_id, human, CHAT_INFO)))
        await _stream_reply(conn, request_id, rec, human.candidates[0].raw_content)


# ---- dispatch ---------------------------------------------------------------------------

COMMANDS: dict[str, Command] = {
    "create_chat": create_chat,
    "create_and_generate_turn": create_and_generate_turn,
}


async def _run(conn: Connection, command: Command, request_id: object, payload: Any) -> None:
    try:
        await command(conn, request_id, payload)
    except RequestError as exc:
        await conn.error(request_id, exc.comment, exc.code)
    except msgspec.ValidationError as exc:
        await conn.error(request_id, f"Invalid payload: {exc}", 400)
    except Exception:
        log.exception("emulator command failed")
        await conn.error(request_id, "Internal server error", 500)


async def dispatch(conn: Connection, data: str | bytes) -> None:
    """Handle one incoming frame: answer inline, or start the request's task."""
    try:
        frame = msgspec.json.decode(data)
    except msgspec.DecodeError:
        frame = None
    if not isinstance(frame, dict):
        await conn.error(None, "Invalid message", 400)
        return
    if not frame:
        await conn.send(_KEEPALIVE)
        return
    request_id = frame.get("request_id")
    name = frame.get("command")
    command = COMMANDS.get(name) if isinstance(name, str) else None
    if command is None:
        await conn.error(request_id, f"Unknown command: {name}", 400)
        return
    conn.state.spawn(_run(conn, command, request_id, frame.get("payload", {})))


# ---- the socket -------------------------------------------------------------------------


def _cookie_token(header: str) -> str | None:
    """The token in a ``HTTP_AUTHORIZATION="Token <t>"`` cookie (quotes optional)."""
    for part in header.split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "HTTP_AUTHORIZATION":
            return token_from_header(value.strip().strip('"'))
    return None


def ws_user(request: web.Request) -> User | None:
    """The user authenticated by the upgrade request's cookie or Authorization header."""
    token = _cookie_token(request.headers.get("Cookie", ""))
    if token is None:
        token = token_from_header(request.headers.get("Authorization"))
    return request.app[STATE].store.users_by_token.get(token or "")


async def websocket(request: web.Request) -> web.StreamResponse:
    """``GET /neo/ws/``: refuse with plain HTTP 403 unless authenticated (§1.2)."""
    user = ws_user(request)
    if user is None:
        return web.Response(status=403, text="Forbidden")
    state = request.app[STATE]
    # No permessage-deflate: frames are small and the benchmark wants raw throughput.
    ws = web.WebSocketResponse(compress=False, max_msg_size=16 * 1024 * 1024)
    await ws.prepare(request)
    conn = Connection(ws, state, user)
    state.sockets.add(ws)
    try:
        async for msg in ws:
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await dispatch(conn, msg.data)
    finally:
        conn.closed = True
        state.sockets.discard(ws)
    return ws


def register(app: web.Application) -> None:
    """Add the chat socket's routes to ``app``."""
    app.router.add_get("/neo/ws/", websocket)
    app.router.add_get("/neo/ws", websocket)
