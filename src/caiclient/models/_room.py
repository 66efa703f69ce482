"""Group chat ("room") models (docs/protocol.md §9)."""

from __future__ import annotations

import msgspec

from ._chat import Turn

__all__ = ["Room", "RoomCharacter", "RoomEvent", "RoomMember", "RoomSettings"]


class RoomCharacter(msgspec.Struct, frozen=True, kw_only=True):
    """A character taking part in a room."""

    id: str
    name: str = ""
    avatar_url: str | None = None


class RoomMember(msgspec.Struct, frozen=True, kw_only=True):
    """A user in a room, with their ``role`` (``ROLE_OWNER``, ``ROLE_MEMBER``…)."""

    id: str
    username: str = ""
    name: str = ""
    avatar_url: str | None = None
    role: str = ""
    state: str = ""


class RoomSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The room's settings as the service sends them; ``join_token`` lets others join."""

    anyone_can_join: bool = True
    require_approval: bool = False
    auto_smart_reply: bool = False
    smart_reply_timer: bool = False
    join_token: str = ""
    user_limit: int | None = None
    character_limit: int | None = None
    push_notification_mode: str | None = None


class Room(msgspec.Struct, frozen=True, kw_only=True):
    """A group chat: several characters and users. ``preview_turns`` (newest first) is what
    the listing carried, not the whole history (``client.rooms.history`` reads that)."""

    id: str
    title: str = ""
    description: str = ""
    visibility: str = ""
    picture: str | None = None
    characters: list[RoomCharacter] = msgspec.field(default_factory=list)
    users: list[RoomMember] = msgspec.field(default_factory=list)
    settings: RoomSettings = msgspec.field(default_factory=RoomSettings)
    preview_turns: list[Turn] = msgspec.field(default_factory=list)

    @property
    def character_ids(self) -> list[str]:
        return [c.id for c in self.characters]

    @property
    def join_token(self) -> str:
        return self.settings.join_token


class RoomEvent(msgspec.Struct, frozen=True):
    """Something that happened in a room, as ``client.rooms.events`` yields it.

    ``kind`` is ``"turn"`` (a turn added or changed: ``turn`` holds it, ``final`` whether its
    primary candidate is complete) or ``"removed"`` (``turn_ids`` were deleted).
    ``request_id`` is the request that caused it (yours or another user's), when known.
    """

    kind: str
    room_id: str
    turn: Turn | None = None
    final: bool = True
    turn_ids: tuple[str, ...] = ()
    request_id: str | None = None
