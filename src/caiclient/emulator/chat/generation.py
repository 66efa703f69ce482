"""Generating a character's reply and streaming it on ``/neo/ws/`` (docs/protocol.md §8.4).

A reply is cut into ``chunks`` cumulative pieces sent ``chunk_delay`` apart: the first as
``add_turn`` (a new turn) or ``update_turn`` (a new candidate of an existing turn), the
rest as ``update_turn``; ``is_final`` is absent until the last one. ``abort_generation``
stops a running reply within one chunk interval (docs/emulator.md "Abort").
"""

from __future__ import annotations

from dataclasses import dataclass

from .._util import encode, new_id, now_iso
from ..characters.cast import SeedCharacter, split_cumulative
from ..state import Abort, Generation
from ..wire import CHAT_INFO, GENERATION_MODE, Author, Candidate, Turn, TurnEvent, TurnKey
from .connection import Connection
from .store import ChatRecord

__all__ = ["Reply", "stream_reply"]


def _padded(reply: str, chunks: int) -> str:
    if len(reply) < chunks:
        # Pad so the reply can be cut into the promised number of distinct pieces.
        reply += " …" * ((chunks - len(reply) + 1) // 2)
    return reply


def _reply_text(character: SeedCharacter, text: str, turn: int) -> str:
    reply = character.reply(text, turn)
    return reply if text else reply.strip()


@dataclass(slots=True)
class Reply:
    """One candidate being generated: where it goes and the pieces it is sent in."""

    request_id: object
    key: TurnKey
    created: str
    author: Author
    pinned: bool
    candidate_id: str
    started: str
    model: str
    truncated: bool
    pieces: list[str]
    new_turn: bool

    def turn(self, text: str, *, final: bool, aborted: bool = False) -> Turn:
        """The turn as one frame shows it: only this candidate, at ``text``."""
        candidate = Candidate(
            self.candidate_id,
            self.started,
            text,
            model_type=self.model,
            # is_final is absent (not false) until the last frame (docs/protocol.md §8.4).
            is_final=True if final else None,
            safety_truncated=self.truncated and final and not aborted,
            aborted=aborted,
        )
        stamp = now_iso()
        return Turn(
            self.key,
            self.created,
            stamp,
            "STATE_OK",
            self.author,
            [candidate],
            self.candidate_id,
            self.pinned,
        )

    def frame(self, command: str, turn: Turn) -> bytes:
        return encode(TurnEvent(command, self.request_id, turn, CHAT_INFO, GENERATION_MODE))


def plan_reply(
    conn: Connection,
    request_id: object,
    rec: ChatRecord,
    prompt: str,
    number: int,
    base: Turn | None,
) -> Reply:
    """Decide the reply's text and pieces; without ``base`` it is a new character turn,
    with it a new candidate of ``base`` (same turn key, §15.7)."""
    state = conn.state
    reply = _reply_text(rec.character, prompt, number)
    cut = state.store.filters.truncate(prompt, reply)
    pieces = split_cumulative(_padded(reply if cut is None else cut, state.chunks), state.chunks)
    now = now_iso()
    if base is None:
        key, created, pinned = TurnKey(rec.chat.chat_id, new_id()), now, False
        author = Author(rec.character.id, rec.character.name)
    else:
        key, created, author, pinned = base.turn_key, base.create_time, base.author, base.is_pinned
    return Reply(
        request_id=request_id,
        key=key,
        created=created,
        author=author,
        pinned=pinned,
        candidate_id=new_id(),
        started=now,
        model=rec.chat.preferred_model_type,
        truncated=cut is not None,
        pieces=pieces,
        new_turn=base is None,
    )


async def _send_pieces(conn: Connection, reply: Reply, running: Generation) -> Turn | None:
    """Send the pieces until the last or until stopped; the last turn sent (None if none).
    Stopped counts only before the final piece: a finished reply ignores a late abort."""
    last: Turn | None = None
    final_at = len(reply.pieces) - 1
    for i, piece in enumerate(reply.pieces):
        # chunk_delay is read each time: tests change it while a reply streams.
        if await running.pause(conn.state.chunk_delay) if i else running.stopped:
            return last
        last = reply.turn(piece, final=i == final_at)
        await conn.send(
            reply.frame("add_turn" if i == 0 and reply.new_turn else "update_turn", last)
        )
    return last


async def _finish_aborted(
    conn: Connection, running: Generation, reply: Reply, last: Turn | None
) -> Turn | None:
    """Close an aborted reply: one final ``update_turn`` with the text sent so far, marked
    ``aborted``, which is what gets stored; nothing when no piece went out."""
    rid, chat_id = str(reply.request_id), reply.key.chat_id
    if last is None:
        conn.state.record_abort(running, Abort(rid, chat_id, "", ""))
        return None
    text = last.candidates[0].raw_content
    conn.state.record_abort(running, Abort(rid, chat_id, reply.key.turn_id, text))
    final = reply.turn(text, final=True, aborted=True)
    await conn.send(reply.frame("update_turn", final))
    return final


async def stream_reply(
    conn: Connection,
    running: Generation,
    rec: ChatRecord,
    prompt: str,
    number: int,
    base: Turn | None = None,
) -> Turn | None:
    """Generate one candidate and stream it; return the turn to store (its final frame),
    or None when an abort came before any piece was sent.

    ``running`` is the request's registration for ``abort_generation``. The caller stores
    the result, even when the socket has closed meanwhile (sends just stop).
    """
    reply = plan_reply(conn, running.request_id, rec, prompt, number, base)
    last = await _send_pieces(conn, reply, running)
    complete = last is not None and last.candidates[0].is_final is True
    if complete:
        return last
    return await _finish_aborted(conn, running, reply, last)
