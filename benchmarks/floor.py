"""The bare-loop floor: the same frames as caiclient, with curl_cffi and stdlib ``json`` only.

No library around it: envelopes are dicts dumped with ``json.dumps``, frames are read with
``json.loads``, and concurrent requests are routed by ``request_id`` through a plain dict of
queues. It does exactly the work any client must do, and nothing more (no validation, no
typed models, no reconnects, no timeouts per request), so the ratio ours/floor is the price
of the library.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

from curl_cffi import CurlWsFlag
from curl_cffi.requests import AsyncSession
from curl_cffi.requests.websockets import AsyncWebSocket

from ._measure import cpu_seconds, own_size, percentile, settled_rss

__all__ = ["TASKS"]

TEXT = CurlWsFlag.TEXT
STAMP = re.compile(r"<(\d+\.\d+)>")


def _envelope(command: str, request_id: str, payload: dict[str, Any]) -> bytes:
    frame = {"command": command, "request_id": request_id, "origin_id": "web-next"}
    frame["payload"] = payload
    return json.dumps(frame).encode()


def create_chat_frame(request_id: str, chat_id: str, character_id: str, user_id: str) -> bytes:
    chat = {
        "chat_id": chat_id,
        "creator_id": user_id,
        "visibility": "VISIBILITY_PRIVATE",
        "character_id": character_id,
        "type": "TYPE_ONE_ON_ONE",
    }
    return _envelope("create_chat", request_id, {"chat": chat, "with_greeting": False})


def generate_frame(
    request_id: str, chat_id: str, character_id: str, user_id: str, text: str
) -> bytes:
    candidate_id = str(uuid.uuid4())
    turn = {
        "turn_key": {"chat_id": chat_id, "turn_id": str(uuid.uuid4())},
        "author": {"author_id": user_id, "is_human": True, "name": ""},
        "candidates": [{"candidate_id": candidate_id, "raw_content": text}],
        "primary_candidate_id": candidate_id,
    }
    payload = {
        "character_id": character_id,
        "num_candidates": 1,
        "tts_enabled": False,
        "selected_language": "",
        "user_name": "",
        "turn": turn,
    }
    return _envelope("create_and_generate_turn", request_id, payload)


def bot_candidate(frame: dict[str, Any]) -> dict[str, Any] | None:
    """The bot candidate of an add_turn/update_turn frame; None for other frames and echoes."""
    if frame.get("command") not in ("add_turn", "update_turn"):
        if frame.get("command") == "neo_error":
            raise RuntimeError(f"neo_error: {frame.get('comment')}")
        return None
    turn = frame["turn"]
    if turn["author"].get("is_human"):
        return None
    candidate: dict[str, Any] = turn["candidates"][0]
    return candidate


class Conn:
    """One raw WebSocket and, for concurrent use, a reader routing frames by request_id."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.user_id: str = spec["user_id"]
        self.character_id: str = spec["character_id"]
        self.session: AsyncSession[Any] = AsyncSession()
        self.ws: AsyncWebSocket | None = None
        self.queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> AsyncWebSocket:
        cookie = f'HTTP_AUTHORIZATION="Token {self.spec["token"]}"'
        self.ws = await self.session.ws_connect(self.spec["ws_url"], headers={"Cookie": cookie})
        return self.ws

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            self.ws.terminate()
        await self.session.close()

    # --- one request at a time: read inline ---------------------------------------------------

    async def until(self, request_id: str, command: str) -> dict[str, Any]:
        assert self.ws is not None
        while True:
            data, _ = await self.ws.recv()
            frame: dict[str, Any] = json.loads(data)
            if frame.get("request_id") == request_id and frame.get("command") == command:
                return frame

    async def create_chat(self) -> str:
        assert self.ws is not None
        request_id, chat_id = str(uuid.uuid4()), str(uuid.uuid4())
        await self.ws.send(
            create_chat_frame(request_id, chat_id, self.character_id, self.user_id), TEXT
        )
        await self.until(request_id, "create_chat_response")
        return chat_id

    async def generate(self, chat_id: str, text: str) -> str:
        assert self.ws is not None
        request_id = str(uuid.uuid4())
        frame = generate_frame(request_id, chat_id, self.character_id, self.user_id, text)
        await self.ws.send(frame, TEXT)
        while True:
            data, _ = await self.ws.recv()
            event = json.loads(data)
            if event.get("request_id") != request_id:
                continue
            candidate = bot_candidate(event)
            if candidate is not None and candidate.get("is_final"):
                reply: str = candidate["raw_content"]
                return reply

    # --- many requests at once: one reader, a queue per request ------------------------------

    def start_reader(self) -> None:
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        queues = self.queues
        while True:
            data, _ = await self.ws.recv()
            frame = json.loads(data)
            queue = queues.get(frame.get("request_id"))
            if queue is not None:
                queue.put_nowait(frame)

    async def request(self, frame: bytes, request_id: str) -> asyncio.Queue[dict[str, Any]]:
        assert self.ws is not None
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.queues[request_id] = queue
        await self.ws.send(frame, TEXT)
        return queue

    async def create_chat_routed(self) -> str:
        request_id, chat_id = str(uuid.uuid4()), str(uuid.uuid4())
        frame = create_chat_frame(request_id, chat_id, self.character_id, self.user_id)
        queue = await self.request(frame, request_id)
        while (await queue.get()).get("command") != "create_chat_response":
            pass
        del self.queues[request_id]
        return chat_id

    async def generate_routed(self, chat_id: str, text: str) -> str:
        request_id = str(uuid.uuid4())
        frame = generate_frame(request_id, chat_id, self.character_id, self.user_id, text)
        queue = await self.request(frame, request_id)
        try:
            while True:
                candidate = bot_candidate(await queue.get())
                if candidate is not None and candidate.get("is_final"):
                    reply: str = candidate["raw_content"]
                    return reply
        finally:
            del self.queues[request_id]


