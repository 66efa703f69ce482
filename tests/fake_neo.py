"""A scripted stand-in for the neo host, to put the client's socket handling under stress.

Unlike the emulator it does whatever a test tells it: refuse upgrades, send junk frames,
stay silent, or drop the connection mid-reply.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import WSMsgType, web

from caiclient import AsyncClient, Endpoints

TOKEN = "f" * 40
USER = {"user": {"user": {"username": "tester", "id": 42, "account": {"name": "Tester"}}}}

Script = Callable[[web.WebSocketResponse, dict[str, Any]], Awaitable[None]]
OnOpen = Callable[[web.WebSocketResponse], Awaitable[bool]]


class Counts:
    """What the fake saw: socket upgrades and ``{}`` frames from the client."""

    def __init__(self) -> None:
        self.upgrades = 0
        self.keepalives = 0
        self.history_reads = 0


def bot_turn(request: dict[str, Any], text: str, *, final: bool) -> dict[str, Any]:
    chat_id = request["payload"]["turn"]["turn_key"]["chat_id"]
    candidate: dict[str, Any] = {"candidate_id": "bot-k", "raw_content": text}
    if final:
        candidate["is_final"] = True
    return {
        "turn_key": {"chat_id": chat_id, "turn_id": "bot-t"},
        "author": {"author_id": "bot", "name": "Bot"},
        "candidates": [candidate],
        "primary_candidate_id": "bot-k",
    }


@asynccontextmanager
async def fake_neo(
    script: Script,
    *,
    ws_status: int | None = None,
    rest_status: int = 200,
    on_open: OnOpen | None = None,
    on_keepalive: Script | None = None,
    counts: Counts | None = None,
    max_msg_size: int = 4 * 1024 * 1024,
) -> AsyncIterator[tuple[str, list[str]]]:
    """Serve the script; yield the origin and the list of frames the client sent.

    ``on_open`` runs on each new socket (return False to close it at once); ``{}`` frames
    go to ``on_keepalive`` (default: ignored); ``counts`` records what was seen.
    """
    received: list[str] = []
    human_turns: dict[str, list[dict[str, Any]]] = {}
    seen = counts if counts is not None else Counts()

    async def turns(request: web.Request) -> web.Response:
        # History holds the user's messages only: replies are never stored here.
        seen.history_reads += 1
        stored = human_turns.get(request.match_info["chat_id"], [])
        return web.json_response({"turns": stored[::-1], "meta": {"next_token": None}})

    async def user(request: web.Request) -> web.Response:
        if rest_status != 200:
            return web.json_response({"detail": "Invalid token."}, status=rest_status)
        return web.json_response(USER)

    async def ws(request: web.Request) -> web.StreamResponse:
        if ws_status is not None:
            return web.Response(status=ws_status, text="refused")
        socket = web.WebSocketResponse(max_msg_size=max_msg_size)
        await socket.prepare(request)
        seen.upgrades += 1
        if on_open is not None and not await on_open(socket):
            return socket
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                break
            received.append(message.data)
            frame = json.loads(message.data)
            if frame.get("command") == "create_and_generate_turn":
                turn = dict(frame["payload"]["turn"])
                turn["author"] = {**turn["author"], "is_human": True}
                human_turns.setdefault(turn["turn_key"]["chat_id"], []).append(turn)
            if frame:
                await script(socket, frame)
            else:
                seen.keepalives += 1
                if on_keepalive is not None:
                    await on_keepalive(socket, frame)
        return socket

    app = web.Application()
    app.router.add_get("/plus/chat/user/", user)
    app.router.add_get("/neo/ws/", ws)
    app.router.add_get("/neo/turns/{chat_id}/", turns)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        await runner.cleanup()


def client_for(origin: str, **kwargs: Any) -> AsyncClient:
    return AsyncClient(TOKEN, endpoints=Endpoints.local(origin), **kwargs)
