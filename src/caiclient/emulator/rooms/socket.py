"""The Centrifugo socket ``/neo/connection/websocket`` of group chats (PROTOCOL.md §9).

Centrifugo's JSON protocol: a client frame may hold several JSON objects (newline-separated,
or simply concatenated as N2/CN send them); each command object carries an ``id`` that its
reply echoes. The server answers one JSON object per frame (CN parses every frame whole).
Every outgoing frame goes through the session's queue, drained by one writer task, so a
publication reaches all subscribers of a room in offset order without waiting on any of them.
Room commands travel as ``rpc`` (``method`` ignored) wrapping the §8.2 envelope; the rpc is
acknowledged at once and its turns arrive as pushes on ``room:<id>``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from .._util import encode, new_id, now_iso
from ..characters.cast import SeedCharacter, split_cumulative
from ..chat.ws import ws_user
from ..state import STATE, State
from ..store import Store, User
from ..wire import (
    GENERATION_MODE,
    Author,
    Candidate,
    ChatInfo,
    EditCandidatePayload,
    Editor,
    GenerateCandidatePayload,
    GenerationMode,
    Turn,
    TurnKey,
    WireTurn,
    WireTurnKey,
)
from .store import ROOMS, RoomRecord, RoomStore

__all__ = ["ROOM_INFO", "RoomEvent", "Session", "split_objects", "websocket"]

log = logging.getLogger("caiclient.emulator")

VERSION = "5.4.9"
"""The server version announced in the connect reply (any string; clients ignore it)."""
MODEL_TYPE = "MODEL_TYPE_SMART"
ROOM_INFO = ChatInfo(type="TYPE_MU_ROOM")
NO_PONG = 3012  # Centrifugo's disconnect code "no pong"

# Centrifugo's own error codes.
UNAUTHORIZED = (101, "unauthorized")
UNKNOWN_CHANNEL = (102, "unknown channel")
PERMISSION_DENIED = (103, "permission denied")
METHOD_NOT_FOUND = (104, "method not found")
ALREADY_SUBSCRIBED = (105, "already subscribed")
BAD_REQUEST = (107, "bad request")

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"

Work = Callable[[], "Coroutine[Any, Any, None] | None"]


class RoomEvent(msgspec.Struct, omit_defaults=True):
    """``push.pub.data`` of a room turn (§9); ``request_id`` is always present."""

    turn: Turn
    chat_info: ChatInfo
    command: str
    request_id: object
    generation_mode: GenerationMode | None = None


class RpcError(Exception):
    """An rpc refused with ``{"id": n, "error": {"code", "message"}}`` (neo-style codes)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def split_objects(text: str) -> tuple[list[Any], bool]:
    """The JSON values of one frame, and False if the frame ended in something malformed
    (the values before it are still returned)."""
    values: list[Any] = []
    at, end = 0, len(text)
    while True:
        while at < end and text[at] in _WHITESPACE:
            at += 1
        if at >= end:
            return values, True
        try:
            value, at = _DECODER.raw_decode(text, at)
        except json.JSONDecodeError:
            return values, False
        values.append(value)


# ---- the session ------------------------------------------------------------------------


