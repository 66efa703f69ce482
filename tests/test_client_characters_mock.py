"""Tier 2: ``client.characters`` over MockTransport.

A handler plays neo, plus and the web host with literal bodies (docs/protocol.md §6): the
exact requests, the parsing of each generation's spelling, the route fallbacks of ``info``
and ``search``, and in-band refusals. HTTP error shapes shared by every call are in
tests/test_client_errors_mock.py.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import pytest

from caiclient import (
    AsyncClient,
    AuthError,
    BlockedError,
    CharacterNotFound,
    ProtocolError,
    RateLimited,
    ServerError,
    ValidationError,
)
from caiclient.models import Character, CharacterShort
from caiclient.protocol.http import Response
from caiclient.transports import MockTransport
from mock_service import (
    CHARACTER_2,
    CHARACTER_ID,
    NEO,
    PLUS,
    RETRIES,
    WEB,
    Service,
    cloudflare,
    json_body,
    make_client,
    neo_error_body,
    not_ok,
    rate_limited,
    text_body,
    unauthorized,
    unavailable,
    urls,
    wire,
)

INFO = f"{NEO}/character/v1/get_character_info"
INFO_LEGACY = f"{PLUS}/chat/character/info/"
SEARCH = f"{NEO}/search/v1/character"
SEARCH_TRPC = f"{WEB}/api/trpc/search.search"
SEARCH_LEGACY = f"{PLUS}/chat/characters/search/"
CREATE = f"{PLUS}/chat/character/create/"
UPDATE = f"{PLUS}/chat/character/update/"
VOTE = f"{PLUS}/chat/character/vote/"

NEO_CHARACTER = {
    "external_id": CHARACTER_ID,
    "title": "A patient librarian",
    "name": "Sage",
    "visibility": "PUBLIC",
    "copyable": False,
    "greeting": "Welcome to the stacks.",
    "description": "Knows where every book is.",
    "identifier": "id:0b0e8f5a-1111-4222-8333-944445555666",
    "avatar_file_name": "uploaded/sage.webp",
    "songs": [],
    "img_gen_enabled": False,
    "base_img_prompt": "",
    "img_prompt_regex": "",
    "strip_img_prompt_from_msg": False,
    "default_voice_id": "",
    "starter_prompts": {"phrases": ["Recommend a book", 7, "Where is poetry?"]},
    "comments_enabled": False,
    "user__username": "caiclient_cast",
    "participant__name": "Sage",
    "participant__num_interactions": 120000,
    "participant__user__username": "internal_id:123456:0b0e8f5a",
    "voice_id": "",
    "usage": "default",
    "upvotes": 321,
    "definition": None,
    "dynamic_greeting_enabled": True,
    "allow_dynamic_greeting": True,
    "short_hash": "abcDEF",
    "updated": "2025-03-04T05:06:07Z",
    "has_definition": True,
    "safety": "SAFE",
    "creator_id": "100000001",
}
"""neo ``get_character_info`` → ``{"character": NEO_CHARACTER}`` (§6.1, §6.2)."""

EXPECTED = Character(
    id=CHARACTER_ID,
    name="Sage",
    title="A patient librarian",
    description="Knows where every book is.",
    greeting="Welcome to the stacks.",
    definition=None,
    visibility="PUBLIC",
    copyable=False,
    avatar_file_name="uploaded/sage.webp",
    creator_id="100000001",
    creator_username="caiclient_cast",
    participant_username="internal_id:123456:0b0e8f5a",
    num_interactions=120000,
    upvotes=321,
    identifier="id:0b0e8f5a-1111-4222-8333-944445555666",
    img_gen_enabled=False,
    base_img_prompt="",
    img_prompt_regex="",
    strip_img_prompt_from_msg=False,
    default_voice_id=None,
    voice_id=None,
    starter_prompts=["Recommend a book", "Where is poetry?"],
    comments_enabled=False,
    allow_dynamic_greeting=True,
    dynamic_greeting_enabled=True,
    has_definition=True,
    short_hash="abcDEF",
    updated=datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc),
    safety="SAFE",
)

SHORT = {
    "external_id": CHARACTER_2,
    "title": "Counts for you",
    "participant__name": "Engine",
    "greeting": "Ready.",
    "avatar_file_name": "engine.webp",
    "visibility": "PUBLIC",
    "copyable": True,
    "user__id": 987,
    "user__username": "babbage",
    "img_gen_enabled": False,
    "participant__num_interactions": 77,
    "upvotes": 5,
}
SHORT_EXPECTED = CharacterShort(
    id=CHARACTER_2,
    name="Engine",
    title="Counts for you",
    greeting="Ready.",
    avatar_file_name="engine.webp",
    visibility="PUBLIC",
    copyable=True,
    creator_id="987",
    creator_username="babbage",
    num_interactions=77,
    upvotes=5,
)


def info_ok(character: dict[str, Any] = NEO_CHARACTER) -> Response:
    return json_body({"character": character})


# ---- info -------------------------------------------------------------------------------------


async def test_info_asks_neo_and_parses_the_full_character(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", INFO, info_ok())
    assert await api.characters.info(CHARACTER_ID) == EXPECTED
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params) == ("POST", INFO, None)
    assert sent.json == {"external_id": CHARACTER_ID, "lang": "en"}


@pytest.mark.parametrize(
    "ref", [CHARACTER_ID, CharacterShort(id=CHARACTER_ID), EXPECTED], ids=["id", "short", "full"]
)
async def test_info_takes_an_id_or_a_character(
    service: Service, api: AsyncClient, transport: MockTransport, ref: Any
) -> None:
    service.route("POST", INFO, info_ok())
    await api.characters.info(ref)
    assert wire(transport.sent)[0].json["external_id"] == CHARACTER_ID


@pytest.mark.parametrize(
    ("fields", "check"),
    [
        ({"name": "Plain", "participant__name": None}, lambda c: c.name == "Plain"),
        ({"creator_id": None, "user__id": 42}, lambda c: c.creator_id == "42"),
        ({"upvotes": None, "num_likes": "17"}, lambda c: c.upvotes == 17),
        (
            {"participant__num_interactions": None, "num_interactions": 3.6},
            lambda c: c.num_interactions == 4,
        ),
        ({"participant__num_interactions": "many"}, lambda c: c.num_interactions is None),
        ({"updated": "not a date"}, lambda c: c.updated is None),
        ({"starter_prompts": ["a", "b"]}, lambda c: c.starter_prompts == ["a", "b"]),
        ({"visibility": None}, lambda c: c.visibility == "PUBLIC"),
        ({"comments_enabled": None}, lambda c: c.comments_enabled is True),
        ({"definition": "{{char}} reads."}, lambda c: c.definition == "{{char}} reads."),
        ({"external_id": None, "character_id": CHARACTER_ID}, lambda c: c.id == CHARACTER_ID),
        ({"avatar_file_name": ""}, lambda c: c.avatar_file_name is None and not c.avatar_url),
    ],
)
async def test_info_normalises_the_spellings_of_each_generation(
    service: Service, api: AsyncClient, fields: dict[str, Any], check: Any
) -> None:
    service.route("POST", INFO, info_ok({**NEO_CHARACTER, **fields}))
    assert check(await api.characters.info(CHARACTER_ID))


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (not_ok("Character not found"), CharacterNotFound),
        (not_ok("do not have permission to view this Character"), CharacterNotFound),
        (not_ok("no character with that id"), CharacterNotFound),
        (json_body({"character": None}), CharacterNotFound),
        (json_body({"character": {}}), CharacterNotFound),
        (json_body({"status": "NOT_OK", "error": "Too many requests"}), RateLimited),
        (not_ok("database is locked"), ServerError),
        (json_body(neo_error_body("Character not found", 404)), CharacterNotFound),
    ],
)
async def test_an_answer_of_neo_is_final(
    service: Service,
    api: AsyncClient,
    transport: MockTransport,
    answer: Response,
    error: type[Exception],
) -> None:
    # HTTP 200 refusals are answers: the legacy route is not asked.
    service.route("POST", INFO, answer)
    with pytest.raises(error):
        await api.characters.info(CHARACTER_ID)
    assert urls(transport.sent) == [f"POST {INFO}"]


@pytest.mark.parametrize(
    ("failure", "neo_requests"),
    [
        (json_body(neo_error_body("Not found", 404), 404), 1),
        (json_body({"detail": "boom"}, 500), 1),
        (unavailable(503), 1 + RETRIES),  # idempotent: retried first
        (unavailable(502), 1 + RETRIES),
        (text_body("<html>oops</html>", 200, "text/html"), 1),
        (json_body({"character": "Sage"}), 1),
        (json_body({"character": {"external_id": 5}}), 1),
    ],
)
async def test_info_falls_back_to_plus_when_neo_is_gone_broken_or_unreadable(
    service: Service,
    api: AsyncClient,
    transport: MockTransport,
    failure: Response,
    neo_requests: int,
) -> None:
    service.route("POST", INFO, failure)
    legacy = {**NEO_CHARACTER, "name": "Sage (plus)"}
    service.route("POST", INFO_LEGACY, json_body({"character": legacy, "status": "OK"}))
    character = await api.characters.info(CHARACTER_ID)
    assert character.name == "Sage"  # participant__name wins over name
    assert character.id == CHARACTER_ID
    assert urls(transport.sent) == [f"POST {INFO}"] * neo_requests + [f"POST {INFO_LEGACY}"]
    assert wire(transport.sent)[-1].json == {"external_id": CHARACTER_ID}


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (unauthorized(), AuthError),
        (json_body({"detail": "Forbidden"}, 403), AuthError),
        (cloudflare(403), BlockedError),
        (rate_limited("120"), RateLimited),
    ],
)
async def test_info_does_not_fall_back_on_auth_blocks_or_rate_limits(
    service: Service,
    api: AsyncClient,
    transport: MockTransport,
    failure: Response,
    error: type[Exception],
) -> None:
    service.route("POST", INFO, failure)
    with pytest.raises(error):
        await api.characters.info(CHARACTER_ID)
    assert urls(transport.sent) == [f"POST {INFO}"]


@pytest.mark.parametrize(
    ("legacy", "error", "status"),
    [
        (json_body({"detail": "Not found."}, 404), CharacterNotFound, None),
        (json_body({"detail": "Server Error"}, 500), ServerError, 500),
        (not_ok("Character not found"), CharacterNotFound, None),
        (json_body({"character": None, "status": "OK"}), CharacterNotFound, None),
    ],
)
async def test_info_when_both_routes_fail_raises_the_legacy_error(
    service: Service, api: AsyncClient, legacy: Response, error: type[Exception], status: Any
) -> None:
    service.route("POST", INFO, json_body({"detail": "gone"}, 404))
    service.route("POST", INFO_LEGACY, legacy)
    with pytest.raises(error) as caught:
        await api.characters.info(CHARACTER_ID)
    assert getattr(caught.value, "status", None) == status


# ---- search ------------------------------------------------------------------------------------

NEO_HIT = {
    **SHORT,
    "name": "Engine",
    "document_id": CHARACTER_2,
    "score": 6.5,
    "priority": 0,
    "created_at": 1700000000,
}


def trpc_answer(characters: list[dict[str, Any]]) -> Response:
    return json_body([{"result": {"data": {"json": {"characters": characters}}}}])


def trpc_error(message: str, status: int, code: str = "ERROR") -> Response:
    data = {"code": code, "httpStatus": status, "path": "search.search"}
    return json_body([{"error": {"json": {"message": message, "code": -32600, "data": data}}}])


async def test_search_asks_neo_first(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", SEARCH, json_body({"characters": [NEO_HIT], "safety_filtered": False}))
    found = await api.characters.search("engine")
    assert found == [CharacterShort(**_short(6.5))]
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params, sent.body) == (
        "GET",
        SEARCH,
        {"query": "engine"},
        None,
    )


def _short(score: float | None) -> dict[str, Any]:
    fields = {f: getattr(SHORT_EXPECTED, f) for f in SHORT_EXPECTED.__struct_fields__}
    return {**fields, "search_score": score}


async def test_search_falls_back_to_trpc_with_the_query_as_typed(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", SEARCH, json_body({"detail": "Not found"}, 404))
    service.route("GET", SEARCH_TRPC, trpc_answer([{**SHORT, "num_likes": 9, "upvotes": None}]))
    found = await api.characters.search('Müller "quoted" & co')
    assert [(c.id, c.upvotes) for c in found] == [(CHARACTER_2, 9)]
    first, second = wire(transport.sent)
    assert (first.url, second.url) == (SEARCH, SEARCH_TRPC)
    assert second.params is not None and second.params["batch"] == "1"
    assert json.loads(second.params["input"]) == {
        "0": {"json": {"searchQuery": 'Müller "quoted" & co'}}
    }
    assert second.params["input"] == '{"0":{"json":{"searchQuery":"Müller \\"quoted\\" & co"}}}'


async def test_search_remembers_a_route_that_answered_404(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", SEARCH, json_body({"detail": "Not found"}, 404))
    service.route("GET", SEARCH_TRPC, trpc_answer([SHORT]))
    await api.characters.search("engine")
    transport.sent.clear()
    assert [c.id for c in await api.characters.search("engine")] == [CHARACTER_2]
    assert urls(transport.sent) == [f"GET {SEARCH_TRPC}"]


async def test_search_does_not_remember_a_route_that_failed_with_5xx(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", SEARCH, json_body({"detail": "boom"}, 500))
    service.route("GET", SEARCH_TRPC, trpc_answer([SHORT]))
    await api.characters.search("engine")
    await api.characters.search("engine")
    assert urls(transport.sent) == [f"GET {SEARCH}", f"GET {SEARCH_TRPC}"] * 2


async def test_search_legacy_route_reads_float_counts(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    legacy_hit = {
        "document_id": CHARACTER_2,
        "external_id": CHARACTER_2,
        "title": "Counts",
        "greeting": "Ready.",
        "avatar_file_name": "engine.webp",
        "visibility": "PUBLIC",
        "participant__name": "Engine",
        "participant__num_interactions": 1234.0,
        "user__username": "babbage",
        "priority": 0,
        "search_score": 4.0,
    }
    service.route("GET", SEARCH, json_body({"detail": "gone"}, 404))
    service.route("GET", SEARCH_TRPC, json_body({"detail": "boom"}, 500))
    service.route("GET", SEARCH_LEGACY, json_body({"characters": [legacy_hit], "request_id": "r"}))
    [hit] = await api.characters.search("engine")
    assert (hit.num_interactions, hit.search_score, hit.name) == (1234, 4.0, "Engine")
    assert isinstance(hit.num_interactions, int)
    assert wire(transport.sent)[-1].params == {"query": "engine"}


async def test_search_raises_the_last_failure_when_every_route_fails(
    service: Service, api: AsyncClient
) -> None:
    service.route("GET", SEARCH, json_body({"detail": "gone"}, 404))
    service.route("GET", SEARCH_TRPC, json_body({"detail": "boom"}, 500))
    service.route("GET", SEARCH_LEGACY, json_body({"detail": "down"}, 501))
    with pytest.raises(ServerError) as caught:
        await api.characters.search("engine")
    assert caught.value.status == 501


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (trpc_error("UNAUTHORIZED", 401), AuthError),
        (trpc_error("slow down", 429, "TOO_MANY_REQUESTS"), RateLimited),
    ],
)
async def test_search_trpc_errors_in_a_200_body_are_final(
    service: Service, api: AsyncClient, transport: MockTransport, answer: Response, error: type
) -> None:
    service.route("GET", SEARCH, json_body({"detail": "gone"}, 404))
    service.route("GET", SEARCH_TRPC, answer)
    with pytest.raises(error):
        await api.characters.search("engine")
    assert urls(transport.sent) == [f"GET {SEARCH}", f"GET {SEARCH_TRPC}"]


@pytest.mark.parametrize(
    "answer",
    [
        trpc_error("internal", 500),
        trpc_error("no such procedure", 404),
        json_body([]),
        json_body([{}]),
        json_body({"characters": []}),
    ],
)
async def test_search_trpc_failures_in_a_200_body_move_on(
    service: Service, api: AsyncClient, transport: MockTransport, answer: Response
) -> None:
    service.route("GET", SEARCH, json_body({"detail": "gone"}, 404))
    service.route("GET", SEARCH_TRPC, answer)
    service.route("GET", SEARCH_LEGACY, json_body({"characters": [SHORT]}))
    assert [c.id for c in await api.characters.search("engine")] == [CHARACTER_2]
    assert urls(transport.sent)[-1] == f"GET {SEARCH_LEGACY}"


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (unauthorized(), AuthError),
        (rate_limited("60"), RateLimited),
        (cloudflare(403), BlockedError),
        (cloudflare(503), BlockedError),
    ],
)
async def test_search_does_not_fall_back_on_auth_limits_or_blocks(
    service: Service,
    api: AsyncClient,
    transport: MockTransport,
    failure: Response,
    error: type[Exception],
) -> None:
    service.route("GET", SEARCH, failure)
    with pytest.raises(error):
        await api.characters.search("engine")
    assert urls(transport.sent) == [f"GET {SEARCH}"]


@pytest.mark.parametrize("body", [{}, {"characters": None}, {"characters": []}])
async def test_search_without_hits(service: Service, api: AsyncClient, body: Any) -> None:
    service.route("GET", SEARCH, json_body(body))
    assert await api.characters.search("zzz") == []


# ---- discovery lists ---------------------------------------------------------------------------

LISTS = [
    ("recommended", "GET", f"{NEO}/recommendation/v1/user", None),
    ("featured", "GET", f"{NEO}/recommendation/v1/featured", None),
    ("mine", "GET", f"{PLUS}/chat/characters/", {"scope": "user"}),
    ("liked", "GET", f"{PLUS}/chat/user/characters/upvoted/", None),
]


@pytest.mark.parametrize(("call", "method", "url", "params"), LISTS)
async def test_lists_send_their_request_and_parse_the_characters(
    service: Service,
    api: AsyncClient,
    transport: MockTransport,
    call: str,
    method: str,
    url: str,
    params: Any,
) -> None:
    service.route(method, url, json_body({"characters": [SHORT, {"external_id": "x1"}]}))
    found = await getattr(api.characters, call)()
    assert found == [SHORT_EXPECTED, CharacterShort(id="x1")]
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params, sent.body) == (method, url, params, None)


@pytest.mark.parametrize(("call", "method", "url", "params"), LISTS)
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, []),
        ({"characters": None}, []),
        ({"trending_characters": [SHORT]}, [SHORT_EXPECTED]),
    ],
)
async def test_lists_accept_missing_null_and_trending_keys(
    service: Service,
    api: AsyncClient,
    call: str,
    method: str,
    url: str,
    params: Any,
    body: Any,
    expected: Any,
) -> None:
    service.route(method, url, json_body(body))
    assert await getattr(api.characters, call)() == expected


@pytest.mark.parametrize(("call", "method", "url", "params"), LISTS)
@pytest.mark.parametrize(
    "body",
    [{"characters": [{"name": "no id"}]}, {"characters": "Sage"}, [SHORT], "not json"],
)
async def test_lists_in_another_shape_are_a_protocol_error(
    service: Service, api: AsyncClient, call: str, method: str, url: str, params: Any, body: Any
) -> None:
    answer = text_body(body) if body == "not json" else json_body(body)
    service.route(method, url, answer)
    with pytest.raises(ProtocolError):
        await getattr(api.characters, call)()


@pytest.mark.parametrize(
    ("call", "url"),
    [
        ("mine", f"{PLUS}/chat/characters/"),
        ("liked", f"{PLUS}/chat/user/characters/upvoted/"),
        ("categories", f"{PLUS}/chat/curated_categories/characters/"),
    ],
)
async def test_plus_lists_refused_in_band_are_an_error(
    service: Service, api: AsyncClient, call: str, url: str
) -> None:
    service.route("GET", url, not_ok("Something went wrong"))
    with pytest.raises(ServerError):
        await getattr(api.characters, call)()


async def test_similar(service: Service, api: AsyncClient, transport: MockTransport) -> None:
    url = f"{NEO}/recommendation/v1/character/{CHARACTER_ID}"
    service.route("GET", url, json_body({"characters": [SHORT]}))
    assert await api.characters.similar(EXPECTED) == [SHORT_EXPECTED]
    assert urls(transport.sent) == [f"GET {url}"]


async def test_similar_of_an_unknown_character(service: Service, api: AsyncClient) -> None:
    url = f"{NEO}/recommendation/v1/character/{CHARACTER_ID}"
    service.route("GET", url, json_body(neo_error_body("Character not found", 404), 404))
    with pytest.raises(CharacterNotFound, match="Character not found"):
        await api.characters.similar(CHARACTER_ID)


async def test_categories_keep_the_servers_order(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    url = f"{PLUS}/chat/curated_categories/characters/"
    groups = {"Helpers": [SHORT], "Games": None, "Anime": [], "Books": [{"external_id": "b1"}]}
    service.route("GET", url, json_body({"characters_by_curated_category": groups}))
    categories = await api.characters.categories()
    assert list(categories) == ["Helpers", "Games", "Anime", "Books"]
    assert categories == {
        "Helpers": [SHORT_EXPECTED],
        "Games": [],
        "Anime": [],
        "Books": [CharacterShort(id="b1")],
    }
    assert urls(transport.sent) == [f"GET {url}"]


@pytest.mark.parametrize("body", [{}, {"characters_by_curated_category": None}])
async def test_no_categories(service: Service, api: AsyncClient, body: Any) -> None:
    service.route("GET", f"{PLUS}/chat/curated_categories/characters/", json_body(body))
    assert await api.characters.categories() == {}


# ---- create / update / delete ------------------------------------------------------------------

SAVED = {**NEO_CHARACTER, "definition": "{{char}} beeps.", "visibility": "UNLISTED"}


async def test_create_sends_every_field(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", CREATE, json_body({"status": "OK", "character": SAVED}))
    made = await api.characters.create(
        "Robo",
        "Beep. Hello.",
        title="A brass robot",
        description="Beeps politely.",
        definition="{{char}} beeps.",
        visibility="unlisted",
        copyable=True,
        avatar_rel_path="uploaded/robo.webp",
        default_voice_id="v-1",
        categories=("Helpers", "Games"),
        img_gen_enabled=True,
        base_img_prompt="brass",
    )
    assert (made.definition, made.visibility) == ("{{char}} beeps.", "UNLISTED")
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url) == ("POST", CREATE)
    body = dict(sent.json)
    assert re.fullmatch(r"id:[0-9a-f-]{36}", body.pop("identifier"))
    assert body == {
        "name": "Robo",
        "greeting": "Beep. Hello.",
        "title": "A brass robot",
        "description": "Beeps politely.",
        "definition": "{{char}} beeps.",
        "visibility": "UNLISTED",
        "copyable": True,
        "avatar_rel_path": "uploaded/robo.webp",
        "default_voice_id": "v-1",
        "categories": ["Helpers", "Games"],
        "img_gen_enabled": True,
        "base_img_prompt": "brass",
        "strip_img_prompt_from_msg": False,
        "voice_id": "",
    }


async def test_create_defaults(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", CREATE, json_body({"status": "OK", "character": SAVED}))
    await api.characters.create("Robo", "Hello!")
    body = wire(transport.sent)[0].json
    assert (body["title"], body["description"], body["definition"]) == ("", "", "")
    assert (body["visibility"], body["copyable"], body["categories"]) == ("PRIVATE", False, [])


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (not_ok("Name must be at least 3 characters"), ServerError, "at least 3"),
        (json_body({"error": "Too many characters created today"}), RateLimited, "Too many"),
        (json_body({"status": "OK"}), ProtocolError, "no character"),
        (json_body({"status": "OK", "character": {"name": "no id"}}), ProtocolError, "external_id"),
    ],
)
async def test_create_refusals(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception], match: str
) -> None:
    service.route("POST", CREATE, answer)
    with pytest.raises(error, match=match):
        await api.characters.create("Robo", "Hello!")


async def test_create_is_not_sent_twice_after_a_gateway_failure(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", CREATE, unavailable(503))
    with pytest.raises(ServerError):
        await api.characters.create("Robo", "Hello!")
    assert len(transport.sent) == 1


async def test_create_is_sent_again_after_a_short_rate_limit(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    # A 429 had no effect, so even a POST is retried after the server's Retry-After.
    answer = json_body({"status": "OK", "character": SAVED})
    service.route("POST", CREATE, rate_limited("0"), answer)
    assert (await api.characters.create("Robo", "Hello!")).id == CHARACTER_ID
    assert urls(transport.sent) == [f"POST {CREATE}"] * 2
    assert wire(transport.sent)[0].json == wire(transport.sent)[1].json


FULL = Character(
    id=CHARACTER_ID,
    name="Robo",
    title="Brass",
    description="Beeps.",
    greeting="Hello!",
    definition="secret",
    visibility="PRIVATE",
    copyable=False,
    avatar_file_name="uploaded/robo.webp",
    identifier="id:1234",
    default_voice_id="v-1",
    base_img_prompt="brass",
)
FULL_BODY = {
    "name": "Robo",
    "title": "Brass",
    "greeting": "Hello!",
    "description": "Beeps.",
    "visibility": "PRIVATE",
    "copyable": False,
    "identifier": "id:1234",
    "avatar_rel_path": "uploaded/robo.webp",
    "default_voice_id": "v-1",
    "voice_id": "",
    "img_gen_enabled": False,
    "base_img_prompt": "brass",
    "strip_img_prompt_from_msg": False,
    "definition": "secret",
    "external_id": CHARACTER_ID,
}


async def test_update_of_a_full_character_sends_it_whole_in_one_request(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", UPDATE, json_body({"status": "OK", "character": SAVED}))
    saved = await api.characters.update(FULL, name="Robo Two", visibility="public")
    assert saved.id == CHARACTER_ID
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url) == ("POST", UPDATE)
    assert sent.json == {**FULL_BODY, "name": "Robo Two", "visibility": "PUBLIC", "archived": False}


async def test_update_never_blanks_a_definition_it_was_not_shown(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", UPDATE, json_body({"status": "OK", "character": SAVED}))
    hidden = Character(id=CHARACTER_ID, name="Robo", identifier="id:1", definition=None)
    await api.characters.update(hidden, title="New title")
    body = wire(transport.sent)[0].json
    assert "definition" not in body
    assert body["title"] == "New title"


@pytest.mark.parametrize("ref", [CHARACTER_ID, CharacterShort(id=CHARACTER_ID)])
async def test_update_of_an_id_reads_the_character_first(
    service: Service, api: AsyncClient, transport: MockTransport, ref: Any
) -> None:
    service.route("POST", INFO, info_ok({**NEO_CHARACTER, "definition": "secret"}))
    service.route("POST", UPDATE, json_body({"status": "OK", "character": SAVED}))
    await api.characters.update(ref, greeting="Good day!")
    assert urls(transport.sent) == [f"POST {INFO}", f"POST {UPDATE}"]
    body = wire(transport.sent)[1].json
    assert (body["greeting"], body["definition"], body["name"]) == ("Good day!", "secret", "Sage")
    assert body["identifier"] == NEO_CHARACTER["identifier"]


async def test_update_without_an_identifier_makes_one(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", UPDATE, json_body({"status": "OK", "character": SAVED}))
    await api.characters.update(Character(id=CHARACTER_ID, name="Robo"), copyable=True)
    assert re.fullmatch(r"id:[0-9a-f-]{36}", wire(transport.sent)[0].json["identifier"])


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (not_ok("You do not have permission to edit this character"), ServerError),
        (not_ok("Character does not exist"), CharacterNotFound),
    ],
)
async def test_update_refusals(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("POST", UPDATE, answer)
    with pytest.raises(error):
        await api.characters.update(FULL, name="Hacked")


async def test_update_of_an_unknown_character_stops_at_the_read(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", INFO, not_ok("Character not found"))
    with pytest.raises(CharacterNotFound):
        await api.characters.update(CHARACTER_ID, name="Nobody")
    assert urls(transport.sent) == [f"POST {INFO}"]


async def test_delete_archives_the_whole_character(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", UPDATE, json_body({"status": "OK", "character": SAVED}))
    assert await api.characters.delete(FULL) is None
    [sent] = wire(transport.sent)
    assert sent.json == {**FULL_BODY, "archived": True}


async def test_delete_by_id_reads_first(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", INFO, info_ok())
    service.route("POST", UPDATE, json_body({"status": "OK", "character": SAVED}))
    await api.characters.delete(CHARACTER_ID)
    assert urls(transport.sent) == [f"POST {INFO}", f"POST {UPDATE}"]
    assert wire(transport.sent)[1].json["archived"] is True


# ---- votes and reports -------------------------------------------------------------------------


@pytest.mark.parametrize("vote", [True, False, None])
async def test_vote(
    service: Service, api: AsyncClient, transport: MockTransport, vote: bool | None
) -> None:
    service.route("POST", VOTE, json_body({"status": "OK"}))
    assert await api.characters.vote(CHARACTER_ID, vote) is None
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url) == ("POST", VOTE)
    assert sent.json == {"external_id": CHARACTER_ID, "vote": vote}


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (not_ok("Character not found"), CharacterNotFound),
        (json_body({"detail": "Not found."}, 404), CharacterNotFound),
        (not_ok("Voting is closed"), ServerError),
        (json_body([True]), ProtocolError),
    ],
)
async def test_vote_refusals(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("POST", VOTE, answer)
    with pytest.raises(error):
        await api.characters.vote(CHARACTER_ID, True)


async def test_a_vote_is_safe_to_send_again(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", VOTE, unavailable(503), json_body({"status": "OK"}))
    await api.characters.vote(CHARACTER_ID, True)
    assert urls(transport.sent) == [f"POST {VOTE}"] * 2


@pytest.mark.parametrize("vote", [True, False, None])
async def test_my_vote(
    service: Service, api: AsyncClient, transport: MockTransport, vote: bool | None
) -> None:
    url = f"{PLUS}/chat/character/{CHARACTER_ID}/voted/"
    service.route("GET", url, json_body({"vote": vote}))
    assert await api.characters.my_vote(CHARACTER_ID) is vote
    assert urls(transport.sent) == [f"GET {url}"]


async def test_my_vote_of_an_unknown_character(service: Service, api: AsyncClient) -> None:
    url = f"{PLUS}/chat/character/{CHARACTER_ID}/voted/"
    service.route("GET", url, json_body({"detail": "Not found."}, 404))
    with pytest.raises(CharacterNotFound):
        await api.characters.my_vote(CHARACTER_ID)


async def test_report(service: Service, api: AsyncClient, transport: MockTransport) -> None:
    url = f"{NEO}/report/create"
    service.route("POST", url, json_body({"report": {"report_id": "r-42"}}))
    assert await api.characters.report(EXPECTED, "SPAM", "Posts links.") == "r-42"
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url) == ("POST", url)
    assert sent.json == {
        "category": "SPAM",
        "comments": "Posts links.",
        "reported_resource_id": CHARACTER_ID,
        "type": "CHARACTER",
    }


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (json_body(neo_error_body("Character not found", 404), 404), CharacterNotFound),
        (json_body(neo_error_body("Invalid report", 400), 400), ServerError),
        (json_body({"report": {}}), ProtocolError),
    ],
)
async def test_report_errors(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("POST", f"{NEO}/report/create", answer)
    with pytest.raises(error):
        await api.characters.report(CHARACTER_ID, "SPAM")


# ---- validation before any request -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("Ro", "Hello!"), {}),
        (("R" * 21, "Hello!"), {}),
        (("Robo", "Hi"), {}),
        (("Robo", "x" * 4097), {}),
        (("Robo", "Hello!"), {"title": "ab"}),
        (("Robo", "Hello!"), {"title": "t" * 51}),
        (("Robo", "Hello!"), {"description": "d" * 501}),
        (("Robo", "Hello!"), {"definition": "d" * 32001}),
        (("Robo", "Hello!"), {"visibility": "friends"}),
        (("Robo", "Hello!"), {"visibility": 1}),
        (("Robo", "Hello!"), {"copyable": "yes"}),
        (("Robo", "Hello!"), {"categories": "Helpers"}),
        (("Robo", "Hello!"), {"categories": [1, 2]}),
        (("Robo", "Hello!"), {"img_gen_enabled": 1}),
        (("Robo", "Hello!"), {"avatar_rel_path": None}),
        ((None, "Hello!"), {}),
        (("Robo", "Hello!"), {"timeout": 0}),
    ],
)
async def test_create_is_validated_before_sending(
    api: AsyncClient, transport: MockTransport, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        await api.characters.create(*args, **kwargs)
    assert transport.sent == []


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.characters.info("bad/id"),
        lambda c: c.characters.info(""),
        lambda c: c.characters.info(42),
        lambda c: c.characters.info(CHARACTER_ID, timeout=-1),
        lambda c: c.characters.search(""),
        lambda c: c.characters.search("   "),
        lambda c: c.characters.search(42),
        lambda c: c.characters.search("x" * 201),
        lambda c: c.characters.search("lone \udc80"),
        lambda c: c.characters.similar("a b"),
        lambda c: c.characters.update(CHARACTER_ID),
        lambda c: c.characters.update(CHARACTER_ID, name="Ro"),
        lambda c: c.characters.update(CHARACTER_ID, greeting="x" * 4097),
        lambda c: c.characters.update(CHARACTER_ID, visibility="everyone"),
        lambda c: c.characters.update(CHARACTER_ID, copyable=1),
        lambda c: c.characters.update("x?y", name="Robo"),
        lambda c: c.characters.delete("#"),
        lambda c: c.characters.vote(CHARACTER_ID, 1),
        lambda c: c.characters.vote(CHARACTER_ID, "yes"),
        lambda c: c.characters.my_vote(""),
        lambda c: c.characters.report(CHARACTER_ID, "RUDE"),
        lambda c: c.characters.report(CHARACTER_ID, "spam"),
        lambda c: c.characters.report(CHARACTER_ID, "SPAM", "c" * 1001),
        lambda c: c.characters.report(CHARACTER_ID, "SPAM", None),
        lambda c: c.characters.recommended(timeout=0),
        lambda c: c.characters.categories(timeout="1"),
        lambda c: c.characters.mine(timeout=float("inf")),
    ],
)
async def test_calls_are_validated_before_sending(
    api: AsyncClient, transport: MockTransport, call: Any
) -> None:
    with pytest.raises(ValidationError):
        await call(api)
    assert transport.sent == []


def test_avatar_url_uses_the_clients_cdn_without_io(transport: MockTransport) -> None:
    client = make_client(transport)
    assert client.characters.avatar_url(EXPECTED, size=80) == (
        "https://characterai.io/i/80/static/avatars/uploaded/sage.webp"
    )
    assert client.characters.avatar_url(CharacterShort(id="x")) is None
    with pytest.raises(ValidationError):
        client.characters.avatar_url(EXPECTED, size=0)
    with pytest.raises(ValidationError):
        client.characters.avatar_url(CHARACTER_ID)  # type: ignore[arg-type]
    assert transport.sent == []
