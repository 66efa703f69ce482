"""Account, public profiles, follows and settings of ``plus``/``beta`` (docs/protocol.md §4.1–4.4).

Wire choices where the captures are silent (docs/protocol.md, "Account"): a well-formed request
that breaks a rule (length limits, a taken username, following yourself) is answered HTTP 200
``{"status": "NOT_OK", "error": …}`` (``{"success": false, "error": …}`` for settings), a
wrongly typed body 400 ``{"detail": "JSON parse error - …"}``; an unknown username is the
HTTP 500 Django error page PyCharacterAI observed (§15.4).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import msgspec
from aiohttp import web

from .._http import DJANGO_PREFIXES, authenticate, json_response, read_json
from ..characters.cast import SeedCharacter
from ..state import STATE
from ..store import User
from ..wire import user_account
from .store import ACCOUNT, AccountStore, SettingsRecord

__all__ = ["PUBLIC_PAGE_SIZE", "add_routes", "user_payload"]

PUBLIC_PAGE_SIZE = 20
"""Users per page of ``/chat/user/public/followers/`` and ``/following/``."""

USERNAME_LIMITS = (2, 20)
NAME_LIMITS = (2, 50)
BIO_MAX = 500

# What production Django (DEBUG off) sends for an unhandled exception, e.g. a failed
# ``User.objects.get(username=…)``: the live answer to an unknown username (§2.4.5, §15.4).
_DJANGO_500 = (
    '<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n'
    "</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"
)


def _account(request: web.Request) -> AccountStore:
    return request.app[ACCOUNT]


def not_ok(error: str) -> web.Response:
    """The plus "status" envelope of a refusal (docs/protocol.md §2.4.2), HTTP 200."""
    return json_response({"status": "NOT_OK", "error": error})


def no_such_user() -> web.Response:
    return web.Response(text=_DJANGO_500, status=500, content_type="text/html")


# ---- own account ------------------------------------------------------------------------


def user_payload(user: User) -> dict[str, Any]:
    """The ``GET /chat/user/`` body (docs/protocol.md §4.1); the id is an integer here."""
    inner = {
        "username": user.username,
        "id": int(user.id),
        "first_name": None,
        "account": user_account(user),
        "is_staff": False,
        "subscription": None,
        "entitlements": [],
    }
    return {
        "user": {
            "user": inner,
            "is_human": True,
            "name": user.name,
            "email": user.email,
            "date_joined": user.date_joined,
            "needs_to_acknowledge_policy": False,
            "suspended_until": None,
            "hidden_characters": [],
            "blocked_users": [],
            "bio": user.bio,
            "interests": None,
            "date_of_birth": None,
        }
    }


async def get_user(request: web.Request) -> web.Response:
    return json_response(user_payload(authenticate(request)))


class _UserUpdate(msgspec.Struct, kw_only=True):
    username: str | None = None
    name: str | None = None
    bio: str | None = None
    avatar_type: str | None = None
    avatar_rel_path: str | None = None


def _length_error(what: str, value: str, limits: tuple[int, int]) -> str | None:
    low, high = limits
    return None if low <= len(value) <= high else f"{what} must be {low}-{high} characters"


def _user_update_error(accounts: AccountStore, user: User, body: _UserUpdate) -> str | None:
    """Why the update breaks a rule, or None. Absent fields keep their value."""
    if body.username is not None:
        if error := _length_error("Username", body.username, USERNAME_LIMITS):
            return error
        other = accounts.user_named(body.username)
        if other is not None and other is not user:
            return "Username is already taken"
    if body.name is not None and (error := _length_error("Name", body.name, NAME_LIMITS)):
        return error
    if body.bio is not None and len(body.bio) > BIO_MAX:
        return f"Bio must be at most {BIO_MAX} characters"
    if body.avatar_type not in (None, "UPLOADED", "DEFAULT"):
        return "avatar_type must be UPLOADED or DEFAULT"
    if body.avatar_type == "UPLOADED" and not (body.avatar_rel_path or user.avatar_file_name):
        return "avatar_rel_path is required for an UPLOADED avatar"
    return None


async def update_user(request: web.Request) -> web.Response:
    """``POST /chat/user/update/`` (docs/protocol.md §4.2); absent keys are left unchanged."""
    user = authenticate(request)
    accounts = _account(request)
    body = msgspec.convert(await read_json(request), _UserUpdate)
    if error := _user_update_error(accounts, user, body):
        return not_ok(error)
    if body.username is not None:
        user.username = body.username
    if body.name is not None:
        user.name = body.name
    if body.bio is not None:
        user.bio = body.bio
    if body.avatar_type == "DEFAULT":
        user.avatar_file_name = None
    elif body.avatar_rel_path:
        user.avatar_file_name = body.avatar_rel_path
    accounts.save_user(user)
    return json_response({"status": "OK"})


# ---- public profiles and follows ----------------------------------------------------------


def _owned_public_characters(request: web.Request, user: User) -> list[SeedCharacter]:
    """Public, live characters ``user`` created (the built-in cast belongs to nobody here)."""
    return [
        c
        for c in request.app[STATE].store.characters.values()
        if c.creator_id == user.id and c.visibility == "PUBLIC" and not c.archived
    ]


def _character_short(character: SeedCharacter, owner: User) -> dict[str, Any]:
    """A CharacterShort (docs/protocol.md §6.1) of a character ``owner`` created."""
    return {
        "external_id": character.id,
        "title": character.title,
        "participant__name": character.name,
        "description": character.description,
        "greeting": character.greeting,
        "avatar_file_name": character.avatar_file_name,
        "visibility": character.visibility,
        "copyable": character.copyable,
        "user__id": int(owner.id),
        "user__username": owner.username,
        "img_gen_enabled": character.img_gen_enabled,
        "participant__num_interactions": character.num_interactions,
        "default_voice_id": character.default_voice_id or None,
        "upvotes": character.upvotes,
    }


class _UsernameBody(msgspec.Struct, kw_only=True):
    username: str


async def public_user(request: web.Request) -> web.Response:
    """``POST /chat/user/public/`` (docs/protocol.md §4.3)."""
    authenticate(request)
    accounts = _account(request)
    body = msgspec.convert(await read_json(request), _UsernameBody)
    user = accounts.user_named(body.username)
    if user is None:
        return no_such_user()
    characters = _owned_public_characters(request, user)
    profile = {
        "username": user.username,
        "name": user.name,
        "num_following": len(accounts.following(user)),
        "num_followers": len(accounts.followers(user)),
        "avatar_file_name": user.avatar_file_name,
        "subscription_type": "NONE",
        "bio": user.bio,
        "creator_info": None,
        "characters": [_character_short(c, user) for c in characters],
    }
    return json_response({"public_user": profile})


class _UsernamesBody(msgspec.Struct, kw_only=True):
    usernames: list[str]


def _top_char(character: SeedCharacter) -> dict[str, Any]:
    return {
        "character_name": character.name,
        "interactions": character.num_interactions,
        "avatar_file_name": character.avatar_file_name,
        "external_id": character.id,
    }


def _character_info(characters: list[SeedCharacter]) -> dict[str, Any]:
    tops = sorted(characters, key=lambda c: -c.num_interactions)[:2]
    return {
        "num_characters": len(characters),
        "num_interactions": sum(c.num_interactions for c in characters),
        "top_1_char": _top_char(tops[0]) if len(tops) > 0 else None,
        "top_2_char": _top_char(tops[1]) if len(tops) > 1 else None,
    }


async def anon_public_users(request: web.Request) -> web.Response:
    """``POST /chat/anon/users/public/`` (no token needed); unknown usernames are skipped."""
    accounts = _account(request)
    body = msgspec.convert(await read_json(request), _UsernamesBody)
    users = [
        {
            "username": user.username,
            "account__avatar_file_name": user.avatar_file_name,
            "character_info": _character_info(_owned_public_characters(request, user)),
        }
        for user in filter(None, map(accounts.user_named, body.usernames))
    ]
    return json_response({"public_users": users})


async def own_followers(request: web.Request) -> web.Response:
    """``GET /chat/user/followers/`` → usernames of the caller's followers."""
    user = authenticate(request)
    names = [u.username for u in _account(request).followers(user)]
    return json_response({"followers": names})


