"""State of the chat V2 area: chats, their turns (every candidate) and annotations.

Every lookup is a dict access; history pages are found by bisecting a per-chat list of
sequence numbers, so paging a long chat costs O(page) per request, not O(history), and a
turn is found by its id through its sequence number in O(log n).

Written through the core store's persistence as kinds ``"chat"`` (key: chat id), ``"turn"``
(key: ``<chat id>/<turn id>``; a turn carries all its candidates) and ``"annotation"`` (key:
annotation id), and loaded back at start-up.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec
from aiohttp import web

from ..characters.cast import SeedCharacter
from ..store import Store, User
from ..wire import Chat, Turn, TurnKey

__all__ = ["CHAT", "Annotation", "ChatRecord", "ChatStore"]

log = logging.getLogger("caiclient.emulator")


@dataclass(slots=True, eq=False)
class ChatRecord:
    chat: Chat
    owner: User
    character: SeedCharacter
    activity: int
    turns: list[Turn] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    # turn id → its sequence number (the key into ``seqs``).
    seq_of: dict[str, int] = field(default_factory=dict)
    human_turns: int = 0
    # Serialises generations in one chat (the live server generates one turn at a time).
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def archived(self) -> bool:
        return self.chat.state == "STATE_ARCHIVED"


class _ChatState(msgspec.Struct):
    """A chat as persisted (kind ``"chat"``)."""

    chat: Chat
    owner_id: str
    activity: int
    human_turns: int


class _TurnState(msgspec.Struct):
    """A turn as persisted (kind ``"turn"``), with its place in the chat."""

    seq: int
    turn: Turn


class Annotation(msgspec.Struct):
    """A rating of one candidate (``POST /annotation/create``), kind ``"annotation"``."""

    annotation_id: str
    owner_id: str
    chat_id: str
    turn_id: str
    candidate_id: str
    annotation_type: str
    annotation_value: int | None = None
    annotation_raw_content: str | None = None


class ChatStore:
    """Chats, turns and annotations. Not thread-safe; used from the event loop only."""

    def __init__(self, core: Store) -> None:
        self.core = core
        self.persist = core.persist
        self.chats: dict[str, ChatRecord] = {}
        self.annotations: dict[str, Annotation] = {}
        self._by_owner: dict[str, list[ChatRecord]] = {}
        self._clock = 0
        self._load_chats()
        self._load_turns()
        for note in self.persist.load("annotation", Annotation).values():
            self.annotations[note.annotation_id] = note

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def _load_chats(self) -> None:
        for state in self.persist.load("chat", _ChatState).values():
            owner = self.core.users_by_id.get(state.owner_id)
            character = self.core.characters.get(state.chat.character_id)
            if owner is None or character is None:
                log.warning(
                    "state file: chat %s has lost its owner or character; skipped",
                    state.chat.chat_id,
                )
                continue
            rec = ChatRecord(
                chat=state.chat,
                owner=owner,
                character=character,
                activity=state.activity,
                human_turns=state.human_turns,
            )
            self._index_chat(rec)
            self._clock = max(self._clock, state.activity)

    def _load_turns(self) -> None:
        turns = sorted(self.persist.load("turn", _TurnState).values(), key=lambda t: t.seq)
        for saved in turns:
            owner_chat = self.chats.get(saved.turn.turn_key.chat_id)
            if owner_chat is not None:
                owner_chat.turns.append(saved.turn)
                owner_chat.seqs.append(saved.seq)
                owner_chat.seq_of[saved.turn.turn_key.turn_id] = saved.seq
                self._clock = max(self._clock, saved.seq)

    def _index_chat(self, rec: ChatRecord) -> None:
        self.chats[rec.chat.chat_id] = rec
        self._by_owner.setdefault(rec.owner.id, []).append(rec)

    def save_chat(self, rec: ChatRecord) -> None:
        """Persist the chat after a change (name, state, model, activity)."""
        if self.persist.enabled:
            state = _ChatState(rec.chat, rec.owner.id, rec.activity, rec.human_turns)
            self.persist.put("chat", rec.chat.chat_id, state)

    def create_chat(self, owner: User, character: SeedCharacter, chat: Chat) -> ChatRecord:
        """Register ``chat``; the caller has checked that its id is free."""
        rec = ChatRecord(chat=chat, owner=owner, character=character, activity=self._tick())
        self._index_chat(rec)
        self.save_chat(rec)
        return rec

    def chat_for(self, user: User, chat_id: str) -> ChatRecord | None:
        """The chat if it exists and belongs to ``user``; otherwise None (no leak of which)."""
        rec = self.chats.get(chat_id)
        return rec if rec is not None and rec.owner is user else None

    def delete_chat(self, chat_id: str) -> None:
        """Forget a chat and its turns, as the live service sometimes loses one (no client
        call deletes a chat; tests of clients that must cope use this)."""
        rec = self.chats.pop(chat_id, None)
        if rec is None:
            return
        self._by_owner[rec.owner.id].remove(rec)
        self.remove_turns(rec, list(rec.seq_of))
        self.persist.delete("chat", chat_id)

    def append_turn(self, rec: ChatRecord, turn: Turn, *, human: bool = False) -> None:
        seq = self._tick()
        rec.turns.append(turn)
        rec.seqs.append(seq)
        rec.seq_of[turn.turn_key.turn_id] = seq
        rec.activity = seq
        if human:
            rec.human_turns += 1
        if self.persist.enabled:
            self.persist.put("turn", _turn_key(turn), _TurnState(seq, turn))
            self.save_chat(rec)

    @staticmethod
    def position(rec: ChatRecord, turn_id: str) -> int | None:
        """The index of a turn in ``rec.turns`` (oldest first), or None if it has none."""
        seq = rec.seq_of.get(turn_id)
        return None if seq is None else bisect_left(rec.seqs, seq)

    def turn(self, rec: ChatRecord, turn_id: str) -> Turn | None:
        """The stored turn (mutable: change it, then :meth:`save_turn`), or None."""
        at = self.position(rec, turn_id)
        return None if at is None else rec.turns[at]

    def save_turn(self, rec: ChatRecord, turn: Turn) -> None:
        """Persist a stored turn after a change (new candidate, primary, pin)."""
        seq = rec.seq_of.get(turn.turn_key.turn_id)
        if self.persist.enabled and seq is not None:
            self.persist.put("turn", _turn_key(turn), _TurnState(seq, turn))

    def remove_turns(self, rec: ChatRecord, turn_ids: Iterable[str]) -> int:
        """Delete the chat's turns with these ids (unknown ids are ignored); the count."""
        doomed = {seq for tid in turn_ids if (seq := rec.seq_of.pop(tid, None)) is not None}
        if not doomed:
            return 0
        kept = [(s, t) for s, t in zip(rec.seqs, rec.turns, strict=True) if s not in doomed]
        removed = [t for s, t in zip(rec.seqs, rec.turns, strict=True) if s in doomed]
        rec.seqs = [s for s, _ in kept]
        rec.turns = [t for _, t in kept]
        for turn in removed:
            self.persist.delete("turn", _turn_key(turn))
        return len(removed)

    def copy_chat(self, rec: ChatRecord, end: int, chat: Chat) -> ChatRecord:
        """A new chat of the same owner and character holding copies of ``rec.turns[:end+1]``
        (same turn and candidate ids, the new chat id in every ``turn_key``)."""
        copy = self.create_chat(rec.owner, rec.character, chat)
        for turn in rec.turns[: end + 1]:
            key = TurnKey(chat.chat_id, turn.turn_key.turn_id)
            clone = msgspec.structs.replace(turn, turn_key=key, candidates=list(turn.candidates))
            self.append_turn(copy, clone, human=bool(turn.author.is_human))
        return copy

    def chats_of(self, user: User, character_ids: set[str] | None = None) -> list[ChatRecord]:
        """The user's chats (archived ones too), optionally only with these characters, in
        creation order."""
        chats = self._by_owner.get(user.id, [])
        if character_ids is None:
            return list(chats)
        return [c for c in chats if c.chat.character_id in character_ids]

    def recent(self, user: User, character_id: str | None = None) -> list[ChatRecord]:
        """The user's active chats (optionally with one character), most recently active
        first; archived chats are left out."""
        chats = self._by_owner.get(user.id, [])
        chats = [
            c
            for c in chats
            if not c.archived and (character_id is None or c.chat.character_id == character_id)
        ]
        return sorted(chats, key=lambda c: c.activity, reverse=True)

    def add_annotation(self, note: Annotation) -> None:
        self.annotations[note.annotation_id] = note
        self.persist.put("annotation", note.annotation_id, note)

    def remove_annotation(self, annotation_id: str) -> None:
        if self.annotations.pop(annotation_id, None) is not None:
            self.persist.delete("annotation", annotation_id)

    @staticmethod
    def page(
        rec: ChatRecord, before: int | None, limit: int, *, pinned_only: bool = False
    ) -> tuple[list[Turn], int | None]:
        """Turns older than sequence ``before`` (all if None), newest first, and the cursor
        for the next page (None when this page reaches the oldest turn)."""
        turns, seqs = rec.turns, rec.seqs
        if pinned_only:
            kept = [i for i, t in enumerate(turns) if t.is_pinned]
            turns, seqs = [turns[i] for i in kept], [seqs[i] for i in kept]
        end = len(seqs) if before is None else bisect_left(seqs, before)
        start = max(0, end - limit)
        page = turns[start:end]
        page.reverse()
        return page, (seqs[start] if start > 0 else None)


def _turn_key(turn: Turn) -> str:
    return f"{turn.turn_key.chat_id}/{turn.turn_key.turn_id}"


CHAT = web.AppKey("caiclient_emulator_chat", ChatStore)
