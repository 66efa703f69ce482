"""Cumulative reply frames in, text deltas out. No I/O.

Every ``update_turn`` of a generation carries the whole text so far (PROTOCOL.md §8.4);
:class:`ReplyAccumulator` remembers what was delivered and hands out only the new part.
The same accumulator serves the async and sync clients, the CLI and the bridge.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Candidate, Turn

__all__ = ["ReplyAccumulator", "ReplyChunk"]


@dataclass(frozen=True, slots=True)
class ReplyChunk:
    """One step of a streamed reply.

    ``delta`` is the text added since the previous chunk, ``text`` the whole reply so far,
    ``final`` whether the reply is complete, and ``turn`` the turn as the server sent it.
    When the server rewrites text it already sent (rare: output filtering can shorten a
    reply), ``delta`` is empty, ``rewritten`` is True and ``text`` holds the new whole text.
    """

    delta: str
    text: str
    final: bool
    turn: Turn
    rewritten: bool = False


class ReplyAccumulator:
    """Follow one candidate of one turn through its cumulative frames.

    ``candidate_id`` pins the candidate to follow (a regeneration adds a new one to a turn
    that already has others); by default it is the turn's primary candidate in the first
    frame fed. ``delivered`` is text the caller already has (a stream resumed after a
    reconnect), so it is not delivered twice.
    """

    __slots__ = ("_candidate_id", "_text", "final", "turn")

    def __init__(self, *, candidate_id: str | None = None, delivered: str = "") -> None:
        self._candidate_id = candidate_id
        self._text = delivered
        self.final = False
        self.turn: Turn | None = None

    @property
    def text(self) -> str:
        """The text delivered so far."""
        return self._text

    def _candidate(self, turn: Turn) -> Candidate | None:
        if self._candidate_id is None:
            candidate = turn.primary
            if candidate is not None:
                self._candidate_id = candidate.candidate_id
            return candidate
        for candidate in turn.candidates:
            if candidate.candidate_id == self._candidate_id:
                return candidate
        return None

    def track(self, turn: Turn) -> None:
        """Take the next frame's turn without building a chunk (for callers that only want
        the final turn)."""
        if self.final:
            return
        candidate = self._candidate(turn)
        if candidate is not None:
            self.turn = turn
            self._text = candidate.raw_content
            self.final = candidate.is_final

    def final_chunk(self) -> ReplyChunk:
        """The whole reply as one final chunk; only valid once :attr:`final` is True."""
        if not self.final or self.turn is None:
            raise ValueError("the reply is not complete yet")
        return ReplyChunk(delta=self._text, text=self._text, final=True, turn=self.turn)

    def feed(self, turn: Turn) -> ReplyChunk | None:
        """Take the next frame's turn; return the chunk to deliver, or None if nothing is new.

        Frames after the final one, and frames without the followed candidate, yield None.
        """
        if self.final:
            return None
        candidate = self._candidate(turn)
        if candidate is None:
            return None
        self.turn = turn
        new = candidate.raw_content
        old = self._text
        final = candidate.is_final
        self.final = final
        if new.startswith(old):
            if len(new) == len(old) and not final:
                return None
            self._text = new
            return ReplyChunk(delta=new[len(old) :], text=new, final=final, turn=turn)
        self._text = new
        return ReplyChunk(delta="", text=new, final=final, turn=turn, rewritten=True)
