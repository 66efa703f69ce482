"""Character requests and responses: info, search, discovery, create/update, votes. No I/O.

Three generations of search (docs/protocol.md §6.6, §15.3) and two of character info (§6.2,
§15.2) are built here; which one to try first is the namespace's business. Every parser
normalises the generations' spellings into :class:`Character` / :class:`CharacterShort`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from ..endpoints import Endpoints
from ..errors import (
    AuthError,
    CaiError,
    CharacterNotFound,
    NotFound,
    ProtocolError,
    RateLimited,
    ServerError,
)
from ..models import Character, CharacterShort
from .http import Request, check_refusal, decode

__all__ = [
    "create",
    "curated_categories",
    "featured",
    "info",
    "info_legacy",
    "liked",
    "mine",
    "parse_categories",
    "parse_character",
    "parse_character_list",
    "parse_saved",
    "parse_trpc_search",
    "parse_vote",
    "recent",
    "recommended",
    "search",
    "search_legacy",
    "search_trpc",
    "similar",
    "update",
    "vote",
    "voted",
]

_compact = msgspec.json.Encoder().encode


# --- requests ----------------------------------------------------------------------------------


def info(endpoints: Endpoints, character_id: str) -> Request:
    """neo ``get_character_info`` (current since 2025-07)."""
    body = {"external_id": character_id, "lang": "en"}
    url = f"{endpoints.neo}/character/v1/get_character_info"
    return Request("POST", url, json=body, idempotent=True)


def info_legacy(endpoints: Endpoints, character_id: str) -> Request:
    """plus ``/chat/character/info/`` (answers 500 for many characters since mid-2025)."""
    url = f"{endpoints.plus}/chat/character/info/"
    return Request("POST", url, json={"external_id": character_id}, idempotent=True)


def search(endpoints: Endpoints, query: str) -> Request:
    """neo ``/search/v1/character`` (2025-06 →)."""
    return Request("GET", f"{endpoints.neo}/search/v1/character", params={"query": query})


def search_trpc(endpoints: Endpoints, query: str) -> Request:
    """tRPC ``search.search`` on character.ai (2025-02 →); the transport URL-encodes
    ``input``, so the query goes into the JSON as it is."""
    payload = _compact({"0": {"json": {"searchQuery": query}}}).decode()
    url = f"{endpoints.web}/api/trpc/search.search"
    return Request("GET", url, params={"batch": "1", "input": payload})


def search_legacy(endpoints: Endpoints, query: str) -> Request:
    """plus ``/chat/characters/search/`` (until ~2025-04)."""
    return Request("GET", f"{endpoints.plus}/chat/characters/search/", params={"query": query})


def recommended(endpoints: Endpoints) -> Request:
    return Request("GET", f"{endpoints.neo}/recommendation/v1/user")


def featured(endpoints: Endpoints) -> Request:
    return Request("GET", f"{endpoints.neo}/recommendation/v1/featured")


def similar(endpoints: Endpoints, character_id: str) -> Request:
    return Request("GET", f"{endpoints.neo}/recommendation/v1/character/{character_id}")


def curated_categories(endpoints: Endpoints) -> Request:
    return Request("GET", f"{endpoints.plus}/chat/curated_categories/characters/")


def mine(endpoints: Endpoints) -> Request:
    return Request("GET", f"{endpoints.plus}/chat/characters/", params={"scope": "user"})


def liked(endpoints: Endpoints) -> Request:
    return Request("GET", f"{endpoints.plus}/chat/user/characters/upvoted/")


def recent(endpoints: Endpoints) -> Request:
    """``/chat/characters/recent/``: the characters of your chats (docs/protocol.md §6.5)."""
    return Request("GET", f"{endpoints.plus}/chat/characters/recent/")


def create(endpoints: Endpoints, fields: Mapping[str, Any]) -> Request:
    """``/chat/character/create/`` with the given fields (the caller supplies ``identifier``)."""
    return Request("POST", f"{endpoints.plus}/chat/character/create/", json=dict(fields))


def update(
    endpoints: Endpoints, character_id: str, fields: Mapping[str, Any], *, archived: bool = False
) -> Request:
    """``/chat/character/update/``; ``archived=True`` deletes the character."""
    body = {**fields, "external_id": character_id, "archived": archived}
    return Request("POST", f"{endpoints.plus}/chat/character/update/", json=body)


def vote(endpoints: Endpoints, character_id: str, value: bool | None) -> Request:
    body = {"external_id": character_id, "vote": value}
    url = f"{endpoints.plus}/chat/character/vote/"
    return Request("POST", url, json=body, idempotent=True)


# Report categories of the web client (docs/protocol.md §2.3).
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


def report(endpoints: Endpoints, character_id: str, category: str, comments: str) -> Request:
    """``POST neo /report/create`` (§6.4)."""
    body = {
        "category": category,
        "comments": comments,
        "reported_resource_id": character_id,
        "type": "CHARACTER",
    }
    return Request("POST", f"{endpoints.neo}/report/create", json=body)


class _ReportId(msgspec.Struct):
    report_id: str


class _ReportBody(msgspec.Struct):
    report: _ReportId


def parse_report_id(body: bytes) -> str:
    return decode(body, _ReportBody, "/report/create").report.report_id


def voted(endpoints: Endpoints, character_id: str) -> Request:
    return Request("GET", f"{endpoints.plus}/chat/character/{character_id}/voted/")


# --- wire shapes -------------------------------------------------------------------------------

_Number = int | float | str | None


class _Wire(msgspec.Struct, kw_only=True):
    """Every spelling of a character any generation sends; all optional."""

    external_id: str | None = None
    character_id: str | None = None
    name: str | None = None
    participant__name: str | None = None
    title: str | None = None
    description: str | None = None
    greeting: str | None = None
    definition: str | None = None
    visibility: str | None = None
    copyable: bool | None = None
    avatar_file_name: str | None = None
    user__id: int | str | None = None
    creator_id: int | str | None = None
    user__username: str | None = None
    participant__user__username: str | None = None
    participant__num_interactions: _Number = None
    num_interactions: _Number = None
    upvotes: _Number = None
    num_likes: _Number = None
    identifier: str | None = None
    img_gen_enabled: bool | None = None
    base_img_prompt: str | None = None
    img_prompt_regex: str | None = None
    strip_img_prompt_from_msg: bool | None = None
    default_voice_id: str | None = None
    voice_id: str | None = None
    starter_prompts: dict[str, Any] | list[Any] | None = None
    comments_enabled: bool | None = None
    allow_dynamic_greeting: bool | None = None
    dynamic_greeting_enabled: bool | None = None
    has_definition: bool | None = None
    short_hash: str | None = None
    updated: str | None = None
    safety: str | None = None
    search_score: float | None = None
    score: float | None = None


class _CharacterBody(msgspec.Struct, kw_only=True):
    character: _Wire | None = None


class _ListBody(msgspec.Struct, kw_only=True):
    characters: list[_Wire] | None = None
    trending_characters: list[_Wire] | None = None


class _VoteBody(msgspec.Struct, kw_only=True):
    vote: bool | None = None


class _CategoriesBody(msgspec.Struct, kw_only=True):
    characters_by_curated_category: dict[str, list[_Wire] | None] | None = None


class _TrpcErrorData(msgspec.Struct, kw_only=True):
    httpStatus: int | None = None
    code: str | None = None


class _TrpcErrorJson(msgspec.Struct, kw_only=True):
    message: str = ""
    data: _TrpcErrorData | None = None


class _TrpcError(msgspec.Struct, kw_only=True):
    json: _TrpcErrorJson


class _TrpcData(msgspec.Struct, kw_only=True):
    json: _ListBody


class _TrpcResult(msgspec.Struct, kw_only=True):
    data: _TrpcData


class _TrpcEntry(msgspec.Struct, kw_only=True):
    result: _TrpcResult | None = None
    error: _TrpcError | None = None


# --- conversions -------------------------------------------------------------------------------


def _count(value: _Number) -> int | None:
    """Counts arrive as ints, floats (legacy search) or digit strings; None stays None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return round(float(value))
    except (TypeError, ValueError):
        return None