async def own_following(request: web.Request) -> web.Response:
    """``GET /chat/user/following/`` → usernames the caller follows."""
    user = authenticate(request)
    names = [u.username for u in _account(request).following(user)]
    return json_response({"following": names})


class _PagedBody(msgspec.Struct, kw_only=True):
    username: str
    pageParam: Annotated[int, msgspec.Meta(ge=1)] = 1


async def _public_list(request: web.Request, *, followers: bool) -> web.Response:
    authenticate(request)
    accounts = _account(request)
    body = msgspec.convert(await read_json(request), _PagedBody)
    user = accounts.user_named(body.username)
    if user is None:
        return no_such_user()
    users = accounts.followers(user) if followers else accounts.following(user)
    start = (body.pageParam - 1) * PUBLIC_PAGE_SIZE
    page = users[start : start + PUBLIC_PAGE_SIZE]
    entries = [
        {
            "username": u.username,
            "account__avatar_file_name": u.avatar_file_name,
            "account__bio": u.bio,
        }
        for u in page
    ]
    has_next = len(users) > start + PUBLIC_PAGE_SIZE
    return json_response({"users": entries, "has_next_page": has_next})


async def public_followers(request: web.Request) -> web.Response:
    """``POST /chat/user/public/followers/`` ``{"username", "pageParam"}`` (§4.3)."""
    return await _public_list(request, followers=True)


async def public_following(request: web.Request) -> web.Response:
    """``POST /chat/user/public/following/`` ``{"username", "pageParam"}`` (§4.3)."""
    return await _public_list(request, followers=False)


