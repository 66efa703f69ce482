"""Account models: the user behind a token, public profiles, personas and settings."""

from __future__ import annotations

import msgspec

from ._character import CharacterShort

__all__ = ["Persona", "PublicUser", "Settings", "User"]


class User(msgspec.Struct, frozen=True, kw_only=True):
    """The account behind a token (``GET /chat/user/``)."""

    id: str
    username: str
    name: str = ""
    avatar_file_name: str | None = None
    bio: str | None = None
    email: str | None = None
    is_staff: bool = False

    @property
    def is_guest(self) -> bool:
        """Guest ("lazy") accounts have usernames starting with ``Guest`` (§3.1)."""
        return self.username.startswith("Guest")


class PublicUser(msgspec.Struct, frozen=True, kw_only=True):
    """Another user's public profile (``POST /chat/user/public/``)."""

    username: str
    name: str = ""
    bio: str | None = None
    avatar_file_name: str | None = None
    num_followers: int = 0
    num_following: int = 0
    subscription_type: str | None = None
    # Their public characters.
    characters: list[CharacterShort] = msgspec.field(default_factory=list)


class Persona(msgspec.Struct, frozen=True, kw_only=True):
    """One of your personas: who *you* are in a chat (``/chat/persona/``, docs/protocol.md §4.5).

    ``definition`` is what the character is told about you; ``id`` is the persona's
    ``external_id``, the value settings refer to.
    """

    id: str
    name: str
    title: str = ""
    greeting: str = ""
    description: str = ""
    definition: str = ""
    avatar_file_name: str | None = None
    visibility: str = "PRIVATE"
    copyable: bool = False
    default_voice_id: str | None = None
    owner_username: str | None = None


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Your account settings (``GET /chat/user/settings/``, docs/protocol.md §4.4).

    Field names are the wire's camelCase keys in snake case (``voiceOverrides`` →
    ``voice_overrides``); ``banned_words`` is ``outputStylePreferences.bannedWords``.
    Overrides map a character id to a voice id / persona id.
    """

    default_persona_id: str | None = None
    voice_overrides: dict[str, str] = msgspec.field(default_factory=dict)
    persona_overrides: dict[str, str] = msgspec.field(default_factory=dict)
    voice_overrides_migrated: bool = False
    proactive_dm_opted_out: bool = False
    banned_words: list[str] = msgspec.field(default_factory=list)
