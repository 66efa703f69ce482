"""Tier 2: ``client.rooms`` over MockTransport.

A handler plays neo's group-chat REST routes with literal bodies in the shapes of
docs/protocol.md §9 (the room object, the PATCH and DELETE answers, join and preview, and the
``/turns/`` pages of §7.3): the exact request of every call, the parsing of the answers,
validation before any I/O, and the in-band and HTTP errors each call maps. A small
Centrifugo stand-in (:class:`Centrifugo`) plays the rooms socket over MockTransport's
in-memory WebSocket: the rpc envelopes of send and generate, a generation's publications
read into the reply turn, and rpc and subscribe refusals read as typed errors. Every
socket call runs under a 5 s deadline; nothing sleeps.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from caiclient import (
    AsyncClient,
    AuthError,
    CharacterNotFound,
    Filtered,
    NotFound,
    ProtocolError,
    RateLimited,
    RoomNotFound,
    ServerError,
    ValidationError,
)
from caiclient.models import (
    Author,
    Candidate,
    Room,
    RoomCharacter,
    RoomMember,
    RoomSettings,
    Turn,
    TurnKey,
)
from caiclient.protocol.http import Request, Response
from caiclient.protocol.retry import Backoff
from caiclient.transports import MockTransport, MockWebSocket
from mock_service import (
    CHARACTER_2,
    CHARACTER_ID,
    NEO,
    RETRIES,
    TOKEN,
    USER_ID,
    Service,
    json_body,
    make_client,
    neo_error_body,
    not_ok,
    text_body,
    unauthorized,
    unavailable,
    wire,
)

ROOM_ID = "7c2e4a1b-9d3f-4e5a-8b6c-1d2e3f4a5b6c"
OTHER_ROOM = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
JOIN_TOKEN = "aB3dE5fG7hJ9kL1m"
CHARACTER_3 = "ZeqRq2l_aVf2gWDCZl4oBttQzDvhj9cXafWcF8YntB_"
OTHER_USER = "987654321"

ROOMS_URL = f"{NEO}/murooms/"
CREATE_URL = f"{NEO}/muroom/create"
ROOM_URL = f"{NEO}/muroom/{ROOM_ID}/"
PREVIEW_URL = f"{NEO}/muroom/"
JOIN_URL = f"{NEO}/muroom/join"
TURNS_URL = f"{NEO}/turns/{ROOM_ID}/"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def history_turn(turn_id: str, text: str, *, human: bool = False, **fields: Any) -> dict[str, Any]:
    """A room turn as ``/turns/`` and ``preview_turns`` carry it (§7.2: a character's turn
    has no ``is_human`` key)."""
    author: dict[str, Any] = (
        {"author_id": USER_ID, "name": "ada_l", "is_human": True}
        if human
        else {"author_id": CHARACTER_ID, "name": "Sage"}
    )
    return {
        "turn_key": {"chat_id": ROOM_ID, "turn_id": turn_id},
        "create_time": "2025-02-01T09:00:00Z",
        "last_update_time": "2025-02-01T09:00:00Z",
        "state": "STATE_OK",
        "author": author,
        "candidates": [{"candidate_id": f"{turn_id}-c", "raw_content": text, "is_final": True}],
        "primary_candidate_id": f"{turn_id}-c",
        **fields,
    }


def room_body(room_id: str = ROOM_ID, **fields: Any) -> dict[str, Any]:
    """A room object as ``GET /murooms/`` lists it (docs/protocol.md §9), with keys the
    client does not read (``permissions``, ``meta``, the avatar's ``url`` spelling)."""
    body = {
        "id": room_id,
        "title": "Tea party",
        "description": "Scones at four",
        "visibility": "VISIBILITY_UNLISTED",
        "picture": "",
        "characters": [
            {"id": CHARACTER_ID, "name": "Sage", "avatar_url": "uploaded/sage.webp"},
            {"id": CHARACTER_2, "name": "Echo", "url": "uploaded/echo.webp"},
        ],
        "users": [
            {
                "id": USER_ID,
                "username": "ada_l",
                "name": "Ada Lovelace",
                "avatar_url": "",
                "role": "ROLE_OWNER",
                "state": "STATE_ACTIVE",
            }
        ],
        "permissions": [],
        "preview_turns": {
            "turns": [history_turn("t2", "Welcome!"), history_turn("t1", "hello", human=True)],
            "meta": {"next_token": None},
        },
        "settings": {
            "anyone_can_join": True,
            "require_approval": False,
            "auto_smart_reply": False,
            "smart_reply_timer": False,
            "join_token": JOIN_TOKEN,
            "user_limit": 10,
            "character_limit": 5,
            "push_notification_mode": "PUSH_NOTIFICATION_MODE_UNSPECIFIED",
        },
    }
    body.update(fields)
    return body


def model_turn(turn_id: str, text: str, *, human: bool = False) -> Turn:
    when = datetime(2025, 2, 1, 9, tzinfo=timezone.utc)
    author = (
        Author(author_id=USER_ID, name="ada_l", is_human=True)
        if human
        else Author(author_id=CHARACTER_ID, name="Sage")
    )
    return Turn(
        turn_key=TurnKey(chat_id=ROOM_ID, turn_id=turn_id),
        author=author,
        candidates=[Candidate(candidate_id=f"{turn_id}-c", raw_content=text, is_final=True)],
        primary_candidate_id=f"{turn_id}-c",
        create_time=when,
        last_update_time=when,
    )


ROOM = Room(
    id=ROOM_ID,
    title="Tea party",
    description="Scones at four",
    visibility="VISIBILITY_UNLISTED",
    picture="",
    characters=[
        RoomCharacter(id=CHARACTER_ID, name="Sage", avatar_url="uploaded/sage.webp"),
        RoomCharacter(id=CHARACTER_2, name="Echo"),
    ],
    users=[
        RoomMember(
            id=USER_ID,
            username="ada_l",
            name="Ada Lovelace",
            avatar_url="",
            role="ROLE_OWNER",
            state="STATE_ACTIVE",
        )
    ],
    settings=RoomSettings(
        join_token=JOIN_TOKEN,
        user_limit=10,
        character_limit=5,
        push_notification_mode="PUSH_NOTIFICATION_MODE_UNSPECIFIED",
    ),
    preview_turns=[model_turn("t2", "Welcome!"), model_turn("t1", "hello", human=True)],
)
"""What :func:`room_body` reads as."""


def rooms_body(*rooms: dict[str, Any]) -> Response:
    return json_body({"rooms": list(rooms)})


def patched(**fields: Any) -> Response:
    """The PATCH answer as docs/protocol.md §9 gives the emulator's."""
    body = {
        "id": ROOM_ID,
        "users": {"added": [], "removed": []},
        "characters": {"added": [], "removed": []},
        "title": "Tea party",
        "command": "update_mu_room_response",
        **fields,
    }
    return json_body(body)


def page(turns: list[dict[str, Any]], next_token: str | None) -> Response:
    return json_body({"turns": turns, "meta": {"next_token": next_token}})


# ---- list / get ---------------------------------------------------------------------------------


async def test_list_request_and_parsing(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    other = room_body(OTHER_ROOM, title="Quiet", preview_turns={"turns": [], "meta": {}})
    service.route("GET", ROOMS_URL, rooms_body(room_body(), other))
    found = await api.rooms.list()
    assert found == [ROOM, Room(**{**_fields(ROOM), "id": OTHER_ROOM, "title": "Quiet"})]
    assert found[0].character_ids == [CHARACTER_ID, CHARACTER_2]
    assert found[0].join_token == JOIN_TOKEN
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params, sent.body) == (
        "GET",
        ROOMS_URL,
        {"include_turns": "false"},
        None,
    )


def _fields(room: Room) -> dict[str, Any]:
    fields = {name: getattr(room, name) for name in room.__struct_fields__}
    fields["preview_turns"] = []
    return fields


@pytest.mark.parametrize(
    "body", [{"rooms": []}, {"rooms": None}, {}], ids=["empty", "null", "missing"]
)
async def test_list_without_rooms_is_empty(
    service: Service, api: AsyncClient, body: dict[str, Any]
) -> None:
    service.route("GET", ROOMS_URL, json_body(body))
    assert await api.rooms.list() == []


async def test_a_minimal_room_has_defaults_and_preview_turns_may_be_a_list(
    service: Service, api: AsyncClient
) -> None:
    listed = {"id": OTHER_ROOM, "preview_turns": [history_turn("t1", "hi")]}
    service.route("GET", ROOMS_URL, rooms_body({"id": ROOM_ID, "preview_turns": None}, listed))
    bare, with_list = await api.rooms.list()
    assert bare == Room(id=ROOM_ID)
    assert (bare.settings, bare.join_token, bare.character_ids) == (RoomSettings(), "", [])
    assert with_list.preview_turns == [model_turn("t1", "hi")]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (unauthorized(), AuthError),
        (json_body(neo_error_body("Room not found", 404)), RoomNotFound),  # in band
        (not_ok("Something went wrong"), ServerError),
        (not_ok("Room not found"), NotFound),  # a Django-style refusal saying "not found"
        (json_body({"rooms": [{"title": "no id"}]}), ProtocolError),
        (json_body({"rooms": "none"}), ProtocolError),
        (text_body("<html></html>", 200, "text/html"), ProtocolError),
        (json_body(neo_error_body("Internal error", 500), 500), ServerError),
    ],
)
async def test_list_errors(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("GET", ROOMS_URL, answer)
    with pytest.raises(error):
        await api.rooms.list()


async def test_list_is_retried_through_a_gateway_failure(
    service: Service, api: AsyncClient
) -> None:
    service.route("GET", ROOMS_URL, unavailable(503), rooms_body(room_body()))
    assert await api.rooms.list() == [ROOM]
    assert service.hits[("GET", ROOMS_URL)] == 2


@pytest.mark.parametrize("as_object", [False, True], ids=["id", "Room"])
async def test_get_finds_the_room_among_yours(
    service: Service, api: AsyncClient, transport: MockTransport, as_object: bool
) -> None:
    service.route("GET", ROOMS_URL, rooms_body(room_body(OTHER_ROOM), room_body()))
    assert await api.rooms.get(Room(id=ROOM_ID) if as_object else ROOM_ID) == ROOM
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params) == ("GET", ROOMS_URL, {"include_turns": "false"})


