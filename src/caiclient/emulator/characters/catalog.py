"""Characters: info, create/update/archive and votes (PROTOCOL.md §6.1–§6.4).

Every character lives in the core store's ``characters`` (the chat socket finds it there);
the ones users create are also persisted as ``SeedCharacter`` records (kind ``"character"``),
votes as :class:`VoteRecord` (kind ``"character_vote"``). Visibility rules: ``PUBLIC``
characters are listed and searchable, ``UNLISTED`` ones are reachable by id only,
``PRIVATE`` ones exist for their creator alone — for anybody else they answer exactly like
a missing character. Archived characters (``archived: true`` on update, the service's
delete) stay in the store so existing chats keep working, but answer like missing ones.
Search and discovery routes are in ``discovery.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from .._http import ApiError, authenticate, json_response, neo_error_body, read_json
from .._util import b64url, new_id, now_iso
from ..state import STATE
from ..store import Store, User
from .cast import GENERIC_STYLE, SeedCharacter

__all__ = [
    "CATALOG",
    "CURATED_CATEGORIES",
    "LIMITS",
    "NOT_FOUND",
    "Catalog",
    "VoteRecord",
    "catalog_of",
    "register",
]

PREFIXES = ("/plus", "/beta")

NOT_FOUND = "Character not found"
# CN's observation of ``POST /chat/character/`` for characters one may not see (§2.4.2).
NO_PERMISSION = "do not have permission to view this Character"
VISIBILITIES = ("PUBLIC", "UNLISTED", "PRIVATE")

# (min, max) lengths the service enforces (PROTOCOL.md §6.3, PC's limits). ``title`` may also
# be empty: PC sends "" by default and only checks a non-empty one.
LIMITS: dict[str, tuple[int, int]] = {
    "name": (3, 20),
    "greeting": (3, 4096),
    "title": (3, 50),
    "description": (0, 500),
    "definition": (0, 32000),
}
_MAY_BE_EMPTY = frozenset({"title", "description", "definition"})

# Order of ``characters_by_curated_category`` (PROTOCOL.md §6.5).
CURATED_CATEGORIES = (
    "Helpers",
    "Anime Game Characters",
    "Games",
    "Anime",
    "Game Characters",
    "Movies & TV",
    "Comedy",
    "Books",
    "VTuber",
    "Image Generating",
    "Discussion",
    "Famous People",
    "Language Learning",
    "Religion",
    "History",
    "Animals",
    "Philosophy",
    "Politics",
    "Chinese",
)

_STR_FIELDS = (
    "name",
    "title",
    "greeting",
    "description",
    "definition",
    "identifier",
    "avatar_rel_path",
    "base_img_prompt",
    "default_voice_id",
    "voice_id",
)
_BOOL_FIELDS = (
    "copyable",
    "img_gen_enabled",
    "strip_img_prompt_from_msg",
    "allow_dynamic_greeting",
    "dynamic_greeting_enabled",
    "archived",
)


@dataclass(slots=True)
class VoteRecord:
    """One user's vote on one character: ``True`` like, ``False`` dislike."""

    user_id: str
    character_id: str
    vote: bool


class Catalog:
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
        """The full character object (PROTOCOL.md §6.1); the neo extras when ``neo``.

        ``definition`` is included only when asked for and permitted: for the creator, or
        when the character is ``copyable``.
        """
        c = character
        likes = self.likes(c)
        body: dict[str, Any] = {
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
            "user__username": self.creator_username(c),
            "participant__name": c.name,
            "participant__num_interactions": c.num_interactions,
            "participant__user__username": c.participant_username,
            "voice_id": c.voice_id,
            "usage": "default",
            "upvotes": likes,
        }
        owner = viewer is not None and viewer.id == c.creator_id
        if definition and (owner or c.copyable):
            body["definition"] = c.definition
        if neo:
            body.update(
                dynamic_greeting_enabled=c.dynamic_greeting_enabled,
                allow_dynamic_greeting=c.allow_dynamic_greeting,
                short_hash=short_hash(c.id),
                updated=c.updated,
                has_definition=bool(c.definition),
                is_licensed_professional=False,
                num_likes=likes,
                num_interactions_last_day=0,
                safety="SAFE",
                translations={},
                creator_id=c.creator_id,
            )
        return body

    def short(self, character: SeedCharacter, *, neo: bool = False) -> dict[str, Any]:
        """The list form (PROTOCOL.md §6.1 CharacterShort). Plus lists name the character
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


def short_hash(character_id: str) -> str:
    """A stable short handle for a character (the neo ``short_hash``)."""
    return b64url(hashlib.sha256(f"short:{character_id}".encode()).digest())[:11]


def epoch_seconds(timestamp: str) -> int:
    """``2024-01-01T00:00:00.000000Z`` → integer seconds since the epoch."""
    return int(datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp())


CATALOG = web.AppKey("caiclient_emulator_catalog", Catalog)


def catalog_of(app: web.Application) -> Catalog:
    """The app's catalog, created on first use (so areas may register in any order)."""
    if CATALOG not in app:
        app[CATALOG] = Catalog(app[STATE].store)
    return app[CATALOG]


