"""Load generator for the emulator's capacity: many sockets, one generation in flight on each.

Runs as its own process (``impl: "load"``) with aiohttp's client, whose frame parser is
compiled, and recognises a reply's last frame by a substring test instead of parsing JSON,
so that it stays lighter than the emulator it measures. It samples the emulator's CPU time
from /proc over the measured window, to show whether the emulator was the bottleneck.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from typing import Any

import aiohttp

from ._measure import cpu_seconds
from .floor import create_chat_frame, generate_frame

__all__ = ["TASKS"]

_TICK = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


async def capacity(spec: dict[str, Any]) -> dict[str, Any]:
    connections, warmup, duration = spec["connections"], spec["warmup"], spec["duration"]
    cookie = f'HTTP_AUTHORIZATION="Token {spec["token"]}"'
    user_id, character_id = spec["user_id"], spec["character_id"]
    window: dict[str, float] = {}
    counted = [0]
    stop = asyncio.Event()

    async def worker(session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(spec["ws_url"], headers={"Cookie": cookie}) as ws:
            request_id = str(uuid.uuid4())
            chat_id = str(uuid.uuid4())
            await ws.send_str(
                create_chat_frame(request_id, chat_id, character_id, user_id).decode()
            )
            while json.loads((await ws.receive()).data).get("command") != "create_chat_response":
                pass
            i = 0
            while not stop.is_set():
                frame = generate_frame(
                    str(uuid.uuid4()), chat_id, character_id, user_id, f"load {i}"
                )
                await ws.send_str(frame.decode())
                while True:
                    msg = await ws.receive()
                    if msg.type is not aiohttp.WSMsgType.TEXT:
                        raise RuntimeError(f"socket closed: {msg.type}")
                    data = msg.data
                    if '"is_final":true' in data and '"is_human":true' not in data:
                        break
                    if '"neo_error"' in data:
                        raise RuntimeError(data)
                if "start" in window:
                    counted[0] += 1
                i += 1

    async def clock() -> None:
        await asyncio.sleep(warmup)
        counted[0] = 0
        window["start"] = time.perf_counter()
        window["emu0"] = _process_cpu(spec["emulator_pid"])
        window["own0"] = cpu_seconds()
        await asyncio.sleep(duration)
        window["count"] = counted[0]
        window["end"] = time.perf_counter()
        window["emu1"] = _process_cpu(spec["emulator_pid"])
        window["own1"] = cpu_seconds()
        stop.set()

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(clock(), *(worker(session) for _ in range(connections)))
    elapsed = window["end"] - window["start"]
    return {
        "rate": window["count"] / elapsed,
        "generations": window["count"],
        "seconds": elapsed,
        "emulator_cpu": (window["emu1"] - window["emu0"]) / elapsed,
        "loader_cpu": (window["own1"] - window["own0"]) / elapsed,
    }


TASKS = {"capacity": capacity}
