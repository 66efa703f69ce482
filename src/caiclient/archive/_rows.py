"""What the archive hands out: one frozen row per stored object, raw JSON included.

Rows are what exporters consume (pure functions of rows), and what the Python API yields.
``raw`` is the JSON the service sent for the object, every field kept, also those the
client's models do not know. Where the models rename or reshape the service's fields
(account, personas, characters, V1 histories and messages, rooms), ``model`` holds the
model's JSON; turns and chats decode from ``raw`` itself. The properties decode into the
model (:class:`~caiclient.Turn`, :class:`~caiclient.Chat`, …) on demand, so iterating costs
nothing for what is not looked at.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from ..models import Chat, Persona, Room, Turn, User, V1History, V1Message
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
    model: bytes | None = None

    @property
    def user(self) -> User:
        return msgspec.json.decode(self.model or self.raw, type=User)


@dataclass(frozen=True, slots=True)
class StoredPersona:
    id: str
    name: str
    raw: bytes
    removed: bool
    model: bytes | None = None

    @property
    def persona(self) -> Persona:
        return msgspec.json.decode(self.model or self.raw, type=Persona)


@dataclass(frozen=True, slots=True)
class StoredCharacter:
    """A character seen in the account's chats. ``raw`` is None when its info could not be
    read (deleted or private); ``avatar`` is the image's bytes when the archive has them;
    ``info`` is the JSON of the :class:`~caiclient.Character` model."""

    id: str
    name: str
    avatar_file_name: str | None
    raw: bytes | None
    removed: bool
    avatar: bytes | None = None
    model: bytes | None = None

    @property
    def info(self) -> bytes | None:
        return self.model or self.raw

    @property
    def character(self) -> Character | None:
        info = self.info
        return None if info is None else msgspec.json.decode(info, type=Character)


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
    model: bytes | None = None

    @property
    def history(self) -> V1History:
        return msgspec.json.decode(self.model or self.raw, type=V1History)


@dataclass(frozen=True, slots=True)
class StoredV1Message:
    history_id: str
    uuid: str
    pos: int
    raw: bytes
    removed: bool
    model: bytes | None = None

    @property
    def message(self) -> V1Message:
        return msgspec.json.decode(self.model or self.raw, type=V1Message)


@dataclass(frozen=True, slots=True)
class StoredRoom:
    """A group chat (docs/protocol.md §9): several characters and users. ``characters`` are
    its cast as (id, name) pairs; ``create_time`` is its oldest archived turn's time;
    ``removed``: gone from the server (or left) since an earlier backup."""

    id: str
    title: str
    raw: bytes
    removed: bool
    model: bytes | None = None
    complete: bool = False
    turns: int = 0
    create_time: str | None = None
    characters: tuple[tuple[str, str], ...] = ()

    @property
    def room(self) -> Room:
        return msgspec.json.decode(self.model or self.raw, type=Room)

    @property
    def character_names(self) -> list[str]:
        return [name or character_id[:12] for character_id, name in self.characters]