def _catalog(request: web.Request) -> Catalog:
    return request.app[CATALOG]


# ---- field checks ----------------------------------------------------------------------------


class FieldError(Exception):
    """A create/update field the service would refuse; becomes ``{"status": "NOT_OK", …}``."""


def _length_error(key: str, low: int, high: int) -> str:
    label = key.capitalize()
    if low == 0:
        return f"{label} must be no more than {high} characters."
    return f"{label} must be at least {low} characters and no more than {high}."


def check_fields(body: dict[str, Any], *, required: tuple[str, ...]) -> dict[str, Any]:
    """The known create/update fields of ``body``, type- and length-checked."""
    fields: dict[str, Any] = {}
    for key in required:
        if body.get(key) is None:
            raise FieldError(f"{key} is required")
    for key in _STR_FIELDS:
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise FieldError(f"{key} must be a string")
        if key in LIMITS and not (key in _MAY_BE_EMPTY and value == ""):
            low, high = LIMITS[key]
            if not low <= len(value) <= high:
                raise FieldError(_length_error(key, low, high))
        fields[key] = value
    for key in _BOOL_FIELDS:
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, bool):
            raise FieldError(f"{key} must be true or false")
        fields[key] = value
    visibility = body.get("visibility")
    if visibility is not None:
        if not isinstance(visibility, str) or visibility.upper() not in VISIBILITIES:
            raise FieldError("visibility must be PUBLIC, UNLISTED or PRIVATE")
        fields["visibility"] = visibility.upper()
    categories = body.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise FieldError("categories must be a list of strings")
        fields["categories"] = categories
    return fields


def _not_ok(error: str) -> web.Response:
    # Refusals come with HTTP 200 (PC reads ``error`` from 200 answers, §2.4.2).
    return json_response({"status": "NOT_OK", "error": error})


async def _json_object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, {"status": "NOT_OK", "error": "Expected a JSON object"})
    return body


async def _neo_object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, neo_error_body("Invalid payload: expected a JSON object", 400))
    return body


# ---- info --------------------------------------------------------------------------------------


async def neo_character_info(request: web.Request) -> web.Response:
    """``POST /character/v1/get_character_info`` (§6.2): ``{"character"}`` or NOT_OK."""
    user = authenticate(request)
    body = await _neo_object(request)
    catalog = _catalog(request)
    character = catalog.visible(user, body.get("external_id"))
    if character is None:
        return _not_ok(NOT_FOUND)
    return json_response({"character": catalog.full(character, user, neo=True)})


async def neo_character_infos(request: web.Request) -> web.Response:
    """``POST /character/v1/get_character_infos`` ``{"external_ids"}``: the visible ones."""
    user = authenticate(request)
    ids = (await _neo_object(request)).get("external_ids")
    if not isinstance(ids, list):
        raise ApiError(400, neo_error_body("Invalid payload: external_ids must be a list", 400))
    catalog = _catalog(request)
    found = (catalog.visible(user, cid) for cid in ids)
    characters = [catalog.full(c, user, neo=True) for c in found if c is not None]
    return json_response({"characters": characters})


async def plus_character_info(request: web.Request) -> web.Response:
    """Legacy ``POST /chat/character/info/`` (§6.2). It still answers here (the live one has
    answered 500 for many characters since mid-2025); it never carries the definition."""
    user = authenticate(request)
    body = await _json_object(request)
    catalog = _catalog(request)
    character = catalog.visible(user, body.get("external_id"))
    if character is None:
        return _not_ok(NOT_FOUND)
    payload = catalog.full(character, user, definition=False)
    return json_response({"character": payload, "status": "OK"})


async def plus_character_detail(request: web.Request) -> web.Response:
    """``POST /chat/character/`` (§6.2, CN): the detailed object, definition when permitted."""
    user = authenticate(request)
    body = await _json_object(request)
    catalog = _catalog(request)
    character = catalog.visible(user, body.get("external_id"))
    if character is None:
        return json_response({"character": {}, "status": NO_PERMISSION})
    return json_response({"character": catalog.full(character, user), "status": "OK"})


# ---- create / update ---------------------------------------------------------------------------


