"""Tier 2: the REST calls of ``client.chats`` over MockTransport.

A handler plays neo's Chat V2 REST API with literal bodies (docs/protocol.md §7): the exact
request of every call, the parsing of chats and turns, history paging, and in-band
``neo_error`` bodies. The socket calls (send, stream, regenerate, edit, select, pin,
create) are in tests/test_client_socket_mock.py; HTTP error shapes in
tests/test_client_errors_mock.py.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from caiclient import (
    AsyncClient,
    ChatNotFound,
    NotFound,
    ProtocolError,
    ServerError,
    TurnNotFound,
    ValidationError,
)
from caiclient.models import Author, Candidate, Chat, Turn, TurnKey
from caiclient.protocol.http import Request, Response
from caiclient.transports import MockTransport
from mock_service import (
    CHARACTER_2,
    CHARACTER_ID,
    CHAT_ID,
    NEO,
    USER_ID,
    Service,
    json_body,
    neo_error_body,
    text_body,
    urls,
    wire,
)

CHAT_URL = f"{NEO}/chat/{CHAT_ID}/"
TURNS_URL = f"{NEO}/turns/{CHAT_ID}/"
OTHER_CHAT = "5d7c9a1e-2b3f-4e6d-8a9b-0c1d2e3f4a5b"

CHAT_BODY = {
    "chat_id": CHAT_ID,
    "create_time": "2025-01-01T10:00:00Z",
    "creator_id": USER_ID,
    "character_id": CHARACTER_ID,
    "state": "STATE_ACTIVE",
    "type": "TYPE_ONE_ON_ONE",
    "visibility": "VISIBILITY_PRIVATE",
    "name": "Tides",
    "character_name": "Sage",
    "character_avatar_uri": "uploaded/sage.webp",
    "character_visibility": "PUBLIC",
    "character_translations": {"name": {"ko": "세이지"}},
    "preferred_model_type": "MODEL_TYPE_SMART",
    "streak": {"user_id": USER_ID, "streak": 3},
}
"""A chat as ``/chats/recent/`` lists it (docs/protocol.md §7.1), unknown keys included."""

CHAT = Chat(
    chat_id=CHAT_ID,
    character_id=CHARACTER_ID,
    creator_id=USER_ID,
    create_time=datetime(2025, 1, 1, 10, tzinfo=timezone.utc),
    name="Tides",
    character_name="Sage",
    character_avatar_uri="uploaded/sage.webp",
    preferred_model_type="MODEL_TYPE_SMART",
)


def chat_body(chat_id: str = CHAT_ID, created: str | None = None, **fields: Any) -> dict[str, Any]:
    body = {**CHAT_BODY, "chat_id": chat_id, **fields}
    if created is not None:
        body["create_time"] = created
    return body


def user_turn(turn_id: str, text: str) -> dict[str, Any]:
    return {
        "turn_key": {"chat_id": CHAT_ID, "turn_id": turn_id},
        "create_time": "2025-01-01T10:01:00Z",
        "last_update_time": "2025-01-01T10:01:00Z",
        "state": "STATE_OK",
        "author": {"author_id": USER_ID, "name": "ada_l", "is_human": True},
        "candidates": [
            {
                "candidate_id": f"{turn_id}-c",
                "create_time": "2025-01-01T10:01:00Z",
                "raw_content": text,
                "is_final": True,
            }
        ],
        "primary_candidate_id": f"{turn_id}-c",
    }


def bot_turn(turn_id: str, *texts: str, **fields: Any) -> dict[str, Any]:
    """A character turn from history: no ``is_human`` key, candidates newest first."""
    candidates = [
        {"candidate_id": f"{turn_id}-c{n}", "raw_content": text, "is_final": True}
        for n, text in enumerate(texts)
    ]
    return {
        "turn_key": {"chat_id": CHAT_ID, "turn_id": turn_id},
        "create_time": "2025-01-01T10:02:00Z",
        "state": "STATE_OK",
        "author": {"author_id": CHARACTER_ID, "name": "Sage"},
        "candidates": candidates,
        "primary_candidate_id": f"{turn_id}-c0",
        **fields,
    }


def page(turns: list[dict[str, Any]], next_token: str | None) -> Response:
    return json_body({"turns": turns, "meta": {"next_token": next_token}})


# ---- get / list / recent ----------------------------------------------------------------------


async def test_get(service: Service, api: AsyncClient, transport: MockTransport) -> None:
    service.route("GET", CHAT_URL, json_body({"chat": CHAT_BODY}))
    assert await api.chats.get(CHAT_ID) == CHAT
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params, sent.body) == ("GET", CHAT_URL, None, None)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (json_body(neo_error_body("Chat not found", 404), 404), ChatNotFound),
        (json_body(neo_error_body("Chat not found", 404)), ChatNotFound),
        (json_body({"chat": None}), ProtocolError),
        (json_body({}), ProtocolError),
        (json_body({"chat": {"chat_id": CHAT_ID}}), ProtocolError),
        (text_body("<html></html>", 200, "text/html"), ProtocolError),
        (json_body({"status": "NOT_OK", "error": "Chat not found"}), NotFound),
    ],
)
async def test_get_errors(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("GET", CHAT_URL, answer)
    with pytest.raises(error):
        await api.chats.get(CHAT_ID)


async def test_chat_fields_have_defaults(service: Service, api: AsyncClient) -> None:
    minimal = {"chat_id": CHAT_ID, "character_id": CHARACTER_ID}
    service.route("GET", CHAT_URL, json_body({"chat": minimal}))
    chat = await api.chats.get(CHAT_ID)
    assert chat == Chat(chat_id=CHAT_ID, character_id=CHARACTER_ID)
    assert (chat.state, chat.name, chat.is_archived) == ("STATE_ACTIVE", None, False)


async def test_list_sorts_newest_first_by_creation(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    chats = [
        chat_body("a", "2025-01-02T00:00:00Z"),
        chat_body("b", "2025-03-01T00:00:00Z", state="STATE_ARCHIVED"),
        {"chat_id": "c", "character_id": CHARACTER_ID},  # no create_time: last
        chat_body("d", "2024-12-31T23:59:59Z"),
    ]
    service.route("GET", f"{NEO}/chats/", json_body({"chats": chats}))
    found = await api.chats.list(CHARACTER_ID)
    assert [c.chat_id for c in found] == ["b", "a", "d", "c"]
    assert found[0].is_archived
    [sent] = wire(transport.sent)
    assert (sent.url, sent.params) == (f"{NEO}/chats/", {"character_ids": CHARACTER_ID})


@pytest.mark.parametrize("character_id", [None, CHARACTER_ID])
async def test_recent_keeps_the_servers_order(
    service: Service, api: AsyncClient, transport: MockTransport, character_id: str | None
) -> None:
    url = f"{NEO}/chats/recent/{character_id or ''}"
    chats = [chat_body("old", "2020-01-01T00:00:00Z"), chat_body("new", "2025-01-01T00:00:00Z")]
    service.route("GET", url, json_body({"chats": chats}))
    assert [c.chat_id for c in await api.chats.recent(character_id)] == ["old", "new"]
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params) == ("GET", url, None)


@pytest.mark.parametrize("call", ["recent", "list"])
@pytest.mark.parametrize("body", [{}, {"chats": None}, {"chats": []}])
async def test_no_chats(service: Service, api: AsyncClient, call: str, body: Any) -> None:
    service.route("GET", f"{NEO}/chats/recent/{CHARACTER_ID}", json_body(body))
    service.route("GET", f"{NEO}/chats/", json_body(body))
    assert await getattr(api.chats, call)(CHARACTER_ID) == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (neo_error_body("Character not found", 404), NotFound),
        ({"chats": [{"chat_id": "no character"}]}, ProtocolError),
        ({"chats": "none"}, ProtocolError),
    ],
)
async def test_recent_errors(service: Service, api: AsyncClient, body: Any, error: type) -> None:
    service.route("GET", f"{NEO}/chats/recent/", json_body(body))
    with pytest.raises(error):
        await api.chats.recent()


async def test_open_picks_the_most_recent_chat_without_creating_one(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    url = f"{NEO}/chats/recent/{CHARACTER_ID}"
    service.route("GET", url, json_body({"chats": [chat_body("newest"), chat_body("older")]}))
    assert (await api.chats.open(CHARACTER_ID)).chat_id == "newest"
    assert urls(transport.sent) == [f"GET {url}"]
    assert transport.sockets == []


# ---- rename / archive / set_model -------------------------------------------------------------

PATCHES = [
    ("rename", ("Tides",), "update_name", {"name": "Tides"}),
    ("archive", (), "archive", {}),
    ("unarchive", (), "unarchive", {}),
    (
        "set_model",
        ("MODEL_TYPE_FAST",),
        "preferred-model-type",
        {"preferred_model_type": "MODEL_TYPE_FAST"},
    ),
]


@pytest.mark.parametrize(("call", "args", "path", "body"), PATCHES)
@pytest.mark.parametrize("ref", [CHAT_ID, CHAT], ids=["id", "chat"])
async def test_patches_send_their_body_and_return_the_answered_chat(
    service: Service,
    api: AsyncClient,
    transport: MockTransport,
    call: str,
    args: tuple[Any, ...],
    path: str,
    body: dict[str, Any],
    ref: Any,
) -> None:
    url = f"{NEO}/chat/{CHAT_ID}/{path}"
    answered = chat_body(name="From the answer", state="STATE_ARCHIVED")
    service.route("PATCH", url, json_body({"chat": answered}))
    chat = await getattr(api.chats, call)(ref, *args)
    assert (chat.name, chat.is_archived) == ("From the answer", True)
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.json) == ("PATCH", url, body)


@pytest.mark.parametrize(("call", "args", "path", "body"), PATCHES)
@pytest.mark.parametrize("empty", [b"", b"{}", b'{"chat": null}'])
async def test_patches_without_a_chat_in_the_answer_read_it_afresh(
    service: Service,
    api: AsyncClient,
    transport: MockTransport,
    call: str,
    args: tuple[Any, ...],
    path: str,
    body: dict[str, Any],
    empty: bytes,
) -> None:
    url = f"{NEO}/chat/{CHAT_ID}/{path}"
    service.route("PATCH", url, Response(200, {}, empty))
    service.route("GET", CHAT_URL, json_body({"chat": chat_body(name="Read afresh")}))
    assert (await getattr(api.chats, call)(CHAT_ID, *args)).name == "Read afresh"
    assert urls(transport.sent) == [f"PATCH {url}", f"GET {CHAT_URL}"]


@pytest.mark.parametrize(("call", "args", "path", "body"), PATCHES)
async def test_patches_refused_in_band(
    service: Service,
    api: AsyncClient,
    call: str,
    args: tuple[Any, ...],
    path: str,
    body: dict[str, Any],
) -> None:
    url = f"{NEO}/chat/{CHAT_ID}/{path}"
    service.route("PATCH", url, json_body(neo_error_body("Chat is archived", 400)))
    with pytest.raises(ServerError, match="Chat is archived") as caught:
        await getattr(api.chats, call)(CHAT_ID, *args)
    assert caught.value.status == 400


# ---- copy / delete ----------------------------------------------------------------------------


async def test_copy_posts_the_end_turn_and_reads_the_new_chat(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    copy_url = f"{NEO}/chat/{CHAT_ID}/copy"
    service.route("POST", copy_url, json_body({"new_chat_id": OTHER_CHAT}))
    service.route("GET", f"{NEO}/chat/{OTHER_CHAT}/", json_body({"chat": chat_body(OTHER_CHAT)}))
    up_to = Turn(turn_key=TurnKey(chat_id=CHAT_ID, turn_id="turn-7"))
    copy = await api.chats.copy(CHAT, up_to=up_to)
    assert copy.chat_id == OTHER_CHAT
    posted, read = wire(transport.sent)
    assert (posted.method, posted.url, posted.json) == ("POST", copy_url, {"end_turn_id": "turn-7"})
    assert (read.method, read.url) == ("GET", f"{NEO}/chat/{OTHER_CHAT}/")


@pytest.mark.parametrize(
    ("comment", "error"),
    [("Turn not found", TurnNotFound), ("Chat not found", ChatNotFound)],
)
async def test_copy_says_whether_the_chat_or_the_turn_is_missing(
    service: Service, api: AsyncClient, comment: str, error: type[Exception]
) -> None:
    body = neo_error_body(comment, 404)
    service.route("POST", f"{NEO}/chat/{CHAT_ID}/copy", json_body(body, 404))
    with pytest.raises(error, match=comment):
        await api.chats.copy(CHAT_ID, up_to="turn-7")


async def test_copy_answer_without_a_new_chat_id(service: Service, api: AsyncClient) -> None:
    service.route("POST", f"{NEO}/chat/{CHAT_ID}/copy", json_body({}))
    with pytest.raises(ProtocolError):
        await api.chats.copy(CHAT_ID, up_to="turn-7")


@pytest.mark.parametrize(
    ("turns", "ids"),
    [
        ("turn-1", ["turn-1"]),
        (Turn(turn_key=TurnKey(chat_id=CHAT_ID, turn_id="turn-2")), ["turn-2"]),
        (
            ["turn-1", Turn(turn_key=TurnKey(chat_id=CHAT_ID, turn_id="turn-2"))],
            ["turn-1", "turn-2"],
        ),
        (("a", "b", "c"), ["a", "b", "c"]),
    ],
)
async def test_delete_posts_the_turn_ids(
    service: Service, api: AsyncClient, transport: MockTransport, turns: Any, ids: list[str]
) -> None:
    url = f"{NEO}/turns/{CHAT_ID}/remove"
    service.route("POST", url, json_body({}))
    assert await api.chats.delete(CHAT, turns) is None
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.json) == ("POST", url, {"turn_ids": ids})


# ---- ratings ----------------------------------------------------------------------------------

RATED = Turn(
    turn_key=TurnKey(chat_id=CHAT_ID, turn_id="bot-1"),
    author=Author(author_id=CHARACTER_ID),
    candidates=[
        Candidate(candidate_id="newer", raw_content="B"),
        Candidate(candidate_id="primary", raw_content="A"),
    ],
    primary_candidate_id="primary",
)
TARGET = {"turn_key": {"chat_id": CHAT_ID, "turn_id": "bot-1"}}


@pytest.mark.parametrize(
    ("candidate", "kwargs", "annotation", "candidate_id"),
    [
        (None, {"stars": 4}, {"annotation_type": "star", "annotation_value": 4}, "primary"),
        (None, {"stars": 1}, {"annotation_type": "star", "annotation_value": 1}, "primary"),
        ("newer", {"label": "funny"}, {"annotation_type": "funny", "annotation_value": 1}, "newer"),
        (
            Candidate(candidate_id="newer"),
            {"label": "not_boring"},
            {"annotation_type": "not_boring", "annotation_value": 1},
            "newer",
        ),
    ],
)
async def test_rate(
    service: Service,
    api: AsyncClient,
    transport: MockTransport,
    candidate: Any,
    kwargs: dict[str, Any],
    annotation: dict[str, Any],
    candidate_id: str,
) -> None:
    url = f"{NEO}/annotation/create"
    service.route("POST", url, json_body({"annotation": {"annotation_id": "ann-9"}}))
    assert await api.chats.rate(RATED, candidate, **kwargs) == "ann-9"
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url) == ("POST", url)
    assert sent.json == {"annotation": annotation, "candidate_id": candidate_id, **TARGET}


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (json_body(neo_error_body("Turn not found", 404), 404), TurnNotFound),
        (json_body({"annotation": {}}), ProtocolError),
        (json_body(neo_error_body("Invalid annotation", 400)), ServerError),
    ],
)
async def test_rate_errors(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("POST", f"{NEO}/annotation/create", answer)
    with pytest.raises(error):
        await api.chats.rate(RATED, stars=2)


async def test_unrate(service: Service, api: AsyncClient, transport: MockTransport) -> None:
    url = f"{NEO}/annotation/remove"
    service.route("POST", url, json_body({}))
    assert await api.chats.unrate(RATED, "ann-9") is None
    [sent] = wire(transport.sent)
    assert sent.json == {"annotation_id": "ann-9", "candidate_id": "primary", **TARGET}


# ---- history ----------------------------------------------------------------------------------


async def test_history_reads_every_page_and_returns_oldest_first(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    newest = [bot_turn("t4", "four"), user_turn("t3", "three")]
    oldest = [bot_turn("t2", "two"), user_turn("t1", "one")]

    def turns(request: Request) -> Response:
        token = (request.params or {}).get("next_token")
        return page(newest, "cursor/2+=") if token is None else page(oldest, None)

    service.route("GET", TURNS_URL, turns)
    history = await api.chats.history(CHAT)
    assert [t.turn_id for t in history] == ["t1", "t2", "t3", "t4"]
    assert [t.text for t in history] == ["one", "two", "three", "four"]
    first, second = wire(transport.sent)
    assert (first.method, first.url, first.params) == ("GET", TURNS_URL, None)
    assert second.params == {"next_token": "cursor/2+="}


async def test_history_parses_turns_and_candidates(service: Service, api: AsyncClient) -> None:
    edited = bot_turn("t2", "edited", "original", is_pinned=True)
    edited["candidates"][0].update(
        {
            "editor": {"author_id": USER_ID, "name": "ada_l"},
            "base_candidate_id": "t2-c1",
            "safety_truncated": True,
            "model_type": "MODEL_TYPE_SMART",
        }
    )
    del edited["candidates"][1]["is_final"]
    service.route("GET", TURNS_URL, page([edited, user_turn("t1", "hi")], None))
    human, bot = await api.chats.history(CHAT_ID, all_candidates=True)
    assert human.is_human and human.author.author_id == USER_ID
    assert not bot.is_human  # no is_human key: a character (docs/protocol.md §7.2)
    assert bot.is_pinned
    assert bot.create_time == datetime(2025, 1, 1, 10, 2, tzinfo=timezone.utc)
    first, second = bot.candidates
    assert (first.text, first.base_candidate_id, first.safety_truncated) == (
        "edited",
        "t2-c1",
        True,
    )
    assert first.editor == Author(author_id=USER_ID, name="ada_l")
    assert (second.text, second.is_final, second.editor) == ("original", False, None)
    assert bot.primary == first and bot.candidate("t2-c1") == second


@pytest.mark.parametrize(
    ("kwargs", "params"),
    [
        ({"pinned_only": True}, {"pinned_only": "true"}),
        ({"all_candidates": True}, {"candidate_filter": "all"}),
        (
            {"pinned_only": True, "all_candidates": True},
            {"pinned_only": "true", "candidate_filter": "all"},
        ),
    ],
)
async def test_history_filters_are_query_parameters(
    service: Service,
    api: AsyncClient,
    transport: MockTransport,
    kwargs: dict[str, bool],
    params: dict[str, str],
) -> None:
    def turns(request: Request) -> Response:
        token = (request.params or {}).get("next_token")
        return (
            page([user_turn("t2", "b")], "p2")
            if token is None
            else page([user_turn("t1", "a")], None)
        )

    service.route("GET", TURNS_URL, turns)
    await api.chats.history(CHAT, **kwargs)
    first, second = wire(transport.sent)
    assert first.params == params
    assert second.params == {"next_token": "p2", **params}


@pytest.mark.parametrize(
    "last",
    [
        page([], "more"),
        page([user_turn("t1", "a")], None),
        json_body({"turns": [user_turn("t1", "a")]}),
    ],
)
async def test_history_ends_at_an_empty_page_or_without_a_cursor(
    service: Service, api: AsyncClient, transport: MockTransport, last: Response
) -> None:
    service.route("GET", TURNS_URL, page([user_turn("t2", "b")], "p2"), last)
    history = await api.chats.history(CHAT)
    assert [t.turn_id for t in history][-1] == "t2"
    assert len(transport.sent) == 2


async def test_an_empty_history(service: Service, api: AsyncClient) -> None:
    service.route("GET", TURNS_URL, json_body({"turns": [], "meta": {}}))
    assert await api.chats.history(CHAT) == []


async def test_iter_history_yields_pages_as_sent_and_stops_early(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route(
        "GET",
        TURNS_URL,
        page([user_turn("t4", "d"), user_turn("t3", "c")], "p2"),
        page([user_turn("t2", "b")], "p3"),
        page([user_turn("t1", "a")], None),
    )
    pages = []
    async for turns in api.chats.iter_history(CHAT):
        pages.append([t.turn_id for t in turns])
        if len(pages) == 2:
            break
    assert pages == [["t4", "t3"], ["t2"]]
    assert len(transport.sent) == 2  # the third page was never asked for


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (json_body(neo_error_body("Chat not found", 404)), ChatNotFound),
        (json_body(neo_error_body("Invalid next_token", 400), 400), ServerError),
        (json_body({"turns": [{"candidates": []}]}), ProtocolError),
        (json_body({"turns": "none"}), ProtocolError),
    ],
)
async def test_history_errors(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("GET", TURNS_URL, answer)
    with pytest.raises(error):
        await api.chats.history(CHAT)


# ---- validation before any request ------------------------------------------------------------

HUMAN = Turn(
    turn_key=TurnKey(chat_id=CHAT_ID, turn_id="mine"),
    author=Author(author_id=USER_ID, is_human=True),
    candidates=[Candidate(candidate_id="c", raw_content="hi")],
)
FOREIGN = Turn(turn_key=TurnKey(chat_id=OTHER_CHAT, turn_id="theirs"))
EMPTY = Turn(turn_key=TurnKey(chat_id=CHAT_ID, turn_id="t"))


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.chats.get(""),
        lambda c: c.chats.get("a/b"),
        lambda c: c.chats.get(CHAT),
        lambda c: c.chats.list(None),
        lambda c: c.chats.list("x y"),
        lambda c: c.chats.recent(""),
        lambda c: c.chats.open(".."),
        lambda c: c.chats.rename(CHAT, ""),
        lambda c: c.chats.rename(CHAT, "   "),
        lambda c: c.chats.rename(CHAT, 5),
        lambda c: c.chats.rename(42, "name"),
        lambda c: c.chats.archive(None),
        lambda c: c.chats.unarchive("#frag"),
        lambda c: c.chats.set_model(CHAT, "smart"),
        lambda c: c.chats.set_model(CHAT, "MODEL_TYPE_"),
        lambda c: c.chats.set_model(CHAT, None),
        lambda c: c.chats.copy(CHAT, up_to=FOREIGN),
        lambda c: c.chats.copy(CHAT, up_to=3),
        lambda c: c.chats.copy(CHAT, up_to=""),
        lambda c: c.chats.delete(CHAT, []),
        lambda c: c.chats.delete(CHAT, FOREIGN),
        lambda c: c.chats.delete(CHAT, ["ok", 5]),
        lambda c: c.chats.delete(CHAT, 7),
        lambda c: c.chats.rate(RATED),
        lambda c: c.chats.rate(RATED, stars=5),
        lambda c: c.chats.rate(RATED, stars=0),
        lambda c: c.chats.rate(RATED, stars=True),
        lambda c: c.chats.rate(RATED, stars=2, label="funny"),
        lambda c: c.chats.rate(RATED, label="hilarious"),
        lambda c: c.chats.rate(EMPTY, stars=3),
        lambda c: c.chats.rate("turn", stars=3),
        lambda c: c.chats.unrate(RATED, ""),
        lambda c: c.chats.unrate(RATED, "a b"),
        lambda c: c.chats.history(5),
        lambda c: c.chats.history(CHAT, timeout=0),
        lambda c: c.chats.list(CHARACTER_2, timeout=-1),
    ],
)
async def test_calls_are_validated_before_sending(
    api: AsyncClient, transport: MockTransport, call: Any
) -> None:
    with pytest.raises(ValidationError):
        await call(api)
    assert transport.sent == [] and transport.sockets == []


def test_iter_history_checks_its_arguments_at_once(
    api: AsyncClient, transport: MockTransport
) -> None:
    with pytest.raises(ValidationError):
        api.chats.iter_history("a/b")
    with pytest.raises(ValidationError):
        api.chats.iter_history(CHAT, timeout=-1)
    assert transport.sent == []
