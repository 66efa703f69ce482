"""Character search (all three generations) and discovery lists (docs/protocol.md §6.5, §6.6).

Only public, live characters are ever listed or found (never unlisted, private or archived
ones), except in the caller's own lists (``?scope=user``, liked, recent). Relevance is
deterministic: :func:`score` weighs matches in the name over the title over the description;
ties go to the more-used character, then to the name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from .._http import DJANGO_PREFIXES, ApiError, authenticate, json_response, neo_error
from ..chat.store import CHAT
from ..store import User
from ..trpc import TrpcCall, TrpcError, add_procedure
from ..v1.store import V1
from .cast import SeedCharacter
from .catalog import CURATED_CATEGORIES, NOT_FOUND
from .store import CHARACTERS, CharacterStore, epoch_seconds

__all__ = ["AVAILABLE_MODELS", "TAGS", "add_routes", "rank", "score"]


# Model types of docs/protocol.md §2.3 ([M] ones); the default matches the chat socket's.
AVAILABLE_MODELS = (
    "MODEL_TYPE_FAST",
    "MODEL_TYPE_BALANCED",
    "MODEL_TYPE_SMART",
    "MODEL_TYPE_FAMILY_FRIENDLY",
)
DEFAULT_MODEL = "MODEL_TYPE_SMART"

# Character tags and their ids as N2 lists them for ``tagId`` (§6.6.3; id 5 is unknown).
_TAG_NAMES = (
    "Anime",
    "Artist",
    "Boss",
    "Bully",
    "Coach",
    None,
    "Designer",
    "Family",
    "Famous",
    "Gaming",
    "Hero",
    "Kpop",
    "Lifestyle",
    "Mafia",
    "Maid",
    "Music",
    "Police",
    "Professor",
    "RPG",
    "Romance",
    "Soldier",
    "Student",
    "Teacher",
    "Vampire",
)
TAGS: dict[str, str] = {str(i): name for i, name in enumerate(_TAG_NAMES) if name is not None}


def _catalog(request: web.Request) -> CharacterStore:
    return request.app[CHARACTERS]


# ---- relevance ---------------------------------------------------------------------------------


def score(character: SeedCharacter, query: str) -> float:
    """How well ``character`` matches ``query`` (0 = not at all); case-insensitive."""
    q = query.strip().casefold()
    if not q:
        return 0.0
    name = character.name.casefold()
    if name == q:
        total = 10.0
    elif name.startswith(q):
        total = 6.0
    elif q in name:
        total = 4.0
    else:
        total = 0.0
    if q in character.title.casefold():
        total += 2.0
    if q in character.description.casefold():
        total += 1.0
    words = q.split()
    if len(words) > 1:  # Partial credit for each real word of a longer query in the name.
        total += 0.5 * sum(len(word) >= 3 and word in name for word in words)
    return total


def rank(characters: Iterable[SeedCharacter], query: str) -> list[tuple[SeedCharacter, float]]:
    """The matching characters with their scores, best first."""
    scored = [(c, score(c, query)) for c in characters]
    hits = [(c, s) for c, s in scored if s > 0]
    hits.sort(key=lambda cs: (-cs[1], -cs[0].num_interactions, cs[0].name))
    return hits


def _query(request: web.Request, name: str = "query") -> str:
    return request.query.get(name, "")


# ---- search: plus (gone live since ~2025-04) -----------------------------------------------------


async def plus_search(request: web.Request) -> web.Response:
    """``GET /chat/characters/search/?query=`` (§6.6.1): float interaction counts."""
    authenticate(request)
    catalog = _catalog(request)
    characters = [
        {
            "document_id": c.id,
            "external_id": c.id,
            "title": c.title,
            "greeting": c.greeting,
            "avatar_file_name": c.avatar_file_name,
            "visibility": c.visibility,
            "participant__name": c.name,
            "participant__num_interactions": float(c.num_interactions),
            "user__username": catalog.creator_username(c),
            "priority": 0.0,
            "search_score": s,
            "upvotes": catalog.likes(c),
        }
        for c, s in rank(catalog.listed(), _query(request))
    ]
    return json_response({"characters": characters, "request_id": str(uuid.uuid4())})


async def plus_suggest(request: web.Request) -> web.Response:
    """``GET /chat/characters/suggest/?query=`` (§6.6.1, CN)."""
    authenticate(request)
    catalog = _catalog(request)
    characters = [
        {
            "document_id": c.id,
            "external_id": c.id,
            "name": c.name,
            "avatar_file_name": c.avatar_file_name,
            "num_interactions": c.num_interactions,
            "title": c.title,
            "greeting": c.greeting,
        }
        for c, _ in rank(catalog.listed(), _query(request))
    ]
    return json_response({"characters": characters})


# ---- search: tRPC on character.ai (2025-02 …) --------------------------------------------------


def _search_query(call: TrpcCall) -> str:
    value = call.input.get("searchQuery") if isinstance(call.input, dict) else None
    if not isinstance(value, str):
        raise TrpcError("searchQuery must be a string", 400)
    # PC URL-quotes the query inside the JSON; plain text passes through unchanged.
    return unquote(value)


def _catalog_of_call(call: TrpcCall) -> CharacterStore:
    return call.request.app[CHARACTERS]


async def trpc_search(call: TrpcCall) -> Any:
    """``search.search`` (§6.6.2): no token needed; characters carry ``num_likes``."""
    catalog = _catalog_of_call(call)
    characters = []
    for c, s in rank(catalog.listed(), _search_query(call)):
        entry = catalog.short(c, neo=True)
        entry.update(document_id=c.id, search_score=s)
        characters.append(entry)
    return {"characters": characters}


def _creators(catalog: CharacterStore) -> dict[str, tuple[str, list[SeedCharacter]]]:
    creators: dict[str, tuple[str, list[SeedCharacter]]] = {}
    for c in catalog.listed():
        username = catalog.creator_username(c)
        creators.setdefault(c.creator_id, (username, []))[1].append(c)
    return creators


def _matching_creators(catalog: CharacterStore, raw_query: str) -> list[dict[str, Any]]:
    """Creators of public characters whose username contains the query, exact match first,
    then by interactions."""
    query = raw_query.strip().casefold()
    found: list[tuple[bool, int, dict[str, Any]]] = []
    for creator_id, (username, characters) in _creators(catalog).items():
        if not query or query not in username.casefold():
            continue
        interactions = sum(c.num_interactions for c in characters)
        entry = {
            "username": username,
            "user_id": creator_id,
            "avatar_file_name": None,
            "num_characters": len(characters),
            "num_interactions": interactions,
        }
        found.append((username.casefold() != query, -interactions, entry))
    found.sort(key=lambda f: (f[0], f[1]))
    return [entry for _, _, entry in found]


async def trpc_search_creators(call: TrpcCall) -> Any:
    """``search.searchCreators``: creators of public characters whose username matches."""
    return {"creators": _matching_creators(_catalog_of_call(call), _search_query(call))}


async def neo_search_creators(request: web.Request) -> web.Response:
    """``GET /search/v1/creator?query=`` (§4.3, CN): the same creators as the tRPC search."""
    query = request.query.get("query", "")
    return json_response({"creators": _matching_creators(_catalog(request), query)})


# ---- search: neo (2025-06 …) -------------------------------------------------------------------


async def neo_search(request: web.Request) -> web.Response:
    """``GET /search/v1/character?query=`` (§6.6.3). ``tagId``, ``sortedBy`` and ``cursor`` are
    accepted; every match comes in one page."""
    authenticate(request)
    catalog = _catalog(request)
    characters = []
    for c, s in rank(catalog.listed(), _query(request)):
        entry = catalog.short(c, neo=True)
        entry.update(
            document_id=c.id,
            search_score=s,
            priority=0,
            tag_id="",
            tag="",
            created_at=epoch_seconds(c.created),
            updated_at=epoch_seconds(c.updated),
            _distance=None,
        )
        characters.append(entry)
    return json_response(
        {"characters": characters, "safety_filtered": False, "tags": [], "uuid": str(uuid.uuid4())}
    )


def _popular(catalog: CharacterStore) -> list[str]:
    ordered = sorted(catalog.listed(), key=lambda c: (-c.num_interactions, c.name))
    return [c.name.casefold() for c in ordered]


async def popular_queries(request: web.Request) -> web.Response:
    authenticate(request)
    return json_response({"popular_search_queries": _popular(_catalog(request))})


async def trending_queries(request: web.Request) -> web.Response:
    authenticate(request)
    catalog = _catalog(request)
    ordered = sorted(catalog.listed(), key=lambda c: (-catalog.likes(c), c.name))
    return json_response({"trending_search_queries": [c.name.casefold() for c in ordered]})


async def autocomplete(request: web.Request) -> web.Response:
    """Names of public characters with a word starting with ``query_prefix``."""
    authenticate(request)
    prefix = _query(request, "query_prefix").strip().casefold()
    names = []
    if prefix:
        for name in _popular(_catalog(request)):
            if name.startswith(prefix) or any(w.startswith(prefix) for w in name.split()):
                names.append(name)
    return json_response({"search_autocomplete": names})


# ---- discovery: neo ----------------------------------------------------------------------------


def _by_use(characters: Iterable[SeedCharacter]) -> list[SeedCharacter]:
    return sorted(characters, key=lambda c: (-c.num_interactions, c.name))


async def recommended_for_user(request: web.Request) -> web.Response:
    """``/recommendation/v1/user``: public characters by others, most used first."""
    user = authenticate(request)
    catalog = _catalog(request)
    characters = _by_use(c for c in catalog.listed() if c.creator_id != user.id)
    return json_response({"characters": [catalog.short(c, neo=True) for c in characters]})


async def recommended_featured(request: web.Request) -> web.Response:
    authenticate(request)
    catalog = _catalog(request)
    return json_response({"characters": [catalog.short(c, neo=True) for c in _featured(catalog)]})


def _featured(catalog: CharacterStore) -> list[SeedCharacter]:
    return [c for c in catalog.listed() if c.featured]


async def similar(request: web.Request) -> web.Response:
    """``/recommendation/v1/character/{id}``: others sharing a category first, then the rest.
    An unknown (or invisible) character is a 404 neo_error."""
    user = authenticate(request)
    catalog = _catalog(request)
    character = catalog.visible(user, request.match_info["character_id"])
    if character is None:
        raise neo_error(404, NOT_FOUND)
    shared = set(character.categories)
    others = [c for c in catalog.listed() if c.id != character.id]
    ordered = sorted(
        others,
        key=lambda c: (-len(shared.intersection(c.categories)), -c.num_interactions, c.name),
    )
    return json_response({"characters": [catalog.short(c, neo=True) for c in ordered]})


def _curated(catalog: CharacterStore) -> dict[str, list[SeedCharacter]]:
    groups: dict[str, list[SeedCharacter]] = {}
    for name in CURATED_CATEGORIES:
        members = [c for c in catalog.listed() if name in c.categories]
        if members:
            groups[name] = _by_use(members)
    return groups


async def recommended_categories(request: web.Request) -> web.Response:
    """``/recommendation/v1/category`` → ``{"categories": [names]}`` (N2 reads strings)."""
    authenticate(request)
    return json_response({"categories": list(_curated(_catalog(request)))})


async def available_models(request: web.Request) -> web.Response:
    authenticate(request)
    return json_response(
        {"available_models": list(AVAILABLE_MODELS), "default_model_type": DEFAULT_MODEL}
    )


async def tag_options(request: web.Request) -> web.Response:
    authenticate(request)
    tags = [{"id": tag_id, "name": name} for tag_id, name in TAGS.items()]
    return json_response({"tags": tags})


# ---- discovery: plus ---------------------------------------------------------------------------


async def curated_categories(request: web.Request) -> web.Response:
    """``/chat/curated_categories/characters/``: categories with at least one character."""
    authenticate(request)
    catalog = _catalog(request)
    groups = {
        name: [catalog.short(c) for c in members] for name, members in _curated(catalog).items()
    }
    return json_response({"characters_by_curated_category": groups})


async def featured_v2(request: web.Request) -> web.Response:
    authenticate(request)
    catalog = _catalog(request)
    return json_response({"characters": [catalog.short(c) for c in _featured(catalog)]})


async def trending(request: web.Request) -> web.Response:
    """``/chat/characters/trending/``: public characters by likes."""
    authenticate(request)
    catalog = _catalog(request)
    ordered = sorted(catalog.listed(), key=lambda c: (-catalog.likes(c), c.name))
    return json_response({"trending_characters": [catalog.short(c) for c in ordered]})


async def public_characters(request: web.Request) -> web.Response:
    authenticate(request)
    catalog = _catalog(request)
    return json_response({"characters": [catalog.short(c) for c in _by_use(catalog.listed())]})


async def own_characters(request: web.Request) -> web.Response:
    """``/chat/characters/?scope=user``: the caller's characters of every visibility."""
    user = authenticate(request)
    scope = request.query.get("scope", "user")
    if scope != "user":
        raise ApiError(400, {"detail": f"Unsupported scope {scope!r}; use scope=user"})
    catalog = _catalog(request)
    return json_response({"characters": [catalog.short(c) for c in catalog.owned(user)]})


