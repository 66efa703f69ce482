"""State of the legacy Chat V1 area: histories, their messages, and guests' message counts.

Persisted kinds: ``v1_history`` (key: history id), ``v1_message`` (key: message id) and
``v1_guest`` (key: user id).
"""

from __future__ import annotations

import asyncio
import hashlib

import msgspec
from aiohttp import web

from .._util import b64url, new_id, now_iso
from ..characters.cast import SeedCharacter
from ..store import Store, User

__all__ = [
    "DEFAULT_GUEST_LIMIT",
    "V1",
    "GuestUsage",
    "V1HistoryRecord",
    "V1MessageRecord",
    "V1Store",
]

DEFAULT_GUEST_LIMIT = 10
"""Messages a guest may send before ``force_login`` (docs/protocol.md §3.1: "~10")."""
# Live message ids outgrew JavaScript's safe integers (N1/N2 parse them with json-bigint).
_FIRST_MESSAGE_ID = 2**53 + 1


class V1HistoryRecord(msgspec.Struct):
    """A history as stored (kind ``v1_history``)."""

    external_id: str
    owner_id: str
    character_id: str
    created: str
    last_interaction: str
    activity: int


class V1MessageRecord(msgspec.Struct):
    """A message as stored (kind ``v1_message``); ``parent_uuid`` is the user message a
    character message answers (None for greetings and user messages)."""

    id: int
    uuid: str
    history_id: str
    text: str
    is_human: bool
    created: str
    parent_uuid: str | None = None
    is_alternative: bool = False


class GuestUsage(msgspec.Struct):
    """How many V1 messages a guest has sent (kind ``v1_guest``)."""

    user_id: str
    messages: int = 0


class V1Store:
    """Chat V1 data on top of the core store; written through ``store.persist``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.guest_limit = DEFAULT_GUEST_LIMIT
        persist = store.persist
        self.histories: dict[str, V1HistoryRecord] = persist.load("v1_history", V1HistoryRecord)
        self.messages: dict[str, list[V1MessageRecord]] = {h: [] for h in self.histories}
        self._next_id = _FIRST_MESSAGE_ID
        self._activity = max((h.activity for h in self.histories.values()), default=0)
        for message in persist.load("v1_message", V1MessageRecord).values():
            self.messages.setdefault(message.history_id, []).append(message)
            self._next_id = max(self._next_id, message.id + 1)
        for items in self.messages.values():
            items.sort(key=lambda m: m.id)
        self.guests: dict[str, GuestUsage] = persist.load("v1_guest", GuestUsage)
        self._locks: dict[str, asyncio.Lock] = {}

    # ---- lookups ----
    def character(self, user: User, character_id: object) -> SeedCharacter | None:
        """The character if ``user`` may chat with it: missing, archived and other users'
        private characters all read as missing."""
        return self.store.character_for(user, character_id)

    def history(self, user: User, history_id: object) -> V1HistoryRecord | None:
        """The history if it exists and is ``user``'s; None otherwise (no leak of which)."""
        if not isinstance(history_id, str):
            return None
        rec = self.histories.get(history_id)
        return rec if rec is not None and rec.owner_id == user.id else None

    def histories_of(self, user: User, character_id: str) -> list[V1HistoryRecord]:
        """The user's histories with a character, most recently active first."""
        found = [
            h
            for h in self.histories.values()
            if h.owner_id == user.id and h.character_id == character_id
        ]
        return sorted(found, key=lambda h: h.activity, reverse=True)

    def lock(self, history_id: str) -> asyncio.Lock:
        lock = self._locks.get(history_id)
        if lock is None:
            lock = self._locks[history_id] = asyncio.Lock()
        return lock

    # ---- changes ----
    def _tick(self) -> int:
        self._activity += 1
        return self._activity

    def create(self, user: User, character: SeedCharacter) -> V1HistoryRecord:
        """A new history with the character's greeting as its first message."""
        now = now_iso()
        rec = V1HistoryRecord(
            external_id=b64url(hashlib.sha256(new_id().encode()).digest()[:16]),
            owner_id=user.id,
            character_id=character.id,
            created=now,
            last_interaction=now,
            activity=self._tick(),
        )
        self.histories[rec.external_id] = rec
        self.messages[rec.external_id] = []
        self.store.persist.put("v1_history", rec.external_id, rec)
        self.add_message(rec, character.greeting, is_human=False)
        return rec

    def add_message(
        self,
        rec: V1HistoryRecord,
        text: str,
        *,
        is_human: bool,
        parent_uuid: str | None = None,
        is_alternative: bool = False,
        message_id: int | None = None,
        uuid: str | None = None,
    ) -> V1MessageRecord:
        now = now_iso()
        message = V1MessageRecord(
            id=self.new_message_id() if message_id is None else message_id,
            uuid=uuid or new_id(),
            history_id=rec.external_id,
            text=text,
            is_human=is_human,
            created=now,
            parent_uuid=parent_uuid,
            is_alternative=is_alternative,
        )
        self.messages[rec.external_id].append(message)
        self.store.persist.put("v1_message", str(message.id), message)
        rec.last_interaction = now
        rec.activity = self._tick()
        self.store.persist.put("v1_history", rec.external_id, rec)
        return message

    def new_message_id(self) -> int:
        message_id = self._next_id
        self._next_id += 1
        return message_id

    def delete(self, rec: V1HistoryRecord, uuids: set[str]) -> None:
        kept: list[V1MessageRecord] = []
        for message in self.messages[rec.external_id]:
            if message.uuid in uuids:
                self.store.persist.delete("v1_message", str(message.id))
            else:
                kept.append(message)
        self.messages[rec.external_id] = kept

    def make_primary(self, rec: V1HistoryRecord, chosen: V1MessageRecord) -> None:
        """``chosen`` becomes the reply its user message is answered by; its siblings
        become alternatives."""
        for message in self.messages[rec.external_id]:
            if message.is_human or message.parent_uuid != chosen.parent_uuid:
                continue
            alternative = message is not chosen
            if message.is_alternative != alternative:
                message.is_alternative = alternative
                self.store.persist.put("v1_message", str(message.id), message)

    def guest_usage(self, user: User) -> GuestUsage:
        usage = self.guests.get(user.id)
        if usage is None:
            usage = self.guests[user.id] = GuestUsage(user.id)
        return usage

    def count_guest_message(self, user: User) -> None:
        usage = self.guest_usage(user)
        usage.messages += 1
        self.store.persist.put("v1_guest", user.id, usage)


V1 = web.AppKey("caiclient_emulator_v1", V1Store)


# ---- wire shapes ------------------------------------------------------------------------