async def test_get_of_a_room_you_are_not_in_is_room_not_found(
    service: Service, api: AsyncClient
) -> None:
    service.route("GET", ROOMS_URL, rooms_body(room_body(OTHER_ROOM)))
    with pytest.raises(RoomNotFound, match=ROOM_ID):
        await api.rooms.get(ROOM_ID)


# ---- create / delete ----------------------------------------------------------------------------


async def test_create_request_and_parsing(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", CREATE_URL, json_body(room_body()))  # the room itself, unwrapped
    room = await api.rooms.create([CHARACTER_ID, CHARACTER_2], title="Tea party")
    assert room == ROOM
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params) == ("POST", CREATE_URL, None)
    assert sent.json == {
        "characters": [CHARACTER_ID, CHARACTER_2],
        "title": "Tea party",
        "description": "",
        "settings": {"anyone_can_join": True, "require_approval": False},
        "visibility": "VISIBILITY_UNLISTED",
        "with_greeting": True,
    }


async def test_create_with_one_character_and_every_option(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", CREATE_URL, json_body(room_body(preview_turns={"turns": []})))
    room = await api.rooms.create(
        CHARACTER_ID,
        title="Private",
        description="Just us",
        visibility="VISIBILITY_PRIVATE",
        anyone_can_join=False,
        require_approval=True,
        greeting=False,
    )
    assert room.preview_turns == []
    [sent] = wire(transport.sent)
    assert sent.json == {
        "characters": [CHARACTER_ID],
        "title": "Private",
        "description": "Just us",
        "settings": {"anyone_can_join": False, "require_approval": True},
        "visibility": "VISIBILITY_PRIVATE",
        "with_greeting": False,
    }


async def test_create_takes_any_iterable_of_ids(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", CREATE_URL, json_body(room_body()))
    await api.rooms.create(iter((CHARACTER_2, CHARACTER_ID)))
    assert wire(transport.sent)[0].json["characters"] == [CHARACTER_2, CHARACTER_ID]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (json_body(neo_error_body("Character not found", 404), 404), CharacterNotFound),
        (json_body(neo_error_body("Character not found", 404)), CharacterNotFound),  # in band
        (json_body(neo_error_body("Character limit reached", 400), 400), ServerError),
        (json_body(neo_error_body("Invalid visibility", 400), 400), ServerError),
        (json_body({"title": "no id"}), ProtocolError),
        (json_body({"rooms": []}), ProtocolError),
        (unauthorized(), AuthError),
    ],
)
async def test_create_errors(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("POST", CREATE_URL, answer)
    with pytest.raises(error):
        await api.rooms.create(CHARACTER_ID)


async def test_create_is_not_retried_after_a_gateway_failure(
    service: Service, api: AsyncClient
) -> None:
    # A POST that may have created the room is not sent twice (docs/reliability.md).
    service.route("POST", CREATE_URL, unavailable(503), json_body(room_body()))
    with pytest.raises(ServerError) as caught:
        await api.rooms.create(CHARACTER_ID)
    assert caught.value.status == 503
    assert service.hits[("POST", CREATE_URL)] == 1


@pytest.mark.parametrize("as_object", [False, True], ids=["id", "Room"])
async def test_delete_request(
    service: Service, api: AsyncClient, transport: MockTransport, as_object: bool
) -> None:
    service.route("DELETE", ROOM_URL, json_body({"id": ROOM_ID, "command": "delete_mu_room"}))
    await api.rooms.delete(ROOM if as_object else ROOM_ID)
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params, sent.body) == ("DELETE", ROOM_URL, None, None)