async def upvoted(request: web.Request) -> web.Response:
    """``/chat/user/characters/upvoted/``: what the caller liked, latest first."""
    user = authenticate(request)
    catalog = _catalog(request)
    return json_response({"characters": [catalog.short(c) for c in catalog.liked(user)]})


def _recent(request: web.Request, user: User) -> list[dict[str, Any]]:
    """Every character the caller has a chat with: Chat V2 chats of every state (archived
    ones too) and legacy V1 histories, by latest activity first (docs/protocol.md §6.5)."""
    catalog = _catalog(request)
    last: dict[str, str] = {}
    for rec in request.app[CHAT].chats_of(user):
        when = rec.turns[-1].last_update_time if rec.turns else rec.chat.create_time
        last[rec.chat.character_id] = max(when, last.get(rec.chat.character_id, ""))
    for history in request.app[V1].histories.values():
        if history.owner_id == user.id:
            seen = last.get(history.character_id, "")
            last[history.character_id] = max(history.last_interaction, seen)
    entries = []
    for character_id, when in sorted(last.items(), key=lambda item: item[1], reverse=True):
        character = catalog.visible(user, character_id)
        if character is None:
            continue
        entry = catalog.short(character)
        entry["max_last_interaction"] = when
        entries.append(entry)
    return entries


