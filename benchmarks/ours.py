"""The same workloads as :mod:`benchmarks.floor`, through caiclient's public API."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from caiclient import AsyncClient, Chat, Endpoints
from caiclient.protocol.stream import ReplyChunk

from ._measure import cpu_seconds, own_size, percentile, settled_rss

__all__ = ["TASKS"]

STAMP = re.compile(r"<(\d+\.\d+)>")


def _client(spec: dict[str, Any]) -> AsyncClient:
    transport: Any = None
    if spec.get("transport") == "aiohttp":
        from caiclient._transport.aiohttp import AiohttpTransport

        transport = AiohttpTransport()
    return AsyncClient(
        spec["token"], endpoints=Endpoints.local(spec["url"]), transport=transport, timeout=120
    )


class _Profile:
    """Wraps the measured section in pyinstrument when the spec asks for a profile."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.path: str | None = spec.get("profile")
        self.profiler: Any = None

    def __enter__(self) -> None:
        if self.path:
            from pyinstrument import Profiler  # Only for --profile; not a suite dependency.

            self.profiler = Profiler(interval=0.0005, async_mode="disabled")
            self.profiler.start()

    def __exit__(self, *exc: object) -> None:
        if self.profiler is not None and self.path:
            self.profiler.stop()
            with open(self.path, "w", encoding="utf-8") as out:
                out.write(self.profiler.output_text(unicode=True, show_all=False))


# --- 1. CPU per message ------------------------------------------------------------------------


async def cpu(spec: dict[str, Any]) -> dict[str, Any]:
    async with _client(spec) as client:
        chat, _ = await client.chats.create(spec["character_id"], greeting=False)
        for i in range(spec["warmup"]):
            await client.chats.send(chat, f"warm-up {i} .")
        n = spec["messages"]
        misrouted = 0
        with _Profile(spec):
            wall, cpu0 = time.perf_counter(), cpu_seconds()
            for i in range(n):
                text = f"message {i} ."
                turn = await client.chats.send(chat, text)
                misrouted += not turn.text.startswith(text)
            cpu1, wall1 = cpu_seconds(), time.perf_counter()
    return {"cpu": cpu1 - cpu0, "wall": wall1 - wall, "completed": n, "misrouted": misrouted}


# --- 2. Concurrency ----------------------------------------------------------------------------


async def concurrency(spec: dict[str, Any]) -> dict[str, Any]:
    n_chats, n_gens = spec["chats"], spec["generations"]
    async with _client(spec) as client:
        created = await asyncio.gather(
            *(client.chats.create(spec["character_id"], greeting=False) for _ in range(n_chats))
        )
        chats = [chat for chat, _ in created]
        latencies: list[float] = []
        misrouted = 0
        started = time.perf_counter()

        async def one(i: int) -> None:
            nonlocal misrouted
            chat = chats[i % n_chats]
            text = f"gen {i} chat {i % n_chats} ."
            turn = await client.chats.send(chat, text)
            latencies.append(time.perf_counter() - started)
            misrouted += not turn.text.startswith(text) or turn.chat_id != chat.chat_id

        with _Profile(spec):
            cpu0 = cpu_seconds()
            results = await asyncio.gather(*(one(i) for i in range(n_gens)), return_exceptions=True)
            wall = time.perf_counter() - started
            cpu1 = cpu_seconds()
        errors = [r for r in results if isinstance(r, BaseException)]
        left = client._core.socket.in_flight
    return {
        "wall": wall,
        "cpu": cpu1 - cpu0,
        "completed": n_gens - len(errors),
        "misrouted": misrouted,
        "errors": sorted({f"{type(e).__name__}: {e}" for e in errors})[:5],
        "left_in_flight": left,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
    }


# --- 3. Streaming latency (against benchmarks.stamp_server) ------------------------------------


async def latency(spec: dict[str, Any]) -> dict[str, Any]:
    samples: list[float] = []
    async with _client(spec) as client:
        chat, _ = await client.chats.create(spec["character_id"], greeting=False)
        with _Profile(spec):
            for i in range(spec["warmup"] + spec["messages"]):
                async for chunk in client.chats.stream(chat, f"m{i}"):
                    now = time.monotonic()
                    if i >= spec["warmup"]:
                        samples.extend(now - float(s) for s in STAMP.findall(chunk.delta))
    return {"samples": len(samples), "p50": percentile(samples, 50), "p99": percentile(samples, 99)}


# --- 4. Memory ---------------------------------------------------------------------------------


async def memory_idle(spec: dict[str, Any]) -> dict[str, Any]:
    async with _client(spec) as client:
        kept: list[Chat] = [(await client.chats.create(spec["character_id"], greeting=False))[0]]
        idle = settled_rss()
        batch = spec["batch"]
        for _ in range(spec["chats"] // batch):
            created = await asyncio.gather(
                *(client.chats.create(spec["character_id"], greeting=False) for _ in range(batch))
            )
            kept.extend(chat for chat, _ in created)
        with_chats = settled_rss()
        assert len({c.chat_id for c in kept}) == len(kept)
    per_chat = (with_chats - idle) / (len(kept) - 1)
    return {"idle_rss": idle, "per_chat": per_chat, "object": own_size(kept[1], kept[2])}


async def memory_inflight(spec: dict[str, Any]) -> dict[str, Any]:
    n = spec["inflight"]
    async with _client(spec) as client:
        created = await asyncio.gather(
            *(client.chats.create(spec["character_id"], greeting=False) for _ in range(n))
        )
        before = settled_rss()
        started, release = asyncio.Event(), asyncio.Event()
        count = 0

        async def one(chat: Chat, i: int) -> None:
            nonlocal count
            stream: AsyncIterator[ReplyChunk] = client.chats.stream(chat, f"m{i}")
            async with contextlib.aclosing(stream):
                await stream.__anext__()
                count += 1
                if count == n:
                    started.set()
                await release.wait()

        tasks = [asyncio.ensure_future(one(chat, i)) for i, (chat, _) in enumerate(created)]
        try:
            await started.wait()
            during = settled_rss()
            in_flight = client._core.socket.in_flight
            release.set()
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
    return {"per_inflight": (during - before) / n, "inflight": in_flight}


TASKS = {
    "cpu": cpu,
    "concurrency": concurrency,
    "latency": latency,
    "memory_idle": memory_idle,
    "memory_inflight": memory_inflight,
}