@pytest.mark.parametrize(
    "body", [neo_error_body("Room not found", 404), {"detail": "Not found."}], ids=["neo", "plain"]
)
async def test_delete_of_a_missing_room_is_room_not_found(
    service: Service, api: AsyncClient, body: dict[str, Any]
) -> None:
    service.route("DELETE", ROOM_URL, json_body(body, 404))
    with pytest.raises(RoomNotFound):
        await api.rooms.delete(ROOM_ID)


async def test_delete_by_someone_else_than_the_creator_is_a_server_error(
    service: Service, api: AsyncClient
) -> None:
    body = neo_error_body("Only the room's creator can delete it", 403)
    service.route("DELETE", ROOM_URL, json_body(body, 403))
    with pytest.raises(ServerError) as caught:
        await api.rooms.delete(ROOM_ID)
    assert caught.value.status == 403


async def test_delete_reads_an_in_band_refusal(service: Service, api: AsyncClient) -> None:
    service.route("DELETE", ROOM_URL, json_body(neo_error_body("Room not found", 404)))
    with pytest.raises(RoomNotFound):
        await api.rooms.delete(ROOM_ID)


# ---- rename / characters / settings (PATCH, then the room read back) ------------------------


async def _patch_call(api: AsyncClient, call: str) -> Room:
    calls: dict[str, Callable[[], Awaitable[Room]]] = {
        "rename": lambda: api.rooms.rename(ROOM_ID, "Garden party"),
        "add": lambda: api.rooms.add_character(ROOM_ID, CHARACTER_3),
        "remove": lambda: api.rooms.remove_character(ROOM, CHARACTER_2),
        "settings": lambda: api.rooms.update_settings(
            ROOM_ID, anyone_can_join=False, smart_reply_timer=True
        ),
    }
    return await calls[call]()


PATCH_OPS = {
    "rename": [{"op": "replace", "path": f"/muroom/{ROOM_ID}", "value": {"title": "Garden party"}}],
    "add": [{"op": "add", "path": f"/muroom/{ROOM_ID}/characters", "value": {"id": CHARACTER_3}}],
    "remove": [
        {"op": "remove", "path": f"/muroom/{ROOM_ID}/characters", "value": {"id": CHARACTER_2}}
    ],
    "settings": [
        {
            "op": "replace",
            "path": f"/muroom/{ROOM_ID}/settings",
            "value": {"anyone_can_join": False, "smart_reply_timer": True},
        }
    ],
}


@pytest.mark.parametrize("call", list(PATCH_OPS))
async def test_patch_calls_send_one_json_patch_then_read_the_room(
    service: Service, api: AsyncClient, transport: MockTransport, call: str
) -> None:
    changed = room_body(title="Garden party", visibility="VISIBILITY_PRIVATE")
    service.route("PATCH", ROOM_URL, patched(title="Garden party"))
    service.route("GET", ROOMS_URL, rooms_body(room_body(OTHER_ROOM), changed))
    room = await _patch_call(api, call)
    # The room as the listing shows it after the change, not the PATCH's partial answer.
    assert (room.id, room.title, room.visibility) == (ROOM_ID, "Garden party", "VISIBILITY_PRIVATE")
    patch, listing = wire(transport.sent)
    assert (patch.method, patch.url, patch.params) == ("PATCH", ROOM_URL, None)
    assert patch.json == PATCH_OPS[call]
    assert (listing.method, listing.url) == ("GET", ROOMS_URL)


async def test_update_settings_sends_only_the_settings_given(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("PATCH", ROOM_URL, patched())
    service.route("GET", ROOMS_URL, rooms_body(room_body()))
    await api.rooms.update_settings(ROOM_ID, require_approval=False, auto_smart_reply=True)
    [op] = wire(transport.sent)[0].json
    assert op["value"] == {"require_approval": False, "auto_smart_reply": True}


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (json_body(neo_error_body("Room not found", 404), 404), RoomNotFound),
        (json_body(neo_error_body("Character limit reached", 400), 400), ServerError),
        (json_body(neo_error_body("A room needs at least one character", 400), 400), ServerError),
        (unauthorized(), AuthError),
    ],
)
@pytest.mark.parametrize("call", list(PATCH_OPS))
async def test_patch_errors(
    service: Service, api: AsyncClient, call: str, answer: Response, error: type[Exception]
) -> None:
    service.route("PATCH", ROOM_URL, answer)  # no listing: a failed PATCH reads nothing back
    with pytest.raises(error):
        await _patch_call(api, call)


@pytest.mark.parametrize("call", ["add", "remove"])
async def test_an_unknown_character_in_a_patch_is_character_not_found(
    service: Service, api: AsyncClient, call: str
) -> None:
    service.route("PATCH", ROOM_URL, json_body(neo_error_body("Character not found", 404), 404))
    with pytest.raises(CharacterNotFound):
        await _patch_call(api, call)


