"""Account, users, personas and settings on the Django host (``plus``, docs/protocol.md §4). No I/O.

The Django app reports many refusals inside a 2xx body: ``{"status": "NOT_OK", "error": …}``,
``{"error": …}`` or ``{"success": false, …}`` (§2.4.2); the one reader of those,
:func:`caiclient.protocol.http.check_refusal`, turns them into typed errors. Settings and
personas are read-modify-written as raw JSON objects, so keys this library does not know
survive an update.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ..endpoints import Endpoints
from ..errors import NotFound, ProtocolError, UserNotFound
from ..models import CharacterShort, Persona, PublicUser, Settings, User
from .http import Request, check_refusal, decode

__all__ = [
    "PERSONA_FIELDS",
    "apply_settings",
    "create_persona",
    "follow",
    "followers",
    "following",
    "me",
    "parse_persona",
    "parse_personas",
    "parse_public_user",
    "parse_settings",
    "parse_updated_settings",
    "parse_user",
    "parse_user_page",
    "parse_usernames",
    "persona",
    "personas",
    "public_followers",
    "public_following",
    "public_user",
    "settings",
    "unfollow",
    "update_persona",
    "update_settings",
    "update_user",
]

# --- requests --------------------------------------------------------------------------------


def me(endpoints: Endpoints) -> Request:
    return Request("GET", f"{endpoints.plus}/chat/user/")


def update_user(
    endpoints: Endpoints, *, username: str, name: str, bio: str, avatar_rel_path: str
) -> Request:
    """``POST /chat/user/update/`` with every field, as the web client sends it (§4.2).

    An empty ``avatar_rel_path`` means the default avatar.
    """
    body: dict[str, Any] = {
        "username": username,
        "name": name,
        "avatar_type": "UPLOADED" if avatar_rel_path else "DEFAULT",
        "bio": bio,
    }
    if avatar_rel_path:
        body["avatar_rel_path"] = avatar_rel_path
    return Request("POST", f"{endpoints.plus}/chat/user/update/", json=body)


def settings(endpoints: Endpoints) -> Request:
    return Request("GET", f"{endpoints.plus}/chat/user/settings/")


def update_settings(endpoints: Endpoints, raw: Mapping[str, Any]) -> Request:
    """``POST /chat/user/update_settings/`` with the whole settings object (§4.4)."""
    return Request("POST", f"{endpoints.plus}/chat/user/update_settings/", json=dict(raw))


def public_user(endpoints: Endpoints, username: str) -> Request:
    return Request("POST", f"{endpoints.plus}/chat/user/public/", json={"username": username})


def followers(endpoints: Endpoints) -> Request:
    return Request("GET", f"{endpoints.plus}/chat/user/followers/")


def following(endpoints: Endpoints) -> Request:
    return Request("GET", f"{endpoints.plus}/chat/user/following/")


def public_followers(endpoints: Endpoints, username: str, page: int) -> Request:
    body = {"username": username, "pageParam": page}
    return Request("POST", f"{endpoints.plus}/chat/user/public/followers/", json=body)


def public_following(endpoints: Endpoints, username: str, page: int) -> Request:
    body = {"username": username, "pageParam": page}
    return Request("POST", f"{endpoints.plus}/chat/user/public/following/", json=body)


def follow(endpoints: Endpoints, username: str) -> Request:
    return Request("POST", f"{endpoints.plus}/chat/user/follow/", json={"username": username})


def unfollow(endpoints: Endpoints, username: str) -> Request:
    return Request("POST", f"{endpoints.plus}/chat/user/unfollow/", json={"username": username})


def personas(endpoints: Endpoints) -> Request:
    # force_refresh=1 as PyCharacterAI sends: we want the current list, not a cached one.
    return Request("GET", f"{endpoints.plus}/chat/personas/", params={"force_refresh": "1"})


def persona(endpoints: Endpoints, persona_id: str) -> Request:
    return Request("GET", f"{endpoints.plus}/chat/persona/", params={"id": persona_id})


def create_persona(
    endpoints: Endpoints,
    *,
    name: str,
    definition: str,
    greeting: str,
    description: str,
    identifier: str,
) -> Request:
    """``POST /chat/persona/create/`` with the body of §4.5; ``identifier`` is ``id:<uuid4>``."""
    body = {
        "title": name,
        "name": name,
        "identifier": identifier,
        "categories": [],
        "visibility": "PRIVATE",
        "copyable": False,
        "description": description,
        "greeting": greeting,
        "definition": definition,
        "avatar_rel_path": "",
        "avatar_file_name": "",
        "img_gen_enabled": False,
        "base_img_prompt": "",
        "voice_id": "",
        "strip_img_prompt_from_msg": False,
    }
    return Request("POST", f"{endpoints.plus}/chat/persona/create/", json=body, idempotent=False)


PERSONA_FIELDS = (
    "title",
    "name",
    "identifier",
    "categories",
    "visibility",
    "copyable",
    "description",
    "greeting",
    "definition",
    "avatar_file_name",
    "img_gen_enabled",
    "base_img_prompt",
    "voice_id",
    "strip_img_prompt_from_msg",
)
"""The keys of a persona object that an update sends back (those of the create body)."""


def update_persona(
    endpoints: Endpoints,
    raw: Mapping[str, Any],
    changes: Mapping[str, Any],
    *,
    archived: bool = False,
) -> Request:
    """``POST /chat/persona/update/``: the persona's fields from ``raw`` (a persona object as
    fetched) with ``changes`` applied, plus ``external_id`` (and ``archived`` to delete)."""
    body: dict[str, Any] = {key: raw[key] for key in PERSONA_FIELDS if key in raw}
    body.update(changes)
    for key in ("voice_id", "base_img_prompt", "avatar_file_name"):
        if body.get(key) is None:
            body[key] = ""
    body["avatar_rel_path"] = body.get("avatar_file_name", "")
    body["external_id"] = raw["external_id"]
    if archived:
        body["archived"] = True
    return Request("POST", f"{endpoints.plus}/chat/persona/update/", json=body)


# --- status envelopes ------------------------------------------------------------------------


# --- own account -----------------------------------------------------------------------------


class _Account(msgspec.Struct, kw_only=True):
    name: str | None = None
    avatar_file_name: str | None = None


class _InnerUser(msgspec.Struct, kw_only=True):
    id: int | str
    username: str
    account: _Account | None = None
    is_staff: bool = False


class _OuterUser(msgspec.Struct, kw_only=True):
    user: _InnerUser
    name: str | None = None
    email: str | None = None
    bio: str | None = None


class _UserBody(msgspec.Struct):
    user: _OuterUser


def parse_user(body: bytes) -> User:
    """``GET /chat/user/`` → :class:`User` (the integer id becomes a digit string)."""
    outer = decode(body, _UserBody, "/chat/user/").user
    inner = outer.user
    account = inner.account or _Account()
    return User(
        id=str(inner.id),
        username=inner.username,
        name=account.name or outer.name or inner.username,
        avatar_file_name=account.avatar_file_name or None,
        bio=outer.bio,
        email=outer.email,
        is_staff=inner.is_staff,
    )


# --- settings --------------------------------------------------------------------------------


class _OutputStyle(msgspec.Struct, kw_only=True):
    banned_words: list[str] | None = msgspec.field(default=None, name="bannedWords")


class _WireSettings(msgspec.Struct, kw_only=True):
    default_persona_id: str | None = None
    voice_overrides: dict[str, str] | None = msgspec.field(default=None, name="voiceOverrides")
    persona_overrides: dict[str, str] | None = msgspec.field(default=None, name="personaOverrides")
    voice_overrides_migrated: bool | None = msgspec.field(
        default=None, name="voiceOverridesMigrated"
    )
    proactive_dm_opted_out: bool | None = msgspec.field(default=None, name="proactiveDmOptedOut")
    output_style: _OutputStyle | None = msgspec.field(default=None, name="outputStylePreferences")


def _settings_from(raw: dict[str, Any], what: str) -> Settings:
    try:
        wire = msgspec.convert(raw, _WireSettings)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"unexpected {what} response: {exc}") from None
    style = wire.output_style or _OutputStyle()
    return Settings(
        default_persona_id=wire.default_persona_id or None,
        voice_overrides=wire.voice_overrides or {},
        persona_overrides=wire.persona_overrides or {},
        voice_overrides_migrated=bool(wire.voice_overrides_migrated),
        proactive_dm_opted_out=bool(wire.proactive_dm_opted_out),
        banned_words=style.banned_words or [],
    )


def parse_settings(body: bytes) -> tuple[dict[str, Any], Settings]:
    """``GET /chat/user/settings/`` → the raw object (for read-modify-write) and its model."""
    raw = decode(body, dict[str, Any], "/chat/user/settings/")
    return raw, _settings_from(raw, "/chat/user/settings/")


class _UpdatedSettings(msgspec.Struct, kw_only=True):
    settings: dict[str, Any]


def parse_updated_settings(body: bytes, *, not_found: type[NotFound] | None = None) -> Settings:
    """``{"success": true, "settings": {…}}`` → the saved :class:`Settings`; a refusal
    saying "not found" (an unknown persona id) raises ``not_found`` when given."""
    check_refusal(body, "settings update", not_found=not_found)
    raw = decode(body, _UpdatedSettings, "/chat/user/update_settings/").settings
    return _settings_from(raw, "/chat/user/update_settings/")


_WIRE_KEYS = {
    "default_persona_id": "default_persona_id",
    "voice_overrides": "voiceOverrides",
    "persona_overrides": "personaOverrides",
    "voice_overrides_migrated": "voiceOverridesMigrated",
    "proactive_dm_opted_out": "proactiveDmOptedOut",
}


def apply_settings(raw: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the raw settings object with ``changes`` (keyed by :class:`Settings` field
    names) applied under their wire keys; unknown wire keys are kept as they were."""
    new = dict(raw)
    for field, value in changes.items():
        if field == "banned_words":
            style = new.get("outputStylePreferences")
            style = dict(style) if isinstance(style, dict) else {}
            style["bannedWords"] = list(value)
            new["outputStylePreferences"] = style
        elif field == "default_persona_id" and value is None:
            # null, not a missing key: the server merges posted keys (docs/protocol.md).
            if "default_persona_id" in new:
                new["default_persona_id"] = None
        else:
            new[_WIRE_KEYS[field]] = dict(value) if isinstance(value, Mapping) else value
    return new