def _id_text(value: int | str | None) -> str | None:
    return None if value is None else str(value)


def _identity(w: _Wire, what: str) -> str:
    character_id = w.external_id or w.character_id
    if not character_id:
        raise ProtocolError(f"unexpected {what} response: a character without external_id")
    return character_id


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _phrases(value: dict[str, Any] | list[Any] | None) -> list[str]:
    phrases = value.get("phrases") if isinstance(value, dict) else value
    if not isinstance(phrases, list):
        return []
    return [p for p in phrases if isinstance(p, str)]


def _upvotes(w: _Wire) -> int | None:
    upvotes = _count(w.upvotes)
    return upvotes if upvotes is not None else _count(w.num_likes)


def _interactions(w: _Wire) -> int | None:
    count = _count(w.participant__num_interactions)
    return count if count is not None else _count(w.num_interactions)


def _short(w: _Wire, what: str) -> CharacterShort:
    return CharacterShort(
        id=_identity(w, what),
        name=w.participant__name or w.name or "",
        title=w.title or "",
        description=w.description or "",
        greeting=w.greeting or "",
        avatar_file_name=w.avatar_file_name or None,
        visibility=w.visibility,
        copyable=w.copyable,
        creator_id=_id_text(w.user__id if w.user__id is not None else w.creator_id),
        creator_username=w.user__username,
        num_interactions=_interactions(w),
        upvotes=_upvotes(w),
        default_voice_id=w.default_voice_id or None,
        search_score=w.search_score if w.search_score is not None else w.score,
    )