async def test_a_patch_refused_in_band_raises(service: Service, api: AsyncClient) -> None:
    service.route("PATCH", ROOM_URL, json_body(neo_error_body("Character limit reached", 400)))
    service.route("GET", ROOMS_URL, rooms_body(room_body()))
    with pytest.raises(ServerError):
        await api.rooms.add_character(ROOM_ID, CHARACTER_3)


async def test_a_room_gone_after_its_patch_is_room_not_found(
    service: Service, api: AsyncClient
) -> None:
    service.route("PATCH", ROOM_URL, patched())
    service.route("GET", ROOMS_URL, rooms_body())
    with pytest.raises(RoomNotFound):
        await api.rooms.rename(ROOM_ID, "Garden party")


async def test_a_patch_is_retried_through_a_gateway_failure(
    service: Service, api: AsyncClient
) -> None:
    # The JSON-Patch sets values: sending it twice does no harm (idempotent=True).
    service.route("PATCH", ROOM_URL, unavailable(502), patched())
    service.route("GET", ROOMS_URL, rooms_body(room_body()))
    assert await api.rooms.rename(ROOM_ID, "Tea party") == ROOM
    assert service.hits[("PATCH", ROOM_URL)] == 2


async def test_a_patch_gives_up_after_the_policys_retries(
    service: Service, api: AsyncClient
) -> None:
    service.route("PATCH", ROOM_URL, unavailable(503))
    with pytest.raises(ServerError):
        await api.rooms.rename(ROOM_ID, "Tea party")
    assert service.hits[("PATCH", ROOM_URL)] == 1 + RETRIES


# ---- join token / preview / join ----------------------------------------------------------------


async def test_join_token_comes_from_the_rooms_settings(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", ROOMS_URL, rooms_body(room_body()))
    assert await api.rooms.join_token(ROOM) == JOIN_TOKEN
    assert [(s.method, s.url) for s in wire(transport.sent)] == [("GET", ROOMS_URL)]


async def test_a_room_without_a_join_token_is_room_not_found(
    service: Service, api: AsyncClient
) -> None:
    closed = room_body(settings={"anyone_can_join": False, "join_token": ""})
    service.route("GET", ROOMS_URL, rooms_body(closed))
    with pytest.raises(RoomNotFound, match="join token"):
        await api.rooms.join_token(ROOM_ID)


async def test_preview_request_and_parsing(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    body = room_body(preview_turns={"turns": [], "meta": {"next_token": None}})
    service.route("GET", PREVIEW_URL, json_body(body))
    room = await api.rooms.preview(JOIN_TOKEN)
    assert room == Room(**{**_fields(ROOM), "preview_turns": []})
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params, sent.body) == (
        "GET",
        PREVIEW_URL,
        {"join_token": JOIN_TOKEN},
        None,
    )


async def test_join_request_and_parsing(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    users = [
        *room_body()["users"],
        {"id": OTHER_USER, "username": "bob", "role": "ROLE_MEMBER", "state": "STATE_ACTIVE"},
    ]
    body = room_body(users=users, command="update_mu_room_response")
    service.route("POST", JOIN_URL, json_body(body))
    room = await api.rooms.join(JOIN_TOKEN)
    assert room.id == ROOM_ID and room.preview_turns == ROOM.preview_turns
    assert room.users[1] == RoomMember(
        id=OTHER_USER, username="bob", role="ROLE_MEMBER", state="STATE_ACTIVE"
    )
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params) == ("POST", JOIN_URL, None)
    assert sent.json == {"join_token": JOIN_TOKEN}


async def test_join_is_retried_through_a_gateway_failure(
    service: Service, api: AsyncClient
) -> None:
    # Joining twice is harmless, so the POST is idempotent.
    service.route("POST", JOIN_URL, unavailable(504), json_body(room_body()))
    assert (await api.rooms.join(JOIN_TOKEN)).id == ROOM_ID
    assert service.hits[("POST", JOIN_URL)] == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (json_body(neo_error_body("Room not found", 404), 404), RoomNotFound),
        (json_body(neo_error_body("Room not found", 404)), RoomNotFound),  # in band
        (json_body(neo_error_body("Not found", 404), 404), RoomNotFound),
        (json_body(neo_error_body("Not found", 404)), RoomNotFound),  # in band, no "room"
        (json_body({"detail": "Not found."}, 404), RoomNotFound),
        (json_body(neo_error_body("join_token is required", 400), 400), ServerError),
        (json_body({"title": "no id"}), ProtocolError),
        (unauthorized(), AuthError),
    ],
)
@pytest.mark.parametrize("call", ["preview", "join"])
async def test_preview_and_join_errors(
    service: Service, api: AsyncClient, call: str, answer: Response, error: type[Exception]
) -> None:
    service.route("GET", PREVIEW_URL, answer)
    service.route("POST", JOIN_URL, answer)
    with pytest.raises(error):
        await getattr(api.rooms, call)(JOIN_TOKEN)


async def test_join_of_a_full_room_is_a_server_error(service: Service, api: AsyncClient) -> None:
    service.route("POST", JOIN_URL, json_body(neo_error_body("Room is full", 400), 400))
    with pytest.raises(ServerError, match="Room is full") as caught:
        await api.rooms.join(JOIN_TOKEN)
    assert not isinstance(caught.value, NotFound)


# ---- history ------------------------------------------------------------------------------------


def _three_pages(service: Service) -> list[Request]:
    """``/turns/`` in three pages, newest first (§7.3); returns the requests it saw."""
    seen: list[Request] = []
    pages = {
        None: page([history_turn("t6", "six"), history_turn("t5", "five", human=True)], "p2"),
        "p2": page([history_turn("t4", "four"), history_turn("t3", "three", human=True)], "p3"),
        "p3": page([history_turn("t2", "two"), history_turn("t1", "one", human=True)], None),
    }

    def answer(request: Request) -> Response:
        seen.append(request)
        return pages[(request.params or {}).get("next_token")]

    service.route("GET", TURNS_URL, answer)
    return seen