# --- public profiles -------------------------------------------------------------------------


class _WireCharacterShort(msgspec.Struct, kw_only=True):
    external_id: str
    name: str | None = None
    participant__name: str | None = None
    title: str | None = None
    description: str | None = None
    greeting: str | None = None
    avatar_file_name: str | None = None
    visibility: str | None = None
    copyable: bool | None = None
    user__id: int | str | None = None
    user__username: str | None = None
    participant__num_interactions: float | None = None
    upvotes: int | None = None
    num_likes: int | None = None
    default_voice_id: str | int | None = None


def _character_short(wire: _WireCharacterShort) -> CharacterShort:
    interactions = wire.participant__num_interactions
    likes = wire.upvotes if wire.upvotes is not None else wire.num_likes
    return CharacterShort(
        id=wire.external_id,
        name=wire.participant__name or wire.name or "",
        title=wire.title or "",
        description=wire.description or "",
        greeting=wire.greeting or "",
        avatar_file_name=wire.avatar_file_name or None,
        visibility=wire.visibility,
        copyable=wire.copyable,
        creator_id=None if wire.user__id is None else str(wire.user__id),
        creator_username=wire.user__username,
        num_interactions=None if interactions is None else int(interactions),
        upvotes=likes,
        default_voice_id=None
        if wire.default_voice_id in (None, "")
        else str(wire.default_voice_id),
    )


