"""Tier 2: the client's socket handling against a scripted server that misbehaves on purpose."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from aiohttp import web

from caiclient import (
    AuthError,
    BlockedError,
    Chat,
    ClientClosed,
    Disconnected,
    ProtocolError,
    Timeout,
)
from fake_neo import bot_turn, client_for, fake_neo

CHAT = Chat(chat_id="chat-1", character_id="bot")


async def test_unknown_and_malformed_frames_are_dropped_and_reading_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def script(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        rid = frame["request_id"]
        await ws.send_str("this is not json")
        await ws.send_str(json.dumps({"command": "state_update", "request_id": None}))
        await ws.send_str(json.dumps({"command": "add_turn", "request_id": "someone-else"}))
        await ws.send_str(
            json.dumps(
                {
                    "command": "update_turn",
                    "request_id": rid,
                    "turn": bot_turn(frame, "Hi", final=True),
                }
            )
        )

    async with fake_neo(script) as (origin, _), client_for(origin) as client:
        with caplog.at_level(logging.WARNING, logger="caiclient"):
            turn = await client.chats.send(CHAT, "hello", timeout=5)
    assert turn.text == "Hi"
    dropped = [r.getMessage() for r in caplog.records]
    assert any("state_update" in m for m in dropped)
    assert any("not JSON" in m for m in dropped)


async def test_malformed_frame_for_a_request_fails_that_request() -> None:
    async def script(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        await ws.send_str(
            json.dumps({"command": "update_turn", "request_id": frame["request_id"], "turn": 7})
        )

    async with fake_neo(script) as (origin, _), client_for(origin) as client:
        with pytest.raises(ProtocolError, match="update_turn"):
            await client.chats.send(CHAT, "hello", timeout=5)


async def test_keepalive_is_answered_with_empty_object() -> None:
    answered = asyncio.Event()

    async def script(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        await ws.send_str("{}")
        # The client's `{}` answer is not passed to the script (empty frames are skipped),
        # so finish the request and check the received log afterwards.
        await ws.send_str(
            json.dumps(
                {
                    "command": "update_turn",
                    "request_id": frame["request_id"],
                    "turn": bot_turn(frame, "ok", final=True),
                }
            )
        )
        answered.set()

    async with fake_neo(script) as (origin, received), client_for(origin) as client:
        await client.chats.send(CHAT, "ping me", timeout=5)
        await asyncio.wait_for(answered.wait(), 5)
        for _ in range(100):
            if "{}" in received:
                break
            await asyncio.sleep(0.01)
    assert "{}" in received


async def test_silent_server_times_out_and_the_client_stays_usable() -> None:
    calls = 0

    async def script(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        if calls > 1:
            turn = bot_turn(frame, "late but fine", final=True)
            await ws.send_str(
                json.dumps(
                    {"command": "update_turn", "request_id": frame["request_id"], "turn": turn}
                )
            )

    async with fake_neo(script) as (origin, _), client_for(origin) as client:
        with pytest.raises(Timeout):
            await client.chats.send(CHAT, "anyone there?", timeout=0.2)
        turn = await client.chats.send(CHAT, "again", timeout=5)
    assert turn.text == "late but fine"


async def test_unrecoverable_drop_fails_the_caller_with_disconnected() -> None:
    """The server drops the socket mid-reply and never stores the reply: after polling the
    history until the deadline, the caller gets Disconnected (not a hang, not a wrong reply).
    """

    async def script(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        partial = bot_turn(frame, "Half a rep", final=False)
        await ws.send_str(
            json.dumps({"command": "add_turn", "request_id": frame["request_id"], "turn": partial})
        )
        await ws.close()

    async with fake_neo(script) as (origin, _), client_for(origin) as client:
        seen: list[str] = []
        started = asyncio.get_running_loop().time()
        with pytest.raises(Disconnected, match="could not be recovered"):
            async for chunk in client.chats.stream(CHAT, "tell me", timeout=1.0):
                seen.append(chunk.delta)
        assert asyncio.get_running_loop().time() - started < 3
    assert seen == ["Half a rep"]


async def test_ws_403_with_a_valid_token_is_blocked_not_auth() -> None:
    async def script(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        raise AssertionError("never reached")

    async with fake_neo(script, ws_status=403) as (origin, _), client_for(origin) as client:
        with pytest.raises(BlockedError) as caught:
            await client.chats.send(CHAT, "hi", timeout=5)
    assert not isinstance(caught.value, AuthError)
    assert "impersonate" in str(caught.value)


async def test_ws_403_with_a_bad_token_is_auth() -> None:
    async def script(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        raise AssertionError("never reached")

    async with (
        fake_neo(script, ws_status=403, rest_status=401) as (origin, _),
        client_for(origin) as client,
    ):
        with pytest.raises(AuthError):
            await client.chats.send(CHAT, "hi", timeout=5)


async def test_close_fails_waiters_with_client_closed() -> None:
    async def script(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        return  # never answers

    async with fake_neo(script) as (origin, _):
        client = client_for(origin)
        task = asyncio.create_task(client.chats.send(CHAT, "hi", timeout=30))
        for _ in range(500):
            if client._core.socket.in_flight:
                break
            await asyncio.sleep(0.01)
        await client.aclose()
        with pytest.raises(ClientClosed):
            await asyncio.wait_for(task, 5)


async def test_silent_socket_is_probed_dropped_and_reopened() -> None:
    async def script(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        return  # accepts the message, then never says anything again

    async with (
        fake_neo(script) as (origin, received),
        client_for(origin, idle_timeout=0.4) as client,
    ):
        with pytest.raises(Disconnected):
            await client.chats.send(CHAT, "hello?", timeout=1.5)
        socket = client._core.socket
        assert socket.drops >= 1
        assert socket.connects >= 2  # reopened in the background
    assert "{}" in received  # the probe went out before giving up on the socket
