"""What the archive hands out: one frozen row per stored object, raw JSON included.

Rows are what exporters consume (pure functions of rows), and what the Python API yields.
``raw`` is the JSON of the client model the sync decoded; the properties decode it into
that model (:class:`~caiclient.Turn`, :class:`~caiclient.Chat`, …) on demand, so iterating
costs nothing for what is not looked at.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from ..models import Chat, Persona, Turn, User, V1History, V1Message
from ..models._character import Character

__all__ = [
    "StoredAccount",
    "StoredCharacter",
    "StoredChat",
    "StoredPersona",
    "StoredRoom",
    "StoredTurn",
    "StoredV1History",
    "StoredV1Message",
]


@dataclass(frozen=True, slots=True)
class StoredAccount:
    """The account the archive was made with."""

    id: str
    username: str
    name: str
    raw: bytes

    @property
    def user(self) -> User:
        return msgspec.json.decode(self.raw, type=User)


@dataclass(frozen=True, slots=True)
class StoredPersona:
    id: str
    name: str
    raw: bytes
    removed: bool

    @property
    def persona(self) -> Persona:
        return msgspec.json.decode(self.raw, type=Persona)


@dataclass(frozen=True, slots=True)
class StoredCharacter:
    """A character seen in the account's chats. ``raw`` is None when its info could not be
    read (deleted or private); ``avatar`` is the image's bytes when the archive has them."""

    id: str
    name: str
    avatar_file_name: str | None
    raw: bytes | None
    removed: bool
    avatar: bytes | None = None

    @property
    def character(self) -> Character | None:
        return None if self.raw is None else msgspec.json.decode(self.raw, type=Character)


@dataclass(frozen=True, slots=True)
class StoredChat:
    """A Chat V2 conversation; ``removed``: gone from the server since an earlier backup."""

    id: str
    character_id: str
    character_name: str
    name: str | None
    state: str | None
    create_time: str | None
    raw: bytes
    removed: bool
    complete: bool
    turns: int

    @property
    def chat(self) -> Chat:
        return msgspec.json.decode(self.raw, type=Chat)

    @property
    def is_archived(self) -> bool:
        return self.state == "STATE_ARCHIVED"


@dataclass(frozen=True, slots=True)
class StoredTurn:
    """One turn with every candidate (all swipes) in ``raw``, oldest turn first in a chat."""

    chat_id: str
    turn_id: str
    pos: int
    raw: bytes
    removed: bool

    @property
    def turn(self) -> Turn:
        return msgspec.json.decode(self.raw, type=Turn)


@dataclass(frozen=True, slots=True)
class StoredV1History:
    id: str
    character_id: str
    title: str
    created: str | None
    raw: bytes
    removed: bool

    @property
    def history(self) -> V1History:
        return msgspec.json.decode(self.raw, type=V1History)


@dataclass(frozen=True, slots=True)
class StoredV1Message:
    history_id: str
    uuid: str
    pos: int
    raw: bytes
    removed: bool

    @property
    def message(self) -> V1Message:
        return msgspec.json.decode(self.raw, type=V1Message)


@dataclass(frozen=True, slots=True)
class StoredRoom:
    """A group chat (docs/protocol.md §9); the schema holds them, the sync does not yet."""

    id: str
    title: str
    raw: bytes
    removed: bool
