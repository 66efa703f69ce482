"""State of group chats ("murooms", docs/protocol.md §9): rooms, their turns, and the Centrifugo
channels that carry their pushes.

Rooms are persisted as kind ``"room"`` (key: room id) and their turns as kind ``"room_turn"``
(key: ``<room id>/<turn id>``; a turn carries all its candidates), loaded back in creation
order. Channels (subscribers, offsets, epochs) live only while the server runs, like a
Centrifugo memory engine: a restart mints new epochs and starts offsets again.
"""

from __future__ import annotations

import asyncio
import uuid
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
from aiohttp import web

from .._util import b64url, encode, new_id
from ..characters.cast import SeedCharacter
from ..store import Store, User
from ..wire import Turn

__all__ = [
    "CHARACTER_LIMIT",
    "ROLE_MEMBER",
    "ROLE_OWNER",
    "ROOMS",
    "USER_LIMIT",
    "Channel",
    "Member",
    "Room",
    "RoomRecord",
    "RoomSettings",
    "RoomStore",
    "Subscriber",
]

# Our choices where docs/protocol.md §9 gives the keys but not the values (docs/protocol.md).
USER_LIMIT = 10
CHARACTER_LIMIT = 5
ROLE_OWNER = "ROLE_OWNER"
ROLE_MEMBER = "ROLE_MEMBER"
MEMBER_STATE = "STATE_ACTIVE"
PING_INTERVAL = 25.0
# Publications kept per channel for recovery (Centrifugo's history_size; our choice).
HISTORY_SIZE = 1000


class RoomSettings(msgspec.Struct):
    """The room's ``settings`` object, exactly the keys of §9."""

    anyone_can_join: bool = True
    require_approval: bool = False
    auto_smart_reply: bool = False
    smart_reply_timer: bool = False
    join_token: str = ""
    user_limit: int = USER_LIMIT
    character_limit: int = CHARACTER_LIMIT
    push_notification_mode: str = "PUSH_NOTIFICATION_MODE_UNSPECIFIED"


class Member(msgspec.Struct):
    user_id: str
    role: str
    state: str = MEMBER_STATE


class Room(msgspec.Struct):
    """A room as persisted (kind ``"room"``)."""

    id: str
    title: str
    visibility: str
    creator_id: str
    create_time: str
    characters: list[str]
    members: list[Member]
    settings: RoomSettings
    description: str = ""
    picture: str = ""
    human_turns: int = 0


@dataclass(slots=True, eq=False)
class RoomRecord:
    room: Room
    turns: list[Turn] = field(default_factory=list)
    by_id: dict[str, Turn] = field(default_factory=dict)
    # Serialises generations in one room (one character speaks at a time).
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def member(self, user_id: str) -> Member | None:
        return next((m for m in self.room.members if m.user_id == user_id), None)


class Subscriber(Protocol):
    """A socket session as the channels see it: frames are queued, never awaited."""

    def push(self, frame: bytes) -> None: ...

    def forget(self, channel: str) -> None:
        """The server has ended this subscription."""


@dataclass(slots=True, eq=False)
class Channel:
    epoch: str
    offset: int = 0
    subscribers: set[Subscriber] = field(default_factory=set)
    # The last publications, for clients that come back and ask what they missed.
    history: deque[tuple[int, Any]] = field(default_factory=lambda: deque(maxlen=HISTORY_SIZE))

    def since(self, offset: int, epoch: str) -> list[dict[str, Any]] | None:
        """The publications after ``offset`` of ``epoch``, or None when they are not all
        kept any more (another epoch, or older than the history)."""
        if epoch != self.epoch or offset > self.offset:
            return None
        oldest = self.history[0][0] if self.history else self.offset + 1
        if offset + 1 < oldest:
            return None
        return [{"data": data, "offset": at} for at, data in self.history if at > offset]


def _join_token() -> str:
    return b64url(uuid.UUID(new_id()).bytes)[:16]