class Session:
    """One authenticated socket: its subscriptions and its queue of outgoing frames."""

    def __init__(self, ws: web.WebSocketResponse, user: User, rooms: RoomStore, state: State):
        self.ws = ws
        self.user = user
        self.rooms = rooms
        self.state = state
        self.client_id = new_id()
        self.channels: set[str] = set()
        self.connected = False
        self.awaiting_pong = False
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()

    @property
    def core(self) -> Store:
        return self.rooms.core

    def push(self, frame: bytes) -> None:
        self._queue.put_nowait(frame)

    def forget(self, channel: str) -> None:
        self.channels.discard(channel)

    def reply(self, cid: int, key: str, body: object) -> None:
        self.push(encode({"id": cid, key: body}))

    def error(self, cid: int, code: int, message: str) -> None:
        self.reply(cid, "error", {"code": code, "message": message})

    def close(self) -> None:
        for name in self.channels:
            channel = self.rooms.channels.get(name)
            if channel is not None:
                channel.subscribers.discard(self)
        self.channels.clear()

    async def writer(self) -> None:
        while True:
            frame = await self._queue.get()
            try:
                await self.ws.send_frame(frame, WSMsgType.TEXT)
            except (ConnectionError, RuntimeError):
                return

    async def pinger(self) -> None:
        """Ping with ``{}`` every interval; close with "no pong" if the last one went
        unanswered (Centrifugo's bidirectional ping, ``pong: true``)."""
        while True:
            await asyncio.sleep(self.rooms.ping_interval)
            if self.awaiting_pong:
                await self.ws.close(code=NO_PONG, message=b"no pong")
                return
            if self.connected:
                self.awaiting_pong = True
                self.push(b"{}")

    def receive(self, text: str) -> None:
        values, whole = split_objects(text)
        if not whole:
            log.debug("rooms socket: malformed frame dropped after %d objects", len(values))
        for value in values:
            if isinstance(value, dict):
                self.command(value)

    def command(self, obj: dict[str, Any]) -> None:
        if not obj:
            self.awaiting_pong = False  # The client's pong.
            return
        cid = obj.get("id")
        if isinstance(cid, bool) or not isinstance(cid, int) or cid <= 0:
            return  # Nothing to answer to.
        method = next((name for name in _METHODS if name in obj), None)
        params = obj.get(method) if method is not None else None
        if method is None:
            self.error(cid, *METHOD_NOT_FOUND)
        elif not isinstance(params, dict):
            self.error(cid, *BAD_REQUEST)
        elif method != "connect" and not self.connected:
            self.error(cid, *UNAUTHORIZED)
        else:
            _METHODS[method](self, cid, params)


# ---- Centrifugo commands ----------------------------------------------------------------


def _connect(session: Session, cid: int, params: dict[str, Any]) -> None:
    if session.connected:
        session.error(cid, *BAD_REQUEST)
        return
    session.connected = True
    interval = session.rooms.ping_interval
    ping = int(interval) if float(interval).is_integer() else interval
    body = {"client": session.client_id, "version": VERSION, "ping": ping, "pong": True}
    session.reply(cid, "connect", body)


def _refusal(session: Session, channel: str) -> tuple[int, str] | None:
    """Why ``channel`` may not be subscribed, or None. Missing and foreign rooms alike are
    "permission denied"."""
    if channel.startswith("user#"):
        return None if channel[5:] == session.user.id else PERMISSION_DENIED
    if channel.startswith("room:"):
        allowed = session.rooms.room_for(session.user, channel[5:]) is not None
        return None if allowed else PERMISSION_DENIED
    return UNKNOWN_CHANNEL


def _subscribe(session: Session, cid: int, params: dict[str, Any]) -> None:
    channel = params.get("channel")
    if not isinstance(channel, str):
        session.error(cid, *BAD_REQUEST)
        return
    refusal = _refusal(session, channel)
    if refusal is not None:
        session.error(cid, *refusal)
    elif channel in session.channels:
        session.error(cid, *ALREADY_SUBSCRIBED)
    else:
        state = session.rooms.channel(channel)
        state.subscribers.add(session)
        session.channels.add(channel)
        body = {"recoverable": True, "epoch": state.epoch, "positioned": True}
        session.reply(cid, "subscribe", body)


def _unsubscribe(session: Session, cid: int, params: dict[str, Any]) -> None:
    channel = params.get("channel")
    if not isinstance(channel, str):
        session.error(cid, *BAD_REQUEST)
        return
    if channel in session.channels:
        session.forget(channel)
        state = session.rooms.channels.get(channel)
        if state is not None:
            state.subscribers.discard(session)
    session.reply(cid, "unsubscribe", {})


