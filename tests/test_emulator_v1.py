"""The emulator's legacy Chat V1 (PROTOCOL.md §10), driven by aiohttp, not caiclient."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from caiclient.emulator import Emulator, SeedCharacter
from caiclient.emulator import v1 as emu_v1

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
MESSAGE_KEYS = {
    "id",
    "uuid",
    "text",
    "src",
    "tgt",
    "is_alternative",
    "image_rel_path",
    "image_prompt_text",
    "deleted",
    "src__name",
    "src__user__username",
    "src__is_human",
    "src__character__avatar_file_name",
    "src_char",
    "responsible_user__username",
}
CHUNK_KEYS = {"replies", "src_char", "is_final_chunk", "last_user_msg_id", "last_user_msg_uuid"}
NO_HISTORY = "there is no history between user and character"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


async def post(
    http: aiohttp.ClientSession, emu: Emulator, path: str, body: Any, token: str | None = None
) -> aiohttp.ClientResponse:
    headers = auth(token or emu.token)
    response = await http.post(f"{emu.url}{path}", json=body, headers=headers)
    await response.read()
    return response


async def create(
    http: aiohttp.ClientSession,
    emu: Emulator,
    character: SeedCharacter,
    token: str | None = None,
    prefix: str = "/plus",
) -> dict[str, Any]:
    body = {"character_external_id": character.id, "history_external_id": None}
    response = await post(http, emu, f"{prefix}/chat/history/create/", body, token)
    assert response.status == 200
    data: dict[str, Any] = await response.json()
    return data


async def stream(
    http: aiohttp.ClientSession,
    emu: Emulator,
    body: dict[str, Any],
    token: str | None = None,
) -> tuple[aiohttp.ClientResponse, bytes]:
    response = await http.post(
        f"{emu.url}/plus/chat/streaming/", json=body, headers=auth(token or emu.token)
    )
    return response, await response.read()


def lines_of(raw: bytes) -> list[dict[str, Any]]:
    assert raw.endswith(b"\n")
    return [json.loads(x) for x in raw.split(b"\n")[:-1]]


async def send(
    http: aiohttp.ClientSession,
    emu: Emulator,
    history: dict[str, Any],
    text: str,
    token: str | None = None,
) -> list[dict[str, Any]]:
    tgt = history["participants"][1]["user"]["username"]
    body = {"history_external_id": history["external_id"], "text": text, "tgt": tgt}
    response, raw = await stream(http, emu, body, token)
    assert response.status == 200, raw
    return lines_of(raw)


async def messages(
    http: aiohttp.ClientSession, emu: Emulator, history_id: str, page: int | None = None
) -> dict[str, Any]:
    params = {"history_external_id": history_id}
    if page is not None:
        params["page_num"] = str(page)
    response = await http.get(
        f"{emu.url}/plus/chat/history/msgs/user/", params=params, headers=auth(emu.token)
    )
    assert response.status == 200
    data: dict[str, Any] = await response.json()
    return data


async def all_messages(
    http: aiohttp.ClientSession, emu: Emulator, history_id: str
) -> list[dict[str, Any]]:
    pages, page = [], 1
    while True:
        data = await messages(http, emu, history_id, page)
        pages.append(data["messages"])
        if not data["has_more"]:
            return [m for p in reversed(pages) for m in p]
        page = data["next_page"]


# ---- create / continue / histories ------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/plus", "/beta"])
async def test_create_returns_a_history_with_the_greeting(
    emu: Emulator, http: aiohttp.ClientSession, prefix: str
) -> None:
    echo = emu.character("Echo")
    data = await create(http, emu, echo, prefix=prefix)
    assert set(data) >= {
        "title",
        "participants",
        "external_id",
        "created",
        "last_interaction",
        "type",
        "description",
        "speech",
        "status",
        "has_more",
        "messages",
    }
    assert data["status"] == "OK"
    assert TS.match(data["created"]) and TS.match(data["last_interaction"])
    human, bot = data["participants"]
    assert human["is_human"] is True
    assert human["user"]["username"] == emu.username
    assert human["user"]["id"] == int(emu.user_id)
    assert set(human["user"]) == {"username", "id", "first_name", "account", "is_staff"}
    assert bot["is_human"] is False
    assert bot["user"]["username"] == echo.participant_username
    assert bot["name"] == "Echo"
    [greeting] = data["messages"]
    assert set(greeting) == MESSAGE_KEYS
    assert greeting["text"] == echo.greeting
    assert isinstance(greeting["id"], int) and greeting["id"] > 2**53
    assert uuid.UUID(greeting["uuid"]).version == 4
    assert greeting["src"] == echo.participant_username
    assert greeting["src__is_human"] is False
    assert greeting["src_char"] == {
        "participant": {"name": "Echo"},
        "avatar_file_name": echo.avatar_file_name,
    }


async def test_create_unknown_character_is_plain_404(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    body = {"character_external_id": "x" * 43, "history_external_id": None}
    response = await post(http, emu, "/plus/chat/history/create/", body)
    assert response.status == 404
    assert response.content_type == "text/plain"
    assert (await response.text()).startswith("no character found for")


async def test_other_users_private_character_reads_as_missing(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    other = emu.store.add_user("someone")
    private = SeedCharacter(
        id="p" * 43,
        name="Secret",
        title="t",
        greeting="hi",
        description="d",
        avatar_file_name="a.webp",
        style="echo",
        visibility="PRIVATE",
        creator_id=other.id,
    )
    emu.store.characters[private.id] = private
    body = {"character_external_id": private.id, "history_external_id": None}
    response = await post(http, emu, "/plus/chat/history/create/", body)
    assert response.status == 404
    assert await response.text() == f"no character found for {private.id}"
    assert (await create(http, emu, private, token=other.token))["external_id"]


async def test_continue_without_history_is_the_plain_sentence(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    body = {"character_external_id": emu.character("Sage").id, "history_external_id": None}
    response = await post(http, emu, "/plus/chat/history/continue/", body)
    assert response.status == 404
    assert await response.text() == NO_HISTORY


async def test_continue_returns_the_latest_or_the_named_history(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    sage = emu.character("Sage")
    first = await create(http, emu, sage)
    second = await create(http, emu, sage)
    body: dict[str, Any] = {"character_external_id": sage.id, "history_external_id": None}
    response = await post(http, emu, "/plus/chat/history/continue/", body)
    data = await response.json()
    assert data["external_id"] == second["external_id"]
    assert set(data) == {
        "title",
        "participants",
        "external_id",
        "created",
        "last_interaction",
        "type",
        "description",
        "avatars",
        "room_img_gen_enabled",
    }
    assert data["avatars"][1] == {
        "name": "Sage",
        "character__avatar_file_name": sage.avatar_file_name,
    }
    assert "user__account__avatar_file_name" in data["avatars"][0]
    await send(http, emu, first, "back to the first")  # The first is now the latest.
    response = await post(http, emu, "/plus/chat/history/continue/", body)
    assert (await response.json())["external_id"] == first["external_id"]
    body["history_external_id"] = second["external_id"]
    response = await post(http, emu, "/plus/chat/history/continue/", body)
    assert (await response.json())["external_id"] == second["external_id"]


async def test_continue_with_another_users_history_is_identical_to_missing(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    sage = emu.character("Sage")
    mine = await create(http, emu, sage)
    other = emu.store.add_user("someone")
    answers = []
    for history_id in (mine["external_id"], "nope"):
        body = {"character_external_id": sage.id, "history_external_id": history_id}
        response = await post(http, emu, "/plus/chat/history/continue/", body, other.token)
        answers.append((response.status, await response.text()))
    assert answers == [(404, NO_HISTORY), (404, NO_HISTORY)]


@pytest.mark.parametrize("path", ["histories", "histories_v2"])
async def test_histories_newest_first_with_messages(
    emu: Emulator, http: aiohttp.ClientSession, path: str
) -> None:
    nova = emu.character("Nova")
    older = await create(http, emu, nova)
    newer = await create(http, emu, nova)
    await create(http, emu, emu.character("Echo"))  # Another character's: not listed.
    body = {"external_id": nova.id, "number": 50}
    response = await post(http, emu, f"/plus/chat/character/{path}/", body)
    histories = (await response.json())["histories"]
    assert [h["external_id"] for h in histories] == [newer["external_id"], older["external_id"]]
    assert set(histories[0]) == {"external_id", "created", "last_interaction", "msgs"}
    assert histories[0]["msgs"][0]["text"] == nova.greeting
    response = await post(http, emu, f"/plus/chat/character/{path}/", {**body, "number": 1})
    assert len((await response.json())["histories"]) == 1
    other = emu.store.add_user("someone")
    response = await post(http, emu, f"/plus/chat/character/{path}/", body, other.token)
    assert (await response.json())["histories"] == []


async def test_bad_token_and_malformed_bodies(emu: Emulator, http: aiohttp.ClientSession) -> None:
    response = await post(http, emu, "/plus/chat/history/create/", {}, token="0" * 40)
    assert response.status == 401
    assert await response.json() == {"detail": "Invalid token."}
    response = await http.post(
        f"{emu.url}/plus/chat/history/create/", data=b"{nope", headers=auth(emu.token)
    )
    assert response.status == 400
    response = await post(http, emu, "/plus/chat/history/continue/", [1, 2])
    assert response.status == 400
    response = await post(
        http, emu, "/plus/chat/character/histories/", {"external_id": "x", "number": "many"}
    )
    assert response.status == 404  # Unknown character first.
    body = {"external_id": emu.character("Echo").id, "number": "many"}
    response = await post(http, emu, "/plus/chat/character/histories/", body)
    assert response.status == 400


# ---- messages ---------------------------------------------------------------------------


async def test_message_pages_newest_first(emu: Emulator, http: aiohttp.ClientSession) -> None:
    history = await create(http, emu, emu.character("Echo"))
    for i in range(11):  # 1 greeting + 22 = 23 messages: two pages of 20.
        await send(http, emu, history, f"message {i}")
    page1 = await messages(http, emu, history["external_id"])
    assert len(page1["messages"]) == emu_v1.PAGE_SIZE
    assert (page1["next_page"], page1["has_more"]) == (2, True)
    assert page1["messages"][-1]["text"].startswith("message 10 — ")
    page2 = await messages(http, emu, history["external_id"], 2)
    assert [m["text"] for m in page2["messages"][:2]] == [
        emu.character("Echo").greeting,
        "message 0",
    ]
    assert page2["has_more"] is False
    every = await all_messages(http, emu, history["external_id"])
    assert len(every) == 23
    assert all(set(m) == MESSAGE_KEYS for m in every)
    assert [m["id"] for m in every] == sorted(m["id"] for m in every)
    assert [m["src__is_human"] for m in every[:3]] == [False, True, False]


async def test_messages_errors(emu: Emulator, http: aiohttp.ClientSession) -> None:
    history = await create(http, emu, emu.character("Echo"))
    url = f"{emu.url}/plus/chat/history/msgs/user/"
    other = emu.store.add_user("someone")
    for params, token, status in [
        ({"history_external_id": "nope"}, emu.token, 404),
        ({"history_external_id": history["external_id"]}, other.token, 404),
        ({}, emu.token, 400),
        ({"history_external_id": history["external_id"], "page_num": "0"}, emu.token, 400),
        ({"history_external_id": history["external_id"], "page_num": "x"}, emu.token, 400),
    ]:
        response = await http.get(url, params=params, headers=auth(token))
        assert response.status == status, params
        if status == 404:
            assert await response.text() == "No Such History"


async def test_delete_messages(emu: Emulator, http: aiohttp.ClientSession) -> None:
    history = await create(http, emu, emu.character("Echo"))
    await send(http, emu, history, "one")
    every = await all_messages(http, emu, history["external_id"])
    doomed = [m["uuid"] for m in every[1:]]
    body = {
        "history_id": history["external_id"],
        "uuids_to_delete": [*doomed, "unknown"],
        "regenerating": False,
    }
    other = emu.store.add_user("someone")
    response = await post(http, emu, "/plus/chat/history/msgs/delete/", body, other.token)
    assert response.status == 404
    assert len(await all_messages(http, emu, history["external_id"])) == 3
    response = await post(http, emu, "/plus/chat/history/msgs/delete/", body)
    assert await response.json() == {"status": "OK"}
    left = await all_messages(http, emu, history["external_id"])
    assert [m["uuid"] for m in left] == [every[0]["uuid"]]
    bad = {"history_id": history["external_id"], "uuids_to_delete": "all"}
    response = await post(http, emu, "/plus/chat/history/msgs/delete/", bad)
    assert response.status == 400


# ---- streaming --------------------------------------------------------------------------


async def test_streaming_sends_cumulative_ndjson_snapshots(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    echo = emu.character("Echo")
    history = await create(http, emu, echo)
    body = {
        "history_external_id": history["external_id"],
        "character_external_id": echo.id,
        "text": "Hello there",
        "tgt": echo.participant_username,
    }
    response, raw = await stream(http, emu, body)
    assert response.status == 200
    assert response.content_type == "text/plain"
    lines = lines_of(raw)
    assert len(lines) == emu.chunks >= 2
    assert all(set(ln) == CHUNK_KEYS for ln in lines)
    assert [ln["is_final_chunk"] for ln in lines] == [False] * (len(lines) - 1) + [True]
    texts = [ln["replies"][0]["text"] for ln in lines]
    assert all(b.startswith(a) and len(b) > len(a) for a, b in itertools.pairwise(texts))
    assert texts[-1] == echo.reply("Hello there", 1)
    reply_ids = {(ln["replies"][0]["id"], ln["replies"][0]["uuid"]) for ln in lines}
    assert len(reply_ids) == 1
    reply_id, reply_uuid = reply_ids.pop()
    assert isinstance(reply_id, int) and reply_id > 2**53
    assert lines[0]["src_char"] == {
        "participant": {"name": "Echo"},
        "avatar_file_name": echo.avatar_file_name,
    }
    stored = await all_messages(http, emu, history["external_id"])
    user_msg, reply = stored[-2:]
    assert (user_msg["text"], user_msg["src__is_human"]) == ("Hello there", True)
    assert user_msg["id"] == lines[0]["last_user_msg_id"]
    assert user_msg["uuid"] == lines[0]["last_user_msg_uuid"]
    assert (reply["id"], reply["uuid"], reply["text"]) == (reply_id, reply_uuid, texts[-1])
    assert reply["is_alternative"] is False


async def test_streaming_lines_arrive_one_by_one(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.chunk_delay = 0.2
    history = await create(http, emu, emu.character("Echo"))
    tgt = history["participants"][1]["user"]["username"]
    body = {"history_external_id": history["external_id"], "text": "slowly", "tgt": tgt}
    async with http.post(
        f"{emu.url}/plus/chat/streaming/", json=body, headers=auth(emu.token)
    ) as response:
        first = json.loads(await response.content.readline())
        assert first["is_final_chunk"] is False
        assert not response.content.at_eof()
        assert response.content.is_eof() is False
        rest = await response.read()
    assert lines_of(rest)[-1]["is_final_chunk"] is True


async def test_regenerate_adds_an_alternative(emu: Emulator, http: aiohttp.ClientSession) -> None:
    sage = emu.character("Sage")
    history = await create(http, emu, sage)
    first = await send(http, emu, history, "Tell me about maps")
    parent = first[-1]["last_user_msg_uuid"]
    body = {
        "history_external_id": history["external_id"],
        "parent_msg_uuid": parent,
        "tgt": sage.participant_username,
    }
    response, raw = await stream(http, emu, body)
    lines = lines_of(raw)
    assert lines[-1]["last_user_msg_uuid"] == parent
    new_reply = lines[-1]["replies"][0]
    assert new_reply["text"] != first[-1]["replies"][0]["text"]
    stored = await all_messages(http, emu, history["external_id"])
    assert [m["src__is_human"] for m in stored] == [False, True, False, False]
    assert [m["is_alternative"] for m in stored[2:]] == [False, True]
    assert stored[-1]["uuid"] == new_reply["uuid"]
    # Choosing the alternative makes it the primary reply.
    follow = {
        "history_external_id": history["external_id"],
        "text": "go on",
        "tgt": sage.participant_username,
        "primary_msg_uuid": new_reply["uuid"],
    }
    response, raw = await stream(http, emu, follow)
    assert response.status == 200
    stored = await all_messages(http, emu, history["external_id"])
    assert [m["is_alternative"] for m in stored[2:4]] == [True, False]


async def test_num_candidates_gives_several_replies(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    history = await create(http, emu, emu.character("Nova"))
    body = {"history_external_id": history["external_id"], "text": "stars", "num_candidates": 2}
    _, raw = await stream(http, emu, body)
    last = lines_of(raw)[-1]
    assert len(last["replies"]) == 2
    assert last["replies"][0]["uuid"] != last["replies"][1]["uuid"]
    stored = await all_messages(http, emu, history["external_id"])
    assert [m["is_alternative"] for m in stored[-2:]] == [False, True]


async def test_output_filter_aborts_after_partial_chunks(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    history = await create(http, emu, emu.character("Echo"))
    lines = await send(http, emu, history, f"say {emu_v1.FILTER_TRIGGER} please")
    *partial, abort = lines
    assert partial and all(ln["is_final_chunk"] is False for ln in partial)
    assert abort == {
        "abort": True,
        "error": "No eligible candidates",
        "last_user_msg_id": partial[0]["last_user_msg_id"],
        "last_user_msg_uuid": partial[0]["last_user_msg_uuid"],
    }
    stored = await all_messages(http, emu, history["external_id"])
    assert [m["src__is_human"] for m in stored] == [False, True]  # No reply was kept.


async def test_guest_gets_force_login_after_the_limit(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    response = await http.post(f"{emu.url}/beta/chat/auth/lazy/", json={"lazy_uuid": "g1"})
    guest = (await response.json())["token"]
    control = {"X-Emulator-Control": emu.control_token}
    response = await http.post(
        f"{emu.url}/__emulator__/v1/guest_limit", json={"limit": 2}, headers=control
    )
    assert await response.json() == {"limit": 2}
    response = await http.get(f"{emu.url}/__emulator__/v1/guest_limit", headers=control)
    assert await response.json() == {"limit": 2}
    history = await create(http, emu, emu.character("Echo"), token=guest)
    await send(http, emu, history, "one", guest)
    await send(http, emu, history, "two", guest)
    response, raw = await stream(
        http, emu, {"history_external_id": history["external_id"], "text": "three"}, guest
    )
    assert response.status == 200
    assert raw == b'{"force_login":true}\n'
    # Real users have no limit.
    mine = await create(http, emu, emu.character("Echo"))
    for text in ("a", "b", "c"):
        await send(http, emu, mine, text)
    response = await http.post(
        f"{emu.url}/__emulator__/v1/guest_limit", json={"limit": -1}, headers=control
    )
    assert response.status == 400


async def test_streaming_errors(emu: Emulator, http: aiohttp.ClientSession) -> None:
    echo = emu.character("Echo")
    history = await create(http, emu, echo)
    hid = history["external_id"]
    other = emu.store.add_user("someone")
    cases: list[tuple[dict[str, Any], str, int]] = [
        ({"history_external_id": "nope", "text": "x"}, emu.token, 404),
        ({"history_external_id": hid, "text": "x"}, other.token, 404),
        ({"history_external_id": hid, "text": "x", "tgt": "internal_id:1:x"}, emu.token, 400),
        ({"history_external_id": hid}, emu.token, 400),
        ({"history_external_id": hid, "text": "  "}, emu.token, 400),
        ({"history_external_id": hid, "parent_msg_uuid": "nope"}, emu.token, 400),
        ({"history_external_id": hid, "text": "x", "primary_msg_uuid": "nope"}, emu.token, 400),
        ({"history_external_id": hid, "text": "x", "num_candidates": 0}, emu.token, 400),
        ({"history_external_id": hid, "text": "x", "character_external_id": "y"}, emu.token, 400),
    ]
    for body, token, status in cases:
        response, raw = await stream(http, emu, body, token)
        assert response.status == status, (body, raw)
        if status == 404:
            assert raw == b"No Such History"
    response, _ = await stream(http, emu, {"history_external_id": hid, "text": "x"}, "0" * 40)
    assert response.status == 401
    response = await http.post(
        f"{emu.url}/plus/chat/streaming/", data=b"{", headers=auth(emu.token)
    )
    assert response.status == 400
    stored = await all_messages(http, emu, hid)
    assert len(stored) == 1  # None of the refused requests stored anything.


async def test_a_reply_is_stored_even_if_the_client_leaves(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.chunk_delay = 0.05
    history = await create(http, emu, emu.character("Echo"))
    body = {"history_external_id": history["external_id"], "text": "bye"}
    async with http.post(
        f"{emu.url}/plus/chat/streaming/", json=body, headers=auth(emu.token)
    ) as response:
        await response.content.readline()
        response.close()
    emu.chunk_delay = 0.0
    # The next request to the history waits for the first generation's lock.
    await send(http, emu, history, "again")
    texts = [m["text"] for m in await all_messages(http, emu, history["external_id"])]
    assert texts[1:3] == ["bye", emu.character("Echo").reply("bye", 1)]


async def test_histories_and_messages_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    async with Emulator(state_file=state) as emu, aiohttp.ClientSession() as http:
        history = await create(http, emu, emu.character("Echo"))
        await send(http, emu, history, "remember me")
        before = await all_messages(http, emu, history["external_id"])
    async with Emulator(state_file=state) as emu, aiohttp.ClientSession() as http:
        after = await all_messages(http, emu, history["external_id"])
        assert after == before
        lines = await send(http, emu, history, "still here?")
        assert lines[-1]["replies"][0]["id"] > max(m["id"] for m in before)
        body = {"character_external_id": emu.character("Echo").id, "history_external_id": None}
        response = await post(http, emu, "/plus/chat/history/continue/", body)
        assert (await response.json())["external_id"] == history["external_id"]


async def test_concurrent_sends_to_one_history_are_serialised(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.chunk_delay = 0.01
    history = await create(http, emu, emu.character("Echo"))
    await asyncio.gather(*(send(http, emu, history, f"m{i}") for i in range(3)))
    stored = await all_messages(http, emu, history["external_id"])
    assert [m["src__is_human"] for m in stored[1:]] == [True, False] * 3
