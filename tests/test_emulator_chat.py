"""Chat V2 in the emulator, complete (PROTOCOL.md §7, §8), driven by aiohttp, not caiclient."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from caiclient.emulator import Abort, Emulator, SeedCharacter

SELF_HARM = {
    "command": "neo_error",
    "comment": "Self harm message detected",
    "error_code": 400,
    "sub_code": 101,
    "retry_after_seconds": None,
}

WS = aiohttp.ClientWebSocketResponse


@pytest.fixture
async def ws(emu: Emulator, http: aiohttp.ClientSession) -> AsyncIterator[WS]:
    async with http.ws_connect(f"{emu.url}/neo/ws/", headers=cookie(emu.token)) as sock:
        yield sock


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f'HTTP_AUTHORIZATION="Token {token}"; edge_rollout=60'}


async def recv(ws: WS) -> dict[str, Any]:
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    frame = json.loads(msg.data)
    assert isinstance(frame, dict)
    return frame


async def send(ws: WS, command: str, payload: Any, rid: Any) -> None:
    await ws.send_str(json.dumps({"command": command, "request_id": rid, "payload": payload}))


async def new_chat(
    ws: WS, emu: Emulator, character: SeedCharacter, *, greeting: bool = True
) -> str:
    chat_id = str(uuid.uuid4())
    chat = {"chat_id": chat_id, "creator_id": emu.user_id, "character_id": character.id}
    await send(ws, "create_chat", {"chat": chat, "with_greeting": greeting}, "c")
    assert (await recv(ws))["command"] == "create_chat_response"
    if greeting:
        assert (await recv(ws))["command"] == "add_turn"
    return chat_id


def turn_payload(
    emu: Emulator, chat_id: str, text: str, character: SeedCharacter, **author: Any
) -> dict[str, Any]:
    candidate_id = str(uuid.uuid4())
    return {
        "character_id": character.id,
        "num_candidates": 1,
        "tts_enabled": False,
        "selected_language": "",
        "user_name": "",
        "turn": {
            "turn_key": {"chat_id": chat_id, "turn_id": str(uuid.uuid4())},
            "author": author or {"author_id": emu.user_id, "is_human": True, "name": ""},
            "candidates": [{"candidate_id": candidate_id, "raw_content": text}],
            "primary_candidate_id": candidate_id,
        },
    }


async def until_final(ws: WS) -> list[dict[str, Any]]:
    """Frames up to the first final character frame, or a lone neo_error."""
    frames = []
    while True:
        frame = await recv(ws)
        frames.append(frame)
        if frame["command"] == "neo_error":
            return frames
        turn = frame["turn"]
        if not turn["author"].get("is_human") and turn["candidates"][0].get("is_final"):
            return frames


async def say(ws: WS, emu: Emulator, chat_id: str, text: str, character: SeedCharacter) -> Any:
    """Send a message; return the final reply turn (or the neo_error frame)."""
    await send(ws, "create_and_generate_turn", turn_payload(emu, chat_id, text, character), "s")
    frames = await until_final(ws)
    return frames[-1] if frames[-1]["command"] == "neo_error" else frames[-1]["turn"]


async def rest(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    token: str | None,
    body: Any = None,
    **params: str,
) -> tuple[int, Any]:
    headers = auth(token) if token else {}
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body))
    async with http.request(method, url, headers=headers, data=data, params=params) as resp:
        return resp.status, await resp.json()


async def history(
    http: aiohttp.ClientSession, emu: Emulator, chat_id: str, **params: str
) -> list[dict[str, Any]]:
    status, body = await rest(http, "GET", f"{emu.url}/neo/turns/{chat_id}/", emu.token, **params)
    assert status == 200, body
    turns: list[dict[str, Any]] = body["turns"]
    return turns


def neo_error(comment: str, code: int, rid: Any = None) -> dict[str, Any]:
    frame = {"command": "neo_error", "comment": comment, "error_code": code, "sub_code": None}
    frame["retry_after_seconds"] = None
    if rid is not None:
        frame["request_id"] = rid
    return frame


# ---- create_turn ------------------------------------------------------------------------


async def test_create_turn_adds_without_generating(
    emu: Emulator, http: aiohttp.ClientSession, ws: WS
) -> None:
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo, greeting=False)
    await send(ws, "create_turn", turn_payload(emu, chat_id, "just a note", echo), "m")
    echoed = await recv(ws)
    assert echoed["command"] == "add_turn" and echoed["request_id"] == "m"
    assert echoed["turn"]["author"]["is_human"] is True
    assert echoed["turn"]["candidates"][0] == {
        "candidate_id": echoed["turn"]["primary_candidate_id"],
        "create_time": echoed["turn"]["create_time"],
        "raw_content": "just a note",
        "is_final": True,
    }
    # A character-authored manual turn is stored as the character's.
    payload = turn_payload(emu, chat_id, "said by Echo", echo, author_id=echo.id, name="Echo")
    await send(ws, "create_turn", payload, "n")
    bot = await recv(ws)
    assert bot["turn"]["author"] == {"author_id": echo.id, "name": "Echo"}
    await ws.send_str("{}")
    assert await recv(ws) == {}  # Nothing else was sent: no generation.
    turns = await history(http, emu, chat_id)
    assert [t["candidates"][0]["raw_content"] for t in turns] == ["said by Echo", "just a note"]
    await send(ws, "create_turn", payload, "dup")
    assert await recv(ws) == neo_error("create_turn already exists", 400, "dup")


# ---- generate_turn_candidate (swipe) ------------------------------------------------------


async def test_swipe_streams_update_turns_of_the_same_turn(
    emu: Emulator, http: aiohttp.ClientSession, ws: WS
) -> None:
    sage = emu.character("Sage")
    chat_id = await new_chat(ws, emu, sage)
    reply = await say(ws, emu, chat_id, "Tell me about rivers", sage)
    key = reply["turn_key"]
    await send(ws, "generate_turn_candidate", {"character_id": sage.id, "turn_key": key}, "sw")
    frames = await until_final(ws)
    assert [f["command"] for f in frames] == ["update_turn"] * 5
    assert all(f["request_id"] == "sw" and f["turn"]["turn_key"] == key for f in frames)
    assert all(len(f["turn"]["candidates"]) == 1 for f in frames)
    new = frames[-1]["turn"]["candidates"][0]
    assert new["candidate_id"] != reply["primary_candidate_id"]
    assert all(f["turn"]["primary_candidate_id"] == new["candidate_id"] for f in frames)
    assert ["is_final" in f["turn"]["candidates"][0] for f in frames] == [False] * 4 + [True]
    assert all("generation_mode" in f and "chat_info" in f for f in frames)
    assert new["raw_content"] != reply["candidates"][0]["raw_content"]
    assert frames[-1]["turn"]["create_time"] == reply["create_time"]

    everything = await history(http, emu, chat_id, candidate_filter="all")
    assert [c["candidate_id"] for c in everything[0]["candidates"]] == [
        new["candidate_id"],
        reply["primary_candidate_id"],
    ]  # newest first
    assert everything[0]["primary_candidate_id"] == new["candidate_id"]
    primary_only = await history(http, emu, chat_id)
    assert primary_only[0]["candidates"] == [new]
    assert len(primary_only) == 3


async def test_swipe_errors(emu: Emulator, ws: WS) -> None:
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo, greeting=False)
    await say(ws, emu, chat_id, "hi", echo)
    await send(ws, "create_turn", turn_payload(emu, chat_id, "mine", echo), "h")
    human = (await recv(ws))["turn"]
    cases = [
        (human["turn_key"], "Only character turns can be regenerated", 400),
        ({"chat_id": chat_id, "turn_id": str(uuid.uuid4())}, "Turn not found", 404),
        ({"chat_id": str(uuid.uuid4()), "turn_id": str(uuid.uuid4())}, "Chat not found", 404),
    ]
    for key, comment, code in cases:
        await send(ws, "generate_turn_candidate", {"turn_key": key}, comment)
        assert await recv(ws) == neo_error(comment, code, comment)


# ---- edit, select, pin, remove ----------------------------------------------------------


async def test_edit_makes_a_new_primary_candidate(
    emu: Emulator, http: aiohttp.ClientSession, ws: WS
) -> None:
    nova = emu.character("Nova")
    chat_id = await new_chat(ws, emu, nova)
    reply = await say(ws, emu, chat_id, "Is Mars red?", nova)
    old_id = reply["primary_candidate_id"]
    payload = {
        "turn_key": reply["turn_key"],
        "current_candidate_id": old_id,
        "new_candidate_raw_content": "Yes, rusty red.",
    }
    await send(ws, "edit_turn_candidate", payload, "e")
    frame = await recv(ws)
    assert frame["command"] == "update_turn" and frame["request_id"] == "e"
    edited = frame["turn"]["candidates"]
    assert len(edited) == 1
    assert edited[0]["raw_content"] == "Yes, rusty red."
    assert edited[0]["is_final"] is True
    assert edited[0]["base_candidate_id"] == old_id
    assert edited[0]["editor"] == {"author_id": emu.user_id, "name": emu.username}
    assert frame["turn"]["primary_candidate_id"] == edited[0]["candidate_id"] != old_id
    turns = await history(http, emu, chat_id, candidate_filter="all")
    assert [c["candidate_id"] for c in turns[0]["candidates"]] == [
        edited[0]["candidate_id"],
        old_id,
    ]

    # The user's own turn is edited the same way (a new candidate), here without naming one.
    human = turns[1]
    payload = {"turn_key": human["turn_key"], "new_candidate_raw_content": "Is Mars rusty?"}
    await send(ws, "edit_turn_candidate", payload, "e2")
    frame = await recv(ws)
    assert frame["turn"]["author"]["is_human"] is True
    assert frame["turn"]["candidates"][0]["base_candidate_id"] == human["primary_candidate_id"]
    payload["current_candidate_id"] = str(uuid.uuid4())
    await send(ws, "edit_turn_candidate", payload, "e3")
    assert await recv(ws) == neo_error("Turn candidate not found", 404, "e3")
    payload["new_candidate_raw_content"] = "now [[self-harm]]"
    del payload["current_candidate_id"]
    await send(ws, "edit_turn_candidate", payload, "e4")
    assert await recv(ws) == {**SELF_HARM, "request_id": "e4"}


async def test_update_primary_candidate_answers_ok(
    emu: Emulator, http: aiohttp.ClientSession, ws: WS
) -> None:
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo, greeting=False)
    reply = await say(ws, emu, chat_id, "first", echo)
    await send(ws, "generate_turn_candidate", {"turn_key": reply["turn_key"]}, "g")
    await until_final(ws)
    payload = {"candidate_id": reply["primary_candidate_id"], "turn_key": reply["turn_key"]}
    await send(ws, "update_primary_candidate", payload, "p")
    assert await recv(ws) == {"command": "ok", "request_id": "p"}
    turns = await history(http, emu, chat_id)
    assert turns[0]["candidates"] == reply["candidates"]
    payload["candidate_id"] = str(uuid.uuid4())
    await send(ws, "update_primary_candidate", payload, "p2")
    assert await recv(ws) == neo_error("Turn candidate not found", 404, "p2")


async def test_set_turn_pin_and_pinned_only(
    emu: Emulator, http: aiohttp.ClientSession, ws: WS
) -> None:
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo)
    reply = await say(ws, emu, chat_id, "remember this", echo)
    for pinned in (True, False, True):
        await send(ws, "set_turn_pin", {"is_pinned": pinned, "turn_key": reply["turn_key"]}, "pin")
        frame = await recv(ws)
        assert frame["command"] == "update_turn" and frame["request_id"] == "pin"
        assert frame["turn"]["is_pinned"] is pinned  # present even when false
        assert frame["chat_info"] == {"type": "TYPE_ONE_ON_ONE"}
    pinned_turns = await history(http, emu, chat_id, pinned_only="true")
    assert [t["turn_key"] for t in pinned_turns] == [reply["turn_key"]]
    assert pinned_turns[0]["is_pinned"] is True
    assert len(await history(http, emu, chat_id)) == 3
    ghost = {"chat_id": chat_id, "turn_id": str(uuid.uuid4())}
    await send(ws, "set_turn_pin", {"is_pinned": True, "turn_key": ghost}, "x")
    assert await recv(ws) == neo_error("Turn not found", 404, "x")


async def test_remove_turns_over_the_socket(
    emu: Emulator, http: aiohttp.ClientSession, ws: WS
) -> None:
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo)
    await say(ws, emu, chat_id, "delete me", echo)
    turns = await history(http, emu, chat_id)
    doomed = [t["turn_key"]["turn_id"] for t in turns[:2]] + [str(uuid.uuid4())]
    await send(ws, "remove_turns", {"chat_id": chat_id, "turn_ids": doomed}, "rm")
    assert await recv(ws) == {"command": "remove_turns_response", "request_id": "rm"}
    assert [t["turn_key"] for t in await history(http, emu, chat_id)] == [turns[2]["turn_key"]]
    await send(ws, "remove_turns", {"chat_id": str(uuid.uuid4()), "turn_ids": []}, "rm2")
    assert await recv(ws) == neo_error("Chat not found", 404, "rm2")


async def test_abort_generation_stores_what_was_generated(
    emu: Emulator, http: aiohttp.ClientSession, ws: WS
) -> None:
    emu.chunk_delay = 30.0  # Only the abort can end this generation before recv times out.
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo, greeting=False)
    await send(ws, "create_and_generate_turn", turn_payload(emu, chat_id, "stop me", echo), "gen")
    assert (await recv(ws))["turn"]["author"]["is_human"] is True
    first = await recv(ws)
    await ws.send_str(json.dumps({"command": "abort_generation", "request_id": "gen",
                                  "origin_id": "web-next", "payload": {}}))  # fmt: skip
    last = await recv(ws)
    assert last["command"] == "update_turn" and last["request_id"] == "gen"
    candidate = last["turn"]["candidates"][0]
    partial = first["turn"]["candidates"][0]["raw_content"]
    assert (candidate["raw_content"], candidate["is_final"], candidate["aborted"]) == (
        partial,
        True,
        True,
    )
    assert last["turn"]["turn_key"] == first["turn"]["turn_key"]
    # No further frame of the reply: the next frame is the answer to our keepalive.
    await ws.send_str("{}")
    assert await recv(ws) == {}
    turns = await history(http, emu, chat_id)
    stored = turns[0]["candidates"][0]
    assert (stored["raw_content"], stored["is_final"], stored["aborted"]) == (partial, True, True)
    turn_id = first["turn"]["turn_key"]["turn_id"]
    assert emu.aborts == [Abort("gen", chat_id, turn_id, partial)]
    # The chat is free at once: the next message gets its whole reply.
    emu.chunk_delay = 0.0
    reply = await say(ws, emu, chat_id, "again", echo)
    assert reply["candidates"][0]["raw_content"] == echo.reply("again", 2)
    assert "aborted" not in reply["candidates"][0]


async def test_abort_of_unknown_or_finished_generations_is_ignored(
    emu: Emulator, ws: WS, http: aiohttp.ClientSession
) -> None:
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo, greeting=False)
    await say(ws, emu, chat_id, "done", echo)  # request id "s", finished
    for rid in ("s", "nothing-running", None, 7):
        await send(ws, "abort_generation", {}, rid)
    await ws.send_str("{}")
    assert await recv(ws) == {}  # no frame, no error for any of them
    assert emu.aborts == []
    assert all("aborted" not in t["candidates"][0] for t in await history(http, emu, chat_id))


async def test_abort_of_a_queued_generation_keeps_the_users_turn_only(
    emu: Emulator, http: aiohttp.ClientSession, ws: WS
) -> None:
    emu.chunk_delay = 30.0
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo, greeting=False)
    await send(ws, "create_and_generate_turn", turn_payload(emu, chat_id, "one", echo), "one")
    assert (await recv(ws))["turn"]["author"]["is_human"] is True
    first = await recv(ws)
    # "two" waits for the chat; abort it while it waits, then abort "one".
    await send(ws, "create_and_generate_turn", turn_payload(emu, chat_id, "two", echo), "two")
    await send(ws, "abort_generation", {}, "two")
    await send(ws, "abort_generation", {}, "one")
    assert (await recv(ws))["turn"]["candidates"][0]["aborted"] is True
    echo_two = await recv(ws)
    assert echo_two["request_id"] == "two" and echo_two["turn"]["author"]["is_human"] is True
    await ws.send_str("{}")
    assert await recv(ws) == {}  # "two" sent no reply frame at all
    texts = [t["candidates"][0]["raw_content"] for t in reversed(await history(http, emu, chat_id))]
    assert texts == ["one", first["turn"]["candidates"][0]["raw_content"], "two"]
    assert [(a.request_id, a.turn_id, a.text) for a in emu.aborts] == [
        ("two", "", ""),
        ("one", first["turn"]["turn_key"]["turn_id"], texts[1]),
    ]


async def test_abort_of_a_swipe_keeps_the_partial_candidate(
    emu: Emulator, http: aiohttp.ClientSession, ws: WS
) -> None:
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo, greeting=False)
    reply = await say(ws, emu, chat_id, "swipe me", echo)
    emu.chunk_delay = 30.0
    payload = {"turn_key": reply["turn_key"], "character_id": echo.id}
    await send(ws, "generate_turn_candidate", payload, "swipe")
    first = await recv(ws)
    await send(ws, "abort_generation", {}, "swipe")
    last = await recv(ws)
    assert last["turn"]["candidates"][0]["aborted"] is True
    [turn] = [t for t in await history(http, emu, chat_id, candidate_filter="all")
              if t["turn_key"] == reply["turn_key"]]  # fmt: skip
    assert [c["raw_content"] for c in turn["candidates"]] == [
        first["turn"]["candidates"][0]["raw_content"],
        reply["candidates"][0]["raw_content"],
    ]
    assert turn["primary_candidate_id"] == last["turn"]["primary_candidate_id"]


# ---- filters and rate limits ------------------------------------------------------------


async def test_input_filter_refuses_and_stores_nothing(
    emu: Emulator, http: aiohttp.ClientSession, ws: WS
) -> None:
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo)
    frame = await say(ws, emu, chat_id, "I want to [[SELF-HARM]] now", echo)
    assert frame == {**SELF_HARM, "request_id": "s"}
    emu.filters.input_phrases = ["forbidden words"]
    assert await say(ws, emu, chat_id, "some forbidden words", echo) == {
        **SELF_HARM,
        "request_id": "s",
    }
    await send(ws, "create_turn", turn_payload(emu, chat_id, "forbidden words!", echo), "ct")
    assert await recv(ws) == {**SELF_HARM, "request_id": "ct"}
    assert len(await history(http, emu, chat_id)) == 1  # only the greeting
    assert (await say(ws, emu, chat_id, "I want to [[self-harm]]", echo))["author"]


async def test_output_filter_truncates_the_reply(
    emu: Emulator, http: aiohttp.ClientSession, ws: WS
) -> None:
    sage, echo = emu.character("Sage"), emu.character("Echo")
    chat_id = await new_chat(ws, emu, sage, greeting=False)
    await send(
        ws, "create_and_generate_turn", turn_payload(emu, chat_id, "[[unsafe-reply]]", sage), 1
    )
    frames = await until_final(ws)
    bot = [f["turn"]["candidates"][0] for f in frames[1:]]
    assert [c.get("safety_truncated") for c in bot] == [None] * 4 + [True]
    full = sage.reply("[[unsafe-reply]]", 1)
    assert full.startswith(bot[-1]["raw_content"]) and len(bot[-1]["raw_content"]) < len(full)
    assert (await history(http, emu, chat_id))[0]["candidates"][0]["safety_truncated"] is True
    # A phrase the reply itself would contain cuts the reply just before it.
    emu.filters.output_phrases = ["that is what you said"]
    echo_chat = await new_chat(ws, emu, echo, greeting=False)
    reply = await say(ws, emu, echo_chat, "Hello there", echo)
    assert reply["candidates"][0]["raw_content"] == "Hello there —"
    assert reply["candidates"][0]["safety_truncated"] is True
    emu.filters.output_phrases = []
    reply = await say(ws, emu, echo_chat, "Hello there", echo)
    assert "safety_truncated" not in reply["candidates"][0]


async def test_generation_rate_limit(emu: Emulator, http: aiohttp.ClientSession, ws: WS) -> None:
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo)
    emu.rate_limit(generations=2, per=120)
    for _ in range(2):
        assert not (await say(ws, emu, chat_id, "ok", echo))["author"].get("is_human")
    error = await say(ws, emu, chat_id, "one too many", echo)
    assert error["command"] == "neo_error" and error["error_code"] == 429
    assert isinstance(error["retry_after_seconds"], int)
    assert 1 <= error["retry_after_seconds"] <= 120
    turns = await history(http, emu, chat_id)
    await send(ws, "generate_turn_candidate", {"turn_key": turns[0]["turn_key"]}, "g")
    assert (await recv(ws))["error_code"] == 429
    other = emu.store.add_user("someone")  # The limit is per token.
    async with http.ws_connect(f"{emu.url}/neo/ws/", headers=cookie(other.token)) as sock:
        chat = {"character_id": echo.id}
        await send(sock, "create_chat", {"chat": chat}, "c")
        own = (await recv(sock))["chat"]["chat_id"]
        assert "author" in await say(sock, emu, own, "fine", echo)
    emu.rate_limit()
    assert "author" in await say(ws, emu, chat_id, "unlimited again", echo)
    with pytest.raises(ValueError, match="generations"):
        emu.rate_limit(generations=-1)
    with pytest.raises(ValueError, match="per"):
        emu.rate_limit(per=0)


async def test_rest_rate_limit(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.rate_limit(requests=1, per=30)
    url = f"{emu.url}/neo/chats/recent/"
    assert (await rest(http, "GET", url, emu.token))[0] == 200
    async with http.get(url, headers=auth(emu.token)) as resp:
        assert resp.status == 429
        wait = int(resp.headers["Retry-After"])
        assert 1 <= wait <= 30
        body = await resp.json()
    assert body == {**neo_error("Rate limit exceeded", 429), "retry_after_seconds": wait}


# ---- REST ---------------------------------------------------------------------------------


async def test_list_chats_with_previews(emu: Emulator, http: aiohttp.ClientSession, ws: WS) -> None:
    echo, sage = emu.character("Echo"), emu.character("Sage")
    first = await new_chat(ws, emu, echo)
    await say(ws, emu, first, "one", echo)
    second = await new_chat(ws, emu, echo, greeting=False)
    await new_chat(ws, emu, sage)
    url = f"{emu.url}/neo/chats/"
    status, body = await rest(
        http, "GET", url, emu.token, character_ids=echo.id, num_preview_turns="2"
    )
    assert status == 200
    assert [c["chat_id"] for c in body["chats"]] == [first, second]
    previews = body["chats"][0]["preview_turns"]
    assert [t["candidates"][0]["raw_content"] for t in previews] == [echo.reply("one", 1), "one"]
    assert body["chats"][1]["preview_turns"] == []
    assert body["chats"][0]["character_name"] == "Echo"
    # N2's malformed form: ?character_ids=X?num_preview_turns=N
    async with http.get(
        f"{url}?character_ids={echo.id}?num_preview_turns=1", headers=auth(emu.token)
    ) as resp:
        malformed = await resp.json()
    assert [len(c["preview_turns"]) for c in malformed["chats"]] == [1, 0]
    status, body = await rest(http, "GET", url, emu.token, character_ids=echo.id)
    assert "preview_turns" not in body["chats"][0]
    status, body = await rest(http, "GET", url, emu.token)
    assert len(body["chats"]) == 3
    status, body = await rest(http, "GET", url, emu.token, num_preview_turns="lots")
    assert status == 400 and body["command"] == "neo_error"


async def test_rename_archive_resurrect(emu: Emulator, http: aiohttp.ClientSession, ws: WS) -> None:
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo)
    base = f"{emu.url}/neo/chat/{chat_id}"
    status, body = await rest(http, "PATCH", f"{base}/update_name", emu.token, {"name": "Tides"})
    assert status == 200 and body["chat"]["name"] == "Tides"
    assert (await rest(http, "GET", f"{base}/", emu.token))[1]["chat"]["name"] == "Tides"

    for _ in range(2):  # idempotent
        status, body = await rest(http, "PATCH", f"{base}/archive", emu.token)
        assert status == 200 and body["chat"]["state"] == "STATE_ARCHIVED"
    _, recent = await rest(http, "GET", f"{emu.url}/neo/chats/recent/", emu.token)
    assert recent == {"chats": []}
    _, recent = await rest(http, "GET", f"{emu.url}/neo/chats/recent/{echo.id}", emu.token)
    assert recent == {}  # no chats with that character: the key is left out
    assert await say(ws, emu, chat_id, "hello?", echo) == neo_error("Chat is archived", 400, "s")

    status, body = await rest(http, "PATCH", f"{base}/unarchive", emu.token, b"{}")
    assert status == 200 and body["chat"]["state"] == "STATE_ACTIVE"
    await rest(http, "PATCH", f"{base}/archive", emu.token)
    status, body = await rest(http, "GET", f"{base}/resurrect", emu.token)
    assert status == 200 and body["chat"]["state"] == "STATE_ACTIVE"
    assert "author" in await say(ws, emu, chat_id, "back again", echo)
    status, body = await rest(http, "PATCH", f"{base}/update_name", emu.token, {"title": 1})
    assert status == 400 and body["command"] == "neo_error"


async def test_copy_and_model(emu: Emulator, http: aiohttp.ClientSession, ws: WS) -> None:
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo)
    await say(ws, emu, chat_id, "one", echo)
    await say(ws, emu, chat_id, "two", echo)
    turns = await history(http, emu, chat_id)
    base = f"{emu.url}/neo/chat/{chat_id}"
    end = turns[2]["turn_key"]["turn_id"]  # the reply to "one"
    status, body = await rest(http, "POST", f"{base}/copy", emu.token, {"end_turn_id": end})
    assert status == 200 and set(body) == {"new_chat_id"}
    copied = await history(http, emu, body["new_chat_id"])
    assert [t["turn_key"]["turn_id"] for t in copied] == [
        t["turn_key"]["turn_id"] for t in turns[2:]
    ]
    assert {t["turn_key"]["chat_id"] for t in copied} == {body["new_chat_id"]}
    _, chat = await rest(http, "GET", f"{emu.url}/neo/chat/{body['new_chat_id']}/", emu.token)
    assert chat["chat"]["character_id"] == echo.id and chat["chat"]["state"] == "STATE_ACTIVE"
    missing = {"end_turn_id": str(uuid.uuid4())}
    assert await rest(http, "POST", f"{base}/copy", emu.token, missing) == (
        404,
        neo_error("Turn not found", 404),
    )

    model = {"preferred_model_type": "MODEL_TYPE_FAST"}
    status, body = await rest(http, "PATCH", f"{base}/preferred-model-type", emu.token, model)
    assert status == 200 and body["chat"]["preferred_model_type"] == "MODEL_TYPE_FAST"
    reply = await say(ws, emu, chat_id, "fast?", echo)
    assert reply["candidates"][0]["model_type"] == "MODEL_TYPE_FAST"
    bad = {"preferred_model_type": "GPT"}
    status, body = await rest(http, "PATCH", f"{base}/preferred-model-type", emu.token, bad)
    assert status == 400 and body["comment"].startswith("Invalid preferred_model_type")


async def test_rest_remove_and_pin(emu: Emulator, http: aiohttp.ClientSession, ws: WS) -> None:
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo)
    reply = await say(ws, emu, chat_id, "pin me", echo)
    pin = {"is_pinned": True, "turn_key": reply["turn_key"]}
    status, body = await rest(http, "POST", f"{emu.url}/neo/turn/pin", emu.token, pin)
    assert status == 200 and body["turn"]["is_pinned"] is True
    assert body["turn"]["turn_key"] == reply["turn_key"]
    pin["is_pinned"] = False
    _, body = await rest(http, "POST", f"{emu.url}/neo/turn/pin", emu.token, pin)
    assert body["turn"]["is_pinned"] is False
    assert await history(http, emu, chat_id, pinned_only="true") == []

    url = f"{emu.url}/neo/turns/{chat_id}/remove"
    ids = {"turn_ids": [reply["turn_key"]["turn_id"]]}
    assert await rest(http, "POST", url, emu.token, ids) == (200, {})
    assert len(await history(http, emu, chat_id)) == 2
    status, body = await rest(http, "POST", url, emu.token, {"turn_ids": "x"})
    assert status == 400


async def test_annotations(emu: Emulator, http: aiohttp.ClientSession, ws: WS) -> None:
    sage = emu.character("Sage")
    chat_id = await new_chat(ws, emu, sage)
    reply = await say(ws, emu, chat_id, "rate me", sage)
    create = f"{emu.url}/neo/annotation/create"
    body = {
        "annotation": {"annotation_type": "star", "annotation_value": 4},
        "candidate_id": reply["primary_candidate_id"],
        "turn_key": reply["turn_key"],
    }
    status, answer = await rest(http, "POST", create, emu.token, body)
    assert status == 200
    annotation_id = answer["annotation"]["annotation_id"]
    uuid.UUID(annotation_id)
    body["annotation"] = {"annotation_type": "star", "annotation_value": 7}
    assert (await rest(http, "POST", create, emu.token, body))[0] == 400
    body["annotation"] = {"annotation_type": "funny", "annotation_value": 1}
    body["candidate_id"] = str(uuid.uuid4())
    assert await rest(http, "POST", create, emu.token, body) == (
        404,
        neo_error("Turn candidate not found", 404),
    )
    remove = f"{emu.url}/neo/annotation/remove"
    other = emu.store.add_user("someone")
    gone = {"annotation_id": annotation_id}
    assert (await rest(http, "POST", remove, other.token, gone))[0] == 404
    assert await rest(http, "POST", remove, emu.token, gone) == (200, {})
    assert await rest(http, "POST", remove, emu.token, gone) == (
        404,
        neo_error("Annotation not found", 404),
    )


_KEY = {"chat_id": "{chat}", "turn_id": "{turn}"}
_FAST = {"preferred_model_type": "MODEL_TYPE_FAST"}
_NOTE = {"annotation": {"annotation_type": "funny"}, "candidate_id": "{cand}", "turn_key": _KEY}


async def test_swipe_annotation_answers_for_own_candidates_only(
    emu: Emulator, http: aiohttp.ClientSession, ws: WS
) -> None:
    echo = emu.character("Echo")
    chat_id = await new_chat(ws, emu, echo, greeting=False)
    reply = await say(ws, emu, chat_id, "rate me", echo)
    turn_id, candidate_id = reply["turn_key"]["turn_id"], reply["candidates"][0]["candidate_id"]
    url = f"{emu.url}/neo/annotations"
    assert await rest(http, "POST", f"{url}/{chat_id}/{turn_id}/{candidate_id}", emu.token, {}) == (
        200,
        {},
    )
    other = emu.store.add_user("stranger")
    missing = [
        (f"{chat_id}/{turn_id}/{uuid.uuid4()}", emu.token, "Turn candidate not found"),
        (f"{chat_id}/{uuid.uuid4()}/{candidate_id}", emu.token, "Turn not found"),
        (f"{uuid.uuid4()}/{turn_id}/{candidate_id}", emu.token, "Chat not found"),
        (f"{chat_id}/{turn_id}/{candidate_id}", other.token, "Chat not found"),
    ]
    for path, token, comment in missing:
        assert await rest(http, "POST", f"{url}/{path}", token, {}) == (
            404,
            neo_error(comment, 404),
        )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/neo/chat/{chat}/resurrect", None),
        ("PATCH", "/neo/chat/{chat}/update_name", {"name": "x"}),
        ("PATCH", "/neo/chat/{chat}/archive", None),
        ("PATCH", "/neo/chat/{chat}/unarchive", None),
        ("PATCH", "/neo/chat/{chat}/preferred-model-type", _FAST),
        ("POST", "/neo/chat/{chat}/copy", {"end_turn_id": "{turn}"}),
        ("POST", "/neo/turns/{chat}/remove", {"turn_ids": ["{turn}"]}),
        ("POST", "/neo/turn/pin", {"is_pinned": True, "turn_key": _KEY}),
        ("POST", "/neo/annotation/create", _NOTE),
    ],
)
async def test_foreign_chats_read_as_missing_and_auth_is_required(
    emu: Emulator, http: aiohttp.ClientSession, method: str, path: str, body: Any
) -> None:
    owner = emu.store.add_user("owner")
    echo = emu.character("Echo")
    async with http.ws_connect(f"{emu.url}/neo/ws/", headers=cookie(owner.token)) as sock:
        await send(
            sock, "create_chat", {"chat": {"character_id": echo.id}, "with_greeting": True}, 1
        )
        chat_id = (await recv(sock))["chat"]["chat_id"]
        greeting = (await recv(sock))["turn"]
    names = {
        "{chat}": chat_id,
        "{turn}": greeting["turn_key"]["turn_id"],
        "{cand}": greeting["primary_candidate_id"],
    }
    text = json.dumps(body) if body is not None else ""
    url = emu.url + path
    for placeholder, value in names.items():
        text, url = text.replace(placeholder, value), url.replace(placeholder, value)
    data = text.encode() or None
    assert await rest(http, method, url, emu.token, data) == (404, neo_error("Chat not found", 404))
    status, answer = await rest(http, method, url, None, data)
    assert status == 401 and "detail" in answer
    status, _ = await rest(http, method, url, owner.token, data)
    assert status == 200  # The owner may.


# ---- persistence ----------------------------------------------------------------------------


async def test_state_file_keeps_chats_turns_and_changes(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    async with (
        Emulator(state_file=state) as emu,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{emu.url}/neo/ws/", headers=cookie(emu.token)) as ws,
    ):
        echo = emu.character("Echo")
        chat_id = await new_chat(ws, emu, echo)
        reply = await say(ws, emu, chat_id, "keep me", echo)
        await send(ws, "generate_turn_candidate", {"turn_key": reply["turn_key"]}, "g")
        await until_final(ws)
        await send(ws, "set_turn_pin", {"is_pinned": True, "turn_key": reply["turn_key"]}, "p")
        await recv(ws)
        base = f"{emu.url}/neo/chat/{chat_id}"
        await rest(http, "PATCH", f"{base}/update_name", emu.token, {"name": "Kept"})
        await rest(http, "PATCH", f"{base}/archive", emu.token)
        before = await history(http, emu, chat_id, candidate_filter="all")
        other = await new_chat(ws, emu, echo, greeting=False)
        await say(ws, emu, other, "second chat", echo)
        doomed = (await history(http, emu, other))[0]["turn_key"]["turn_id"]
        await rest(
            http, "POST", f"{emu.url}/neo/turns/{other}/remove", emu.token, {"turn_ids": [doomed]}
        )
        other_before = await history(http, emu, other)
    async with (
        Emulator(state_file=state) as emu,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{emu.url}/neo/ws/", headers=cookie(emu.token)) as ws,
    ):
        after = await history(http, emu, chat_id, candidate_filter="all")
        assert after == before
        assert len(after[0]["candidates"]) == 2 and after[0]["is_pinned"] is True
        _, body = await rest(http, "GET", f"{emu.url}/neo/chat/{chat_id}/", emu.token)
        assert body["chat"]["name"] == "Kept" and body["chat"]["state"] == "STATE_ARCHIVED"
        assert await history(http, emu, other) == other_before
        _, recent = await rest(http, "GET", f"{emu.url}/neo/chats/recent/", emu.token)
        assert [c["chat_id"] for c in recent["chats"]] == [other]
        # The reply numbering continues where it stopped: this is the second message.
        reply = await say(ws, emu, other, "more", echo)
        assert reply["candidates"][0]["raw_content"] == echo.reply("more", 2)
