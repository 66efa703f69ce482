"""The chat V2 WebSocket ``/neo/ws/`` (PROTOCOL.md §8).

One reader per socket parses frames; each request runs in its own task so generations of
different chats interleave, while one chat's requests that add turns (sends, manual turns,
swipes) are serialised by the chat's lock. Edits, pins, primary changes and removals act on
the stored state at once. All sends on a socket go through :class:`Connection.send`, which
serialises them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from .._http import token_from_header
from .._util import encode, new_id, now_iso
from ..characters.cast import SeedCharacter, split_cumulative
from ..faults import FAULTS, SEND_NORMALLY, FaultAction, Faults
from ..state import STATE, State
from ..store import Store, User
from ..wire import (
    CHAT_INFO,
    GENERATION_MODE,
    Author,
    Candidate,
    Chat,
    CreateChatPayload,
    CreateTurnPayload,
    EditCandidatePayload,
    Editor,
    GenerateCandidatePayload,
    PinPayload,
    PrimaryCandidatePayload,
    RemoveTurnsPayload,
    Turn,
    TurnEvent,
    TurnKey,
    WireTurn,
    WireTurnKey,
    pin_view,
)
from .store import CHAT, ChatRecord, ChatStore

__all__ = ["add_routes"]

log = logging.getLogger("caiclient.emulator")

_KEEPALIVE = b"{}"


class Connection:
    """One authenticated socket: serialised sends that become no-ops once it has closed."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        state: State,
        chats: ChatStore,
        user: User,
        faults: Faults | None = None,
        transport: asyncio.Transport | None = None,
    ) -> None:
        self.ws = ws
        self.state = state
        self.chats = chats
        self.user = user
        self.faults = faults or Faults()
        self._transport = transport
        self.closed = False
        self._lock = asyncio.Lock()
        # Generations in flight by request id, and those asked to stop (abort_generation).
        self.running: dict[str, asyncio.Task[Any]] = {}
        self.aborted: set[str] = set()

    @property
    def store(self) -> Store:
        return self.state.store

    async def send(self, frame: bytes) -> None:
        """Send one text frame; after the peer has gone, drop it silently."""
        if self.closed or self.ws.closed:
            self.closed = True
            return
        action = self.faults.on_socket_frame()
        if action is not SEND_NORMALLY and not await self._misbehave(action):
            return
        async with self._lock:
            try:
                await self.ws.send_frame(frame, WSMsgType.TEXT)
            except (ConnectionError, RuntimeError):
                self.closed = True

    async def _misbehave(self, action: FaultAction) -> bool:
        """Carry out an injected fault; False when the frame must not be sent."""
        if action.delay:
            await asyncio.sleep(action.delay)
        if action.drop:
            # Like a dead network: no close frame, the TCP connection just ends.
            self.closed = True
            if self._transport is not None:
                self._transport.abort()
            return False
        if action.close_code is not None:
            self.closed = True
            await self.ws.close(code=action.close_code, message=b"injected fault")
            return False
        if action.malformed:
            async with self._lock:
                await self.ws.send_frame(b'{"command": "add_turn", "turn": ', WSMsgType.TEXT)
        return True

    async def error(
        self,
        request_id: object,
        comment: str,
        code: int,
        *,
        sub_code: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Send a ``neo_error`` frame (§8.6); the socket stays open."""
        await self.send(
            encode(
                {
                    "command": "neo_error",
                    "request_id": request_id,
                    "comment": comment,
                    "error_code": code,
                    "sub_code": sub_code,
                    "retry_after_seconds": retry_after,
                }
            )
        )


class RequestError(Exception):
    """A request that must be answered with a neo_error frame."""

    def __init__(
        self,
        comment: str,
        code: int,
        *,
        sub_code: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(comment)
        self.comment = comment
        self.code = code
        self.sub_code = sub_code
        self.retry_after = retry_after


Command = Callable[[Connection, object, Any], Awaitable[None]]


# ---- shared checks ----------------------------------------------------------------------


def _chat(conn: Connection, chat_id: str) -> ChatRecord:
    """The caller's chat; another user's chat reads exactly like a missing one."""
    rec = conn.chats.chat_for(conn.user, chat_id)
    if rec is None:
        raise RequestError("Chat not found", 404)
    return rec


def _writable(rec: ChatRecord) -> ChatRecord:
    # Our choice (docs/protocol.md): an archived chat is read-only until unarchived or
    # resurrected.
    if rec.archived:
        raise RequestError("Chat is archived", 400)
    return rec


def _turn(conn: Connection, key: WireTurnKey) -> tuple[ChatRecord, Turn]:
    rec = _writable(_chat(conn, key.chat_id))
    turn = conn.chats.turn(rec, key.turn_id or "")
    if turn is None:
        raise RequestError("Turn not found", 404)
    return rec, turn


def _check_input(conn: Connection, text: str) -> None:
    """The input filter; the refusal is the verbatim capture of §8.6."""
    if conn.store.filters.refuses(text):
        raise RequestError("Self harm message detected", 400, sub_code=101)


def _take_generation(conn: Connection) -> None:
    wait = conn.store.limits.generation(conn.user.token)
    if wait is not None:
        raise RequestError("Rate limit exceeded", 429, retry_after=wait)


def _frame(command: str, request_id: object, turn: Turn) -> bytes:
    return encode(TurnEvent(command, request_id, turn, CHAT_INFO))


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
    store = conn.chats
    character = conn.store.character_for(conn.user, req.chat.character_id)
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
        await conn.send(_frame("add_turn", request_id, greeting))


# ---- generation -------------------------------------------------------------------------


def _padded(reply: str, chunks: int) -> str:
    if len(reply) < chunks:
        # Pad so the reply can be cut into the promised number of distinct pieces.
        reply += " …" * ((chunks - len(reply) + 1) // 2)
    return reply


def _reply_text(character: SeedCharacter, text: str, turn: int) -> str:
    reply = character.reply(text, turn)
    return reply if text else reply.strip()


def _uncancel() -> None:
    task = asyncio.current_task()
    uncancel = getattr(task, "uncancel", None)  # Python >= 3.11
    if uncancel is not None:
        uncancel()


async def _stream(
    conn: Connection,
    request_id: object,
    rec: ChatRecord,
    prompt: str,
    number: int,
    base: Turn | None = None,
) -> Turn:
    """Generate one candidate and stream it as cumulative frames; return the final frame.

    Without ``base`` this is a new character turn (``add_turn`` then ``update_turn``s);
    with it, a new candidate of ``base`` (``update_turn``s only, same turn key, carrying
    just the new candidate, §15.7). ``abort_generation`` ends the stream early with a final
    frame holding the text so far. The caller stores the result, even when the socket has
    closed meanwhile (sends just stop).
    """
    state = conn.state
    store = state.store
    reply = _reply_text(rec.character, prompt, number)
    cut = store.filters.truncate(prompt, reply)
    pieces = split_cumulative(_padded(reply if cut is None else cut, state.chunks), state.chunks)
    now = now_iso()
    candidate_id = new_id()
    model = rec.chat.preferred_model_type
    if base is None:
        key, created, pinned = TurnKey(rec.chat.chat_id, new_id()), now, False
        author = Author(rec.character.id, rec.character.name)
        first = "add_turn"
    else:
        key, created, author, pinned = base.turn_key, base.create_time, base.author, base.is_pinned
        first = "update_turn"
    truncated = cut is not None

    def snapshot(piece: str, stamp: str, final: bool | None) -> Turn:
        candidate = Candidate(
            candidate_id,
            now,
            piece,
            model_type=model,
            is_final=final,
            safety_truncated=truncated and bool(final),
        )
        return Turn(key, created, stamp, "STATE_OK", author, [candidate], candidate_id, pinned)

    def event(command: str, turn: Turn) -> bytes:
        return encode(TurnEvent(command, request_id, turn, CHAT_INFO, GENERATION_MODE))

    # Only string request ids can be named by abort_generation.
    rid = request_id if isinstance(request_id, str) else None
    task = asyncio.current_task()
    if rid is not None and task is not None:
        conn.running[rid] = task
    # is_final is absent (not false) until the last frame (PROTOCOL.md §8.4).
    turn = snapshot(pieces[0], now, True if len(pieces) == 1 else None)
    try:
        await conn.send(event(first, turn))
        for i, piece in enumerate(pieces[1:], start=2):
            if state.chunk_delay > 0:
                await asyncio.sleep(state.chunk_delay)
            turn = snapshot(piece, now_iso(), True if i == len(pieces) else None)
            await conn.send(event("update_turn", turn))
    except asyncio.CancelledError:
        if rid is None or rid not in conn.aborted:
            raise
        _uncancel()
        turn = snapshot(turn.candidates[0].raw_content, now_iso(), True)
        await conn.send(event("update_turn", turn))
    finally:
        if rid is not None and conn.running.get(rid) is task:
            del conn.running[rid]
            conn.aborted.discard(rid)
    return turn


def _new_turn(conn: Connection, rec: ChatRecord, wire: WireTurn, *, human: bool) -> Turn:
    """A client-made turn as stored and echoed, minting any id the client left out."""
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
    if human:
        author = Author(conn.user.id, conn.user.username, True)
    else:
        author = Author(rec.character.id, rec.character.name)
    return Turn(
        turn_key=TurnKey(rec.chat.chat_id, wire.turn_key.turn_id or new_id()),
        create_time=now,
        last_update_time=now,
        state="STATE_OK",
        author=author,
        candidates=[candidate],
        primary_candidate_id=candidate_id,
    )


def _turn_request(conn: Connection, payload: Any) -> tuple[ChatRecord, WireTurn]:
    req = msgspec.convert(payload, CreateTurnPayload)
    rec = _chat(conn, req.turn.turn_key.chat_id)
    if req.character_id and req.character_id != rec.character.id:
        raise RequestError("Character not found", 404)
    return _writable(rec), req.turn


def _text_of(wire: WireTurn) -> str:
    candidates = wire.candidates
    return candidates[0].raw_content if candidates else ""


async def create_and_generate_turn(conn: Connection, request_id: object, payload: Any) -> None:
    """Store and echo the user's turn, then stream the character's reply (§8.4, §8.5)."""
    rec, wire = _turn_request(conn, payload)
    for candidate in wire.candidates:
        _check_input(conn, candidate.raw_content)
    _take_generation(conn)
    store = conn.chats
    async with rec.lock:
        # The request is accepted once it holds the chat: the history then reads
        # user, reply, user, reply even when sends to one chat overlap.
        human = _new_turn(conn, rec, wire, human=True)
        if human.turn_key.turn_id in rec.seq_of:
            raise RequestError("create_and_generate_turn already exists", 400)
        store.append_turn(rec, human, human=True)
        await conn.send(_frame("add_turn", request_id, human))
        text = human.candidates[0].raw_content
        reply = await _stream(conn, request_id, rec, text, rec.human_turns)
        store.append_turn(rec, reply)


async def create_turn(conn: Connection, request_id: object, payload: Any) -> None:
    """Add a turn without generating; the answer is the ``add_turn`` echo only (§8.5).

    The turn is the user's unless its author is the chat's character.
    """
    rec, wire = _turn_request(conn, payload)
    human = wire.author.author_id != rec.character.id
    if human:
        _check_input(conn, _text_of(wire))
    async with rec.lock:
        turn = _new_turn(conn, rec, wire, human=human)
        if turn.turn_key.turn_id in rec.seq_of:
            raise RequestError("create_turn already exists", 400)
        conn.chats.append_turn(rec, turn, human=human)
        await conn.send(_frame("add_turn", request_id, turn))


def _prompt_for(rec: ChatRecord, at: int) -> str:
    """The text of the nearest user turn before position ``at`` ("" if none)."""
    for i in range(at - 1, -1, -1):
        turn = rec.turns[i]
        if turn.author.is_human:
            primary = turn.primary_only().candidates
            return primary[0].raw_content if primary else ""
    return ""


async def generate_turn_candidate(conn: Connection, request_id: object, payload: Any) -> None:
    """Regenerate ("swipe") a character turn: ``update_turn`` frames only (§8.5).

    The new candidate is the frames' only candidate and becomes the primary one; the stored
    turn keeps every candidate, newest first.
    """
    req = msgspec.convert(payload, GenerateCandidatePayload)
    rec, turn = _turn(conn, req.turn_key)
    if turn.author.is_human:
        raise RequestError("Only character turns can be regenerated", 400)
    _take_generation(conn)
    store = conn.chats
    async with rec.lock:
        at = store.position(rec, turn.turn_key.turn_id)
        if at is None or rec.turns[at] is not turn:
            raise RequestError("Turn not found", 404)  # Removed while we waited.
        prompt = _prompt_for(rec, at)
        final = await _stream(
            conn, request_id, rec, prompt, rec.human_turns + len(turn.candidates), turn
        )
        if store.turn(rec, turn.turn_key.turn_id) is turn:
            turn.candidates.insert(0, final.candidates[0])
            turn.primary_candidate_id = final.primary_candidate_id
            turn.last_update_time = final.last_update_time
            store.save_turn(rec, turn)


def _candidate(turn: Turn, candidate_id: str) -> Candidate:
    for candidate in turn.candidates:
        if candidate.candidate_id == candidate_id:
            return candidate
    raise RequestError("Turn candidate not found", 404)


async def edit_turn_candidate(conn: Connection, request_id: object, payload: Any) -> None:
    """Edit a turn's text: a new final candidate with ``editor`` and ``base_candidate_id``
    becomes the primary one, for user and character turns alike; one ``update_turn``."""
    req = msgspec.convert(payload, EditCandidatePayload)
    rec, turn = _turn(conn, req.turn_key)
    base_id = req.current_candidate_id or req.candidate_id or turn.primary_candidate_id
    base = _candidate(turn, base_id)
    text = req.new_candidate_raw_content
    _check_input(conn, text)
    now = now_iso()
    edited = Candidate(
        new_id(),
        now,
        text,
        tti_image_rel_path=base.tti_image_rel_path,
        is_final=True,
        base_candidate_id=base.candidate_id,
        editor=Editor(conn.user.id, conn.user.username),
    )
    turn.candidates.insert(0, edited)
    turn.primary_candidate_id = edited.candidate_id
    turn.last_update_time = now
    conn.chats.save_turn(rec, turn)
    frame = msgspec.structs.replace(turn, candidates=[edited])
    await conn.send(_frame("update_turn", request_id, frame))


async def update_primary_candidate(conn: Connection, request_id: object, payload: Any) -> None:
    """Select a swipe; the answer is ``{"command": "ok"}`` (§8.5, §13.3)."""
    req = msgspec.convert(payload, PrimaryCandidatePayload)
    rec, turn = _turn(conn, req.turn_key)
    _candidate(turn, req.candidate_id)
    if turn.primary_candidate_id != req.candidate_id:
        turn.primary_candidate_id = req.candidate_id
        conn.chats.save_turn(rec, turn)
    await conn.send(encode({"command": "ok", "request_id": request_id}))


async def set_turn_pin(conn: Connection, request_id: object, payload: Any) -> None:
    """Pin or unpin a turn; one ``update_turn`` whose turn has ``is_pinned`` (even false)."""
    req = msgspec.convert(payload, PinPayload)
    rec, turn = _turn(conn, req.turn_key)
    if turn.is_pinned != req.is_pinned:
        turn.is_pinned = req.is_pinned
        conn.chats.save_turn(rec, turn)
    frame = {"command": "update_turn", "request_id": request_id, "turn": pin_view(turn)}
    frame["chat_info"] = CHAT_INFO
    await conn.send(encode(frame))


async def remove_turns(conn: Connection, request_id: object, payload: Any) -> None:
    """Delete turns (unknown ids are ignored) → ``remove_turns_response`` (§8.5)."""
    req = msgspec.convert(payload, RemoveTurnsPayload)
    rec = _writable(_chat(conn, req.chat_id))
    conn.chats.remove_turns(rec, req.turn_ids)
    await conn.send(encode({"command": "remove_turns_response", "request_id": request_id}))


async def abort_generation(conn: Connection, request_id: object, payload: Any) -> None:
    """Stop the generation started by the request with this ``request_id`` (US1, §8.5).

    No answer of its own: the generation ends with a final ``update_turn`` holding the text
    so far, which is what gets stored. Unknown or finished generations are ignored.
    """
    if not isinstance(request_id, str):
        return
    task = conn.running.get(request_id)
    if task is not None and not task.done():
        conn.aborted.add(request_id)
        task.cancel()


# ---- dispatch ---------------------------------------------------------------------------

COMMANDS: dict[str, Command] = {
    "create_chat": create_chat,
    "create_and_generate_turn": create_and_generate_turn,
    "create_turn": create_turn,
    "generate_turn_candidate": generate_turn_candidate,
    "edit_turn_candidate": edit_turn_candidate,
    "update_primary_candidate": update_primary_candidate,
    "set_turn_pin": set_turn_pin,
    "remove_turns": remove_turns,
    "abort_generation": abort_generation,
}


async def _run(conn: Connection, command: Command, request_id: object, payload: Any) -> None:
    try:
        await command(conn, request_id, payload)
    except RequestError as exc:
        await conn.error(
            request_id, exc.comment, exc.code, sub_code=exc.sub_code, retry_after=exc.retry_after
        )
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
    faults = request.app[FAULTS]
    refusal = faults.on_upgrade()  # An anti-bot block comes before any auth check.
    if refusal is not None:
        return refusal
    user = ws_user(request)
    if user is None:
        return web.Response(status=403, text="Forbidden")
    state = request.app[STATE]
    # No permessage-deflate: frames are small and the benchmark wants raw throughput.
    ws = web.WebSocketResponse(compress=False, max_msg_size=16 * 1024 * 1024)
    await ws.prepare(request)
    conn = Connection(ws, state, request.app[CHAT], user, faults, request.transport)
    state.sockets.add(ws)
    try:
        async for msg in ws:
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                if faults.on_request():
                    conn.closed = True
                    if request.transport is not None:
                        request.transport.abort()
                    break
                await dispatch(conn, msg.data)
    finally:
        conn.closed = True
        state.sockets.discard(ws)
    return ws


def add_routes(app: web.Application) -> None:
    """Add the chat socket's routes to ``app``."""
    app.router.add_get("/neo/ws/", websocket)
    app.router.add_get("/neo/ws", websocket)