class _WirePublicUser(msgspec.Struct, kw_only=True):
    username: str
    name: str | None = None
    bio: str | None = None
    avatar_file_name: str | None = None
    num_followers: int | None = None
    num_following: int | None = None
    subscription_type: str | None = None
    characters: list[_WireCharacterShort] | None = None


class _PublicUserBody(msgspec.Struct, kw_only=True):
    # K1 saw ``[]`` for an unknown user (docs/protocol.md §15.4).
    public_user: _WirePublicUser | list[Any] | None = None


def parse_public_user(body: bytes, username: str) -> PublicUser:
    """``POST /chat/user/public/`` → :class:`PublicUser`; an empty answer, ``[]`` or null
    means there is no such user (:class:`UserNotFound`)."""
    if not body.strip():
        raise UserNotFound(f"no user named {username!r}")
    wire = decode(body, _PublicUserBody, "/chat/user/public/").public_user
    if not isinstance(wire, _WirePublicUser):
        raise UserNotFound(f"no user named {username!r}")
    return PublicUser(
        username=wire.username,
        name=wire.name or wire.username,
        bio=wire.bio,
        avatar_file_name=wire.avatar_file_name or None,
        num_followers=wire.num_followers or 0,
        num_following=wire.num_following or 0,
        subscription_type=wire.subscription_type,
        characters=[_character_short(c) for c in wire.characters or ()],
    )