@pytest.mark.parametrize("as_object", [False, True], ids=["id", "Room"])
async def test_history_reads_every_page_and_returns_oldest_first(
    service: Service, api: AsyncClient, as_object: bool
) -> None:
    seen = _three_pages(service)
    turns = await api.rooms.history(ROOM if as_object else ROOM_ID)
    assert [t.turn_id for t in turns] == ["t1", "t2", "t3", "t4", "t5", "t6"]
    assert turns[0] == model_turn("t1", "one", human=True)
    assert [(r.method, r.url, r.params, r.json) for r in seen] == [
        ("GET", TURNS_URL, None, None),
        ("GET", TURNS_URL, {"next_token": "p2"}, None),
        ("GET", TURNS_URL, {"next_token": "p3"}, None),
    ]


async def test_history_with_all_candidates_asks_for_them_on_every_page(
    service: Service, api: AsyncClient
) -> None:
    seen = _three_pages(service)
    await api.rooms.history(ROOM_ID, all_candidates=True)
    assert [r.params for r in seen] == [
        {"candidate_filter": "all"},
        {"next_token": "p2", "candidate_filter": "all"},
        {"next_token": "p3", "candidate_filter": "all"},
    ]


async def test_iter_history_yields_pages_newest_first(service: Service, api: AsyncClient) -> None:
    _three_pages(service)
    pages = [[t.turn_id for t in p] async for p in api.rooms.iter_history(ROOM_ID)]
    assert pages == [["t6", "t5"], ["t4", "t3"], ["t2", "t1"]]


@pytest.mark.parametrize(
    "last",
    [
        page([], "p9"),  # an empty page ends it whatever its token
        json_body({"turns": []}),
        json_body({"turns": [], "meta": {}}),
    ],
)
async def test_history_ends_on_an_empty_page_or_no_token(
    service: Service, api: AsyncClient, last: Response
) -> None:
    service.route("GET", TURNS_URL, page([history_turn("t2", "two")], "p2"), last)
    assert [t.turn_id for t in await api.rooms.history(ROOM_ID)] == ["t2"]
    assert service.hits[("GET", TURNS_URL)] == 2


async def test_history_of_an_empty_room(service: Service, api: AsyncClient) -> None:
    service.route("GET", TURNS_URL, page([], None))
    assert await api.rooms.history(ROOM_ID) == []


