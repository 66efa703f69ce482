"""The emulator's limits (docs/emulator.md "Limits"): keepalives that cannot loop, hostile
JSON, bounded work per socket, frame sizes and query numbers. Regression tests of issue 10
items 2, 6/17 and 16, driven by aiohttp's own client."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from caiclient.emulator import Emulator
from caiclient.emulator.chat.connection import MAX_CLIENT_FRAME, MAX_IN_FLIGHT
from caiclient.emulator.rooms import ROOMS

WS = aiohttp.ClientWebSocketResponse
DEEP_ARRAY = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f'HTTP_AUTHORIZATION="Token {token}"; edge_rollout=60'}


@pytest.fixture
async def ws(emu: Emulator, http: aiohttp.ClientSession) -> AsyncIterator[WS]:
    async with http.ws_connect(f"{emu.url}/neo/ws/", headers=cookie(emu.token)) as sock:
        yield sock


async def recv(ws: WS, timeout: float = 5) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    frame: dict[str, Any] = json.loads(msg.data)
    return frame


async def new_chat(ws: WS, emu: Emulator) -> str:
    chat_id = str(uuid.uuid4())
    chat = {"chat_id": chat_id, "character_id": emu.character("Echo").id}
    payload = {"chat": chat, "with_greeting": False}
    await ws.send_str(json.dumps({"command": "create_chat", "request_id": "c", "payload": payload}))
    assert (await recv(ws))["command"] == "create_chat_response"
    return chat_id


def message(emu: Emulator, chat_id: str, text: str, request_id: str) -> str:
    candidate = str(uuid.uuid4())
    turn = {
        "turn_key": {"chat_id": chat_id, "turn_id": str(uuid.uuid4())},
        "author": {"author_id": emu.user_id, "is_human": True, "name": ""},
        "candidates": [{"candidate_id": candidate, "raw_content": text}],
        "primary_candidate_id": candidate,
    }
    payload = {"character_id": emu.character("Echo").id, "turn": turn}
    return json.dumps(
        {"command": "create_and_generate_turn", "request_id": request_id, "payload": payload}
    )


# ---- item 2: keepalives cannot loop ---------------------------------------------------------


async def count_echoed_frames(ws: WS, seconds: float) -> int:
    """Act like a client that answers every ``{}`` with ``{}``; frames received meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    received = 0
    await ws.send_str("{}")  # our idle probe starts the exchange
    while (left := deadline - loop.time()) > 0:
        try:
            msg = await ws.receive(timeout=left)
        except asyncio.TimeoutError:
            break
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        received += 1
        if msg.data == "{}":
            await ws.send_str("{}")
    return received


async def test_defect_02_an_echoing_client_gets_a_bounded_number_of_keepalives(ws: WS) -> None:
    # One answer per second at most: ~10 in 10 s, where the old emulator sent thousands.
    assert 1 <= await count_echoed_frames(ws, 10.0) <= 12


