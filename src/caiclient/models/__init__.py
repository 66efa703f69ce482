"""Typed models of the payloads Character.AI sends.

Every model is a frozen :class:`msgspec.Struct`: fields the server adds later are ignored,
fields it may omit are optional. Ids are strings everywhere, including user ids, which the
legacy API sends as integers and the neo API as digit strings (normalised where parsed).
Each area keeps its models in its own private module; this package re-exports them all.
"""

from ._account import (
    Persona,
    PublicUser,
    Settings,
    User,
)
from ._character import (
    Character,
    CharacterShort,
    avatar_url_for,
)
from ._chat import (
    Author,
    Candidate,
    Chat,
    Turn,
    TurnKey,
)
from ._media import (
    Voice,
    VoiceCreator,
)
from ._room import (
    Room,
    RoomCharacter,
    RoomEvent,
    RoomMember,
    RoomSettings,
)
from ._v1 import (
    V1Chunk,
    V1History,
    V1Message,
)

__all__ = [
    "Author",
    "Candidate",
    "Character",
    "CharacterShort",
    "Chat",
    "Persona",
    "PublicUser",
    "Room",
    "RoomCharacter",
    "RoomEvent",
    "RoomMember",
    "RoomSettings",
    "Settings",
    "Turn",
    "TurnKey",
    "User",
    "V1Chunk",
    "V1History",
    "V1Message",
    "Voice",
    "VoiceCreator",
    "avatar_url_for",
]
