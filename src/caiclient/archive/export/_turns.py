"""A lean decoder of archived turns for exporters (timestamps stay ISO strings).

The archive stores each turn as the JSON of :class:`caiclient.Turn`; exporters only need a
few fields, and skipping datetime parsing keeps exports well above 100,000 turns/s.
"""

from __future__ import annotations

import msgspec

__all__ = ["LiteCandidate", "LiteTurn", "chronological", "decode_turn", "encode"]


class LiteAuthor(msgspec.Struct, frozen=True):
    author_id: str = ""
    name: str = ""
    is_human: bool = False


class LiteCandidate(msgspec.Struct, frozen=True):
    candidate_id: str
    raw_content: str = ""
    create_time: str | None = None
    safety_truncated: bool = False
    base_candidate_id: str | None = None
    editor: LiteAuthor | None = None


class LiteKey(msgspec.Struct, frozen=True):
    chat_id: str
    turn_id: str = ""


class LiteTurn(msgspec.Struct, frozen=True):
    turn_key: LiteKey
    author: LiteAuthor = LiteAuthor()
    candidates: list[LiteCandidate] = msgspec.field(default_factory=list)
    primary_candidate_id: str | None = None
    create_time: str | None = None
    last_update_time: str | None = None
    state: str = "STATE_OK"
    is_pinned: bool = False


decode_turn = msgspec.json.Decoder(LiteTurn).decode
encode = msgspec.json.Encoder().encode


def chronological(turn: LiteTurn) -> tuple[list[LiteCandidate], int]:
    """The turn's candidates oldest first (the service lists them newest first) and the
    index of the primary one (the newest if the primary id is not among them)."""
    candidates = turn.candidates[::-1]
    for index, candidate in enumerate(candidates):
        if candidate.candidate_id == turn.primary_candidate_id:
            return candidates, index
    return candidates, max(len(candidates) - 1, 0)
