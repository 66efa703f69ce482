"""Character routes: info, create/update/archive, votes and reports (docs/protocol.md §6.1–§6.4).

The state and the payload shapes are in :mod:`.store`; search and discovery routes are in
:mod:`.discovery`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .._http import (
    DJANGO_PREFIXES,
    ApiError,
    authenticate,
    json_response,
    neo_error,
    read_json,
)
from .._util import new_id, now_iso
from ..state import STATE
from .store import CHARACTERS, CharacterStore, ReportRecord

__all__ = ["CURATED_CATEGORIES", "LIMITS", "NOT_FOUND", "REPORT_CATEGORIES", "add_routes"]

NOT_FOUND = "Character not found"
# CN's observation of ``POST /chat/character/`` for characters one may not see (§2.4.2).
NO_PERMISSION = "do not have permission to view this Character"
VISIBILITIES = ("PUBLIC", "UNLISTED", "PRIVATE")

# (min, max) lengths the service enforces (docs/protocol.md §6.3, PC's limits). ``title`` may also
# be empty: PC sends "" by default and only checks a non-empty one.
LIMITS: dict[str, tuple[int, int]] = {
    "name": (3, 20),
    "greeting": (3, 4096),
    "title": (3, 50),
    "description": (0, 500),
    "definition": (0, 32000),
}
_MAY_BE_EMPTY = frozenset({"title", "description", "definition"})

# Order of ``characters_by_curated_category`` (docs/protocol.md §6.5).
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


def _catalog(request: web.Request) -> CharacterStore:
    return request.app[CHARACTERS]


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
        raise neo_error(400, "Invalid payload: expected a JSON object")
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
        raise neo_error(400, "Invalid payload: external_ids must be a list")
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


# The report categories of the web client (docs/protocol.md §2.3).
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


async def create_report(request: web.Request) -> web.Response:
    """``POST /report/create`` ``{"category", "comments", "reported_resource_id", "type"}``
    (§6.4) → ``{"report": {"report_id"}}``. Only characters the caller can see are
    reportable; anything else answers like a missing character."""
    user = authenticate(request)
    body = await _neo_object(request)
    category, kind = body.get("category"), body.get("type", "CHARACTER")
    comments = body.get("comments", "")
    if category not in REPORT_CATEGORIES or kind != "CHARACTER" or not isinstance(comments, str):
        raise neo_error(400, "Invalid report")
    character = _catalog(request).visible(user, body.get("reported_resource_id"))
    if character is None:
        raise neo_error(404, "Character not found")
    report = ReportRecord(new_id(), user.id, character.id, kind, category, comments, now_iso())
    request.app[STATE].store.persist.put("report", report.report_id, report)
    return json_response({"report": {"report_id": report.report_id}})


def add_routes(app: web.Application) -> None:
    """Add the info, create/update, vote and report routes (plus under ``/plus`` and ``/beta``)."""
    app.router.add_post("/neo/report/create", create_report)
    app.router.add_post("/neo/character/v1/get_character_info", neo_character_info)
    app.router.add_post("/neo/character/v1/get_character_infos", neo_character_infos)
    for prefix in DJANGO_PREFIXES:
        add = app.router.add_post
        add(f"{prefix}/chat/character/info/", plus_character_info)
        add(f"{prefix}/chat/character/", plus_character_detail)
        add(f"{prefix}/chat/character/create/", create_character)
        add(f"{prefix}/chat/character/update/", update_character)
        add(f"{prefix}/chat/character/vote/", vote_character)
        app.router.add_get(f"{prefix}/chat/character/{{character_id}}/voted/", voted)
