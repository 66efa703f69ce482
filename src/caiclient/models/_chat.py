"""Chat V2 models: chats, turns, candidates, authors."""

from __future__ import annotations

from datetime import datetime

import msgspec

__all__ = ["Author", "Candidate", "Chat", "Turn", "TurnKey"]


class Author(msgspec.Struct, frozen=True, kw_only=True):
    """Who wrote a turn: the user (digit-string id) or a character (its external id)."""

    author_id: str = ""
    name: str = ""
    # The service omits ``is_human`` on character turns (docs/protocol.md §7.2).
    is_human: bool = False


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """One version of a turn's text; a character turn's candidates are its swipes."""

    candidate_id: str
    raw_content: str = ""
    create_time: datetime | None = None
    # Absent on non-final streaming chunks (docs/protocol.md §8.4), so it defaults to False.
    is_final: bool = False
    safety_truncated: bool = False
    # A generation stopped before its end (abort_generation): the text it had reached
    # (docs/protocol.md §8.5; our marking, no capture shows the live one).
    aborted: bool = False
    model_type: str | None = None
    tti_image_rel_path: str | None = None
    base_candidate_id: str | None = None
    editor: Author | None = None

    @property
    def text(self) -> str:
        """The candidate's text."""
        return self.raw_content


class TurnKey(msgspec.Struct, frozen=True, kw_only=True):
    """The address of a turn: its chat and its own id."""

    chat_id: str
    turn_id: str = ""


class Turn(msgspec.Struct, frozen=True, kw_only=True):
    """One message in a Chat V2 conversation, with all its candidates."""

    turn_key: TurnKey
    author: Author = Author()
    candidates: list[Candidate] = msgspec.field(default_factory=list)
    primary_candidate_id: str | None = None
    create_time: datetime | None = None
    last_update_time: datetime | None = None
    state: str = "STATE_OK"
    is_pinned: bool = False

    @property
    def chat_id(self) -> str:
        return self.turn_key.chat_id

    @property
    def turn_id(self) -> str:
        return self.turn_key.turn_id

    @property
    def primary(self) -> Candidate | None:
        """The candidate shown in the chat: ``primary_candidate_id``, else the first one."""
        for candidate in self.candidates:
            if candidate.candidate_id == self.primary_candidate_id:
                return candidate
        return self.candidates[0] if self.candidates else None

    @property
    def text(self) -> str:
        """The primary candidate's text ("" when the turn has no candidate)."""
        primary = self.primary
        return primary.raw_content if primary is not None else ""

    @property
    def is_human(self) -> bool:
        return self.author.is_human

    def candidate(self, candidate_id: str) -> Candidate | None:
        """The candidate with this id, or None if the turn (as loaded) does not have it."""
        for candidate in self.candidates:
            if candidate.candidate_id == candidate_id:
                return candidate
        return None

    @property
    def is_final(self) -> bool:
        """Whether the primary candidate is complete."""
        primary = self.primary
        return primary is not None and primary.is_final


class Chat(msgspec.Struct, frozen=True, kw_only=True):
    """A Chat V2 conversation between the user and one character."""

    chat_id: str
    character_id: str
    creator_id: str = ""
    create_time: datetime | None = None
    state: str = "STATE_ACTIVE"
    type: str = "TYPE_ONE_ON_ONE"
    visibility: str = "VISIBILITY_PRIVATE"
    name: str | None = None
    character_name: str | None = None
    character_avatar_uri: str | None = None
    preferred_model_type: str | None = None

    @property
    def is_archived(self) -> bool:
        """Whether the chat is archived (``state == "STATE_ARCHIVED"``)."""
        return self.state == "STATE_ARCHIVED"