def _rpc(session: Session, cid: int, params: dict[str, Any]) -> None:
    """``{"rpc": {"method", "data": <§8.2 envelope>}}`` → the ack ``{"rpc": {"data":
    {"request_id"}}}`` (or an error), then the command's pushes."""
    data = params.get("data")
    if not isinstance(data, dict):
        session.error(cid, *BAD_REQUEST)
        return
    name, request_id = data.get("command"), data.get("request_id")
    handler = _COMMANDS.get(name) if isinstance(name, str) else None
    try:
        if handler is None:
            raise RpcError(400, f"Unknown command: {name}")
        work = handler(session, request_id, data.get("payload", {}))
    except RpcError as exc:
        session.error(cid, exc.code, exc.message)
        return
    except msgspec.ValidationError as exc:
        session.error(cid, 400, f"Invalid payload: {exc}")
        return
    session.reply(cid, "rpc", {"data": {"request_id": request_id}})
    pending = work()
    if pending is not None:
        session.state.spawn(pending)


_METHODS: dict[str, Callable[[Session, int, dict[str, Any]], None]] = {
    "connect": _connect,
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "rpc": _rpc,
}


# ---- room commands ----------------------------------------------------------------------


class _CreateTurn(msgspec.Struct):
    turn: WireTurn


class _GenerateTurn(msgspec.Struct):
    chat_id: str
    character_id: str | None = None


def _publish(
    rooms: RoomStore, rec: RoomRecord, command: str, request_id: object, turn: Turn, *, bot: bool
) -> None:
    event = RoomEvent(turn, ROOM_INFO, command, request_id, GENERATION_MODE if bot else None)
    rooms.publish(f"room:{rec.room.id}", event)


def _room(session: Session, room_id: object) -> RoomRecord:
    rec = session.rooms.room_for(session.user, room_id)
    if rec is None:
        raise RpcError(404, "Room not found")
    return rec


def _turn(session: Session, key: WireTurnKey) -> tuple[RoomRecord, Turn]:
    rec = _room(session, key.chat_id)
    turn = rec.by_id.get(key.turn_id or "")
    if turn is None:
        raise RpcError(404, "Turn not found")
    return rec, turn


def _check_input(session: Session, text: str) -> None:
    if session.core.filters.refuses(text):
        raise RpcError(400, "Self harm message detected")


def _take_generation(session: Session) -> None:
    if session.core.limits.generation(session.user.token) is not None:
        raise RpcError(429, "Rate limit exceeded")


def _human_turn(user: User, room_id: str, wire: WireTurn) -> Turn:
    """The user's turn as stored and pushed, minting any id the client left out."""
    primary = next(
        (c for c in wire.candidates if c.candidate_id == wire.primary_candidate_id),
        wire.candidates[0] if wire.candidates else None,
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
        turn_key=TurnKey(room_id, wire.turn_key.turn_id or new_id()),
        create_time=now,
        last_update_time=now,
        state="STATE_OK",
        author=Author(user.id, user.username, True),
        candidates=[candidate],
        primary_candidate_id=candidate_id,
    )


def create_turn(session: Session, request_id: object, payload: Any) -> Work:
    """A user's message: stored, then one ``add_turn`` push (complete, ``is_final``)."""
    wire = msgspec.convert(payload, _CreateTurn).turn
    rec = _room(session, wire.turn_key.chat_id)
    turn = _human_turn(session.user, rec.room.id, wire)
    _check_input(session, turn.candidates[0].raw_content)
    if turn.turn_key.turn_id in rec.by_id:
        raise RpcError(400, "create_turn already exists")

    def work() -> None:
        session.rooms.append_turn(rec, turn, human=True)
        _publish(session.rooms, rec, "add_turn", request_id, turn, bot=False)

    return work


def _text_of(turn: Turn) -> str:
    primary = turn.primary_only().candidates
    return primary[0].raw_content if primary else ""


