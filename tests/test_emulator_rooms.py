"""Group chats ("murooms") and the Centrifugo socket of the emulator (PROTOCOL.md §9),
driven by aiohttp's own client."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from caiclient.emulator import Emulator, SeedCharacter
from caiclient.emulator.characters import split_cumulative
from caiclient.emulator.rooms import ROOMS
from caiclient.emulator.rooms.socket import split_objects

ROOM_KEYS = {
    "id",
    "title",
    "description",
    "visibility",
    "picture",
    "characters",
    "users",
    "permissions",
    "preview_turns",
    "settings",
}
SETTINGS_KEYS = {
    "anyone_can_join",
    "require_approval",
    "auto_smart_reply",
    "smart_reply_timer",
    "join_token",
    "user_limit",
    "character_limit",
    "push_notification_mode",
}
ROOM_404 = {
    "command": "neo_error",
    "comment": "Room not found",
    "error_code": 404,
    "sub_code": None,
    "retry_after_seconds": None,
}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(chunk_delay=0.0, chunks=4) as emulator:
        yield emulator


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def cookie(token: str, quoted: bool = True) -> dict[str, str]:
    value = f'"Token {token}"' if quoted else f"Token {token}"
    return {"Cookie": f"HTTP_AUTHORIZATION={value}; edge_rollout=60"}


async def create(
    http: aiohttp.ClientSession, emu: Emulator, token: str, **overrides: Any
) -> dict[str, Any]:
    body = {
        "characters": [emu.character("Echo").id, emu.character("Sage").id],
        "title": "Tea party",
        "settings": {"anyone_can_join": True, "require_approval": False},
        "visibility": "VISIBILITY_UNLISTED",
        "with_greeting": True,
    }
    body.update(overrides)
    async with http.post(f"{emu.url}/neo/muroom/create", json=body, headers=auth(token)) as r:
        assert r.status == 200, await r.text()
        room: dict[str, Any] = await r.json()
        return room


async def rooms_of(http: aiohttp.ClientSession, emu: Emulator, token: str) -> list[Any]:
    url = f"{emu.url}/neo/murooms/?include_turns=false"
    async with http.get(url, headers=auth(token)) as r:
        assert r.status == 200
        rooms: list[Any] = (await r.json())["rooms"]
        return rooms


async def join(http: aiohttp.ClientSession, emu: Emulator, token: str, join_token: str) -> Any:
    body = {"join_token": join_token}
    async with http.post(f"{emu.url}/neo/muroom/join", json=body, headers=auth(token)) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def recv(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    frame: dict[str, Any] = json.loads(msg.data)  # one JSON object per frame
    return frame


async def open_socket(
    http: aiohttp.ClientSession, emu: Emulator, token: str, *channels: str
) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(f"{emu.url}/neo/connection/websocket", headers=cookie(token))
    await ws.send_str('{"connect":{"name":"js"},"id":1}')
    assert "connect" in await recv(ws)
    for n, channel in enumerate(channels, start=2):
        await ws.send_str(json.dumps({"subscribe": {"channel": channel}, "id": n}))
        reply = await recv(ws)
        assert reply["id"] == n and "subscribe" in reply, reply
    return ws


def rpc(command: str, payload: dict[str, Any], request_id: str, cid: int = 7) -> str:
    data = {"command": command, "request_id": request_id, "origin_id": "Android"}
    data["payload"] = {"chat_type": "TYPE_MU_ROOM", **payload}
    return json.dumps({"rpc": {"method": "unused_command", "data": data}, "id": cid})


def message(room_id: str, user_id: str, text: str) -> dict[str, Any]:
    turn_id = str(uuid.uuid4())
    return {
        "num_candidates": 1,
        "user_name": "emulator_user",
        "turn": {
            "turn_key": {"turn_id": turn_id, "chat_id": room_id},
            "author": {"author_id": user_id, "is_human": True, "name": "emulator_user"},
            "candidates": [{"candidate_id": turn_id, "raw_content": text}],
            "primary_candidate_id": turn_id,
        },
    }


def smart_reply(room_id: str) -> dict[str, Any]:
    return {
        "chat_id": room_id,
        "user_name": "emulator_user",
        "smart_reply": "CHARACTERS",
        "smart_reply_delay": 0,
    }


async def pushes_until_final(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = await recv(ws)
        assert set(frame) == {"push"}, frame
        frames.append(frame)
        if "is_final" in frame["push"]["pub"]["data"]["turn"]["candidates"][0]:
            return frames


# ---- REST -------------------------------------------------------------------------------


async def test_create_and_list_have_the_fields_of_section_9(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    echo, sage = emu.character("Echo"), emu.character("Sage")
    room = await create(http, emu, emu.token)
    assert set(room) == ROOM_KEYS
    uuid.UUID(room["id"])
    assert room["title"] == "Tea party" and room["visibility"] == "VISIBILITY_UNLISTED"
    assert room["characters"] == [
        {"id": echo.id, "name": "Echo", "avatar_url": echo.avatar_file_name},
        {"id": sage.id, "name": "Sage", "avatar_url": sage.avatar_file_name},
    ]
    assert room["users"] == [
        {
            "id": emu.user_id,
            "username": "emulator_user",
            "name": "Emulator User",
            "avatar_url": "",
            "role": "ROLE_OWNER",
            "state": "STATE_ACTIVE",
        }
    ]
    assert room["permissions"] == []
    settings = room["settings"]
    assert set(settings) == SETTINGS_KEYS
    assert settings["anyone_can_join"] is True and settings["require_approval"] is False
    assert settings["push_notification_mode"] == "PUSH_NOTIFICATION_MODE_UNSPECIFIED"
    assert isinstance(settings["join_token"], str) and settings["join_token"]
    # Greetings, newest first: Sage's then Echo's, authored by the characters.
    turns = room["preview_turns"]["turns"]
    assert [t["candidates"][0]["raw_content"] for t in turns] == [sage.greeting, echo.greeting]
    assert all(t["turn_key"]["chat_id"] == room["id"] for t in turns)
    assert turns[0]["author"] == {"author_id": sage.id, "name": "Sage"}
    assert turns[0]["candidates"][0]["is_final"] is True
    assert room["preview_turns"]["meta"] == {"next_token": None}

    listed = await rooms_of(http, emu, emu.token)
    assert [r["id"] for r in listed] == [room["id"]]
    assert listed[0]["preview_turns"] == {"turns": [], "meta": {"next_token": None}}
    async with http.get(f"{emu.url}/neo/murooms/", headers=auth(emu.token)) as r:
        assert len((await r.json())["rooms"][0]["preview_turns"]["turns"]) == 2


async def test_create_without_greeting_and_errors(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    room = await create(http, emu, emu.token, with_greeting=False)
    assert room["preview_turns"]["turns"] == []
    url = f"{emu.url}/neo/muroom/create"
    async with http.post(url, json={"characters": []}, headers=auth("nope")) as r:
        assert r.status == 401 and await r.json() == {"detail": "Invalid token."}
    # Another user's private character reads exactly like a missing one.
    secret = SeedCharacter(
        id="x" * 43,
        name="Secret",
        title="",
        greeting="hi",
        description="",
        avatar_file_name="",
        style="generic",
        visibility="PRIVATE",
        creator_id="999",
    )
    emu.store.characters[secret.id] = secret
    for ids in (["y" * 43], [secret.id]):
        async with http.post(url, json={"characters": ids}, headers=auth(emu.token)) as r:
            assert r.status == 404
            assert (await r.json())["comment"] == "Character not found"
    for body in ({"characters": []}, {"characters": [secret.id], "visibility": "SECRET"}):
        async with http.post(url, json=body, headers=auth(emu.token)) as r:
            assert r.status == 400 and (await r.json())["command"] == "neo_error"
    async with http.post(url, data=b"{not json", headers=auth(emu.token)) as r:
        assert r.status == 400
    assert len(await rooms_of(http, emu, emu.token)) == 1


async def test_patch_renames_and_changes_characters(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    room = await create(http, emu, emu.token)
    rid, nova, echo = room["id"], emu.character("Nova").id, emu.character("Echo").id
    ops = [
        {"op": "replace", "path": f"/muroom/{rid}", "value": {"title": "Star club"}},
        {"op": "add", "path": f"/muroom/{rid}/characters", "value": {"id": nova}},
        {"op": "remove", "path": f"/muroom/{rid}/characters", "value": {"id": echo}},
    ]
    url = f"{emu.url}/neo/muroom/{rid}/"
    async with http.patch(url, json=ops, headers=auth(emu.token)) as r:
        assert r.status == 200
        assert await r.json() == {
            "id": rid,
            "users": {"added": [], "removed": []},
            "characters": {"added": [nova], "removed": [echo]},
            "title": "Star club",
            "command": "update_mu_room_response",
        }
    (listed,) = await rooms_of(http, emu, emu.token)
    assert listed["title"] == "Star club"
    assert [c["name"] for c in listed["characters"]] == ["Sage", "Nova"]
    # All or nothing: a bad operation changes nothing.
    bad = [
        {"op": "replace", "path": f"/muroom/{rid}", "value": {"title": "Nope"}},
        {"op": "remove", "path": f"/muroom/{rid}/characters", "value": {"id": echo}},
    ]
    async with http.patch(url, json=bad, headers=auth(emu.token)) as r:
        assert r.status == 404 and (await r.json())["comment"] == "Character not found"
    for body in ([{"op": "move", "path": f"/muroom/{rid}"}], {"op": "replace"}):
        async with http.patch(url, json=body, headers=auth(emu.token)) as r:
            assert r.status == 400
    (listed,) = await rooms_of(http, emu, emu.token)
    assert listed["title"] == "Star club"


async def test_foreign_room_is_invisible_until_joined(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    other = emu.store.add_user("someone")
    room = await create(http, emu, emu.token)
    rid, token = room["id"], room["settings"]["join_token"]
    assert await rooms_of(http, emu, other.token) == []
    ops = [{"op": "replace", "path": f"/muroom/{rid}", "value": {"title": "mine"}}]
    async with http.patch(f"{emu.url}/neo/muroom/{rid}/", json=ops, headers=auth(other.token)) as r:
        assert r.status == 404 and await r.json() == ROOM_404
    async with http.delete(f"{emu.url}/neo/muroom/{rid}/", headers=auth(other.token)) as r:
        assert r.status == 404 and await r.json() == ROOM_404
    async with http.delete(f"{emu.url}/neo/muroom/{uuid.uuid4()}/", headers=auth(other.token)) as r:
        assert r.status == 404 and await r.json() == ROOM_404

    url = f"{emu.url}/neo/muroom/?join_token={token}"
    async with http.get(url, headers=auth(other.token)) as r:
        assert r.status == 200 and (await r.json())["id"] == rid
    async with http.get(f"{emu.url}/neo/muroom/?join_token=bogus", headers=auth(other.token)) as r:
        assert r.status == 404 and await r.json() == ROOM_404
    joined = await join(http, emu, other.token, token)
    assert joined["command"] == "update_mu_room_response" and joined["id"] == rid
    assert [(u["username"], u["role"]) for u in joined["users"]] == [
        ("emulator_user", "ROLE_OWNER"),
        ("someone", "ROLE_MEMBER"),
    ]
    assert len(joined["preview_turns"]["turns"]) == 2
    assert [r["id"] for r in await rooms_of(http, emu, other.token)] == [rid]
    await join(http, emu, other.token, token)  # idempotent
    assert len((await rooms_of(http, emu, emu.token))[0]["users"]) == 2


async def test_closed_room_refuses_join_tokens(emu: Emulator, http: aiohttp.ClientSession) -> None:
    other = emu.store.add_user("someone")
    room = await create(http, emu, emu.token, settings={"anyone_can_join": False})
    body = {"join_token": room["settings"]["join_token"]}
    async with http.post(f"{emu.url}/neo/muroom/join", json=body, headers=auth(other.token)) as r:
        assert r.status == 404 and await r.json() == ROOM_404
    assert await rooms_of(http, emu, other.token) == []


async def test_delete_is_for_the_creator_only(emu: Emulator, http: aiohttp.ClientSession) -> None:
    other = emu.store.add_user("someone")
    room = await create(http, emu, emu.token)
    rid = room["id"]
    await join(http, emu, other.token, room["settings"]["join_token"])
    async with http.delete(f"{emu.url}/neo/muroom/{rid}/", headers=auth(other.token)) as r:
        assert r.status == 403 and (await r.json())["command"] == "neo_error"
    async with http.delete(f"{emu.url}/neo/muroom/{rid}/", headers=auth(emu.token)) as r:
        assert r.status == 200 and await r.json() == {"id": rid, "command": "delete_mu_room"}
    assert await rooms_of(http, emu, emu.token) == []
    assert await rooms_of(http, emu, other.token) == []
    async with http.delete(f"{emu.url}/neo/muroom/{rid}/", headers=auth(emu.token)) as r:
        assert r.status == 404


# ---- the socket: Centrifugo -------------------------------------------------------------


def test_split_objects_reads_concatenated_and_newline_separated_values() -> None:
    assert split_objects('{"a":1}{"b":2}\n{"c":3}\n') == ([{"a": 1}, {"b": 2}, {"c": 3}], True)
    assert split_objects('{"a":1} {"b":') == ([{"a": 1}], False)
    assert split_objects("") == ([], True)


async def test_socket_refuses_bad_credentials_with_403(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    url = f"{emu.url}/neo/connection/websocket"
    for headers in ({}, cookie("bad"), auth("bad")):
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(url, headers=headers)
        assert caught.value.status == 403
    for headers in (auth(emu.token), cookie(emu.token, quoted=False)):
        async with http.ws_connect(url, headers=headers) as ws:
            await ws.send_str('{"connect":{},"id":3}')
            assert (await recv(ws))["id"] == 3


async def test_an_armed_cloudflare_block_refuses_the_upgrade_before_any_auth(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    # Cloudflare stands in front of both sockets: the rooms socket is blocked as /neo/ws/ is.
    url = f"{emu.url}/neo/connection/websocket"
    emu.faults.cloudflare(rest=False, times=1)
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await http.ws_connect(url, headers=cookie(emu.token))
    assert caught.value.status == 403
    assert caught.value.headers is not None and "cf-ray" in caught.value.headers
    async with http.ws_connect(url, headers=cookie(emu.token)) as ws:  # Once only.
        await ws.send_str('{"connect":{},"id":1}')
        assert (await recv(ws))["id"] == 1


async def test_connect_and_subscribe_in_one_frame(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    room = await create(http, emu, emu.token)
    url = f"{emu.url}/neo/connection/websocket"
    async with http.ws_connect(url, headers=cookie(emu.token)) as ws:
        # N2/CN glue the objects together; real Centrifugo separates them with newlines.
        await ws.send_str(
            '{"connect":{"name":"js"},"id":1}'
            f'{{"subscribe":{{"channel":"user#{emu.user_id}"}},"id":1}}\n'
            f'{{"subscribe":{{"channel":"room:{room["id"]}"}},"id":2}}\n'
        )
        connect = await recv(ws)
        assert connect["id"] == 1 and set(connect["connect"]) == {
            "client",
            "version",
            "ping",
            "pong",
        }
        uuid.UUID(connect["connect"]["client"])
        assert connect["connect"]["ping"] == 25 and connect["connect"]["pong"] is True
        for cid in (1, 2):
            reply = await recv(ws)
            assert reply["id"] == cid and set(reply) == {"id", "subscribe"}
            sub = reply["subscribe"]
            assert sub["recoverable"] is True and sub["positioned"] is True
            assert isinstance(sub["epoch"], str) and sub["epoch"]
        await ws.send_str(f'{{"subscribe":{{"channel":"room:{room["id"]}"}},"id":3}}')
        assert await recv(ws) == {"id": 3, "error": {"code": 105, "message": "already subscribed"}}
        await ws.send_str(f'{{"unsubscribe":{{"channel":"room:{room["id"]}"}},"id":4}}')
        assert await recv(ws) == {"id": 4, "unsubscribe": {}}


async def test_subscribe_refusals(emu: Emulator, http: aiohttp.ClientSession) -> None:
    other = emu.store.add_user("someone")
    room = await create(http, emu, other.token)
    denied = {"code": 103, "message": "permission denied"}
    ws = await open_socket(http, emu, emu.token)
    try:
        for cid, channel in enumerate(
            (f"room:{room['id']}", f"room:{uuid.uuid4()}", f"user#{other.id}"), start=10
        ):
            await ws.send_str(json.dumps({"subscribe": {"channel": channel}, "id": cid}))
            assert await recv(ws) == {"id": cid, "error": denied}
        await ws.send_str('{"subscribe":{"channel":"news"},"id":20}')
        assert await recv(ws) == {"id": 20, "error": {"code": 102, "message": "unknown channel"}}
        await join(http, emu, emu.token, room["settings"]["join_token"])
        await ws.send_str(json.dumps({"subscribe": {"channel": f"room:{room['id']}"}, "id": 21}))
        assert "subscribe" in await recv(ws)
    finally:
        await ws.close()


async def test_commands_before_connect_are_unauthorized(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    url = f"{emu.url}/neo/connection/websocket"
    async with http.ws_connect(url, headers=cookie(emu.token)) as ws:
        await ws.send_str(f'{{"subscribe":{{"channel":"user#{emu.user_id}"}},"id":5}}')
        assert await recv(ws) == {"id": 5, "error": {"code": 101, "message": "unauthorized"}}


async def test_server_pings_and_closes_without_pong(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.app[ROOMS].ping_interval = 0.05
    ws = await open_socket(http, emu, emu.token)
    try:
        for _ in range(3):
            msg = await ws.receive(timeout=5)
            assert msg.data == "{}"
            await ws.send_str("{}")
        # The server does not echo the client's {} (CN answers every {} with {}).
        msg = await ws.receive(timeout=5)
        assert msg.data == "{}"
        msg = await ws.receive(timeout=5)  # left unanswered
        if msg.type == aiohttp.WSMsgType.TEXT:
            assert msg.data == "{}"
            msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 3012
    finally:
        await ws.close()


async def test_malformed_frames_do_not_kill_the_socket(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    ws = await open_socket(http, emu, emu.token)
    try:
        for junk in ("not json", "[1, 2]", '"text"', '{"id": 1, "subscribe": "x"}{"id": '):
            await ws.send_str(junk)
        await ws.send_bytes(b"\xff\xfe")
        assert await recv(ws) == {"id": 1, "error": {"code": 107, "message": "bad request"}}
        await ws.send_str('{"publish":{"channel":"x","data":{}},"id":8}')
        assert await recv(ws) == {"id": 8, "error": {"code": 104, "message": "method not found"}}
        await ws.send_str('{"rpc":{"method":"unused_command"},"id":9}')
        assert await recv(ws) == {"id": 9, "error": {"code": 107, "message": "bad request"}}
        await ws.send_str(f'{{"subscribe":{{"channel":"user#{emu.user_id}"}},"id":10}}')
        assert "subscribe" in await recv(ws)
    finally:
        await ws.close()


# ---- the socket: room commands ----------------------------------------------------------


async def test_create_turn_and_generate_turn_push_in_order(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    room = await create(http, emu, emu.token)
    rid, sage = room["id"], emu.character("Sage")
    ws = await open_socket(http, emu, emu.token, f"user#{emu.user_id}", f"room:{rid}")
    try:
        text = "Hello Sage, what should I read?"
        await ws.send_str(rpc("create_turn", message(rid, emu.user_id, text), "req-1", cid=3))
        assert await recv(ws) == {"id": 3, "rpc": {"data": {"request_id": "req-1"}}}
        (echo_push,) = await pushes_until_final(ws)
        push = echo_push["push"]
        assert push["channel"] == f"room:{rid}"
        data = push["pub"]["data"]
        assert data["command"] == "add_turn" and data["request_id"] == "req-1"
        assert data["chat_info"] == {"type": "TYPE_MU_ROOM"}
        assert data["turn"]["author"] == {
            "author_id": emu.user_id,
            "name": "emulator_user",
            "is_human": True,
        }
        assert data["turn"]["candidates"][0]["raw_content"] == text
        assert data["turn"]["candidates"][0]["is_final"] is True

        await ws.send_str(rpc("generate_turn", smart_reply(rid), "req-2", cid=4))
        assert await recv(ws) == {"id": 4, "rpc": {"data": {"request_id": "req-2"}}}
        frames = await pushes_until_final(ws)
        offsets = [push["pub"]["offset"]] + [f["push"]["pub"]["offset"] for f in frames]
        assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))
        datas = [f["push"]["pub"]["data"] for f in frames]
        assert [d["command"] for d in datas] == ["add_turn"] + ["update_turn"] * (len(datas) - 1)
        assert all(d["request_id"] == "req-2" for d in datas)
        assert all(d["chat_info"] == {"type": "TYPE_MU_ROOM"} for d in datas)
        assert all(d["generation_mode"]["mode"] == "MODE_NORMAL" for d in datas)
        texts = [d["turn"]["candidates"][0]["raw_content"] for d in datas]
        assert texts == split_cumulative(sage.reply(text, 1), 4)  # Sage was named
        finals = ["is_final" in d["turn"]["candidates"][0] for d in datas]
        assert finals == [False] * (len(datas) - 1) + [True]
        turn = datas[-1]["turn"]
        assert turn["author"] == {"author_id": sage.id, "name": "Sage"}
        assert len({d["turn"]["turn_key"]["turn_id"] for d in datas}) == 1
        assert TS.match(turn["last_update_time"]) and turn["turn_key"]["chat_id"] == rid
    finally:
        await ws.close()
    url = f"{emu.url}/neo/murooms/?include_turns=true"
    async with http.get(url, headers=auth(emu.token)) as r:
        turns = (await r.json())["rooms"][0]["preview_turns"]["turns"]
    assert [t["candidates"][0]["raw_content"] for t in turns[:2]] == [texts[-1], text]


async def test_generate_turn_with_a_chosen_character_and_smart_rotation(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    room = await create(http, emu, emu.token, with_greeting=False)
    rid, echo, sage = room["id"], emu.character("Echo"), emu.character("Sage")
    ws = await open_socket(http, emu, emu.token, f"room:{rid}")
    try:
        await ws.send_str(rpc("create_turn", message(rid, emu.user_id, "hi all"), "a"))
        await recv(ws)
        await pushes_until_final(ws)
        payload = {"character_id": sage.id, "chat_id": rid}
        await ws.send_str(rpc("generate_turn", payload, "b"))
        await recv(ws)
        final = (await pushes_until_final(ws))[-1]["push"]["pub"]["data"]["turn"]
        assert final["author"]["author_id"] == sage.id
        assert final["candidates"][0]["raw_content"] == sage.reply("hi all", 1)
        # Nobody named: the character who has not spoken yet answers.
        await ws.send_str(rpc("generate_turn", smart_reply(rid), "c"))
        await recv(ws)
        final = (await pushes_until_final(ws))[-1]["push"]["pub"]["data"]["turn"]
        assert final["author"]["author_id"] == echo.id
        nova = {"character_id": emu.character("Nova").id, "chat_id": rid}
        await ws.send_str(rpc("generate_turn", nova, "d", cid=11))
        assert await recv(ws) == {
            "id": 11,
            "error": {"code": 404, "message": "Character not found"},
        }
    finally:
        await ws.close()


async def test_abort_generation_stops_a_room_reply(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    room = await create(http, emu, emu.token, with_greeting=False)
    rid = room["id"]
    ws = await open_socket(http, emu, emu.token, f"room:{rid}")
    try:
        await ws.send_str(rpc("create_turn", message(rid, emu.user_id, "hi Sage"), "a"))
        await recv(ws)
        await pushes_until_final(ws)
        emu.chunk_delay = 30.0  # Only the abort can end the reply before recv times out.
        await ws.send_str(rpc("generate_turn", smart_reply(rid), "gen", cid=4))
        assert (await recv(ws))["id"] == 4
        first = (await recv(ws))["push"]["pub"]["data"]
        await ws.send_str(rpc("abort_generation", {}, "gen", cid=5))
        assert await recv(ws) == {"id": 5, "rpc": {"data": {"request_id": "gen"}}}
        last = (await recv(ws))["push"]["pub"]["data"]
        candidate = last["turn"]["candidates"][0]
        partial = first["turn"]["candidates"][0]["raw_content"]
        assert (last["command"], last["request_id"]) == ("update_turn", "gen")
        assert (candidate["raw_content"], candidate["is_final"], candidate["aborted"]) == (
            partial,
            True,
            True,
        )
        emu.chunk_delay = 0.0  # The room is free at once for the next generation.
        await ws.send_str(rpc("generate_turn", smart_reply(rid), "next", cid=6))
        await recv(ws)
        final = (await pushes_until_final(ws))[-1]["push"]["pub"]["data"]["turn"]
        assert "aborted" not in final["candidates"][0]
    finally:
        await ws.close()
    assert [(a.request_id, a.chat_id, a.text) for a in emu.aborts] == [("gen", rid, partial)]
    url = f"{emu.url}/neo/murooms/?include_turns=true"
    async with http.get(url, headers=auth(emu.token)) as r:
        turns = (await r.json())["rooms"][0]["preview_turns"]["turns"]
    assert turns[1]["candidates"][0]["raw_content"] == partial
    assert turns[1]["candidates"][0]["aborted"] is True


async def test_turns_route_pages_a_rooms_history(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    room = await create(http, emu, emu.token)  # two greetings
    rid = room["id"]
    ws = await open_socket(http, emu, emu.token, f"room:{rid}")
    try:
        for n in range(3):
            await ws.send_str(rpc("create_turn", message(rid, emu.user_id, f"m{n}"), f"r{n}"))
            await recv(ws)
            await pushes_until_final(ws)
    finally:
        await ws.close()
    url = f"{emu.url}/neo/turns/{rid}/"
    async with http.get(url, headers=auth(emu.token)) as r:
        assert r.status == 200
        body = await r.json()
    texts = [t["candidates"][0]["raw_content"] for t in body["turns"]]
    assert texts[:3] == ["m2", "m1", "m0"] and len(texts) == 5  # newest first, greetings last
    assert body["meta"]["next_token"] is None
    other = emu.store.add_user("stranger")
    async with http.get(url, headers=auth(other.token)) as r:
        assert (r.status, await r.json()) == (404, {**ROOM_404, "comment": "Chat not found"})


async def test_a_second_member_receives_the_same_pushes(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    other = emu.store.add_user("someone")
    room = await create(http, emu, emu.token)
    rid = room["id"]
    await join(http, emu, other.token, room["settings"]["join_token"])
    mine = await open_socket(http, emu, emu.token, f"room:{rid}")
    theirs = await open_socket(http, emu, other.token, f"room:{rid}")
    try:
        await mine.send_str(rpc("create_turn", message(rid, emu.user_id, "Hi Echo"), "r1"))
        assert "rpc" in await recv(mine)  # the rpc ack goes to the sender only
        seen_by_me = await pushes_until_final(mine)
        await mine.send_str(rpc("generate_turn", smart_reply(rid), "r2"))
        assert "rpc" in await recv(mine)
        seen_by_me += await pushes_until_final(mine)
        seen_by_them = (await pushes_until_final(theirs)) + (await pushes_until_final(theirs))
        assert seen_by_them == seen_by_me
        assert seen_by_me[-1]["push"]["pub"]["data"]["turn"]["author"]["name"] == "Echo"
        # The other member speaks too, as themself.
        await theirs.send_str(rpc("create_turn", message(rid, other.id, "me too"), "r3"))
        assert (await recv(theirs))["rpc"]["data"] == {"request_id": "r3"}
        (push,) = await pushes_until_final(mine)
        assert push["push"]["pub"]["data"]["turn"]["author"]["author_id"] == other.id
    finally:
        await mine.close()
        await theirs.close()


async def test_swipe_and_edit(emu: Emulator, http: aiohttp.ClientSession) -> None:
    room = await create(http, emu, emu.token, with_greeting=False)
    rid = room["id"]
    ws = await open_socket(http, emu, emu.token, f"room:{rid}")
    try:
        await ws.send_str(rpc("create_turn", message(rid, emu.user_id, "Hello Sage"), "a"))
        await recv(ws)
        human = (await pushes_until_final(ws))[0]["push"]["pub"]["data"]["turn"]
        await ws.send_str(rpc("generate_turn", smart_reply(rid), "b"))
        await recv(ws)
        first = (await pushes_until_final(ws))[-1]["push"]["pub"]["data"]["turn"]
        payload = {"character_id": first["author"]["author_id"], "turn_key": first["turn_key"]}
        await ws.send_str(rpc("generate_turn_candidate", payload, "c"))
        await recv(ws)
        frames = await pushes_until_final(ws)
        datas = [f["push"]["pub"]["data"] for f in frames]
        assert {d["command"] for d in datas} == {"update_turn"}
        swiped = datas[-1]["turn"]
        assert swiped["turn_key"] == first["turn_key"] and len(swiped["candidates"]) == 1
        new_id = swiped["candidates"][0]["candidate_id"]
        assert new_id != first["primary_candidate_id"] == first["candidates"][0]["candidate_id"]
        assert swiped["primary_candidate_id"] == new_id

        edit = {"turn_key": human["turn_key"], "new_candidate_raw_content": "Hello again"}
        edit["current_candidate_id"] = human["primary_candidate_id"]
        await ws.send_str(rpc("edit_turn_candidate", edit, "d"))
        await recv(ws)
        (push,) = await pushes_until_final(ws)
        data = push["push"]["pub"]["data"]
        assert data["command"] == "update_turn" and data["request_id"] == "d"
        (edited,) = data["turn"]["candidates"]
        assert edited["raw_content"] == "Hello again" and edited["is_final"] is True
        assert edited["base_candidate_id"] == human["primary_candidate_id"]
        assert edited["editor"]["author_id"] == emu.user_id
        assert data["turn"]["primary_candidate_id"] == edited["candidate_id"]

        missing = {"turn_key": {"chat_id": rid, "turn_id": str(uuid.uuid4())}}
        await ws.send_str(rpc("generate_turn_candidate", missing, "e", cid=12))
        assert await recv(ws) == {"id": 12, "error": {"code": 404, "message": "Turn not found"}}
        await ws.send_str(rpc("generate_turn_candidate", {"turn_key": human["turn_key"]}, "f"))
        assert (await recv(ws))["error"]["code"] == 400
    finally:
        await ws.close()


async def test_rpc_errors_leave_the_socket_open(emu: Emulator, http: aiohttp.ClientSession) -> None:
    other = emu.store.add_user("someone")
    foreign = await create(http, emu, other.token)
    ws = await open_socket(http, emu, emu.token)
    try:
        await ws.send_str(rpc("create_turn", message(foreign["id"], emu.user_id, "hi"), "x", 3))
        assert await recv(ws) == {"id": 3, "error": {"code": 404, "message": "Room not found"}}
        await ws.send_str(rpc("generate_turn", smart_reply(foreign["id"]), "y", 4))
        assert await recv(ws) == {"id": 4, "error": {"code": 404, "message": "Room not found"}}
        await ws.send_str(rpc("dance", {}, "z", 5))
        assert await recv(ws) == {
            "id": 5,
            "error": {"code": 400, "message": "Unknown command: dance"},
        }
        await ws.send_str(rpc("create_turn", {"turn": "nope"}, "w", 6))
        reply = await recv(ws)
        assert reply["id"] == 6 and reply["error"]["code"] == 400
        mine = await create(http, emu, emu.token)
        msg = message(mine["id"], emu.user_id, "twice")
        await ws.send_str(rpc("create_turn", msg, "v", 7))
        assert "rpc" in await recv(ws)
        await ws.send_str(rpc("create_turn", msg, "v", 8))
        assert await recv(ws) == {
            "id": 8,
            "error": {"code": 400, "message": "create_turn already exists"},
        }
    finally:
        await ws.close()


async def test_deleting_a_room_unsubscribes_its_members(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    room = await create(http, emu, emu.token)
    ws = await open_socket(http, emu, emu.token, f"room:{room['id']}")
    try:
        async with http.delete(f"{emu.url}/neo/muroom/{room['id']}/", headers=auth(emu.token)):
            pass
        assert await recv(ws) == {
            "push": {
                "channel": f"room:{room['id']}",
                "unsubscribe": {"code": 2000, "reason": "server unsubscribe"},
            }
        }
        await ws.send_str(rpc("generate_turn", smart_reply(room["id"]), "x", 4))
        assert (await recv(ws))["error"]["code"] == 404
    finally:
        await ws.close()


async def test_rooms_and_turns_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    async with Emulator(state_file=state, chunk_delay=0.0) as emu, aiohttp.ClientSession() as http:
        other = emu.store.add_user("someone")
        room = await create(http, emu, emu.token, with_greeting=False)
        rid = room["id"]
        await join(http, emu, other.token, room["settings"]["join_token"])
        ws = await open_socket(http, emu, emu.token, f"room:{rid}")
        await ws.send_str(rpc("create_turn", message(rid, emu.user_id, "Hello Sage"), "a"))
        await recv(ws)
        await pushes_until_final(ws)
        await ws.send_str(rpc("generate_turn", smart_reply(rid), "b"))
        await recv(ws)
        reply = (await pushes_until_final(ws))[-1]["push"]["pub"]["data"]["turn"]
        await ws.close()
        url = f"{emu.url}/neo/murooms/"
        async with http.get(url, headers=auth(emu.token)) as r:
            before = (await r.json())["rooms"]
    async with Emulator(state_file=state, chunk_delay=0.0) as emu, aiohttp.ClientSession() as http:
        async with http.get(f"{emu.url}/neo/murooms/", headers=auth(emu.token)) as r:
            after = (await r.json())["rooms"]
        assert after == before
        turns = after[0]["preview_turns"]["turns"]
        assert turns[0]["candidates"][0] == reply["candidates"][0]
        assert turns[0]["candidates"][0]["is_final"] is True
        assert [r["id"] for r in await rooms_of(http, emu, other.token)] == [rid]
        ws = await open_socket(http, emu, other.token, f"room:{rid}")
        await ws.send_str(rpc("generate_turn", smart_reply(rid), "c"))
        await recv(ws)
        assert len(await pushes_until_final(ws)) >= 2
        await ws.close()


def test_room_pages_walk_the_history_without_gaps_or_repeats() -> None:
    from caiclient.emulator.rooms.store import Member, Room, RoomRecord, RoomSettings, RoomStore
    from caiclient.emulator.wire import Author, complete_turn

    room = Room("r", "t", "VISIBILITY_UNLISTED", "1", "now", [], [Member("1", "o")], RoomSettings())
    rec = RoomRecord(room)
    rec.turns = [complete_turn("r", Author("c", "C"), f"t{n}", "now") for n in range(120)]
    for n in (3, 60, 119):
        rec.turns[n].is_pinned = True
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = RoomStore.page(rec, cursor, 50)
        seen += [t.candidates[0].raw_content for t in page]
        if cursor is None:
            break
    assert seen == [f"t{n}" for n in reversed(range(120))]
    pinned, more = RoomStore.page(rec, None, 2, pinned_only=True)
    assert [t.candidates[0].raw_content for t in pinned] == ["t119", "t60"]
    rest, end = RoomStore.page(rec, more, 2, pinned_only=True)
    assert [t.candidates[0].raw_content for t in rest] == ["t3"] and end is None
