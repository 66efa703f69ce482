"""Wire shapes the emulator emits (docs/protocol.md §7.1, §7.2, §8.3) and the payloads it accepts.

Outgoing Structs use ``omit_defaults`` only for keys that must be *absent* rather than null:
``author.is_human`` on character turns and ``candidates[].is_final`` on non-final chunks
(docs/protocol.md §7.2, §8.4); ``safety_truncated``, ``aborted`` and the edit keys appear only
when they apply. Incoming payload Structs are lenient: every field is optional and
unknown fields are ignored, so the minimal K1-style forms decode too (§8.5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from ._util import new_id

if TYPE_CHECKING:
    from .store import User

__all__ = [
    "CHAT_INFO",
    "GENERATION_MODE",
    "Author",
    "Candidate",
    "Chat",
    "ChatInfo",
    "CreateChatPayload",
    "CreateTurnPayload",
    "EditCandidatePayload",
    "Editor",
    "GenerateCandidatePayload",
    "GenerationMode",
    "PinPayload",
    "PrimaryCandidatePayload",
    "RemoveTurnsPayload",
    "Turn",
    "TurnEvent",
    "TurnKey",
    "WireAuthor",
    "WireCandidate",
    "WireTurn",
    "WireTurnKey",
    "complete_turn",
    "pin_view",
    "turn_from_wire",
    "user_account",
]


class TurnKey(msgspec.Struct):
    chat_id: str
    turn_id: str


class Author(msgspec.Struct, omit_defaults=True):
    author_id: str
    name: str
    is_human: bool | None = None


class Editor(msgspec.Struct, omit_defaults=True):
    """Who edited a candidate (§7.2): the user's digit-string id and name."""

    author_id: str
    name: str | None = None


class Candidate(msgspec.Struct, omit_defaults=True):
    candidate_id: str
    create_time: str
    raw_content: str
    model_type: str | None = None
    tti_image_rel_path: str | None = None
    is_final: bool | None = None
    # Only on filtered output, and on edited candidates, respectively (§7.2).
    safety_truncated: bool = False
    base_candidate_id: str | None = None
    editor: Editor | None = None
    # Our marking of a reply cut off by ``abort_generation`` (docs/emulator.md "Abort"):
    # no public capture shows how the live service marks one.
    aborted: bool = False


class Turn(msgspec.Struct, omit_defaults=True):
    turn_key: TurnKey
    create_time: str
    last_update_time: str
    state: str
    author: Author
    candidates: list[Candidate]
    primary_candidate_id: str
    is_pinned: bool = False

    def primary_only(self) -> Turn:
        """This turn with only its primary candidate (a shallow copy when it had more)."""
        if len(self.candidates) == 1:
            return self
        primary = [c for c in self.candidates if c.candidate_id == self.primary_candidate_id]
        return msgspec.structs.replace(self, candidates=primary or self.candidates[:1])


def pin_view(turn: Turn) -> dict[str, Any]:
    """The turn as answered to a pin change: primary candidate only, and ``is_pinned``
    present even when false (history pages omit a false one)."""
    shown: dict[str, Any] = msgspec.to_builtins(turn.primary_only())
    shown["is_pinned"] = turn.is_pinned
    return shown


def complete_turn(chat_id: str, author: Author, text: str, now: str) -> Turn:
    """A new turn of one final candidate, complete in one frame (a greeting, say)."""
    candidate_id = new_id()
    return Turn(
        turn_key=TurnKey(chat_id, new_id()),
        create_time=now,
        last_update_time=now,
        state="STATE_OK",
        author=author,
        candidates=[Candidate(candidate_id, now, text, is_final=True)],
        primary_candidate_id=candidate_id,
    )


def user_account(user: User) -> dict[str, Any]:
    """The ``account`` object inside a user (``GET /chat/user/`` §4.1, V1 participants)."""
    return {
        "name": user.name,
        "avatar_type": "UPLOADED" if user.avatar_file_name else "DEFAULT",
        "onboarding_complete": True,
        "avatar_file_name": user.avatar_file_name,
        "mobile_onboarding_complete": None,
    }


class Chat(msgspec.Struct, omit_defaults=True):
    chat_id: str
    create_time: str
    creator_id: str
    character_id: str
    state: str
    type: str
    visibility: str
    preferred_model_type: str
    # Set by ``PATCH /chat/{id}/update_name``; absent until then (§7.1).
    name: str | None = None


class ChatInfo(msgspec.Struct):
    type: str


class GenerationMode(msgspec.Struct):
    mode: str
    remaining_quota_frac: float


CHAT_INFO = ChatInfo(type="TYPE_ONE_ON_ONE")
GENERATION_MODE = GenerationMode(mode="MODE_NORMAL", remaining_quota_frac=1.0)


class TurnEvent(msgspec.Struct, omit_defaults=True):
    """An ``add_turn`` / ``update_turn`` frame; ``request_id`` is always present (maybe null)."""

    command: str
    request_id: object
    turn: Turn
    chat_info: ChatInfo | None = None
    generation_mode: GenerationMode | None = None


# ---- incoming payloads (lenient) -------------------------------------------------------


class WireTurnKey(msgspec.Struct):
    chat_id: str = ""
    turn_id: str | None = None


class WireCandidate(msgspec.Struct):
    candidate_id: str | None = None
    raw_content: str = ""
    tti_image_rel_path: str | None = None


class WireAuthor(msgspec.Struct):
    author_id: str | None = None
    is_human: bool | None = None
    name: str | None = None


class WireTurn(msgspec.Struct):
    turn_key: WireTurnKey = msgspec.field(default_factory=WireTurnKey)
    author: WireAuthor = msgspec.field(default_factory=WireAuthor)
    candidates: list[WireCandidate] = msgspec.field(default_factory=list)
    primary_candidate_id: str | None = None


class CreateTurnPayload(msgspec.Struct):
    turn: WireTurn
    character_id: str | None = None


class WireChat(msgspec.Struct):
    chat_id: str | None = None
    character_id: str = ""
    preferred_model_type: str | None = None


class CreateChatPayload(msgspec.Struct):
    chat: WireChat
    with_greeting: bool = False


class GenerateCandidatePayload(msgspec.Struct):
    """``generate_turn_candidate`` (US2's minimal form: only these two keys)."""

    turn_key: WireTurnKey
    character_id: str | None = None


class EditCandidatePayload(msgspec.Struct):
    turn_key: WireTurnKey
    new_candidate_raw_content: str
    current_candidate_id: str | None = None
    candidate_id: str | None = None  # US1's name for the same key


class PrimaryCandidatePayload(msgspec.Struct):
    turn_key: WireTurnKey
    candidate_id: str


class PinPayload(msgspec.Struct):
    turn_key: WireTurnKey
    is_pinned: bool


class RemoveTurnsPayload(msgspec.Struct):
    chat_id: str
    turn_ids: list[str]


def turn_from_wire(wire: WireTurn, chat_id: str, author: Author, now: str) -> Turn:
    """A client-made turn as stored and echoed (chat and room sockets alike): its primary
    candidate only, final, with any id the client left out minted here."""
    candidates = wire.candidates
    primary = next(
        (c for c in candidates if c.candidate_id and c.candidate_id == wire.primary_candidate_id),
        candidates[0] if candidates else None,
    )
    candidate_id = (primary.candidate_id if primary else None) or new_id()
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
        author=author,
        candidates=[candidate],
        primary_candidate_id=candidate_id,
    )
