"""The chat socket ``/neo/ws/`` (PROTOCOL.md §8): upgrade auth, ``create_chat``, the
streamed generation, framing, history and recents; driven by aiohttp, not caiclient."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from caiclient.emulator import Emulator, SeedCharacter

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
NEO_404 = {
    "command": "neo_error",
    "comment": "Chat not found",
    "error_code": 404,
    "sub_code": None,
    "retry_after_seconds": None,
}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f'HTTP_AUTHORIZATION="Token {token}"; edge_rollout=60'}


@pytest.fixture
async def ws(
    emu: Emulator, http: aiohttp.ClientSession
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with http.ws_connect(f"{emu.url}/neo/ws/", headers=cookie(emu.token)) as sock:
        yield sock


async def recv(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    frame = json.loads(msg.data)
    assert isinstance(frame, dict)
    return frame


async def send(ws: aiohttp.ClientWebSocketResponse, command: str, payload: Any, rid: Any) -> None:
    await ws.send_str(json.dumps({"command": command, "request_id": rid, "payload": payload}))


async def new_chat(
    ws: aiohttp.ClientWebSocketResponse,
    emu: Emulator,
    character: SeedCharacter,
    *,
    greeting: bool = True,
    chat_id: str | None = None,
) -> str:
    chat_id = chat_id or str(uuid.uuid4())
    chat = {
        "chat_id": chat_id,
        "creator_id": emu.user_id,
        "visibility": "VISIBILITY_PRIVATE",
        "character_id": character.id,
        "type": "TYPE_ONE_ON_ONE",
    }
    await send(ws, "create_chat", {"chat": chat, "with_greeting": greeting}, "c-" + chat_id)
    assert (await recv(ws))["command"] == "create_chat_response"
    if greeting:
        assert (await recv(ws))["turn"]["candidates"][0]["raw_content"] == character.greeting
    return chat_id


def turn_payload(
    emu: Emulator, chat_id: str, text: str, character_id: str, turn_id: str | None = None
) -> dict[str, Any]:
    candidate_id = str(uuid.uuid4())
    return {
        "character_id": character_id,
        "num_candidates": 1,
        "tts_enabled": False,
        "selected_language": "",
        "user_name": emu.username,
        "turn": {
            "turn_key": {"chat_id": chat_id, "turn_id": turn_id or str(uuid.uuid4())},
            "author": {"author_id": emu.user_id, "is_human": True, "name": emu.username},
            "candidates": [{"candidate_id": candidate_id, "raw_content": text}],
            "primary_candidate_id": candidate_id,
        },
    }


async def until_final(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """Frames up to and including the final bot frame (or the first neo_error)."""
    frames = []
    while True:
        frame = await recv(ws)
        frames.append(frame)
        if frame["command"] == "neo_error":
            return frames
        turn = frame.get("turn", {})
        if "is_human" not in turn.get("author", {}) and turn["candidates"][0].get("is_final"):
            return frames


async def say(
    ws: aiohttp.ClientWebSocketResponse,
    emu: Emulator,
    chat_id: str,
    text: str,
    character: SeedCharacter,
    rid: str = "r",
) -> list[dict[str, Any]]:
    await send(ws, "create_and_generate_turn", turn_payload(emu, chat_id, text, character.id), rid)
    return await until_final(ws)


async def get_json(
    http: aiohttp.ClientSession, url: str, token: str | None, **params: str
) -> tuple[int, Any]:
    headers = auth(token) if token else {}
    async with http.get(url, headers=headers, params=params) as resp:
        return resp.status, await resp.json()


# ---- WebSocket auth -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Cookie": 'HTTP_AUTHORIZATION="Token ' + "f" * 40 + '"'},
        {"Authorization": "Token nope"},
    ],
)
async def test_ws_upgrade_refused(
    emu: Emulator, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        async with http.ws_connect(f"{emu.url}/neo/ws/", headers=headers):
            pass
    assert info.value.status == 403


@pytest.mark.parametrize(
    "style", ["quoted", "unquoted", "edge_rollout_first", "authorization_header"]
)
async def test_ws_auth_variants(emu: Emulator, http: aiohttp.ClientSession, style: str) -> None:
    headers = {
        "quoted": {"Cookie": f'HTTP_AUTHORIZATION="Token {emu.token}"'},
        "unquoted": {"Cookie": f"HTTP_AUTHORIZATION=Token {emu.token}"},
        "edge_rollout_first": {
            "Cookie": f'edge_rollout=60; HTTP_AUTHORIZATION="Token {emu.token}"'
        },
        "authorization_header": auth(emu.token),
    }[style]
    async with http.ws_connect(f"{emu.url}/neo/ws/", headers=headers) as sock:
        await sock.send_str("{}")
        assert await recv(sock) == {}


# ---- create_chat --------------------------------------------------------------------------


async def test_create_chat_with_greeting(
    emu: Emulator, ws: aiohttp.ClientWebSocketResponse
) -> None:
    sage = emu.character("Sage")
    chat_id = str(uuid.uuid4())
    chat = {"chat_id": chat_id, "creator_id": emu.user_id, "character_id": sage.id}
    await send(ws, "create_chat", {"chat": chat, "with_greeting": True}, "req-1")
    created = await recv(ws)
    assert created["command"] == "create_chat_response" and created["request_id"] == "req-1"
    assert set(created["chat"]) == {
        "chat_id", "create_time", "creator_id", "character_id", "state", "type",
        "visibility", "preferred_model_type",
    }  # fmt: skip
    assert created["chat"]["chat_id"] == chat_id
    assert created["chat"]["creator_id"] == emu.user_id
    assert created["chat"]["state"] == "STATE_ACTIVE"
    assert TS.match(created["chat"]["create_time"])
    greeting = await recv(ws)
    assert greeting["command"] == "add_turn" and greeting["request_id"] == "req-1"
    assert greeting["chat_info"] == {"type": "TYPE_ONE_ON_ONE"}
    turn = greeting["turn"]
    assert turn["author"] == {"author_id": sage.id, "name": sage.name}
    assert turn["candidates"][0]["raw_content"] == sage.greeting
    assert turn["candidates"][0]["is_final"] is True
    assert turn["turn_key"]["chat_id"] == chat_id


async def test_create_chat_without_greeting_sends_one_frame(
    emu: Emulator, ws: aiohttp.ClientWebSocketResponse
) -> None:
    chat = {"character_id": emu.character("Nova").id}  # no chat_id: the server mints one
    await send(ws, "create_chat", {"chat": chat, "with_greeting": False}, None)
    created = await recv(ws)
    assert created["command"] == "create_chat_response" and created["request_id"] is None
    uuid.UUID(created["chat"]["chat_id"], version=4)
    await ws.send_str("{}")
    assert await recv(ws) == {}  # nothing else was queued before the keepalive reply


async def test_create_chat_errors(emu: Emulator, ws: aiohttp.ClientWebSocketResponse) -> None:
    chat_id = await new_chat(ws, emu, emu.character("Echo"))
    chat = {"chat_id": chat_id, "character_id": emu.character("Echo").id}
    await send(ws, "create_chat", {"chat": chat, "with_greeting": True}, "dup")
    assert await recv(ws) == {
        "command": "neo_error",
        "request_id": "dup",
        "comment": "create_chat already exists",
        "error_code": 400,
        "sub_code": None,
        "retry_after_seconds": None,
    }
    chat = {"chat_id": str(uuid.uuid4()), "character_id": "x" * 43}
    await send(ws, "create_chat", {"chat": chat, "with_greeting": True}, "unknown")
    error = await recv(ws)
    assert error["command"] == "neo_error" and error["request_id"] == "unknown"
    assert (error["comment"], error["error_code"]) == ("Character not found", 404)


# ---- create_and_generate_turn -------------------------------------------------------------


async def test_generation_frame_order_and_fields(
    emu: Emulator, ws: aiohttp.ClientWebSocketResponse
) -> None:
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo)
    payload = turn_payload(emu, chat_id, "Hello there, Echo!", echo.id)
    await send(ws, "create_and_generate_turn", payload, "gen-1")
    frames = await until_final(ws)
    assert [f["command"] for f in frames] == ["add_turn"] * 2 + ["update_turn"] * 4
    assert all(f["request_id"] == "gen-1" for f in frames)

    user = frames[0]["turn"]
    assert user["turn_key"] == payload["turn"]["turn_key"]
    assert user["author"] == {"author_id": emu.user_id, "name": emu.username, "is_human": True}
    assert user["candidates"][0]["candidate_id"] == payload["turn"]["primary_candidate_id"]
    assert user["candidates"][0]["raw_content"] == "Hello there, Echo!"
    assert user["candidates"][0]["is_final"] is True
    assert user["state"] == "STATE_OK" and TS.match(user["create_time"])

    first = frames[1]
    assert first["chat_info"] == {"type": "TYPE_ONE_ON_ONE"}
    assert first["generation_mode"] == {"mode": "MODE_NORMAL", "remaining_quota_frac": 1.0}
    bot = first["turn"]
    assert bot["author"] == {"author_id": echo.id, "name": "Echo"}
    assert bot["turn_key"]["chat_id"] == chat_id
    assert bot["turn_key"]["turn_id"] != user["turn_key"]["turn_id"]
    candidate = bot["candidates"][0]
    assert set(candidate) == {"candidate_id", "create_time", "raw_content", "model_type"}
    assert bot["primary_candidate_id"] == candidate["candidate_id"]
    assert TS.match(bot["create_time"]) and TS.match(bot["last_update_time"])

    texts = [f["turn"]["candidates"][0]["raw_content"] for f in frames[1:]]
    assert all(a and b.startswith(a) and len(a) < len(b) for a, b in itertools.pairwise(texts))
    finals = [f["turn"]["candidates"][0].get("is_final") for f in frames[1:]]
    assert finals == [None] * 4 + [True]
    for frame in frames[2:]:
        assert frame["turn"]["turn_key"] == bot["turn_key"]
        assert frame["turn"]["candidates"][0]["candidate_id"] == candidate["candidate_id"]
        assert "is_human" not in frame["turn"]["author"]
        assert frame["generation_mode"]["mode"] == "MODE_NORMAL"
    assert texts[-1].startswith("Hello there, Echo!")
    assert texts[-1] == echo.reply("Hello there, Echo!", 1)


async def test_chunks_setting_controls_frame_count(
    emu: Emulator, ws: aiohttp.ClientWebSocketResponse
) -> None:
    emu.chunks = 3
    sage = emu.character("Sage")
    chat_id = await new_chat(ws, emu, sage)
    frames = await say(ws, emu, chat_id, "Any book about tides?", sage)
    assert [f["command"] for f in frames] == ["add_turn", "add_turn", "update_turn", "update_turn"]


async def test_replies_are_deterministic(
    emu: Emulator, ws: aiohttp.ClientWebSocketResponse
) -> None:
    captain = emu.character("Captain Byte")
    finals = []
    for _ in range(2):
        chat_id = await new_chat(ws, emu, captain)
        frames = await say(ws, emu, chat_id, "Where is the treasure?", captain)
        finals.append(frames[-1]["turn"]["candidates"][0]["raw_content"])
    assert finals[0] == finals[1] == captain.reply("Where is the treasure?", 1)


async def test_minimal_turn_payload_gets_minted_ids(
    emu: Emulator, ws: aiohttp.ClientWebSocketResponse
) -> None:
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo)
    payload = {
        "character_id": echo.id,
        "turn": {
            "turn_key": {"chat_id": chat_id},
            "author": {},
            "candidates": [{"raw_content": "hi"}],
        },
    }
    await ws.send_str(json.dumps({"command": "create_and_generate_turn", "payload": payload}))
    frames = await until_final(ws)
    assert all(f["request_id"] is None for f in frames)
    user = frames[0]["turn"]
    uuid.UUID(user["turn_key"]["turn_id"])
    assert user["primary_candidate_id"] == user["candidates"][0]["candidate_id"]
    assert frames[-1]["turn"]["candidates"][0]["raw_content"].startswith("hi")


async def test_generation_errors_keep_socket_open(
    emu: Emulator, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse
) -> None:
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo)
    turn_id = str(uuid.uuid4())
    await send(ws, "create_and_generate_turn", turn_payload(emu, chat_id, "a", echo.id, turn_id), 1)
    await until_final(ws)
    dup = "create_and_generate_turn already exists"
    cases = [
        (turn_payload(emu, chat_id, "again", echo.id, turn_id), dup, 400),
        (turn_payload(emu, str(uuid.uuid4()), "x", echo.id), "Chat not found", 404),
        (turn_payload(emu, chat_id, "x", emu.character("Sage").id), "Character not found", 404),
    ]  # fmt: skip
    for payload, comment, code in cases:
        await send(ws, "create_and_generate_turn", payload, comment)
        error = await recv(ws)
        assert error["command"] == "neo_error" and error["request_id"] == comment
        assert (error["comment"], error["error_code"]) == (comment, code)
    _, body = await get_json(http, f"{emu.url}/neo/turns/{chat_id}/", emu.token)
    assert len(body["turns"]) == 3  # greeting + one exchange: errors stored nothing


async def test_two_concurrent_generations_on_one_socket(
    emu: Emulator, ws: aiohttp.ClientWebSocketResponse
) -> None:
    emu.chunk_delay = 0.01
    echo, nova = emu.character("Echo"), emu.character("Nova")
    chat_a = await new_chat(ws, emu, echo)
    chat_b = await new_chat(ws, emu, nova)
    await send(ws, "create_and_generate_turn", turn_payload(emu, chat_a, "alpha", echo.id), "A")
    await send(ws, "create_and_generate_turn", turn_payload(emu, chat_b, "beta", nova.id), "B")
    by_request: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    while sum(len(v) for v in by_request.values()) < 12:
        frame = await recv(ws)
        by_request[frame["request_id"]].append(frame)
    for rid, chat_id, character, text in (
        ("A", chat_a, echo, "alpha"),
        ("B", chat_b, nova, "beta"),
    ):
        frames = by_request[rid]
        assert [f["command"] for f in frames] == ["add_turn"] * 2 + ["update_turn"] * 4
        assert {f["turn"]["turn_key"]["chat_id"] for f in frames} == {chat_id}
        assert frames[-1]["turn"]["candidates"][0]["raw_content"] == character.reply(text, 1)


async def test_same_chat_generations_are_serialised(
    emu: Emulator, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse
) -> None:
    emu.chunk_delay = 0.005
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo, greeting=False)
    for text in ("one", "two"):
        await send(ws, "create_and_generate_turn", turn_payload(emu, chat_id, text, echo.id), text)
    frames = [await recv(ws) for _ in range(12)]
    assert [f["request_id"] for f in frames] == ["one"] * 6 + ["two"] * 6
    _, body = await get_json(http, f"{emu.url}/neo/turns/{chat_id}/", emu.token)
    texts = [t["candidates"][0]["raw_content"] for t in reversed(body["turns"])]
    assert texts == ["one", echo.reply("one", 1), "two", echo.reply("two", 2)]


# ---- framing and keepalive ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "rid", "comment"),
    [
        ("not json", None, "Invalid message"),
        ("[1, 2]", None, "Invalid message"),
        ('"text"', None, "Invalid message"),
        ('{"command": "fly", "request_id": "m", "payload": {}}', "m", "Unknown command: fly"),
        ('{"command": "create_chat", "payload": {"chat": 5}}', None, None),
    ],
)  # fmt: skip
async def test_bad_frames_get_neo_error(
    ws: aiohttp.ClientWebSocketResponse, raw: str, rid: Any, comment: str | None
) -> None:
    await ws.send_str(raw)
    error = await recv(ws)
    assert error["command"] == "neo_error" and error["request_id"] == rid
    if comment is not None:
        assert error["comment"] == comment
    await ws.send_str("{}")
    assert await recv(ws) == {}


# ---- history and chats REST ---------------------------------------------------------------


async def test_history_newest_first_with_paging(
    emu: Emulator, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse
) -> None:
    emu.chunks = 2
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo)
    for i in range(30):
        await say(ws, emu, chat_id, f"message {i}", echo)
    url = f"{emu.url}/neo/turns/{chat_id}/"
    status, first = await get_json(http, url, emu.token)
    assert status == 200 and len(first["turns"]) == 50
    assert first["turns"][0]["candidates"][0]["raw_content"] == echo.reply("message 29", 30)
    assert first["turns"][1]["candidates"][0]["raw_content"] == "message 29"
    assert first["turns"][1]["author"]["is_human"] is True
    token = first["meta"]["next_token"]
    assert isinstance(token, str)
    status, second = await get_json(http, url, emu.token, next_token=token)
    assert status == 200 and len(second["turns"]) == 11 and second["meta"]["next_token"] is None
    assert second["turns"][-1]["candidates"][0]["raw_content"] == echo.greeting
    ids = [t["turn_key"]["turn_id"] for t in first["turns"] + second["turns"]]
    assert len(set(ids)) == 61
    assert all(t["candidates"][0]["is_final"] is True for t in first["turns"])
    status, bad = await get_json(http, url, emu.token, next_token="garbage!")
    assert status == 400 and bad["command"] == "neo_error"


async def test_foreign_and_unknown_chats_are_404(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    other = emu.store.add_user("other_user")
    sage = emu.character("Sage")
    async with http.ws_connect(f"{emu.url}/neo/ws/", headers=cookie(other.token)) as sock:
        chat_id = await new_chat(sock, emu, sage)
    for path in (f"/neo/turns/{chat_id}/", f"/neo/chat/{chat_id}/", f"/neo/turns/{uuid.uuid4()}/"):
        assert await get_json(http, emu.url + path, emu.token) == (404, NEO_404)
    status, body = await get_json(http, f"{emu.url}/neo/turns/{chat_id}/", other.token)
    assert status == 200 and len(body["turns"]) == 1
    async with http.ws_connect(f"{emu.url}/neo/ws/", headers=cookie(emu.token)) as sock:
        await send(sock, "create_and_generate_turn", turn_payload(emu, chat_id, "hi", sage.id), "x")
        error = await recv(sock)
        assert (error["command"], error["comment"]) == ("neo_error", "Chat not found")


async def test_recent_chats(
    emu: Emulator, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse
) -> None:
    echo, sage = emu.character("Echo"), emu.character("Sage")
    status, body = await get_json(http, f"{emu.url}/neo/chats/recent/{echo.id}", emu.token)
    assert (status, body) == (200, {})  # never chatted with Echo: no "chats" key
    old = await new_chat(ws, emu, echo)
    new = await new_chat(ws, emu, echo)
    sage_chat = await new_chat(ws, emu, sage)
    _, body = await get_json(http, f"{emu.url}/neo/chats/recent/{echo.id}", emu.token)
    assert [c["chat_id"] for c in body["chats"]] == [new, old]
    await say(ws, emu, old, "bump", echo)
    _, body = await get_json(http, f"{emu.url}/neo/chats/recent/{echo.id}", emu.token)
    assert [c["chat_id"] for c in body["chats"]] == [old, new]
    _, body = await get_json(http, f"{emu.url}/neo/chats/recent/", emu.token)
    assert [c["chat_id"] for c in body["chats"]] == [old, sage_chat, new]
    assert [c["character_name"] for c in body["chats"]] == ["Echo", "Sage", "Echo"]
    assert all("character_avatar_uri" in c for c in body["chats"])
    _, body = await get_json(http, f"{emu.url}/neo/chat/{old}/", emu.token)
    assert body["chat"]["chat_id"] == old and body["chat"]["character_id"] == echo.id


async def test_generation_is_stored_after_client_disconnects(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.chunk_delay = 0.05
    echo = emu.character("Echo")
    async with http.ws_connect(f"{emu.url}/neo/ws/", headers=cookie(emu.token)) as sock:
        chat_id = await new_chat(sock, emu, echo, greeting=False)
        await send(
            sock, "create_and_generate_turn", turn_payload(emu, chat_id, "bye", echo.id), "r"
        )
        assert (await recv(sock))["turn"]["author"]["is_human"] is True
        first_bot = await recv(sock)
        assert "is_final" not in first_bot["turn"]["candidates"][0]
    # The socket is closed mid-stream; the server must still finish and store the reply.
    url = f"{emu.url}/neo/turns/{chat_id}/"
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        _, body = await get_json(http, url, emu.token)
        if len(body["turns"]) == 2 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.02)
    assert len(body["turns"]) == 2
    bot = body["turns"][0]
    assert bot["turn_key"] == first_bot["turn"]["turn_key"]
    assert bot["candidates"][0]["raw_content"] == echo.reply("bye", 1)
    assert bot["candidates"][0]["is_final"] is True


async def test_stop_with_generation_in_flight_is_clean(http: aiohttp.ClientSession) -> None:
    emulator = Emulator(chunk_delay=10.0)
    await emulator.start()
    echo = emulator.character("Echo")
    url = f"{emulator.url}/neo/ws/"
    async with http.ws_connect(url, headers=cookie(emulator.token)) as sock:
        chat_id = await new_chat(sock, emulator, echo, greeting=False)
        payload = turn_payload(emulator, chat_id, "slow", echo.id)
        await send(sock, "create_and_generate_turn", payload, "r")
        assert (await recv(sock))["command"] == "add_turn"
        assert (await recv(sock))["command"] == "add_turn"
        await asyncio.wait_for(emulator.stop(), 5)
        assert (await sock.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE
    assert not emulator.state.tasks
