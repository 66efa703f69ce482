"""State of the characters area: every character as the service shows it, and the votes.

Every character lives in the core store's ``characters`` (the chat socket finds it there);
the ones users create are also persisted as ``SeedCharacter`` records (kind ``"character"``),
votes as :class:`VoteRecord` (kind ``"character_vote"``), reports as :class:`ReportRecord`
(kind ``"report"``). Visibility rules: ``PUBLIC`` characters are listed and searchable,
``UNLISTED`` ones are reachable by id only, ``PRIVATE`` ones exist for their creator alone —
for anybody else they answer exactly like a missing character. Archived characters
(``archived: true`` on update, the service's delete) stay in the store so existing chats keep
working, but answer like missing ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from .._util import b64url, new_id, now_iso
from ..store import Store, User
from .cast import GENERIC_STYLE, SeedCharacter

__all__ = [
    "CHARACTERS",
    "CharacterStore",
    "ReportRecord",
    "VoteRecord",
    "epoch_seconds",
    "short_hash",
]


@dataclass(slots=True)
class VoteRecord:
    """One user's vote on one character: ``True`` like, ``False`` dislike."""

    user_id: str
    character_id: str
    vote: bool


class CharacterStore:
    """Characters as the service shows them: visibility, payloads, votes, edits."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # user id -> {character id: vote}; dict order is the order of (latest) voting.
        self._votes: dict[str, dict[str, bool]] = {}
        self._likes: dict[str, int] = {}
        for rec in store.persist.load("character_vote", VoteRecord).values():
            self._apply_vote(rec.user_id, rec.character_id, rec.vote)

    # ---- visibility ----
    def visible(self, user: User | None, character_id: object) -> SeedCharacter | None:
        """The character if ``user`` may see it; None for missing, archived and private
        characters of others alike."""
        return self.store.character_for(user, character_id)

    def listed(self) -> list[SeedCharacter]:
        """Every public, live character, in store order (search and discovery draw on these)."""
        return [
            c for c in self.store.characters.values() if c.visibility == "PUBLIC" and not c.archived
        ]

    def owned(self, user: User) -> list[SeedCharacter]:
        """The user's own live characters, newest first."""
        mine = [
            c for c in self.store.characters.values() if c.creator_id == user.id and not c.archived
        ]
        mine.reverse()
        return mine

    def creator_username(self, character: SeedCharacter) -> str:
        """The creator's current username (users may rename themselves)."""
        user = self.store.users_by_id.get(character.creator_id)
        return user.username if user is not None else character.creator_username

    # ---- votes ----
    def _apply_vote(self, user_id: str, character_id: str, vote: bool | None) -> None:
        votes = self._votes.setdefault(user_id, {})
        old = votes.pop(character_id, None)
        if old is True:
            self._likes[character_id] = self._likes.get(character_id, 1) - 1
        if vote is not None:
            votes[character_id] = vote
            if vote:
                self._likes[character_id] = self._likes.get(character_id, 0) + 1

    def vote(self, user: User, character: SeedCharacter, vote: bool | None) -> None:
        self._apply_vote(user.id, character.id, vote)
        key = f"{user.id}:{character.id}"
        if vote is None:
            self.store.persist.delete("character_vote", key)
        else:
            self.store.persist.put("character_vote", key, VoteRecord(user.id, character.id, vote))

    def vote_of(self, user: User, character_id: str) -> bool | None:
        return self._votes.get(user.id, {}).get(character_id)

    def likes(self, character: SeedCharacter) -> int:
        return character.upvotes + self._likes.get(character.id, 0)

    def liked(self, user: User) -> list[SeedCharacter]:
        """Characters the user liked and may still see, most recently liked first."""
        ids = [cid for cid, vote in self._votes.get(user.id, {}).items() if vote]
        found = (self.visible(user, cid) for cid in reversed(ids))
        return [c for c in found if c is not None]

    # ---- create / update ----
    def save(self, character: SeedCharacter) -> SeedCharacter:
        self.store.characters[character.id] = character
        self.store.persist.put("character", character.id, character)
        return character

    def create(self, user: User, fields: dict[str, Any]) -> SeedCharacter:
        """A new character of ``user`` from checked ``fields`` (see :func:`check_fields`)."""
        now = now_iso()
        character = SeedCharacter(
            id=b64url(hashlib.sha256(new_id().encode()).digest()),
            name=fields["name"],
            title=fields.get("title", ""),
            greeting=fields["greeting"],
            description=fields.get("description", ""),
            avatar_file_name=fields.get("avatar_rel_path", ""),
            style=GENERIC_STYLE,
            visibility=fields.get("visibility", "PRIVATE"),
            copyable=fields.get("copyable", False),
            definition=fields.get("definition", ""),
            creator_id=user.id,
            creator_username=user.username,
            categories=tuple(fields.get("categories", ())),
            featured=False,
            identifier=fields.get("identifier") or f"id:{uuid.uuid4()}",
            img_gen_enabled=fields.get("img_gen_enabled", False),
            base_img_prompt=fields.get("base_img_prompt", ""),
            strip_img_prompt_from_msg=fields.get("strip_img_prompt_from_msg", False),
            default_voice_id=fields.get("default_voice_id", ""),
            voice_id=fields.get("voice_id", ""),
            allow_dynamic_greeting=fields.get("allow_dynamic_greeting", False),
            dynamic_greeting_enabled=fields.get("dynamic_greeting_enabled", False),
            created=now,
            updated=now,
        )
        return self.save(character)

    def update(self, character: SeedCharacter, fields: dict[str, Any]) -> SeedCharacter:
        """``character`` with the given ``fields`` changed; keys not sent keep their value."""
        changes: dict[str, Any] = {
            key: value
            for key, value in fields.items()
            if key not in ("avatar_rel_path", "identifier", "categories")
        }
        if "avatar_rel_path" in fields:
            changes["avatar_file_name"] = fields["avatar_rel_path"]
        if "categories" in fields:
            changes["categories"] = tuple(fields["categories"])
        return self.save(dataclasses.replace(character, **changes, updated=now_iso()))

    # ---- payloads ----
    def full(
        self,
        character: SeedCharacter,
        viewer: User | None,
        *,
        neo: bool = False,
        definition: bool = True,
    ) -> dict[str, Any]:
        """The full character object (docs/protocol.md §6.1); the neo extras when ``neo``.

        ``definition`` is included only when asked for and permitted: for the creator, or
        when the character is ``copyable``.
        """
        c = character
        body = _full_fields(c, self.creator_username(c), self.likes(c))
        owner = viewer is not None and viewer.id == c.creator_id
        if definition and (owner or c.copyable):
            body["definition"] = c.definition
        if neo:
            body.update(_neo_extras(c, self.likes(c)))
        return body

    def short(self, character: SeedCharacter, *, neo: bool = False) -> dict[str, Any]:
        """The list form (docs/protocol.md §6.1 CharacterShort). Plus lists name the character
        ``participant__name`` only and give ``user__id`` as an integer; neo lists add
        ``name``, ``num_likes`` and ``creator_id`` (a digit string)."""
        c = character
        body: dict[str, Any] = {
            "external_id": c.id,
            "title": c.title,
            "participant__name": c.name,
            "description": c.description,
            "greeting": c.greeting,
            "avatar_file_name": c.avatar_file_name,
            "visibility": c.visibility,
            "copyable": c.copyable,
            "user__id": int(c.creator_id),
            "user__username": self.creator_username(c),
            "img_gen_enabled": c.img_gen_enabled,
            "participant__num_interactions": c.num_interactions,
            "default_voice_id": c.default_voice_id or None,
            "upvotes": self.likes(c),
            "priority": 0,
            "translations": {},
        }
        if neo:
            del body["user__id"]
            body.update(name=c.name, num_likes=self.likes(c), creator_id=c.creator_id)
        return body


