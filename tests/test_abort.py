"""Tier 2: leaving a generation early tells the server to stop (``abort_generation``, §8.5).

Against a scripted server that streams slowly and records every frame it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from aiohttp import web

from caiclient import Chat, Turn
from fake_neo import bot_turn, client_for, fake_neo

CHAT = Chat(chat_id="chat-1", character_id="bot")


def _stream_slowly(
    ws: web.WebSocketResponse, rid: str, prefix: str, turn_of: Callable[[str, bool], Any]
) -> None:
    """Stream ten chunks 50 ms apart (``turn_of(text, final)`` is each frame's turn), unless
    the socket closes."""

    async def stream() -> None:
        text = ""
        for n in range(10):
            text += f"{prefix}{n} "
            turn = turn_of(text, n == 9)
            command = "add_turn" if n == 0 else "update_turn"
            if ws.closed:
                return
            await ws.send_str(json.dumps({"command": command, "request_id": rid, "turn": turn}))
            await asyncio.sleep(0.05)

    asyncio.get_running_loop().create_task(stream())


async def slow_reply(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
    """Stream ten chunks 50 ms apart, unless the client asks to stop."""
    if frame.get("command") == "create_and_generate_turn":
        _stream_slowly(
            ws, frame["request_id"], "w", lambda text, final: bot_turn(frame, text, final=final)
        )


async def slow_swipe(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
    """A regeneration of turn ``bot-t``: a new candidate streamed in ten chunks 50 ms apart."""
    if frame.get("command") != "generate_turn_candidate":
        return
    key = frame["payload"]["turn_key"]

    def turn_of(text: str, final: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"candidate_id": "swipe-k", "raw_content": text}
        if final:
            candidate["is_final"] = True
        return {
            "turn_key": key,
            "author": {"author_id": "bot", "name": "Bot"},
            "candidates": [candidate],
            "primary_candidate_id": "swipe-k",
        }

    _stream_slowly(ws, frame["request_id"], "s", turn_of)


def swipes(received: list[str]) -> list[str]:
    frames = [json.loads(f) for f in received]
    return [f["request_id"] for f in frames if f.get("command") == "generate_turn_candidate"]


def aborts(received: list[str]) -> list[str]:
    frames = [json.loads(f) for f in received]
    return [f["request_id"] for f in frames if f.get("command") == "abort_generation"]


def sends(received: list[str]) -> list[str]:
    frames = [json.loads(f) for f in received]
    return [f["request_id"] for f in frames if f.get("command") == "create_and_generate_turn"]


async def wait_for_frames(received: list[str], n: int) -> None:
    for _ in range(200):
        if len(received) >= n:
            return
        await asyncio.sleep(0.01)


async def test_leaving_a_stream_early_aborts_that_generation_and_frees_the_chat() -> None:
    async with fake_neo(slow_reply) as (origin, received), client_for(origin) as client:
        async with contextlib.aclosing(client.chats.stream(CHAT, "tell me", timeout=10)) as s:
            async for chunk in s:
                assert chunk.delta
                break
        await wait_for_frames(received, 2)
        assert aborts(received) == sends(received)  # the generation's own request id
        assert client.stats.aborted_generations == 1
        # The chat is free at once, and the next message works.
        assert client._core.socket.in_flight == 0
        turn = await client.chats.send(CHAT, "next", timeout=10)
        assert turn.text.startswith("w0")


async def test_cancelling_a_send_aborts_its_generation() -> None:
    async with fake_neo(slow_reply) as (origin, received), client_for(origin) as client:
        task = asyncio.create_task(client.chats.send(CHAT, "long one", timeout=10))
        await wait_for_frames(received, 1)
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_for_frames(received, 2)
        assert aborts(received) == sends(received)


def _bot_turn_of(chat: Chat) -> Turn:
    return msgspec.convert(
        {
            "turn_key": {"chat_id": chat.chat_id, "turn_id": "bot-t"},
            "author": {"author_id": "bot", "name": "Bot"},
            "candidates": [{"candidate_id": "bot-k", "raw_content": "first", "is_final": True}],
            "primary_candidate_id": "bot-k",
        },
        Turn,
    )


async def test_cancelling_a_regeneration_aborts_it() -> None:
    async with fake_neo(slow_swipe) as (origin, received), client_for(origin) as client:
        task = asyncio.create_task(client.chats.regenerate(_bot_turn_of(CHAT), timeout=10))
        await wait_for_frames(received, 1)
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_for_frames(received, 2)
        assert swipes(received) and aborts(received) == swipes(received)
        assert client._core.socket.in_flight == 0


async def test_leaving_a_regeneration_stream_early_aborts_it() -> None:
    async with fake_neo(slow_swipe) as (origin, received), client_for(origin) as client:
        stream = client.chats.stream_regenerate(_bot_turn_of(CHAT), timeout=10)
        async with contextlib.aclosing(stream):
            async for chunk in stream:
                assert chunk.delta.startswith("s0")
                break
        await wait_for_frames(received, 2)
        assert swipes(received) and aborts(received) == swipes(received)
        assert client.stats.aborted_generations == 1


async def test_a_completed_reply_is_not_aborted() -> None:
    async with fake_neo(slow_reply) as (origin, received), client_for(origin) as client:
        await client.chats.send(CHAT, "all of it", timeout=10)
        async for _chunk in client.chats.stream(CHAT, "and a stream", timeout=10):
            pass
    assert aborts(received) == []


async def test_closing_the_client_while_a_reply_streams_aborts_it_first() -> None:
    async with fake_neo(slow_reply) as (origin, received):
        client = client_for(origin)
        stream = client.chats.stream(CHAT, "tell me", timeout=10)
        await stream.__anext__()
        await client.aclose()
        await wait_for_frames(received, 2)
        assert aborts(received) == sends(received)
        await stream.aclose()  # type: ignore[attr-defined]


async def test_cancellation_at_random_points_leaves_nothing_behind() -> None:
    rng = random.Random(11)
    async with fake_neo(slow_reply) as (origin, received), client_for(origin) as client:
        socket = client._core.socket
        chats = client.chats
        for n in range(200):
            chat = Chat(chat_id=f"chat-{n % 7}", character_id="bot")
            task = asyncio.create_task(chats.send(chat, f"m{n}", timeout=10))
            await asyncio.sleep(rng.random() * 0.08)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert socket.in_flight == 0  # no registered inbox
        assert chats._chat_locks._queues == {}  # no held chat lock
    leftovers = [
        t for t in asyncio.all_tasks() if not t.done() and t.get_name().startswith("caiclient")
    ]
    assert leftovers == []
    # Every generation that was on its way when cancelled was told to stop.
    assert set(aborts(received)) <= set(sends(received))
    assert aborts(received)


async def test_the_emulator_stops_within_a_chunk_and_keeps_the_truncated_candidate() -> None:
    from caiclient import AsyncClient, Endpoints
    from caiclient.emulator import Emulator

    async with (
        Emulator(chunk_delay=0.2, chunks=5) as emu,
        AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as client,
    ):
        chat, _ = await client.chats.create(emu.character("Sage").id, greeting=False)
        full = await client.chats.send(chat, "tell me everything")
        first = ""
        async with contextlib.aclosing(client.chats.stream(chat, "tell me everything")) as s:
            async for chunk in s:
                first = chunk.text
                break
        for _ in range(200):
            if emu.aborts:
                break
            await asyncio.sleep(0.01)
        (abort,) = emu.aborts
        # Stopped within one chunk interval: at most the piece in flight came after.
        assert abort.text.startswith(first) and len(abort.text) < len(full.text)
        history = await client.chats.history(chat)
        cut = history[-1].primary
        assert cut is not None and cut.aborted and cut.is_final
        assert cut.raw_content == abort.text
        # The chat is free at once.
        assert (await client.chats.send(chat, "again", timeout=10)).is_final
