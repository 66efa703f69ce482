"""State of the account area: personas and settings per user, and the follow graph.

Users themselves live in the core :class:`~caiclient.emulator.store.Store` (their
``following`` list is the follow graph); personas and settings live here. Every change is
written through ``store.persist`` so a ``--state FILE`` restart keeps it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .._util import b64url, new_id
from ..store import Store, User

__all__ = ["ACCOUNT", "AccountStore", "PersonaRecord", "SettingsRecord"]


@dataclass(slots=True)
class PersonaRecord:
    """One persona (a character-like object that speaks for its owner, docs/protocol.md §4.5)."""

    external_id: str
    owner_id: str
    identifier: str
    participant_username: str
    name: str
    title: str = ""
    greeting: str = ""
    description: str = ""
    definition: str = ""
    avatar_file_name: str = ""
    visibility: str = "PRIVATE"
    copyable: bool = False
    img_gen_enabled: bool = False
    base_img_prompt: str = ""
    strip_img_prompt_from_msg: bool = False
    voice_id: str = ""
    default_voice_id: str = ""
    categories: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SettingsRecord:
    """A user's settings (docs/protocol.md §4.4), stored with Python names, sent camelCase."""

    default_persona_id: str | None = None
    voice_overrides: dict[str, str] = field(default_factory=dict)
    persona_overrides: dict[str, str] = field(default_factory=dict)
    voice_overrides_migrated: bool = True
    proactive_dm_opted_out: bool = False
    banned_words: list[str] = field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        """The JSON object of ``GET /chat/user/settings/``; ``default_persona_id`` only if set."""
        body: dict[str, Any] = {}
        if self.default_persona_id:
            body["default_persona_id"] = self.default_persona_id
        body.update(
            voiceOverrides=dict(self.voice_overrides),
            personaOverrides=dict(self.persona_overrides),
            voiceOverridesMigrated=self.voice_overrides_migrated,
            proactiveDmOptedOut=self.proactive_dm_opted_out,
            outputStylePreferences={"bannedWords": list(self.banned_words)},
        )
        return body


def new_external_id() -> str:
    """A fresh 43-char base64url id, the form of live character and persona ids."""
    return b64url(hashlib.sha256(new_id().encode("ascii")).digest())[:43]


class AccountStore:
    """Personas and settings in memory, written through the core store's persistence."""

    def __init__(self, store: Store) -> None:
        self.core = store
        self.personas: dict[str, PersonaRecord] = dict(store.persist.load("persona", PersonaRecord))
        self.settings: dict[str, SettingsRecord] = dict(
            store.persist.load("settings", SettingsRecord)
        )

    # ---- users ----------------------------------------------------------------------------
    def user_named(self, username: str) -> User | None:
        """The user called ``username`` (case-insensitive, like the uniqueness check)."""
        wanted = username.casefold()
        return next(
            (u for u in self.core.users_by_id.values() if u.username.casefold() == wanted), None
        )

    def save_user(self, user: User) -> None:
        self.core.persist.put("user", user.id, user)

    def followers(self, user: User) -> list[User]:
        """Users following ``user``, in the order they joined."""
        return [u for u in self.core.users_by_id.values() if user.id in u.following]

    def following(self, user: User) -> list[User]:
        """Users ``user`` follows, in the order they were followed (deleted ones skipped)."""
        users = self.core.users_by_id
        return [users[i] for i in user.following if i in users]

    # ---- personas -------------------------------------------------------------------------
    def personas_of(self, user: User) -> Iterator[PersonaRecord]:
        """The user's personas, oldest first."""
        return (p for p in self.personas.values() if p.owner_id == user.id)

    def persona_for(self, user: User, external_id: str) -> PersonaRecord | None:
        """The persona if it exists and is ``user``'s; None otherwise (no leak of which)."""
        persona = self.personas.get(external_id)
        return persona if persona is not None and persona.owner_id == user.id else None

    def save_persona(self, persona: PersonaRecord) -> None:
        self.personas[persona.external_id] = persona
        self.core.persist.put("persona", persona.external_id, persona)

    def delete_persona(self, persona: PersonaRecord) -> None:
        """Remove the persona and every settings reference to it."""
        del self.personas[persona.external_id]
        self.core.persist.delete("persona", persona.external_id)
        owner = self.core.users_by_id.get(persona.owner_id)
        if owner is None:
            return
        settings = self.settings_of(owner)
        gone = persona.external_id
        default = None if settings.default_persona_id == gone else settings.default_persona_id
        overrides = {k: v for k, v in settings.persona_overrides.items() if v != gone}
        if default != settings.default_persona_id or overrides != settings.persona_overrides:
            settings.default_persona_id = default
            settings.persona_overrides = overrides
            self.save_settings(owner, settings)

    # ---- settings -------------------------------------------------------------------------
    def settings_of(self, user: User) -> SettingsRecord:
        """The user's settings (defaults until first saved)."""
        settings = self.settings.get(user.id)
        if settings is None:
            settings = self.settings[user.id] = SettingsRecord()
        return settings

    def save_settings(self, user: User, settings: SettingsRecord) -> None:
        self.settings[user.id] = settings
        self.core.persist.put("settings", user.id, settings)


ACCOUNT = web.AppKey("caiclient_emulator_account", AccountStore)