async def create_character(request: web.Request) -> web.Response:
    """``POST /chat/character/create/`` (§6.3) → ``{"status": "OK", "character"}``."""
    user = authenticate(request)
    body = await _json_object(request)
    try:
        fields = check_fields(body, required=("name", "greeting"))
    except FieldError as exc:
        return _not_ok(str(exc))
    catalog = _catalog(request)
    character = catalog.create(user, fields)
    return json_response({"status": "OK", "character": catalog.full(character, user)})


async def update_character(request: web.Request) -> web.Response:
    """``POST /chat/character/update/`` (§6.3): only the creator may; ``archived: true``
    deletes. Fields not sent keep their value."""
    user = authenticate(request)
    body = await _json_object(request)
    catalog = _catalog(request)
    character = catalog.visible(user, body.get("external_id"))
    if character is None:
        return _not_ok(NOT_FOUND)
    if character.creator_id != user.id:
        return _not_ok("You do not have permission to edit this character")
    try:
        fields = check_fields(body, required=())
    except FieldError as exc:
        return _not_ok(str(exc))
    character = catalog.update(character, fields)
    return json_response({"status": "OK", "character": catalog.full(character, user)})


# ---- votes -------------------------------------------------------------------------------------


async def vote_character(request: web.Request) -> web.Response:
    """``POST /chat/character/vote/`` ``{"external_id", "vote": true|false|null}`` (§6.4)."""
    user = authenticate(request)
    body = await _json_object(request)
    vote = body.get("vote")
    if vote is not None and not isinstance(vote, bool):
        raise ApiError(400, {"status": "NOT_OK", "error": "vote must be true, false or null"})
    catalog = _catalog(request)
    character = catalog.visible(user, body.get("external_id"))
    if character is None:
        return _not_ok(NOT_FOUND)
    catalog.vote(user, character, vote)
    return json_response({"status": "OK"})


async def voted(request: web.Request) -> web.Response:
    """``GET /chat/character/{id}/voted/`` → ``{"vote": true|false|null}`` (§6.4)."""
    user = authenticate(request)
    catalog = _catalog(request)
    character = catalog.visible(user, request.match_info["character_id"])
    if character is None:
        raise ApiError(404, {"detail": "Not found."})
    return json_response({"vote": catalog.vote_of(user, character.id)})


# The report categories of the web client (PROTOCOL.md §2.3).
REPORT_CATEGORIES = frozenset(
    [
        "ABUSE",
        "VIOLENCE",
        "FALSITY",
        "HATE",
        "NSFW",
        "SEX_HARASS",
        "MINOR",
        "SELF_HARM",
        "TERROR",
        "ILLEGAL",
        "DRUGS",
        "PII",
        "IMPERSONATE",
        "SPAM",
    ]
)


@dataclass(frozen=True)
class ReportRecord:
    report_id: str
    reporter_id: str
    resource_id: str
    type: str
    category: str
    comments: str
    create_time: str


async def create_report(request: web.Request) -> web.Response:
    """``POST /report/create`` ``{"category", "comments", "reported_resource_id", "type"}``
    (§6.4) → ``{"report": {"report_id"}}``. Only characters the caller can see are
    reportable; anything else answers like a missing character."""
    user = authenticate(request)
    body = await _neo_object(request)
    category, kind = body.get("category"), body.get("type", "CHARACTER")
    comments = body.get("comments", "")
    if category not in REPORT_CATEGORIES or kind != "CHARACTER" or not isinstance(comments, str):
        raise ApiError(400, neo_error_body("Invalid report", 400))
    character = _catalog(request).visible(user, body.get("reported_resource_id"))
    if character is None:
        raise ApiError(404, neo_error_body("Character not found", 404))
    report = ReportRecord(new_id(), user.id, character.id, kind, category, comments, now_iso())
    request.app[STATE].store.persist.put("report", report.report_id, report)
    return json_response({"report": {"report_id": report.report_id}})


def register(app: web.Application) -> None:
    """Add the info, create/update and vote routes (plus under ``/plus`` and ``/beta``)."""
    catalog_of(app)
    app.router.add_post("/neo/report/create", create_report)
    app.router.add_post("/neo/character/v1/get_character_info", neo_character_info)
    app.router.add_post("/neo/character/v1/get_character_infos", neo_character_infos)
    for prefix in PREFIXES:
        add = app.router.add_post
        add(f"{prefix}/chat/character/info/", plus_character_info)
        add(f"{prefix}/chat/character/", plus_character_detail)
        add(f"{prefix}/chat/character/create/", create_character)
        add(f"{prefix}/chat/character/update/", update_character)
        add(f"{prefix}/chat/character/vote/", vote_character)
        app.router.add_get(f"{prefix}/chat/character/{{character_id}}/voted/", voted)
