"""In-memory state of the emulated backend: users, chats and their turns.

Every lookup is a dict access; history pages are found by bisecting a per-chat list of
sequence numbers, so paging a long chat costs O(page) per request, not O(history).
"""

from __future__ import annotations

import asyncio
import hashlib
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field

from .characters import CAST, SeedCharacter
from .persist import Persistence
from .wire import Chat, Turn

__all__ = ["ChatRecord", "Store", "User"]

_SEED_USER_ID = 474480773
_DATE_JOINED = "2024-01-15T09:30:00.000000Z"


@dataclass(slots=True)
class User:
    id: str
    token: str
    username: str
    name: str
    email: str
    date_joined: str = _DATE_JOINED
    bio: str | None = None


@dataclass(slots=True, eq=False)
class ChatRecord:
    chat: Chat
    owner: User
    character: SeedCharacter
    activity: int
    turns: list[Turn] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    turn_ids: set[str] = field(default_factory=set)
    human_turns: int = 0
    # Serialises generations in one chat (the live server generates one turn at a time).
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _token_for(username: str) -> str:
    """A deterministic 40-hex token, the length of a live DRF token (PROTOCOL.md §1.2)."""
    return hashlib.sha256(f"caiclient-emulator:{username}".encode()).hexdigest()[:40]


class Store:
    """All emulated data. Not thread-safe; used from the server's event loop only."""

    def __init__(
        self, cast: Iterable[SeedCharacter] = CAST, persistence: Persistence | None = None
    ) -> None:
        # Every area keeps its records here in memory and writes each change through
        # ``self.persist`` (a no-op unless the emulator runs with a state file).
        self.persist = persistence or Persistence()
        self.characters: dict[str, SeedCharacter] = {c.id: c for c in cast}
        self.users_by_token: dict[str, User] = {}
        self.users_by_id: dict[str, User] = {}
        self.chats: dict[str, ChatRecord] = {}
        self._by_owner: dict[str, list[ChatRecord]] = {}
        self._clock = 0
        for user in self.persist.load("user", User).values():
            self._index_user(user)
        # Characters users created (the seed cast is code, not state).
        for character in self.persist.load("character", SeedCharacter).values():
            self.characters[character.id] = character
        seed = next((u for u in self.users_by_id.values() if u.username == "emulator_user"), None)
        self.seed_user = seed or self.add_user("emulator_user", "Emulator User")

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def add_user(self, username: str, name: str | None = None) -> User:
        """Create a user with a deterministic id and token derived from ``username``."""
        user_id = str(_SEED_USER_ID + len(self.users_by_id) * 7919)
        user = User(
            id=user_id,
            token=_token_for(username),
            username=username,
            name=name or username,
            email=f"{username}@example.com",
        )
        self._index_user(user)
        self.persist.put("user", user.id, user)
        return user

    def _index_user(self, user: User) -> None:
        self.users_by_token[user.token] = user
        self.users_by_id[user.id] = user

    def create_chat(self, owner: User, character: SeedCharacter, chat: Chat) -> ChatRecord:
        """Register ``chat``; the caller has checked that its id is free."""
        rec = ChatRecord(chat=chat, owner=owner, character=character, activity=self._tick())
        self.chats[chat.chat_id] = rec
        self._by_owner.setdefault(owner.id, []).append(rec)
        return rec

    def chat_for(self, user: User, chat_id: str) -> ChatRecord | None:
        """The chat if it exists and belongs to ``user``; otherwise None (no leak of which)."""
        rec = self.chats.get(chat_id)
        return rec if rec is not None and rec.owner is user else None

    def append_turn(self, rec: ChatRecord, turn: Turn, *, human: bool = False) -> None:
        rec.turns.append(turn)
        rec.seqs.append(self._tick())
        rec.turn_ids.add(turn.turn_key.turn_id)
        rec.activity = self._clock
        if human:
            rec.human_turns += 1

    def recent(self, user: User, character_id: str | None = None) -> list[ChatRecord]:
        """The user's chats (optionally with one character), most recently active first."""
        chats = self._by_owner.get(user.id, [])
        if character_id is not None:
            chats = [c for c in chats if c.chat.character_id == character_id]
        return sorted(chats, key=lambda c: c.activity, reverse=True)

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