def _full_fields(c: SeedCharacter, creator: str, likes: int) -> dict[str, Any]:
    """The keys every full character object has (plus and neo alike)."""
    return {
        "external_id": c.id,
        "title": c.title,
        "name": c.name,
        "visibility": c.visibility,
        "copyable": c.copyable,
        "greeting": c.greeting,
        "description": c.description,
        "identifier": c.identifier,
        "avatar_file_name": c.avatar_file_name,
        "songs": [],
        "img_gen_enabled": c.img_gen_enabled,
        "base_img_prompt": c.base_img_prompt,
        "img_prompt_regex": "",
        "strip_img_prompt_from_msg": c.strip_img_prompt_from_msg,
        "default_voice_id": c.default_voice_id or None,
        "starter_prompts": {"phrases": []},
        "comments_enabled": True,
        "user__username": creator,
        "participant__name": c.name,
        "participant__num_interactions": c.num_interactions,
        "participant__user__username": c.participant_username,
        "voice_id": c.voice_id,
        "usage": "default",
        "upvotes": likes,
    }


def _neo_extras(c: SeedCharacter, likes: int) -> dict[str, Any]:
    """What ``get_character_info`` of neo adds to the full object."""
    return {
        "dynamic_greeting_enabled": c.dynamic_greeting_enabled,
        "allow_dynamic_greeting": c.allow_dynamic_greeting,
        "short_hash": short_hash(c.id),
        "updated": c.updated,
        "has_definition": bool(c.definition),
        "is_licensed_professional": False,
        "num_likes": likes,
        "num_interactions_last_day": 0,
        "safety": "SAFE",
        "translations": {},
        "creator_id": c.creator_id,
    }


def short_hash(character_id: str) -> str:
    """A stable short handle for a character (the neo ``short_hash``)."""
    return b64url(hashlib.sha256(f"short:{character_id}".encode()).digest())[:11]


def epoch_seconds(timestamp: str) -> int:
    """``2024-01-01T00:00:00.000000Z`` → integer seconds since the epoch."""
    return int(datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp())


@dataclass(frozen=True)
class ReportRecord:
    report_id: str
    reporter_id: str
    resource_id: str
    type: str
    category: str
    comments: str
    create_time: str


CHARACTERS = web.AppKey("caiclient_emulator_characters", CharacterStore)
