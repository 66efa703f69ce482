"""The commands of the ``/neo/ws/`` socket (docs/protocol.md §8.5), one coroutine each.

Requests that add turns (sends, manual turns, swipes) are serialised per chat by the chat's
lock, so generations of different chats interleave while one chat's history always reads
user, reply, user, reply. Edits, pins, primary changes and removals act on the stored state
at once. A command answers by sending frames on its connection; a refusal is raised as
:class:`RequestError` and becomes a ``neo_error`` frame.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from .._util import encode, new_id, now_iso
from ..wire import (
    CHAT_INFO,
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
    WireTurn,
    WireTurnKey,
    complete_turn,
    pin_view,
    turn_from_wire,
)
from .connection import Connection, RequestError
from .generation import stream_reply
from .store import ChatRecord

__all__ = ["COMMANDS", "UNLIMITED", "Command"]

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


def _new_chat(conn: Connection, payload: Any) -> tuple[ChatRecord, Turn | None]:
    req = msgspec.convert(payload, CreateChatPayload)
    store = conn.chats
    character = conn.store.character_for(conn.user, req.chat.character_id)
    if character is None:
        raise RequestError("Character not found", 404)
    chat_id = req.chat.chat_id or new_id()
    if chat_id in store.chats:
        raise RequestError("create_chat already exists", 400)
    now = now_iso()
    chat = Chat(
        chat_id=chat_id,
        create_time=now,
        creator_id=conn.user.id,
        character_id=character.id,
        state="STATE_ACTIVE",
        type="TYPE_ONE_ON_ONE",
        visibility="VISIBILITY_PRIVATE",
        preferred_model_type=req.chat.preferred_model_type or "MODEL_TYPE_SMART",
    )
    rec = store.create_chat(conn.user, character, chat)
    greeting = None
    if req.with_greeting:
        author = Author(character.id, character.name)
        greeting = complete_turn(chat_id, author, character.greeting, now)
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


# ---- turns and generations --------------------------------------------------------------


def _new_turn(conn: Connection, rec: ChatRecord, wire: WireTurn, *, human: bool) -> Turn:
    """A client-made turn as stored and echoed: the user's, or the character's."""
    if human:
        author = Author(conn.user.id, conn.user.username, True)
    else:
        author = Author(rec.character.id, rec.character.name)
    return turn_from_wire(wire, rec.chat.chat_id, author, now_iso())


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
    """Store and echo the user's turn, then stream the character's reply (§8.4, §8.5).

    An ``abort_generation`` for this request, even while it waits for the chat, stops the
    reply; the user's turn is stored all the same.
    """
    rec, wire = _turn_request(conn, payload)
    for candidate in wire.candidates:
        _check_input(conn, candidate.raw_content)
    _take_generation(conn)
    store = conn.chats
    with conn.state.generation(conn.user.id, request_id) as running:
        async with rec.lock:
            # The request is accepted once it holds the chat: the history then reads
            # user, reply, user, reply even when sends to one chat overlap.
            human = _new_turn(conn, rec, wire, human=True)
            if human.turn_key.turn_id in rec.seq_of:
                raise RequestError("create_and_generate_turn already exists", 400)
            store.append_turn(rec, human, human=True)
            await conn.send(_frame("add_turn", request_id, human))
            text = human.candidates[0].raw_content
            reply = await stream_reply(conn, running, rec, text, rec.human_turns)
            if reply is not None:
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
    turn keeps every candidate, newest first. An aborted swipe keeps what it had.
    """
    req = msgspec.convert(payload, GenerateCandidatePayload)
    rec, turn = _turn(conn, req.turn_key)
    if turn.author.is_human:
        raise RequestError("Only character turns can be regenerated", 400)
    _take_generation(conn)
    store = conn.chats
    with conn.state.generation(conn.user.id, request_id) as running:
        async with rec.lock:
            at = store.position(rec, turn.turn_key.turn_id)
            if at is None or rec.turns[at] is not turn:
                raise RequestError("Turn not found", 404)  # Removed while we waited.
            number = rec.human_turns + len(turn.candidates)
            final = await stream_reply(conn, running, rec, _prompt_for(rec, at), number, turn)
            if final is not None and store.turn(rec, turn.turn_key.turn_id) is turn:
                turn.candidates.insert(0, final.candidates[0])
                turn.primary_candidate_id = final.primary_candidate_id
                turn.last_update_time = final.last_update_time
                store.save_turn(rec, turn)


# ---- changes to stored turns ------------------------------------------------------------


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
    rooms = conn.rooms
    room = rooms.room_for(conn.user, req.chat_id) if rooms is not None else None
    if room is not None:
        # Group chats delete turns through this socket too (§9); the room's members learn
        # it from a publication on the room's channel (our choice of its shape).
        gone = rooms.remove_turns(room, req.turn_ids)
        event = {"command": "remove_turns", "chat_id": room.room.id, "turn_ids": gone}
        rooms.publish(f"room:{room.room.id}", {**event, "request_id": request_id})
    else:
        rec = _writable(_chat(conn, req.chat_id))
        conn.chats.remove_turns(rec, req.turn_ids)
    await conn.send(encode({"command": "remove_turns_response", "request_id": request_id}))


async def abort_generation(conn: Connection, request_id: object, payload: Any) -> None:
    """Stop the caller's generation whose request had this ``request_id`` (§8.5 [L]).

    No answer of its own: the generation ends with a final ``update_turn`` marked
    ``aborted`` holding the text so far, which is what gets stored. An unknown or finished
    request id is ignored (no frame, no error).
    """
    conn.state.abort(conn.user.id, request_id)


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

UNLIMITED = frozenset({"abort_generation"})
"""Commands that the per-socket in-flight limit never refuses (an abort frees work)."""
