"""Cumulative reply frames in, text deltas out. No I/O.

Every ``update_turn`` of a generation carries the whole text so far (docs/protocol.md §8.4);
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

    :meth:`update` takes a frame's turn and says whether anything changed; :meth:`take`
    hands out what changed since the last take as a :class:`ReplyChunk`. A caller that
    wants only the final turn never takes, so it builds no chunks. :meth:`feed` is both.
    """

    __slots__ = ("_candidate_id", "_delivered", "_final_taken", "_text", "final", "turn")

    def __init__(self, *, candidate_id: str | None = None, delivered: str = "") -> None:
        self._candidate_id = candidate_id
        self._text = delivered
        self._delivered = delivered
        self._final_taken = False
        self.final = False
        self.turn: Turn | None = None

    @property
    def text(self) -> str:
        """The text of the followed candidate in the latest frame (all of the reply so far)."""
        return self._text

    @property
    def candidate_id(self) -> str | None:
        return self._candidate_id

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

    def update(self, turn: Turn) -> bool:
        """Take the next frame's turn; True when its text changed or the reply became final.

        Frames after the final one, and frames without the followed candidate, change nothing.
        """
        if self.final:
            return False
        candidate = self._candidate(turn)
        if candidate is None:
            return False
        self.turn = turn
        text, final = candidate.raw_content, candidate.is_final
        changed = final or text != self._text
        self._text = text
        self.final = final
        return changed

    def adopt(self, turn: Turn) -> None:
        """Take a complete turn found another way (read back from the history after a drop):
        its primary candidate ends the reply even if its id is not the one followed so far,
        in which case what was delivered stays the base of the next chunk (a rewrite if the
        texts disagree)."""
        if self.final:
            return
        if self._candidate_id is not None and turn.candidate(self._candidate_id) is None:
            self._candidate_id = None
        self.update(turn)
        self.final = True

    def take(self) -> ReplyChunk | None:
        """What changed since the last take, or None when nothing did."""
        turn = self.turn
        new, old = self._text, self._delivered
        ends = self.final and not self._final_taken
        if turn is None or (new == old and not ends):
            return None
        self._delivered = new
        self._final_taken = self.final
        if new.startswith(old):
            return ReplyChunk(delta=new[len(old) :], text=new, final=self.final, turn=turn)
        return ReplyChunk(delta="", text=new, final=self.final, turn=turn, rewritten=True)

    def feed(self, turn: Turn) -> ReplyChunk | None:
        """:meth:`update` then :meth:`take`: the chunk to deliver, or None if nothing is new."""
        return self.take() if self.update(turn) else None
