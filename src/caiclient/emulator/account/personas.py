"""Personas of ``plus``/``beta`` (docs/protocol.md §4.5): list, get, create, update, archive.

A persona is private to its owner: another user's persona gets exactly the answer of a
missing one. Archiving (``"archived": true`` on update) deletes it and clears the owner's
settings that pointed at it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
from aiohttp import web

from .._http import DJANGO_PREFIXES, ApiError, authenticate, json_response, read_json
from .._util import new_id
from ..store import User
from .store import ACCOUNT, AccountStore, PersonaRecord, new_external_id

__all__ = ["add_routes", "persona_full", "persona_short"]

NAME_LIMITS = (3, 20)
DEFINITION_MAX = 750
# Not in docs/protocol.md for personas; the character limits of §6.3 (personas are characters).
GREETING_MAX = 4096
DESCRIPTION_MAX = 500
TITLE_MAX = 50
VISIBILITIES = ("PRIVATE", "PUBLIC", "UNLISTED")
_NOT_FOUND = "Persona not found"


def _owner_name(accounts: AccountStore, persona: PersonaRecord) -> str:
    owner = accounts.core.users_by_id.get(persona.owner_id)
    return owner.username if owner is not None else ""


def persona_short(accounts: AccountStore, persona: PersonaRecord) -> dict[str, Any]:
    """A PersonaShort of ``GET /chat/personas/`` (exactly the keys of §4.5)."""
    return {
        "external_id": persona.external_id,
        "title": persona.title,
        "greeting": persona.greeting,
        "description": persona.description,
        "definition": persona.definition,
        "avatar_file_name": persona.avatar_file_name,
        "visibility": persona.visibility,
        "copyable": persona.copyable,
        "participant__name": persona.name,
        "participant__num_interactions": 0,
        "user__id": int(persona.owner_id),
        "user__username": _owner_name(accounts, persona),
        "img_gen_enabled": persona.img_gen_enabled,
        "default_voice_id": persona.default_voice_id or None,
        "is_persona": True,
    }


def persona_full(accounts: AccountStore, persona: PersonaRecord) -> dict[str, Any]:
    """The character-like persona object of ``GET /chat/persona/`` (§4.5)."""
    return {
        "external_id": persona.external_id,
        "title": persona.title,
        "name": persona.name,
        "visibility": persona.visibility,
        "copyable": persona.copyable,
        "greeting": persona.greeting,
        "description": persona.description,
        "identifier": persona.identifier,
        "avatar_file_name": persona.avatar_file_name,
        "songs": [],
        "img_gen_enabled": persona.img_gen_enabled,
        "base_img_prompt": persona.base_img_prompt,
        "img_prompt_regex": "",
        "strip_img_prompt_from_msg": persona.strip_img_prompt_from_msg,
        "definition": persona.definition,
        "default_voice_id": persona.default_voice_id or None,
        "starter_prompts": {"phrases": []},
        "comments_enabled": False,
        "categories": list(persona.categories),
        "user__username": _owner_name(accounts, persona),
        "participant__name": persona.name,
        "participant__user__username": persona.participant_username,
        "num_interactions": 0,
        "voice_id": persona.voice_id or None,
    }


class _PersonaBody(msgspec.Struct, kw_only=True):
    """Create/update body (§4.5); every field optional, unknown ones ignored."""

    external_id: str | None = None
    archived: bool | None = None
    title: str | None = None
    name: str | None = None
    identifier: str | None = None
    categories: list[str] | None = None
    visibility: str | None = None
    copyable: bool | None = None
    description: str | None = None
    greeting: str | None = None
    definition: str | None = None
    avatar_rel_path: str | None = None
    avatar_file_name: str | None = None
    img_gen_enabled: bool | None = None
    base_img_prompt: str | None = None
    strip_img_prompt_from_msg: bool | None = None
    voice_id: str | int | None = None
    default_voice_id: str | int | None = None


_COPIED = (
    "title",
    "name",
    "categories",
    "visibility",
    "copyable",
    "description",
    "greeting",
    "definition",
    "img_gen_enabled",
    "base_img_prompt",
    "strip_img_prompt_from_msg",
)


def _apply(persona: PersonaRecord, body: _PersonaBody) -> None:
    """Copy every field present in ``body`` onto ``persona``."""
    for key in _COPIED:
        value = getattr(body, key)
        if value is not None:
            setattr(persona, key, value)
    avatar = body.avatar_rel_path or body.avatar_file_name
    if avatar is not None:
        persona.avatar_file_name = avatar
    for key in ("voice_id", "default_voice_id"):
        value = getattr(body, key)
        if value is not None:
            setattr(persona, key, str(value))


def _rule_error(persona: PersonaRecord) -> str | None:
    """Why ``persona`` breaks a limit, or None."""
    low, high = NAME_LIMITS
    if not low <= len(persona.name) <= high:
        return f"Name must be {low}-{high} characters"
    checks = (
        ("Definition", persona.definition, DEFINITION_MAX),
        ("Greeting", persona.greeting, GREETING_MAX),
        ("Description", persona.description, DESCRIPTION_MAX),
        ("Title", persona.title, TITLE_MAX),
    )
    for what, value, limit in checks:
        if len(value) > limit:
            return f"{what} must be at most {limit} characters"
    if persona.visibility not in VISIBILITIES:
        return f"visibility must be one of {', '.join(VISIBILITIES)}"
    return None


def _not_ok(error: str, status: int = 200) -> web.Response:
    return json_response({"status": "NOT_OK", "error": error}, status)


async def list_personas(request: web.Request) -> web.Response:
    """``GET /chat/personas/?force_refresh=0|1`` (the flag is accepted and ignored)."""
    user = authenticate(request)
    accounts = request.app[ACCOUNT]
    items = [persona_short(accounts, p) for p in accounts.personas_of(user)]
    return json_response({"personas": items})


async def get_persona(request: web.Request) -> web.Response:
    """``GET /chat/persona/?id=<external_id>``; missing or foreign → 404 ``{"error"}``."""
    user = authenticate(request)
    accounts = request.app[ACCOUNT]
    persona_id = request.query.get("id")
    if not persona_id:
        raise ApiError(400, {"error": "id is required"})
    persona = accounts.persona_for(user, persona_id)
    if persona is None:
        raise ApiError(404, {"error": _NOT_FOUND})
    return json_response({"persona": persona_full(accounts, persona)})


def _new_persona(user: User, body: _PersonaBody) -> PersonaRecord:
    identifier = body.identifier or f"id:{new_id()}"
    name = body.name if body.name is not None else (body.title or "")
    persona = PersonaRecord(
        external_id=new_external_id(),
        owner_id=user.id,
        identifier=identifier,
        participant_username=f"internal_id:{user.id}:{identifier.removeprefix('id:')}",
        name=name,
    )
    _apply(persona, body)
    if body.title is None:
        persona.title = persona.name
    return persona


async def create_persona(request: web.Request) -> web.Response:
    """``POST /chat/persona/create/`` → ``{"status": "OK", "persona": {…}}``."""
    user = authenticate(request)
    accounts = request.app[ACCOUNT]
    body = msgspec.convert(await read_json(request), _PersonaBody)
    persona = _new_persona(user, body)
    if error := _rule_error(persona):
        return _not_ok(error)
    accounts.save_persona(persona)
    return json_response({"status": "OK", "persona": persona_full(accounts, persona)})


async def update_persona(request: web.Request) -> web.Response:
    """``POST /chat/persona/update/``: fields + ``external_id``; ``archived: true`` deletes."""
    user = authenticate(request)
    accounts = request.app[ACCOUNT]
    body = msgspec.convert(await read_json(request), _PersonaBody)
    if not body.external_id:
        return _not_ok("external_id is required", 400)
    current = accounts.persona_for(user, body.external_id)
    if current is None:
        return _not_ok(_NOT_FOUND, 404)
    if body.archived:
        accounts.delete_persona(current)
        return json_response({"status": "OK", "persona": persona_full(accounts, current)})
    persona = dataclasses.replace(current)
    _apply(persona, body)
    if error := _rule_error(persona):
        return _not_ok(error)
    accounts.save_persona(persona)
    return json_response({"status": "OK", "persona": persona_full(accounts, persona)})


def add_routes(app: web.Application) -> None:
    """Add the persona routes under both Django host prefixes."""
    for prefix in DJANGO_PREFIXES:
        app.router.add_get(f"{prefix}/chat/personas/", list_personas)
        app.router.add_get(f"{prefix}/chat/persona/", get_persona)
        app.router.add_post(f"{prefix}/chat/persona/create/", create_persona)
        app.router.add_post(f"{prefix}/chat/persona/update/", update_persona)