async def test_defect_02_centrifugo_pongs_are_never_answered(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.app[ROOMS].ping_interval = 0.1
    url = f"{emu.url}/neo/connection/websocket"
    async with http.ws_connect(url, headers=cookie(emu.token)) as sock:
        await sock.send_str('{"connect": {"name": "js"}, "id": 1}')
        assert "connect" in await recv(sock)
        # The server's pings, each answered: about 10 in 1 s, none caused by our pongs.
        assert 1 <= await count_echoed_frames(sock, 1.0) <= 14
        assert not sock.closed  # every ping was answered, so no "no pong" close


# ---- item 16: hostile input ------------------------------------------------------------------


@pytest.mark.parametrize("frame", [DEEP_ARRAY, DEEP_OBJECT])
async def test_defect_16_deeply_nested_json_on_the_chat_socket(
    emu: Emulator, ws: WS, frame: str
) -> None:
    await ws.send_str(frame)
    error = await recv(ws)
    assert (error["command"], error["comment"], error["request_id"]) == (
        "neo_error",
        "Invalid message",
        None,
    )
    chat_id = await new_chat(ws, emu)  # the socket still serves
    assert chat_id


@pytest.mark.parametrize("frame", [DEEP_ARRAY, DEEP_OBJECT, '{"id": 5, "rpc": ' + DEEP_OBJECT])
async def test_defect_16_deeply_nested_json_on_the_rooms_socket(
    emu: Emulator, http: aiohttp.ClientSession, frame: str
) -> None:
    url = f"{emu.url}/neo/connection/websocket"
    async with http.ws_connect(url, headers=cookie(emu.token)) as sock:
        await sock.send_str('{"connect": {"name": "js"}, "id": 1}')
        assert "connect" in await recv(sock)
        await sock.send_str(frame)  # malformed for Centrifugo: dropped, as any malformed frame
        await sock.send_str('{"subscribe": {"channel": "user#' + emu.user_id + '"}, "id": 2}')
        assert (await recv(sock))["id"] == 2


@pytest.mark.parametrize(
    "path", ["/plus/chat/user/update/", "/neo/turn/pin", "/beta/chat/auth/lazy/"]
)
async def test_defect_16_deeply_nested_json_on_rest_is_a_400(
    emu: Emulator, http: aiohttp.ClientSession, path: str
) -> None:
    headers = {"Authorization": f"Token {emu.token}", "Content-Type": "application/json"}
    async with http.post(emu.url + path, data=DEEP_ARRAY, headers=headers) as r:
        assert r.status == 400
        assert "nested too deeply" in await r.text()


async def test_defect_16_work_in_flight_per_socket_is_capped(emu: Emulator, ws: WS) -> None:
    emu.chunk_delay = 30.0  # the first reply holds the chat; every later send waits for it
    chat_id = await new_chat(ws, emu)
    extra = 20
    for n in range(MAX_IN_FLIGHT + extra):
        await ws.send_str(message(emu, chat_id, f"flood {n}", f"r{n}"))
    refused = []
    while len(refused) < extra:
        frame = await recv(ws)
        if frame["command"] == "neo_error":
            refused.append(frame)
    assert {(f["error_code"], f["retry_after_seconds"]) for f in refused} == {(429, 1)}
    assert [f["request_id"] for f in refused] == [
        f"r{n}" for n in range(MAX_IN_FLIGHT, MAX_IN_FLIGHT + extra)
    ]
    # An abort is never refused, and it frees the chat for the queued sends.
    await ws.send_str(
        json.dumps({"command": "abort_generation", "request_id": "r0", "payload": {}})
    )
    while True:
        frame = await recv(ws)
        if frame["request_id"] == "r0" and frame["command"] == "update_turn":
            assert frame["turn"]["candidates"][0]["aborted"] is True
            break


@pytest.mark.parametrize("value", ["9" * 5000, "-1", "1001", "²", "1e3", "0x10", " 5"])
async def test_defect_16_num_preview_turns_out_of_range_is_a_400(
    emu: Emulator, http: aiohttp.ClientSession, value: str
) -> None:
    params = {"character_ids": emu.character("Echo").id, "num_preview_turns": value}
    headers = {"Authorization": f"Token {emu.token}"}
    async with http.get(f"{emu.url}/neo/chats/", params=params, headers=headers) as r:
        assert r.status == 400
        assert "num_preview_turns" in (await r.json())["comment"]


@pytest.mark.parametrize("value", ["²", "9" * 5000, "0"])
async def test_defect_16_v1_page_num_out_of_range_is_a_400(
    emu: Emulator, http: aiohttp.ClientSession, value: str
) -> None:
    params = {"history_external_id": "x", "page_num": value}
    headers = {"Authorization": f"Token {emu.token}"}
    async with http.get(
        f"{emu.url}/plus/chat/history/msgs/user/", params=params, headers=headers
    ) as r:
        assert r.status == 400


# ---- items 6 and 17: frame sizes ------------------------------------------------------------


async def test_defect_06_a_frame_above_1_mib_closes_the_socket_with_1009(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(f"{emu.url}/neo/ws/", headers=cookie(emu.token)) as sock:
        chat_id = await new_chat(sock, emu)
        # Just under the limit is served, reply and all.
        text = "x" * (MAX_CLIENT_FRAME - 1000)
        await sock.send_str(message(emu, chat_id, text, "big"))
        frames = [await recv(sock) for _ in range(1 + emu.chunks)]
        assert frames[-1]["turn"]["candidates"][0]["raw_content"].startswith(text)
        await sock.send_str(message(emu, chat_id, "y" * MAX_CLIENT_FRAME, "too big"))
        msg = await sock.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert sock.close_code == 1009
