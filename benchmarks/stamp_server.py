"""A tiny chat server that stamps each streamed piece with its send time.

``python -m benchmarks.stamp_server [--frames N] [--spacing S]`` prints
``stamp server on http://127.0.0.1:PORT`` and serves, until SIGINT or SIGTERM, just enough of
the protocol for one client: ``GET /plus/chat/user/``, and on ``/neo/ws/`` ``create_chat`` and
``create_and_generate_turn``. A generation is the user's echo, then N bot frames spaced
``spacing`` seconds apart; each adds ``<time.monotonic()>`` to the cumulative text, read
right before the frame is encoded and sent. ``time.monotonic()`` is one clock for every
process on Linux, so a receiver's ``time.monotonic() - stamp`` is the time from "server
about to send" to "delta in user code". The same server feeds caiclient and the floor, so
the difference of the two is the library's own latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from typing import Any

from aiohttp import WSMsgType, web

__all__ = ["main"]

USER = {
    "user": {
        "user": {"username": "bench", "id": 1, "account": {"name": "Bench"}, "is_staff": False},
        "name": "Bench",
        "email": None,
        "bio": None,
    }
}
NOW = "2024-01-01T00:00:00.000000Z"


def _turn(chat_id: str, turn_id: str, author: dict[str, Any], candidate: dict[str, Any]) -> Any:
    return {
        "turn_key": {"chat_id": chat_id, "turn_id": turn_id},
        "create_time": NOW,
        "last_update_time": NOW,
        "state": "STATE_OK",
        "author": author,
        "candidates": [candidate],
        "primary_candidate_id": candidate["candidate_id"],
    }


async def _generate(
    ws: web.WebSocketResponse, frame: dict[str, Any], frames: int, spacing: float
) -> None:
    request_id = frame["request_id"]
    payload = frame["payload"]
    turn = payload["turn"]
    chat_id = turn["turn_key"]["chat_id"]
    human = _turn(chat_id, turn["turn_key"]["turn_id"], turn["author"], turn["candidates"][0])
    human["candidates"][0]["is_final"] = True
    await ws.send_str(json.dumps({"command": "add_turn", "request_id": request_id, "turn": human}))
    bot = {"author_id": payload["character_id"], "name": "Stamp"}
    text = ""
    for i in range(frames):
        if i:
            await asyncio.sleep(spacing)
        candidate: dict[str, Any] = {"candidate_id": "c-" + request_id, "create_time": NOW}
        if i == frames - 1:
            candidate["is_final"] = True
        command = "add_turn" if i == 0 else "update_turn"
        text += f"<{time.monotonic():.7f}>"
        candidate["raw_content"] = text
        event = {"command": command, "request_id": request_id}
        event["turn"] = _turn(chat_id, "t-" + request_id, bot, candidate)
        await ws.send_str(json.dumps(event))


def _app(frames: int, spacing: float) -> web.Application:
    async def user(request: web.Request) -> web.Response:
        return web.json_response(USER)

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        tasks: set[asyncio.Task[None]] = set()
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            command = frame.get("command")
            if command == "create_chat":
                chat = dict(frame["payload"]["chat"], create_time=NOW, state="STATE_ACTIVE")
                answer = {"command": "create_chat_response", "request_id": frame["request_id"]}
                answer["chat"] = chat
                await ws.send_str(json.dumps(answer))
            elif command == "create_and_generate_turn":
                task = asyncio.ensure_future(_generate(ws, frame, frames, spacing))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            elif not frame:
                await ws.send_str("{}")
        return ws

    app = web.Application()
    app.router.add_get("/plus/chat/user/", user)
    app.router.add_get("/neo/ws/", socket)
    return app


async def _serve(frames: int, spacing: float) -> None:
    runner = web.AppRunner(_app(frames, spacing), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"stamp server on http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--spacing", type=float, default=0.001)
    args = parser.parse_args()
    asyncio.run(_serve(args.frames, args.spacing))


if __name__ == "__main__":
    main()