class RoomStore:
    """Rooms, their turns and channels. Not thread-safe; used from the event loop only."""

    def __init__(self, core: Store) -> None:
        self.core = core
        self.persist = core.persist
        self.ping_interval = PING_INTERVAL
        """Seconds between the socket's ``{}`` pings (tests shorten it)."""
        self.rooms: dict[str, RoomRecord] = {}
        self.by_token: dict[str, str] = {}
        self.channels: dict[str, Channel] = {}
        for room in self.persist.load("room", Room).values():
            self._index(RoomRecord(room))
        for turn in self.persist.load("room_turn", Turn).values():
            rec = self.rooms.get(turn.turn_key.chat_id)
            if rec is not None:
                rec.turns.append(turn)
                rec.by_id[turn.turn_key.turn_id] = turn

    def _index(self, rec: RoomRecord) -> None:
        self.rooms[rec.room.id] = rec
        self.by_token[rec.room.settings.join_token] = rec.room.id

    # ---- rooms ------------------------------------------------------------------------

    def room_for(self, user: User, room_id: object) -> RoomRecord | None:
        """The room if ``user`` belongs to it; None for missing and foreign rooms alike."""
        rec = self.rooms.get(room_id) if isinstance(room_id, str) else None
        return rec if rec is not None and rec.member(user.id) is not None else None

    def rooms_of(self, user: User) -> list[RoomRecord]:
        """The rooms ``user`` belongs to, oldest first."""
        return [rec for rec in self.rooms.values() if rec.member(user.id) is not None]

    def by_join_token(self, token: object) -> RoomRecord | None:
        """The room this join token opens, if it accepts joins at all."""
        room_id = self.by_token.get(token) if isinstance(token, str) else None
        rec = self.rooms.get(room_id or "")
        return rec if rec is not None and rec.room.settings.anyone_can_join else None

    def create(self, room: Room) -> RoomRecord:
        room.settings.join_token = _join_token()
        rec = RoomRecord(room)
        self._index(rec)
        self.save(rec)
        return rec

    def save(self, rec: RoomRecord) -> None:
        self.persist.put("room", rec.room.id, rec.room)

    def delete(self, rec: RoomRecord) -> None:
        room_id = rec.room.id
        self.rooms.pop(room_id, None)
        self.by_token.pop(rec.room.settings.join_token, None)
        for turn in rec.turns:
            self.persist.delete("room_turn", f"{room_id}/{turn.turn_key.turn_id}")
        self.persist.delete("room", room_id)
        self.close_channel(f"room:{room_id}")

    def remove_turns(self, rec: RoomRecord, turn_ids: list[str]) -> list[str]:
        """Delete these turns of the room (unknown ids are ignored); the ids removed."""
        gone = [t for t in turn_ids if t in rec.by_id]
        for turn_id in gone:
            rec.turns.remove(rec.by_id.pop(turn_id))
            self.persist.delete("room_turn", f"{rec.room.id}/{turn_id}")
        return gone

    def characters_of(self, rec: RoomRecord) -> list[SeedCharacter]:
        """The room's characters that still exist, in room order."""
        found = (self.core.characters.get(cid) for cid in rec.room.characters)
        return [c for c in found if c is not None and not c.archived]

    # ---- turns ------------------------------------------------------------------------

    def append_turn(self, rec: RoomRecord, turn: Turn, *, human: bool = False) -> None:
        rec.turns.append(turn)
        rec.by_id[turn.turn_key.turn_id] = turn
        self.save_turn(rec, turn)
        if human:
            rec.room.human_turns += 1
            self.save(rec)

    @staticmethod
    def page(
        rec: RoomRecord, before: int | None, limit: int, *, pinned_only: bool = False
    ) -> tuple[list[Turn], int | None]:
        """Turns before position ``before`` (all if None), newest first, and the cursor for
        the next page (None when this page reaches the oldest turn); the chat store's
        paging, with positions for sequence numbers."""
        positions = [i for i, t in enumerate(rec.turns) if t.is_pinned or not pinned_only]
        end = len(positions) if before is None else bisect_left(positions, before)
        start = max(0, end - limit)
        page = [rec.turns[i] for i in reversed(positions[start:end])]
        return page, (positions[start] if start > 0 else None)

    def save_turn(self, rec: RoomRecord, turn: Turn) -> None:
        if self.persist.enabled and rec.by_id.get(turn.turn_key.turn_id) is turn:
            self.persist.put("room_turn", f"{rec.room.id}/{turn.turn_key.turn_id}", turn)

    # ---- channels ---------------------------------------------------------------------

    def channel(self, name: str) -> Channel:
        channel = self.channels.get(name)
        if channel is None:
            channel = self.channels[name] = Channel(epoch=new_id()[:8])
        return channel

    def publish(self, name: str, data: Any) -> None:
        """Queue one publication for every subscriber: encoded once, offset +1 per channel."""
        channel = self.channel(name)
        channel.offset += 1
        channel.history.append((channel.offset, data))
        pub = {"data": data, "offset": channel.offset}
        frame = encode({"push": {"channel": name, "pub": pub}})
        for subscriber in channel.subscribers:
            subscriber.push(frame)

    def close_channel(self, name: str) -> None:
        """Drop a channel; its subscribers get Centrifugo's server-side unsubscribe push."""
        channel = self.channels.pop(name, None)
        if channel is None:
            return
        unsubscribe = {"code": 2000, "reason": "server unsubscribe"}
        frame = encode({"push": {"channel": name, "unsubscribe": unsubscribe}})
        for subscriber in channel.subscribers:
            subscriber.push(frame)
            subscriber.forget(name)


ROOMS = web.AppKey("caiclient_emulator_rooms", RoomStore)