async def recent_characters(request: web.Request) -> web.Response:
    """``/chat/characters/recent/``: characters of the caller's chats, latest first."""
    user = authenticate(request)
    return json_response({"characters": _recent(request, user)})


def add_routes(app: web.Application) -> None:
    """Add the search and discovery routes and the two tRPC search procedures."""
    add_procedure(app, "search.search", trpc_search)
    add_procedure(app, "search.searchCreators", trpc_search_creators)
    get = app.router.add_get
    get("/neo/search/v1/character", neo_search)
    get("/neo/search/v1/creator", neo_search_creators)
    get("/neo/search/v1/query/popular", popular_queries)
    get("/neo/search/v1/query/trending", trending_queries)
    get("/neo/search/v1/query/autocomplete", autocomplete)
    get("/neo/recommendation/v1/user", recommended_for_user)
    get("/neo/recommendation/v1/featured", recommended_featured)
    get("/neo/recommendation/v1/character/{character_id}", similar)
    get("/neo/recommendation/v1/category", recommended_categories)
    get("/neo/get-available-models", available_models)
    get("/neo/character/v1/character_tag_options", tag_options)
    for prefix in DJANGO_PREFIXES:
        get(f"{prefix}/chat/characters/search/", plus_search)
        get(f"{prefix}/chat/characters/suggest/", plus_suggest)
        get(f"{prefix}/chat/curated_categories/characters/", curated_categories)
        get(f"{prefix}/chat/characters/featured_v2/", featured_v2)
        get(f"{prefix}/chat/characters/trending/", trending)
        get(f"{prefix}/chat/characters/public/", public_characters)
        get(f"{prefix}/chat/characters/", own_characters)
        get(f"{prefix}/chat/user/characters/upvoted/", upvoted)
        get(f"{prefix}/chat/characters/recent/", recent_characters)