def _full(w: _Wire, what: str) -> Character:
    return Character(
        id=_identity(w, what),
        name=w.participant__name or w.name or "",
        title=w.title or "",
        description=w.description or "",
        greeting=w.greeting or "",
        definition=w.definition,
        visibility=w.visibility or "PUBLIC",
        copyable=bool(w.copyable),
        avatar_file_name=w.avatar_file_name or None,
        creator_id=_id_text(w.creator_id if w.creator_id is not None else w.user__id),
        creator_username=w.user__username,
        participant_username=w.participant__user__username,
        num_interactions=_interactions(w),
        upvotes=_upvotes(w),
        identifier=w.identifier,
        img_gen_enabled=bool(w.img_gen_enabled),
        base_img_prompt=w.base_img_prompt or "",
        img_prompt_regex=w.img_prompt_regex or "",
        strip_img_prompt_from_msg=bool(w.strip_img_prompt_from_msg),
        default_voice_id=w.default_voice_id or None,
        voice_id=w.voice_id or None,
        starter_prompts=_phrases(w.starter_prompts),
        comments_enabled=w.comments_enabled is not False,
        allow_dynamic_greeting=bool(w.allow_dynamic_greeting),
        dynamic_greeting_enabled=bool(w.dynamic_greeting_enabled),
        has_definition=w.has_definition,
        short_hash=w.short_hash,
        updated=_timestamp(w.updated),
        safety=w.safety,
    )


# --- parsers -----------------------------------------------------------------------------------


def parse_character(body: bytes, what: str = "character info") -> Character:
    """``{"character": {...}}`` (neo) or ``{"character", "status": "OK"}`` (plus).

    A ``NOT_OK`` status (HTTP 200) or an empty character is CharacterNotFound.
    """
    check_refusal(body, what, not_found=CharacterNotFound)
    parsed = decode(body, _CharacterBody, what)
    if parsed.character is None or not (
        parsed.character.external_id or parsed.character.character_id
    ):
        raise CharacterNotFound("the server returned no character")
    return _full(parsed.character, what)


def parse_saved(body: bytes, what: str) -> Character:
    """Create/update answers: ``{"status": "OK", "character"}`` or a refusal."""
    check_refusal(body, what, not_found=CharacterNotFound)
    parsed = decode(body, _CharacterBody, what)
    if parsed.character is None:
        raise ProtocolError(f"unexpected {what} response: no character")
    return _full(parsed.character, what)


def parse_character_list(body: bytes, what: str) -> list[CharacterShort]:
    """``{"characters": [...]}`` (or ``{"trending_characters": [...]}``); null means none."""
    parsed = decode(body, _ListBody, what)
    items = parsed.characters if parsed.characters is not None else parsed.trending_characters
    return [_short(w, what) for w in items or ()]


def parse_categories(body: bytes) -> dict[str, list[CharacterShort]]:
    """``{"characters_by_curated_category": {name: [...]}}``, in the server's order."""
    what = "curated categories"
    parsed = decode(body, _CategoriesBody, what)
    groups = parsed.characters_by_curated_category or {}
    return {name: [_short(w, what) for w in items or ()] for name, items in groups.items()}


def _trpc_error(error: _TrpcError) -> CaiError:
    data = error.json.data or _TrpcErrorData()
    status = data.httpStatus
    message = error.json.message or data.code or "tRPC error"
    if status == 401:
        return AuthError(f"the token was refused: {message}")
    if status == 429:
        return RateLimited(message)
    if status == 404:
        return NotFound(message)
    return ServerError(f"tRPC error: {message}", status=status, body=message)


def parse_trpc_search(body: bytes) -> list[CharacterShort]:
    """A one-call tRPC batch answer: ``[{"result": {"data": {"json": {"characters"}}}}]``."""
    what = "search.search"
    entries = decode(body, list[_TrpcEntry], what)
    if not entries:
        raise ProtocolError(f"unexpected {what} response: empty batch")
    entry = entries[0]
    if entry.error is not None:
        raise _trpc_error(entry.error)
    if entry.result is None:
        raise ProtocolError(f"unexpected {what} response: neither result nor error")
    return [_short(w, what) for w in entry.result.data.json.characters or ()]


def parse_vote(body: bytes) -> bool | None:
    """``{"vote": true|false|null}``."""
    return decode(body, _VoteBody, "voted").vote
