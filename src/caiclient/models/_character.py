"""Character models: the full character and the short form lists use."""

from __future__ import annotations

from datetime import datetime

import msgspec

__all__ = ["Character", "CharacterShort", "avatar_url_for"]

_LIVE_CDN = "https://characterai.io"  # The image CDN (docs/protocol.md §1.1).


def avatar_url_for(
    avatar_file_name: str | None, *, cdn: str = _LIVE_CDN, size: int = 400
) -> str | None:
    """The CDN URL of an avatar file, ``<cdn>/i/<size>/static/avatars/<file>``; None if no file.

    Pass ``cdn=client.endpoints.cdn`` for the emulator's CDN.
    """
    if not avatar_file_name:
        return None
    return f"{cdn.rstrip('/')}/i/{size}/static/avatars/{avatar_file_name}"


class CharacterShort(msgspec.Struct, frozen=True, kw_only=True):
    """A character as lists show it (search results, recommendations, your characters).

    The parser normalises the generations' spellings: ``participant__name``/``name`` →
    ``name``, float ``participant__num_interactions`` → ``num_interactions`` (int),
    ``upvotes``/``num_likes`` → ``upvotes``, integer ``user__id``/``creator_id`` → digit string.
    """

    id: str
    name: str = ""
    title: str = ""
    description: str = ""
    greeting: str = ""
    avatar_file_name: str | None = None
    visibility: str | None = None
    copyable: bool | None = None
    creator_id: str | None = None
    creator_username: str | None = None
    num_interactions: int | None = None
    upvotes: int | None = None
    default_voice_id: str | None = None
    search_score: float | None = None

    @property
    def external_id(self) -> str:
        """The wire name of :attr:`id`."""
        return self.id

    @property
    def avatar_url(self) -> str | None:
        """The avatar on the live CDN at 400 px (:func:`avatar_url_for` takes another CDN)."""
        return avatar_url_for(self.avatar_file_name)


class Character(msgspec.Struct, frozen=True, kw_only=True):
    """A character in full (``get_character_info``, create and update answers).

    ``definition`` is None when the server did not show it (it does so only to the creator,
    or for copyable characters). ``participant_username`` is the character's internal user
    name, the legacy Chat V1 ``tgt``.
    """

    id: str
    name: str = ""
    title: str = ""
    description: str = ""
    greeting: str = ""
    definition: str | None = None
    visibility: str = "PUBLIC"
    copyable: bool = False
    avatar_file_name: str | None = None
    creator_id: str | None = None
    creator_username: str | None = None
    participant_username: str | None = None
    num_interactions: int | None = None
    upvotes: int | None = None
    identifier: str | None = None
    img_gen_enabled: bool = False
    base_img_prompt: str = ""
    img_prompt_regex: str = ""
    strip_img_prompt_from_msg: bool = False
    default_voice_id: str | None = None
    voice_id: str | None = None
    starter_prompts: list[str] = msgspec.field(default_factory=list)
    comments_enabled: bool = True
    allow_dynamic_greeting: bool = False
    dynamic_greeting_enabled: bool = False
    has_definition: bool | None = None
    short_hash: str | None = None
    updated: datetime | None = None
    safety: str | None = None

    @property
    def external_id(self) -> str:
        """The wire name of :attr:`id`."""
        return self.id

    @property
    def avatar_url(self) -> str | None:
        """The avatar on the live CDN at 400 px (:func:`avatar_url_for` takes another CDN)."""
        return avatar_url_for(self.avatar_file_name)