async def _follow(request: web.Request, *, follow: bool) -> web.Response:
    me = authenticate(request)
    accounts = _account(request)
    body = msgspec.convert(await read_json(request), _UsernameBody)
    other = accounts.user_named(body.username)
    if other is None:
        return no_such_user()
    if other is me:
        return not_ok(f"You cannot {'follow' if follow else 'unfollow'} yourself")
    # Following twice or unfollowing someone not followed is a no-op, not an error.
    if follow and other.id not in me.following:
        me.following.append(other.id)
        accounts.save_user(me)
    elif not follow and other.id in me.following:
        me.following.remove(other.id)
        accounts.save_user(me)
    return json_response({"status": "OK"})


async def follow(request: web.Request) -> web.Response:
    """``POST /chat/user/follow/`` ``{"username"}`` → ``{"status": "OK"}``."""
    return await _follow(request, follow=True)


async def unfollow(request: web.Request) -> web.Response:
    """``POST /chat/user/unfollow/`` ``{"username"}`` → ``{"status": "OK"}``."""
    return await _follow(request, follow=False)


# ---- settings ---------------------------------------------------------------------------


class _OutputStyle(msgspec.Struct, kw_only=True):
    banned_words: list[str] = msgspec.field(default_factory=list, name="bannedWords")


class _SettingsUpdate(msgspec.Struct, kw_only=True):
    """The posted settings; absent keys keep their value, unknown keys are ignored."""

    default_persona_id: str | msgspec.UnsetType | None = msgspec.UNSET
    voice_overrides: dict[str, str] | msgspec.UnsetType = msgspec.field(
        default=msgspec.UNSET, name="voiceOverrides"
    )
    persona_overrides: dict[str, str] | msgspec.UnsetType = msgspec.field(
        default=msgspec.UNSET, name="personaOverrides"
    )
    voice_overrides_migrated: bool | msgspec.UnsetType = msgspec.field(
        default=msgspec.UNSET, name="voiceOverridesMigrated"
    )
    proactive_dm_opted_out: bool | msgspec.UnsetType = msgspec.field(
        default=msgspec.UNSET, name="proactiveDmOptedOut"
    )
    output_style: _OutputStyle | msgspec.UnsetType = msgspec.field(
        default=msgspec.UNSET, name="outputStylePreferences"
    )


def _merged(current: SettingsRecord, body: _SettingsUpdate) -> SettingsRecord:
    new = dataclasses.replace(current)
    if not isinstance(body.default_persona_id, msgspec.UnsetType):
        new.default_persona_id = body.default_persona_id or None
    if not isinstance(body.voice_overrides, msgspec.UnsetType):
        new.voice_overrides = body.voice_overrides
    if not isinstance(body.persona_overrides, msgspec.UnsetType):
        new.persona_overrides = body.persona_overrides
    if not isinstance(body.voice_overrides_migrated, msgspec.UnsetType):
        new.voice_overrides_migrated = body.voice_overrides_migrated
    if not isinstance(body.proactive_dm_opted_out, msgspec.UnsetType):
        new.proactive_dm_opted_out = body.proactive_dm_opted_out
    if not isinstance(body.output_style, msgspec.UnsetType):
        new.banned_words = body.output_style.banned_words
    return new


async def get_settings(request: web.Request) -> web.Response:
    """``GET /chat/user/settings/`` (docs/protocol.md §4.4): the bare settings object."""
    user = authenticate(request)
    return json_response(_account(request).settings_of(user).wire())


async def update_settings(request: web.Request) -> web.Response:
    """``POST /chat/user/update_settings/``: persona references must be the caller's own."""
    user = authenticate(request)
    accounts = _account(request)
    body = msgspec.convert(await read_json(request), _SettingsUpdate)
    new = _merged(accounts.settings_of(user), body)
    wanted = [new.default_persona_id, *new.persona_overrides.values()]
    for persona_id in wanted:
        if persona_id and accounts.persona_for(user, persona_id) is None:
            return json_response({"success": False, "error": "Persona not found"})
    accounts.save_settings(user, new)
    return json_response({"success": True, "settings": new.wire()})


# ---- routes -------------------------------------------------------------------------------


def add_routes(app: web.Application) -> None:
    """Add the account routes under both Django host prefixes."""
    for prefix in DJANGO_PREFIXES:
        get, post = app.router.add_get, app.router.add_post
        get(f"{prefix}/chat/user/", get_user)
        post(f"{prefix}/chat/user/update/", update_user)
        post(f"{prefix}/chat/user/public/", public_user)
        post(f"{prefix}/chat/anon/users/public/", anon_public_users)
        get(f"{prefix}/chat/user/followers/", own_followers)
        get(f"{prefix}/chat/user/following/", own_following)
        post(f"{prefix}/chat/user/public/followers/", public_followers)
        post(f"{prefix}/chat/user/public/following/", public_following)
        # N2 posts the paged body to these paths, without ``public/`` (docs/protocol.md §15.10).
        for slash in ("/", ""):
            post(f"{prefix}/chat/user/followers{slash}", public_followers)
            post(f"{prefix}/chat/user/following{slash}", public_following)
        post(f"{prefix}/chat/user/follow/", follow)
        post(f"{prefix}/chat/user/unfollow/", unfollow)
        get(f"{prefix}/chat/user/settings/", get_settings)
        post(f"{prefix}/chat/user/update_settings/", update_settings)