def _last_human(rec: RoomRecord, before: int | None = None) -> Turn | None:
    end = len(rec.turns) if before is None else before
    return next((t for t in reversed(rec.turns[:end]) if t.author.is_human), None)


def _next_speaker(rooms: RoomStore, rec: RoomRecord) -> SeedCharacter | None:
    """Smart reply's pick: the first room character named in the last user message, else
    the one who has spoken least recently (never spoken first, then room order)."""
    cast = rooms.characters_of(rec)
    last = _last_human(rec)
    text = _text_of(last).casefold() if last is not None else ""
    named = [c for c in cast if c.name.casefold() in text]
    if named:
        return named[0]
    spoke: dict[str, int] = {}
    for at, turn in enumerate(rec.turns):
        spoke[turn.author.author_id] = at
    return min(cast, key=lambda c: spoke.get(c.id, -1), default=None)


def _room_character(session: Session, rec: RoomRecord, character_id: str) -> SeedCharacter:
    for character in session.rooms.characters_of(rec):
        if character.id == character_id:
            return character
    raise RpcError(404, "Character not found")


def generate_turn(session: Session, request_id: object, payload: Any) -> Work:
    """A character answers (``character_id``'s, or smart reply's pick): ``add_turn`` then
    cumulative ``update_turn`` pushes, ``is_final`` on the last only."""
    req = msgspec.convert(payload, _GenerateTurn)
    rec = _room(session, req.chat_id)
    chosen = _room_character(session, rec, req.character_id) if req.character_id else None
    if chosen is None and not session.rooms.characters_of(rec):
        raise RpcError(404, "Character not found")
    _take_generation(session)

    async def work() -> None:
        async with rec.lock:
            speaker = chosen or _next_speaker(session.rooms, rec)
            if speaker is None:
                return
            last = _last_human(rec)
            prompt = _text_of(last) if last is not None else ""
            number = max(1, rec.room.human_turns)
            await _stream(session, rec, request_id, speaker, prompt, number)

    return work


def generate_turn_candidate(session: Session, request_id: object, payload: Any) -> Work:
    """Swipe a character turn: ``update_turn`` pushes only, carrying just the new candidate,
    which becomes the primary one."""
    req = msgspec.convert(payload, GenerateCandidatePayload)
    rec, turn = _turn(session, req.turn_key)
    if turn.author.is_human:
        raise RpcError(400, "Only character turns can be regenerated")
    character = session.core.characters.get(turn.author.author_id)
    if character is None or (req.character_id and req.character_id != character.id):
        raise RpcError(404, "Character not found")
    _take_generation(session)

    async def work() -> None:
        async with rec.lock:
            if rec.by_id.get(turn.turn_key.turn_id) is not turn:
                return
            last = _last_human(rec, rec.turns.index(turn))
            prompt = _text_of(last) if last is not None else ""
            number = rec.room.human_turns + len(turn.candidates)
            await _stream(session, rec, request_id, character, prompt, number, turn)

    return work


def edit_turn_candidate(session: Session, request_id: object, payload: Any) -> Work:
    """Edit a turn: a new final candidate with ``editor`` and ``base_candidate_id`` becomes
    the primary one; one ``update_turn`` push. Other users' turns cannot be edited."""
    req = msgspec.convert(payload, EditCandidatePayload)
    rec, turn = _turn(session, req.turn_key)
    user = session.user
    if turn.author.is_human and turn.author.author_id != user.id:
        raise RpcError(403, "Cannot edit another user's turn")
    base_id = req.current_candidate_id or req.candidate_id or turn.primary_candidate_id
    base = next((c for c in turn.candidates if c.candidate_id == base_id), None)
    if base is None:
        raise RpcError(404, "Turn candidate not found")
    _check_input(session, req.new_candidate_raw_content)

    def work() -> None:
        now = now_iso()
        edited = Candidate(
            new_id(),
            now,
            req.new_candidate_raw_content,
            tti_image_rel_path=base.tti_image_rel_path,
            is_final=True,
            base_candidate_id=base.candidate_id,
            editor=Editor(user.id, user.username),
        )
        turn.candidates.insert(0, edited)
        turn.primary_candidate_id = edited.candidate_id
        turn.last_update_time = now
        session.rooms.save_turn(rec, turn)
        shown = msgspec.structs.replace(turn, candidates=[edited])
        _publish(session.rooms, rec, "update_turn", request_id, shown, bot=False)

    return work