# --- 1. CPU per message ------------------------------------------------------------------------


async def cpu(spec: dict[str, Any]) -> dict[str, Any]:
    conn = Conn(spec)
    await conn.open()
    try:
        chat_id = await conn.create_chat()
        for i in range(spec["warmup"]):
            await conn.generate(chat_id, f"warm-up {i} .")
        n = spec["messages"]
        misrouted = 0
        wall, cpu0 = time.perf_counter(), cpu_seconds()
        for i in range(n):
            text = f"message {i} ."
            reply = await conn.generate(chat_id, text)
            misrouted += not reply.startswith(text)
        cpu1, wall1 = cpu_seconds(), time.perf_counter()
    finally:
        await conn.close()
    return {"cpu": cpu1 - cpu0, "wall": wall1 - wall, "completed": n, "misrouted": misrouted}


# --- 2. Concurrency ----------------------------------------------------------------------------


async def concurrency(spec: dict[str, Any]) -> dict[str, Any]:
    conn = Conn(spec)
    await conn.open()
    conn.start_reader()
    n_chats, n_gens = spec["chats"], spec["generations"]
    try:
        chat_ids = await asyncio.gather(*(conn.create_chat_routed() for _ in range(n_chats)))
        latencies: list[float] = []
        misrouted = 0
        started = time.perf_counter()

        async def one_chat(j: int) -> int:
            # The library serialises messages to one chat; so does the floor.
            nonlocal misrouted
            done = 0
            for i in range(j, n_gens, n_chats):
                text = f"gen {i} chat {j} ."
                reply = await conn.generate_routed(chat_ids[j], text)
                latencies.append(time.perf_counter() - started)
                misrouted += not reply.startswith(text)
                done += 1
            return done

        cpu0 = cpu_seconds()
        counts = await asyncio.gather(*(one_chat(j) for j in range(n_chats)))
        wall = time.perf_counter() - started
        cpu1 = cpu_seconds()
    finally:
        await conn.close()
    return {
        "wall": wall,
        "cpu": cpu1 - cpu0,
        "completed": sum(counts),
        "misrouted": misrouted,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
    }


# --- 3. Streaming latency (against benchmarks.stamp_server) ------------------------------------


async def latency(spec: dict[str, Any]) -> dict[str, Any]:
    conn = Conn(spec)
    ws = await conn.open()
    samples: list[float] = []
    try:
        chat_id = await conn.create_chat()
        for i in range(spec["warmup"] + spec["messages"]):
            request_id = str(uuid.uuid4())
            frame = generate_frame(request_id, chat_id, conn.character_id, conn.user_id, f"m{i}")
            await ws.send(frame, TEXT)
            seen = 0
            while True:
                data, _ = await ws.recv()
                event = json.loads(data)
                if event.get("request_id") != request_id:
                    continue
                candidate = bot_candidate(event)
                if candidate is None:
                    continue
                text = candidate["raw_content"]
                delta, seen = text[seen:], len(text)
                now = time.monotonic()
                if i >= spec["warmup"]:
                    samples.extend(now - float(s) for s in STAMP.findall(delta))
                if candidate.get("is_final"):
                    break
    finally:
        await conn.close()
    return {"samples": len(samples), "p50": percentile(samples, 50), "p99": percentile(samples, 99)}


# --- 4. Memory ---------------------------------------------------------------------------------


async def memory_idle(spec: dict[str, Any]) -> dict[str, Any]:
    conn = Conn(spec)
    await conn.open()
    conn.start_reader()
    try:
        kept = [await conn.create_chat_routed()]
        idle = settled_rss()
        batch = spec["batch"]
        for _ in range(spec["chats"] // batch):
            kept.extend(await asyncio.gather(*(conn.create_chat_routed() for _ in range(batch))))
        with_chats = settled_rss()
    finally:
        await conn.close()
    per_chat = (with_chats - idle) / (len(kept) - 1)
    return {"idle_rss": idle, "per_chat": per_chat, "object": own_size(kept[1], kept[2])}


async def memory_inflight(spec: dict[str, Any]) -> dict[str, Any]:
    conn = Conn(spec)
    await conn.open()
    conn.start_reader()
    n = spec["inflight"]
    tasks: list[asyncio.Task[None]] = []
    try:
        chat_ids = await asyncio.gather(*(conn.create_chat_routed() for _ in range(n)))
        before = settled_rss()
        started, release = asyncio.Event(), asyncio.Event()
        count = 0

        async def one(chat_id: str, i: int) -> None:
            nonlocal count
            request_id = str(uuid.uuid4())
            frame = generate_frame(request_id, chat_id, conn.character_id, conn.user_id, f"m{i}")
            queue = await conn.request(frame, request_id)
            while bot_candidate(await queue.get()) is None:
                pass  # The echo of the user's turn; the bot's first chunk follows.
            count += 1
            if count == n:
                started.set()
            await release.wait()

        tasks = [asyncio.ensure_future(one(c, i)) for i, c in enumerate(chat_ids)]
        await started.wait()
        during = settled_rss()
        release.set()
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await conn.close()
    return {"per_inflight": (during - before) / n, "inflight": n}


TASKS = {
    "cpu": cpu,
    "concurrency": concurrency,
    "latency": latency,
    "memory_idle": memory_idle,
    "memory_inflight": memory_inflight,
}
