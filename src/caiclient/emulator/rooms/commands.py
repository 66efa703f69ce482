"""The room commands carried by the Centrifugo socket's ``rpc`` (docs/protocol.md §9).

Each command checks its request at once (a refusal is an :class:`RpcError`, the rpc's error
answer) and returns the work to do after the rpc is acknowledged: the turns then arrive as
pushes on ``room:<id>``. A character's reply streams as cumulative pushes, one chunk
interval apart; ``abort_generation`` stops it (docs/emulator.md "Abort").
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import msgspec

from .._util import new_id, now_iso
from ..characters.cast import SeedCharacter, split_cumulative
from ..state import Abort, Generation
from ..wire import (
    GENERATION_MODE,
    Author,
    Candidate,
    ChatInfo,
    EditCandidatePayload,
    Editor,
    GenerateCandidatePayload,
    GenerationMode,
    PrimaryCandidatePayload,
    Turn,
    TurnKey,
    WireTurn,
    WireTurnKey,
    turn_from_wire,
)
from .store import RoomRecord, RoomStore

if TYPE_CHECKING:
    from .socket import Session

__all__ = ["COMMANDS", "MODEL_TYPE", "ROOM_INFO", "RoomEvent", "RpcError", "Work"]

MODEL_TYPE = "MODEL_TYPE_SMART"
ROOM_INFO = ChatInfo(type="TYPE_MU_ROOM")

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


def create_turn(session: Session, request_id: object, payload: Any) -> Work:
    """A user's message: stored, then one ``add_turn`` push (complete, ``is_final``)."""
    wire = msgspec.convert(payload, _CreateTurn).turn
    rec = _room(session, wire.turn_key.chat_id)
    user = session.user
    turn = turn_from_wire(wire, rec.room.id, Author(user.id, user.username, True), now_iso())
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
        with session.state.generation(session.user.id, request_id) as running:
            async with rec.lock:
                speaker = chosen or _next_speaker(session.rooms, rec)
                if speaker is None:
                    return
                last = _last_human(rec)
                prompt = _text_of(last) if last is not None else ""
                number = max(1, rec.room.human_turns)
                await _stream(session, rec, running, speaker, prompt, number)

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
        with session.state.generation(session.user.id, request_id) as running:
            async with rec.lock:
                if rec.by_id.get(turn.turn_key.turn_id) is not turn:
                    return
                last = _last_human(rec, rec.turns.index(turn))
                prompt = _text_of(last) if last is not None else ""
                number = rec.room.human_turns + len(turn.candidates)
                await _stream(session, rec, running, character, prompt, number, turn)

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


def update_primary_candidate(session: Session, request_id: object, payload: Any) -> Work:
    """Choose which candidate of a turn the room shows (our choice where §9 is silent: an
    rpc like the others, answered by an ``update_turn`` push of the turn, every member
    seeing the choice)."""
    req = msgspec.convert(payload, PrimaryCandidatePayload)
    rec, turn = _turn(session, req.turn_key)
    if all(c.candidate_id != req.candidate_id for c in turn.candidates):
        raise RpcError(404, "Turn candidate not found")

    def work() -> None:
        turn.primary_candidate_id = req.candidate_id
        turn.last_update_time = now_iso()
        session.rooms.save_turn(rec, turn)
        _publish(session.rooms, rec, "update_turn", request_id, turn, bot=False)

    return work


def abort_generation(session: Session, request_id: object, payload: Any) -> Work:
    """Stop the caller's room generation whose request had this ``request_id``; the rpc is
    acknowledged either way (an unknown or finished one is ignored)."""

    async def work() -> None:
        # A task, like the generations: one dispatched just before has registered itself.
        session.state.abort(session.user.id, request_id)

    return work


COMMANDS: dict[str, Callable[[Session, object, Any], Work]] = {
    "create_turn": create_turn,
    "generate_turn": generate_turn,
    "generate_turn_candidate": generate_turn_candidate,
    "edit_turn_candidate": edit_turn_candidate,
    "update_primary_candidate": update_primary_candidate,
    "abort_generation": abort_generation,
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


def _start(
    rooms: RoomStore, rec: RoomRecord, character: SeedCharacter, first: str, base: Turn | None
) -> tuple[Candidate, Turn, Turn]:
    """The new candidate at its first piece, the stored turn that holds it (a new turn, or
    ``base`` with the candidate in front) and the turn as pushes show it."""
    now = now_iso()
    candidate = Candidate(new_id(), now, first, model_type=MODEL_TYPE)
    if base is None:
        author = Author(character.id, character.name)
        key = TurnKey(rec.room.id, new_id())
        stored = Turn(key, now, now, "STATE_OK", author, [candidate], candidate.candidate_id)
        rooms.append_turn(rec, stored)
        return candidate, stored, stored
    base.candidates.insert(0, candidate)
    base.primary_candidate_id = candidate.candidate_id
    return candidate, base, msgspec.structs.replace(base, candidates=[candidate])


def _end_aborted(
    session: Session, rec: RoomRecord, running: Generation, candidate: Candidate, shown: Turn
) -> None:
    """The last push of an aborted reply: the text so far, final and marked ``aborted``."""
    candidate.is_final = candidate.aborted = True
    rid, turn_id = running.request_id, shown.turn_key.turn_id
    abort = Abort(str(rid), rec.room.id, turn_id, candidate.raw_content)
    session.state.record_abort(running, abort)
    _publish(session.rooms, rec, "update_turn", rid, shown, bot=True)


async def _stream(
    session: Session,
    rec: RoomRecord,
    running: Generation,
    character: SeedCharacter,
    prompt: str,
    number: int,
    base: Turn | None = None,
) -> None:
    """Stream one generated candidate as cumulative pushes, mutating the stored turn in
    place (each push is encoded at once, so no copies are kept per frame). An abort ends
    it with a final push of the text so far, marked ``aborted``."""
    rooms, state, rid = session.rooms, session.state, running.request_id
    if running.stopped:
        state.record_abort(running, Abort(str(rid), rec.room.id, "", ""))
        return
    pieces, truncated = _pieces(session, character, prompt, number)
    candidate, stored, shown = _start(rooms, rec, character, pieces[0], base)
    command = "add_turn" if base is None else "update_turn"
    for i, piece in enumerate(pieces):
        if i:
            stopped = await running.pause(state.chunk_delay)
            if rooms.rooms.get(rec.room.id) is not rec:
                return  # Deleted meanwhile.
            command = "update_turn"
            stored.last_update_time = shown.last_update_time = now_iso()
            if stopped:
                _end_aborted(session, rec, running, candidate, shown)
                break
        candidate.raw_content = piece
        if i == len(pieces) - 1:
            candidate.is_final = True
            candidate.safety_truncated = truncated
        _publish(rooms, rec, command, rid, shown, bot=True)
    rooms.save_turn(rec, stored)