_COMMANDS: dict[str, Callable[[Session, object, Any], Work]] = {
    "create_turn": create_turn,
    "generate_turn": generate_turn,
    "generate_turn_candidate": generate_turn_candidate,
    "edit_turn_candidate": edit_turn_candidate,
}


# ---- streaming --------------------------------------------------------------------------


def _pieces(
    session: Session, character: SeedCharacter, prompt: str, number: int
) -> tuple[list[str], bool]:
    """The reply's cumulative pieces, and whether the output filter cut it short."""
    reply = character.reply(prompt, number)
    reply = reply if prompt else reply.strip()
    cut = session.core.filters.truncate(prompt, reply)
    pieces = split_cumulative(reply if cut is None else cut, session.state.chunks)
    return pieces, cut is not None


async def _stream(
    session: Session,
    rec: RoomRecord,
    request_id: object,
    character: SeedCharacter,
    prompt: str,
    number: int,
    base: Turn | None = None,
) -> None:
    """Stream one generated candidate as cumulative pushes, mutating the stored turn in
    place (each push is encoded at once, so no copies are kept per frame)."""
    rooms, state = session.rooms, session.state
    pieces, truncated = _pieces(session, character, prompt, number)
    now = now_iso()
    candidate = Candidate(new_id(), now, pieces[0], model_type=MODEL_TYPE)
    if base is None:
        author = Author(character.id, character.name)
        key = TurnKey(rec.room.id, new_id())
        stored = shown = Turn(
            key, now, now, "STATE_OK", author, [candidate], candidate.candidate_id
        )
        rooms.append_turn(rec, stored)
        command = "add_turn"
    else:
        stored = base
        stored.candidates.insert(0, candidate)
        stored.primary_candidate_id = candidate.candidate_id
        shown = msgspec.structs.replace(stored, candidates=[candidate])
        command = "update_turn"
    for i, piece in enumerate(pieces):
        if i:
            if state.chunk_delay > 0:
                await asyncio.sleep(state.chunk_delay)
            if rooms.rooms.get(rec.room.id) is not rec:
                return  # Deleted meanwhile.
            command = "update_turn"
            stored.last_update_time = shown.last_update_time = now_iso()
        candidate.raw_content = piece
        if i == len(pieces) - 1:
            candidate.is_final = True
            candidate.safety_truncated = truncated
        _publish(rooms, rec, command, request_id, shown, bot=True)
    rooms.save_turn(rec, stored)


# ---- the socket -------------------------------------------------------------------------


async def websocket(request: web.Request) -> web.StreamResponse:
    """``GET /neo/connection/websocket``: plain HTTP 403 unless authenticated (§9, §1.2)."""
    user = ws_user(request)
    if user is None:
        return web.Response(status=403, text="Forbidden")
    state = request.app[STATE]
    ws = web.WebSocketResponse(compress=False, max_msg_size=4 * 1024 * 1024)
    await ws.prepare(request)
    session = Session(ws, user, request.app[ROOMS], state)
    state.sockets.add(ws)
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(session.writer()), loop.create_task(session.pinger())]
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                session.receive(msg.data)
            elif msg.type is WSMsgType.BINARY:
                session.receive(msg.data.decode("utf-8", "replace"))
    finally:
        session.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        state.sockets.discard(ws)
        if not ws.closed:
            await ws.close(code=WSCloseCode.GOING_AWAY)
    return ws