async def test_a_repeated_cursor_is_a_protocol_error_not_a_loop(
    service: Service, api: AsyncClient
) -> None:
    service.route("GET", TURNS_URL, page([history_turn("t2", "two")], "same"))
    with pytest.raises(ProtocolError, match="repeated"):
        await api.rooms.history(ROOM_ID)
    assert service.hits[("GET", TURNS_URL)] == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (json_body(neo_error_body("Chat not found", 404), 404), RoomNotFound),
        (json_body(neo_error_body("Room not found", 404), 404), RoomNotFound),
        (json_body(neo_error_body("Invalid next_token", 400), 400), ServerError),
        (json_body({"turns": "none"}), ProtocolError),
        (unauthorized(), AuthError),
    ],
)
async def test_history_errors(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("GET", TURNS_URL, answer)
    with pytest.raises(error):
        await api.rooms.history(ROOM_ID)
    with pytest.raises(error):
        [p async for p in api.rooms.iter_history(ROOM_ID)]


async def test_history_refused_in_band_is_room_not_found(
    service: Service, api: AsyncClient
) -> None:
    service.route("GET", TURNS_URL, json_body(neo_error_body("Chat not found", 404)))
    with pytest.raises(RoomNotFound):
        await api.rooms.history(ROOM_ID)


async def test_a_failure_on_a_later_page_fails_the_whole_history(
    service: Service, api: AsyncClient
) -> None:
    later = json_body(neo_error_body("Invalid next_token", 400), 400)
    service.route("GET", TURNS_URL, page([history_turn("t2", "two")], "p2"), later)
    with pytest.raises(ServerError, match="Invalid next_token"):
        await api.rooms.history(ROOM_ID)


# ---- validation before any I/O ------------------------------------------------------------------

BAD_IDS: list[Any] = ["", "a/b", "..", "x?y", "a b\n", 5, None, b"room"]

INVALID: dict[str, Callable[[AsyncClient], Awaitable[Any]]] = {
    "get(Room with a bad id)": lambda api: api.rooms.get(Room(id="a/b")),
    "create([])": lambda api: api.rooms.create([]),
    "create('')": lambda api: api.rooms.create(""),
    "create([id, ''])": lambda api: api.rooms.create([CHARACTER_ID, ""]),
    "create([id, 5])": lambda api: api.rooms.create([CHARACTER_ID, 5]),  # type: ignore[list-item]
    "create(visibility)": lambda api: api.rooms.create(CHARACTER_ID, visibility="PUBLIC"),
    "create(anyone_can_join='yes')": lambda api: api.rooms.create(
        CHARACTER_ID,
        anyone_can_join="yes",  # type: ignore[arg-type]
    ),
    "create(require_approval=1)": lambda api: api.rooms.create(
        CHARACTER_ID,
        require_approval=1,  # type: ignore[arg-type]
    ),
    "create(timeout=-1)": lambda api: api.rooms.create(CHARACTER_ID, timeout=-1),
    "rename('')": lambda api: api.rooms.rename(ROOM_ID, ""),
    "rename(blank)": lambda api: api.rooms.rename(ROOM_ID, " \n\t"),
    "rename(5)": lambda api: api.rooms.rename(ROOM_ID, 5),  # type: ignore[arg-type]
    "rename(None)": lambda api: api.rooms.rename(ROOM_ID, None),  # type: ignore[arg-type]
    "add_character('')": lambda api: api.rooms.add_character(ROOM_ID, ""),
    "add_character('a/b')": lambda api: api.rooms.add_character(ROOM_ID, "a/b"),
    "remove_character(None)": lambda api: api.rooms.remove_character(
        ROOM_ID,
        None,  # type: ignore[arg-type]
    ),
    "update_settings()": lambda api: api.rooms.update_settings(ROOM_ID),
    "update_settings(1)": lambda api: api.rooms.update_settings(
        ROOM_ID,
        anyone_can_join=1,  # type: ignore[arg-type]
    ),
    "update_settings('false')": lambda api: api.rooms.update_settings(
        ROOM_ID,
        auto_smart_reply=True,
        smart_reply_timer="false",  # type: ignore[arg-type]
    ),
    "preview('')": lambda api: api.rooms.preview(""),
    "preview(None)": lambda api: api.rooms.preview(None),  # type: ignore[arg-type]
    "join('a/b')": lambda api: api.rooms.join("a/b"),
    "join(5)": lambda api: api.rooms.join(5),  # type: ignore[arg-type]
    "history(timeout=-1)": lambda api: api.rooms.history(ROOM_ID, timeout=-1),
    "history(timeout='5')": lambda api: api.rooms.history(
        ROOM_ID,
        timeout="5",  # type: ignore[arg-type]
    ),
}


@pytest.mark.parametrize("call", list(INVALID))
async def test_invalid_arguments_fail_before_any_request(
    api: AsyncClient, transport: MockTransport, call: str
) -> None:
    with pytest.raises(ValidationError):
        await INVALID[call](api)
    assert transport.sent == [] and transport.sockets == []


ROOM_CALLS: dict[str, Callable[[AsyncClient, Any], Awaitable[Any]]] = {
    "get": lambda api, room: api.rooms.get(room),
    "delete": lambda api, room: api.rooms.delete(room),
    "rename": lambda api, room: api.rooms.rename(room, "Garden party"),
    "add_character": lambda api, room: api.rooms.add_character(room, CHARACTER_3),
    "remove_character": lambda api, room: api.rooms.remove_character(room, CHARACTER_2),
    "update_settings": lambda api, room: api.rooms.update_settings(room, anyone_can_join=False),
    "join_token": lambda api, room: api.rooms.join_token(room),
    "history": lambda api, room: api.rooms.history(room),
    "send": lambda api, room: api.rooms.send(room, "hello"),
    "generate": lambda api, room: api.rooms.generate(room),
    "delete_turns": lambda api, room: api.rooms.delete_turns(room, "t1"),
}


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
@pytest.mark.parametrize("call", list(ROOM_CALLS))
async def test_a_bad_room_fails_before_any_request(
    api: AsyncClient, transport: MockTransport, call: str, bad: Any
) -> None:
    with pytest.raises(ValidationError):
        await ROOM_CALLS[call](api, bad)
    assert transport.sent == [] and transport.sockets == []


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_a_bad_room_fails_when_the_iterator_is_made(
    api: AsyncClient, transport: MockTransport, bad: Any
) -> None:
    with pytest.raises(ValidationError):
        api.rooms.iter_history(bad)
    with pytest.raises(ValidationError):
        api.rooms.stream_generate(bad)
    assert transport.sent == []


@pytest.mark.parametrize("timeout", [-1, 0, float("nan"), "5"], ids=repr)
def test_a_bad_timeout_fails_when_the_iterator_is_made(
    api: AsyncClient, transport: MockTransport, timeout: Any
) -> None:
    with pytest.raises(ValidationError):
        api.rooms.iter_history(ROOM_ID, timeout=timeout)
    with pytest.raises(ValidationError):
        api.rooms.stream_generate(ROOM_ID, timeout=timeout)
    with pytest.raises(ValidationError):
        api.rooms.stream(ROOM_ID, "hi", timeout=timeout)
    assert transport.sent == []


@pytest.mark.parametrize("field", ["title", "description"])
async def test_create_checks_the_type_of_its_texts(
    api: AsyncClient, transport: MockTransport, field: str
) -> None:
    with pytest.raises(ValidationError):
        await api.rooms.create(CHARACTER_ID, **{field: 5})  # type: ignore[arg-type]
    assert transport.sent == []


async def test_create_checks_greeting_is_a_bool(api: AsyncClient, transport: MockTransport) -> None:
    with pytest.raises(ValidationError):
        await api.rooms.create(CHARACTER_ID, greeting="no")  # type: ignore[arg-type]
    assert transport.sent == []


@pytest.mark.parametrize("characters", [5, None])
async def test_create_with_characters_not_ids_is_a_validation_error(
    api: AsyncClient, transport: MockTransport, characters: Any
) -> None:
    with pytest.raises(ValidationError):
        await api.rooms.create(characters)
    assert transport.sent == []


# ---- the rooms socket (Centrifugo over MockTransport's WebSocket) -------------------------------

RpcScript = Callable[["Centrifugo", int, dict[str, Any]], None]
FAST_RECONNECT = Backoff(initial=0.001, factor=1.0, max_delay=0.001, jitter=0.0, attempts=2)


class Centrifugo:
    """The rooms socket's server side as §9 describes it: the connect reply, subscriptions
    (refused with 103 for rooms not in ``rooms``), and rpcs answered by ``scripts`` keyed
    by the envelope's command. ``commands`` holds every object the client sent, decoded."""

    def __init__(self, rooms: tuple[str, ...] = (ROOM_ID,), **scripts: RpcScript) -> None:
        self.rooms = rooms
        self.scripts = dict(scripts)
        self.commands: list[dict[str, Any]] = []
        self.ws: MockWebSocket | None = None

    def __call__(self, frame: bytes, ws: MockWebSocket) -> None:
        self.ws = ws
        decoder, text, at = json.JSONDecoder(), frame.decode(), 0
        while at < len(text):  # a frame may hold several objects
            message, at = decoder.raw_decode(text, at)
            self.commands.append(message)
            self._answer(message)

    def _answer(self, message: dict[str, Any]) -> None:
        command_id: int = message["id"]
        if "connect" in message:
            connected = {"client": "5d3b", "version": "5.4.9", "ping": 25, "pong": True}
            self.send({"id": command_id, "connect": connected})
        elif "subscribe" in message:
            channel = message["subscribe"]["channel"]
            if channel.removeprefix("room:") in self.rooms:
                result = {"recoverable": True, "epoch": "ep1", "positioned": True, "offset": 0}
                self.send({"id": command_id, "subscribe": result})
            else:
                self.error(command_id, 103, "permission denied")
        elif "rpc" in message:
            envelope = message["rpc"]["data"]
            script = self.scripts.get(envelope["command"])
            if script is not None:
                script(self, command_id, envelope)

    # --- what scripts send ---------------------------------------------------------------

    def send(self, obj: dict[str, Any]) -> None:
        assert self.ws is not None
        self.ws.push(json.dumps(obj))

    def ack(self, command_id: int, request_id: str) -> None:
        self.send({"id": command_id, "rpc": {"data": {"request_id": request_id}}})

    def error(self, command_id: int, code: int, message: str) -> None:
        self.send({"id": command_id, "error": {"code": code, "message": message}})

    def publish(
        self, command: str, request_id: str | None, turn: dict[str, Any], offset: int
    ) -> None:
        data = {
            "turn": turn,
            "chat_info": {"type": "TYPE_MU_ROOM"},
            "command": command,
            "request_id": request_id,
        }
        pub = {"data": data, "offset": offset}
        self.send({"push": {"channel": f"room:{ROOM_ID}", "pub": pub}})

    # --- what the test reads -------------------------------------------------------------

    def rpcs(self, command: str | None = None) -> list[dict[str, Any]]:
        """The envelopes of the rpcs sent (of ``command``), in order."""
        found = [m["rpc"]["data"] for m in self.commands if "rpc" in m]
        return [e for e in found if command is None or e["command"] == command]


def room_turn(
    turn_id: str, text: str, *, final: bool, author: str = CHARACTER_ID, human: bool = False
) -> dict[str, Any]:
    """A turn as a room publication carries it."""
    cand: dict[str, Any] = {"candidate_id": f"{turn_id}-c", "raw_content": text}
    if final:
        cand["is_final"] = True
    who: dict[str, Any] = {"author_id": author, "name": "ada_l" if human else "Sage"}
    if human:
        who["is_human"] = True
    return {
        "turn_key": {"chat_id": ROOM_ID, "turn_id": turn_id},
        "create_time": "2025-02-01T09:00:00Z",
        "last_update_time": "2025-02-01T09:00:01Z",
        "state": "STATE_OK",
        "author": who,
        "candidates": [cand],
        "primary_candidate_id": f"{turn_id}-c",
    }


def generating(*texts: str, turn_id: str = "bot-1", author: str = CHARACTER_ID) -> RpcScript:
    """Answers ``generate_turn``: the ack, then ``texts`` as cumulative publications
    (``add_turn`` first, the last one final)."""

    def script(server: Centrifugo, command_id: int, envelope: dict[str, Any]) -> None:
        rid = envelope["request_id"]
        server.ack(command_id, rid)
        for index, text in enumerate(texts):
            final = index == len(texts) - 1
            command = "add_turn" if index == 0 else "update_turn"
            turn = room_turn(turn_id, text, final=final, author=author)
            server.publish(command, rid, turn, offset=index + 1)

    return script


def stored() -> RpcScript:
    """Answers ``create_turn``: the ack, then the user's turn published as stored."""

    def script(server: Centrifugo, command_id: int, envelope: dict[str, Any]) -> None:
        rid = envelope["request_id"]
        server.ack(command_id, rid)
        turn = json.loads(json.dumps(envelope["payload"]["turn"]))
        turn["candidates"][0]["is_final"] = True
        server.publish("add_turn", rid, turn, offset=1)

    return script


def refusing(code: int, message: str) -> RpcScript:
    """Answers any rpc with a Centrifugo error carrying a neo-style code and comment (§9)."""

    def script(server: Centrifugo, command_id: int, envelope: dict[str, Any]) -> None:
        server.error(command_id, code, message)

    return script


@pytest.fixture
def centrifugo() -> Centrifugo:
    return Centrifugo()


@pytest.fixture
async def live(centrifugo: Centrifugo) -> AsyncIterator[tuple[AsyncClient, MockTransport]]:
    transport = MockTransport(Service().me(), websocket=centrifugo)
    async with make_client(transport, reconnect=FAST_RECONNECT) as client:
        yield client, transport


async def test_generate_opens_the_rooms_socket_subscribes_and_sends_the_rpc(
    centrifugo: Centrifugo, live: tuple[AsyncClient, MockTransport]
) -> None:
    api, transport = live
    centrifugo.scripts["generate_turn"] = generating("Hel", "Hello", "Hello all")
    await api.rooms.generate(ROOM_ID, CHARACTER_2, timeout=5)
    [ws] = transport.sockets
    assert ws.url == "wss://neo.character.ai/connection/websocket"
    assert ws.headers == {"Cookie": f'HTTP_AUTHORIZATION="Token {TOKEN}"; edge_rollout=60'}
    connect, subscribe, rpc = centrifugo.commands
    assert connect == {"connect": {"name": "js"}, "id": connect["id"]}
    assert subscribe == {"subscribe": {"channel": f"room:{ROOM_ID}"}, "id": subscribe["id"]}
    assert set(rpc) == {"rpc", "id"} and rpc["rpc"]["method"] == "unused_command"
    assert len({connect["id"], subscribe["id"], rpc["id"]}) == 3
    envelope = rpc["rpc"]["data"]
    assert set(envelope) == {"command", "request_id", "origin_id", "payload"}
    assert (envelope["command"], envelope["origin_id"]) == ("generate_turn", "web-next")
    assert UUID.fullmatch(envelope["request_id"])
    assert envelope["payload"] == {
        "chat_type": "TYPE_MU_ROOM",
        "chat_id": ROOM_ID,
        "character_id": CHARACTER_2,
    }


async def test_generate_without_a_character_asks_for_a_smart_reply(
    centrifugo: Centrifugo, live: tuple[AsyncClient, MockTransport]
) -> None:
    api, _ = live
    centrifugo.scripts["generate_turn"] = generating("Hi")
    await api.rooms.generate(ROOM, timeout=5)
    [envelope] = centrifugo.rpcs("generate_turn")
    assert envelope["payload"] == {
        "chat_type": "TYPE_MU_ROOM",
        "chat_id": ROOM_ID,
        "user_name": "",
        "smart_reply": "CHARACTERS",
        "smart_reply_delay": 0,
    }


async def test_a_generations_publications_make_the_reply_turn(
    centrifugo: Centrifugo, live: tuple[AsyncClient, MockTransport]
) -> None:
    api, _ = live
    centrifugo.scripts["generate_turn"] = generating(
        "Hel", "Hello", "Hello all", author=CHARACTER_2
    )
    reply = await api.rooms.generate(ROOM_ID, timeout=5)
    assert reply == Turn(
        turn_key=TurnKey(chat_id=ROOM_ID, turn_id="bot-1"),
        author=Author(author_id=CHARACTER_2, name="Sage"),
        candidates=[Candidate(candidate_id="bot-1-c", raw_content="Hello all", is_final=True)],
        primary_candidate_id="bot-1-c",
        create_time=datetime(2025, 2, 1, 9, tzinfo=timezone.utc),
        last_update_time=datetime(2025, 2, 1, 9, 0, 1, tzinfo=timezone.utc),
    )


async def test_stream_generate_yields_the_deltas(
    centrifugo: Centrifugo, live: tuple[AsyncClient, MockTransport]
) -> None:
    api, _ = live
    centrifugo.scripts["generate_turn"] = generating("Hel", "Hello", "Hello all")
    chunks = [c async for c in api.rooms.stream_generate(ROOM_ID, CHARACTER_ID, timeout=5)]
    assert [c.delta for c in chunks] == ["Hel", "lo", " all"]
    assert [c.final for c in chunks] == [False, False, True]
    assert chunks[-1].turn.turn_id == "bot-1" and chunks[-1].text == "Hello all"


async def test_a_generation_skips_other_requests_and_user_turns(
    centrifugo: Centrifugo, live: tuple[AsyncClient, MockTransport]
) -> None:
    def script(server: Centrifugo, command_id: int, envelope: dict[str, Any]) -> None:
        rid = envelope["request_id"]
        server.ack(command_id, rid)
        other = room_turn("other-1", "Not yours", final=True)
        server.publish("add_turn", "someone-elses-request", other, offset=1)
        mine = room_turn("u-1", "a user's turn", final=True, author=OTHER_USER, human=True)
        server.publish("add_turn", rid, mine, offset=2)
        server.publish("add_turn", rid, room_turn("bot-1", "Yours", final=True), offset=3)

    api, _ = live
    centrifugo.scripts["generate_turn"] = script
    reply = await api.rooms.generate(ROOM_ID, timeout=5)
    assert (reply.turn_id, reply.text) == ("bot-1", "Yours")


async def test_send_posts_create_turn_and_returns_the_stored_turn(
    centrifugo: Centrifugo, live: tuple[AsyncClient, MockTransport]
) -> None:
    api, transport = live
    centrifugo.scripts["create_turn"] = stored()
    mine = await api.rooms.send(ROOM_ID, "Hello, both of you! «ü»", timeout=5)
    [envelope] = centrifugo.rpcs("create_turn")
    payload = envelope["payload"]
    turn = payload["turn"]
    turn_id, candidate_id = turn["turn_key"]["turn_id"], turn["primary_candidate_id"]
    assert all(UUID.fullmatch(x) for x in (envelope["request_id"], turn_id, candidate_id))
    assert payload == {
        "chat_type": "TYPE_MU_ROOM",
        "character_id": "",
        "num_candidates": 1,
        "tts_enabled": False,
        "selected_language": "",
        "user_name": "",
        "previous_annotations": payload["previous_annotations"],
        "turn": {
            "turn_key": {"chat_id": ROOM_ID, "turn_id": turn_id},
            "author": {"author_id": USER_ID, "is_human": True, "name": ""},
            "candidates": [
                {"candidate_id": candidate_id, "raw_content": "Hello, both of you! «ü»"}
            ],
            "primary_candidate_id": candidate_id,
        },
    }
    assert set(payload["previous_annotations"].values()) == {0}
    assert mine.turn_id == turn_id and mine.is_human and mine.text == "Hello, both of you! «ü»"
    # The author id came from one account lookup; no other REST call was made.
    assert [s.request.url for s in transport.sent] == ["https://plus.character.ai/chat/user/"]


async def test_stream_sends_the_message_then_streams_the_reply(
    centrifugo: Centrifugo, live: tuple[AsyncClient, MockTransport]
) -> None:
    api, _ = live
    centrifugo.scripts["create_turn"] = stored()
    centrifugo.scripts["generate_turn"] = generating("Oh", "Oh hi")
    chunks = [c async for c in api.rooms.stream(ROOM_ID, "hi", character=CHARACTER_ID, timeout=5)]
    assert [c.delta for c in chunks] == ["Oh", " hi"]
    assert [e["command"] for e in centrifugo.rpcs()] == ["create_turn", "generate_turn"]
    assert centrifugo.rpcs("generate_turn")[0]["payload"]["character_id"] == CHARACTER_ID


@pytest.mark.parametrize(
    ("command", "code", "message", "error"),
    [
        ("generate_turn", 404, "Character not found", CharacterNotFound),
        ("generate_turn", 404, "Room not found", RoomNotFound),
        ("generate_turn", 429, "Rate limit exceeded", RateLimited),
        ("generate_turn", 429, "Slow down", RateLimited),  # the code alone says so
        ("generate_turn", 400, "Invalid payload: chat_id", ServerError),
        ("create_turn", 400, "Self harm message detected", Filtered),
        ("create_turn", 404, "Room not found", RoomNotFound),
    ],
)
async def test_an_rpc_error_is_the_typed_error(
    centrifugo: Centrifugo,
    live: tuple[AsyncClient, MockTransport],
    command: str,
    code: int,
    message: str,
    error: type[Exception],
) -> None:
    api, _ = live
    centrifugo.scripts[command] = refusing(code, message)
    call = (
        api.rooms.generate(ROOM_ID, timeout=5)
        if command == "generate_turn"
        else api.rooms.send(ROOM_ID, "hello", timeout=5)
    )
    with pytest.raises(error, match=message):
        await call
    assert len(centrifugo.rpcs(command)) == 1  # refused, not sent again
    assert api._core.rooms_socket.in_flight == 0


async def test_a_refused_subscription_is_room_not_found_and_sends_no_rpc(
    centrifugo: Centrifugo, live: tuple[AsyncClient, MockTransport]
) -> None:
    api, _ = live
    centrifugo.scripts["generate_turn"] = generating("never")
    with pytest.raises(RoomNotFound):
        await api.rooms.generate(OTHER_ROOM, timeout=5)
    assert centrifugo.rpcs() == []


async def test_a_character_outside_the_rooms_cast_fails_before_any_io(
    live: tuple[AsyncClient, MockTransport],
) -> None:
    api, transport = live
    with pytest.raises(ValidationError, match="not in room"):
        await api.rooms.generate(ROOM, CHARACTER_3)
    with pytest.raises(ValidationError):
        api.rooms.stream_generate(ROOM_ID, "a/b")
    with pytest.raises(ValidationError):
        api.rooms.stream(ROOM_ID, "   ")
    assert transport.sent == [] and transport.sockets == []