def parse_usernames(body: bytes, key: str) -> list[str]:
    """``{"followers": [usernames…]}`` / ``{"following": […]}`` → the usernames."""
    data = decode(body, dict[str, list[str] | None], f"/chat/user/{key}/")
    return list(data.get(key) or [])


class _PageUser(msgspec.Struct, kw_only=True):
    username: str


class _UserPage(msgspec.Struct, kw_only=True):
    users: list[_PageUser] | None = None
    has_next_page: bool = False


def parse_user_page(body: bytes) -> tuple[list[str], bool]:
    """One page of ``/chat/user/public/followers/`` (or ``following``): usernames, more?"""
    page = decode(body, _UserPage, "/chat/user/public/ list")
    return [u.username for u in page.users or ()], page.has_next_page


# --- personas --------------------------------------------------------------------------------


class _WirePersona(msgspec.Struct, kw_only=True):
    external_id: str
    name: str | None = None
    participant__name: str | None = None
    title: str | None = None
    greeting: str | None = None
    description: str | None = None
    definition: str | None = None
    avatar_file_name: str | None = None
    visibility: str | None = None
    copyable: bool | None = None
    default_voice_id: str | int | None = None
    user__username: str | None = None


def _persona(wire: _WirePersona) -> Persona:
    voice = wire.default_voice_id
    return Persona(
        id=wire.external_id,
        name=wire.name or wire.participant__name or wire.title or "",
        title=wire.title or "",
        greeting=wire.greeting or "",
        description=wire.description or "",
        definition=wire.definition or "",
        avatar_file_name=wire.avatar_file_name or None,
        visibility=wire.visibility or "PRIVATE",
        copyable=bool(wire.copyable),
        default_voice_id=None if voice in (None, "") else str(voice),
        owner_username=wire.user__username,
    )


class _PersonasBody(msgspec.Struct, kw_only=True):
    personas: list[_WirePersona] | None = None


def parse_personas(body: bytes) -> list[Persona]:
    """``GET /chat/personas/`` → your personas."""
    return [_persona(p) for p in decode(body, _PersonasBody, "/chat/personas/").personas or ()]


class _PersonaBody(msgspec.Struct, kw_only=True):
    persona: dict[str, Any] | None = None


def parse_persona(
    body: bytes, what: str, *, not_found: type[NotFound]
) -> tuple[dict[str, Any], Persona]:
    """``{"persona": {…}}`` (get, create, update) → the raw object and its model.

    A body without a persona, or with ``error``/``NOT_OK``, raises ``not_found`` when the
    server says "not found", else :class:`ServerError`.
    """
    check_refusal(body, what, not_found=not_found)
    raw = decode(body, _PersonaBody, what).persona
    if raw is None:
        raise not_found(f"{what}: the answer has no persona")
    try:
        wire = msgspec.convert(raw, _WirePersona)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"unexpected {what} response: {exc}") from None
    return raw, _persona(wire)
