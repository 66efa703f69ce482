"""Benchmarks of the OpenAI-compatible bridge (``make bench``, section ``bridge``).

One worker (``python -m benchmarks.worker``, impl ``bridge``) against the emulator process
of the harness. The bridge is ``cai serve`` itself, in processes of its own (``$CAI_BASE_URL``
and ``$CAI_TOKEN`` point it at the emulator); the direct client runs in the worker. Both
sides' CPU is the scheduler's count of CPU time of their own process over the measured
section: the direct client's ``time.process_time()`` in the worker, the bridge's from
``/proc/PID/task/*/schedstat`` (the same count, summed over its threads).

- latency: sequential streamed turns of one conversation through the bridge and, alternating,
  ``chats.stream`` directly on another chat: request → first delta, p50 and p99 of each;
- concurrency: ``conversations`` streamed completions at once over as many conversations (each
  its second turn), then the same number of direct ``chats.stream``; errors, replies in the
  wrong conversation (Echo starts each reply with the message), CPU per completion of the
  bridge process against the worker's for the direct client;
- HTTP floor: the same batch against ``benchmarks/bridge_floor.py`` (aiohttp.web streaming
  ``chats.stream`` and nothing else, in a process of its own, counted the same way): what
  any aiohttp server over the client costs, so that the bridge's own share shows;
- postgres (full run only): two bridge processes on one PostgreSQL (tests/pg.py), the same
  concurrent batch spread over both: throughput and per-request latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["TASKS"]

ROOT = Path(__file__).resolve().parents[1]


def _cpu_of(pid: int) -> float:
    """CPU seconds of process ``pid`` so far: its threads' run time as the scheduler counts
    it (``time.process_time()`` reads the same count in-process)."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError):  # A thread that just ended.
            total += int(stat.read_text().split()[0])
    return total / 1e9


async def _start_bridge(spec: dict[str, Any], state: str) -> tuple[asyncio.subprocess.Process, str]:
    """``cai serve`` on a free port, on the emulator's account; (process, base URL)."""
    home = tempfile.mkdtemp(prefix="caiclient-bench-serve-")
    env = {
        **os.environ, "CAI_BASE_URL": spec["url"], "CAI_TOKEN": spec["token"],
        "CAI_CONFIG_DIR": home, "CAI_DATA_DIR": home,
    }  # fmt: skip
    argv = ["-m", "caiclient.cli", "serve", "--port", "0", "--state", state]
    return await _spawn(argv, env, "cai serve: listening on ", "cai serve")


async def _spawn(
    argv: list[str], env: dict[str, str] | None, ready: str, what: str
) -> tuple[asyncio.subprocess.Process, str]:
    """Start ``python ARGV``; (process, the URL its first line, ``READY URL``, names)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv,
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    if not line.startswith(ready):
        raise RuntimeError(f"{what} did not start: {line!r}")
    return proc, line[len(ready) :].split()[0]


async def _ask(
    http: Any, url: str, character: str, conv: str, messages: list[Any]
) -> tuple[float, str]:
    """One streamed completion: (seconds to the first delta, the whole text)."""
    body = {"model": character, "stream": True, "messages": messages}
    started = time.perf_counter()
    first = None
    text = []
    async with http.post(
        url + "/v1/chat/completions", json=body, headers={"X-Conversation-Id": conv}
    ) as r:
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {(await r.read())[:200]!r}")
        async for line in r.content:
            if not line.startswith(b"data: {"):
                continue
            choice = json.loads(line[6:])["choices"]
            if choice and choice[0]["delta"].get("content"):
                first = first or time.perf_counter() - started
                text.append(choice[0]["delta"]["content"])
    return first or 0.0, "".join(text)


def _q(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _direct_first(client: Any, chat: Any, text: str) -> float:
    started = time.perf_counter()
    first = None
    async for chunk in client.chats.stream(chat, text):
        if chunk.delta and first is None:
            first = time.perf_counter() - started
    return first or 0.0


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM (``cai serve`` closes its state and exits), SIGKILL if it does not in time."""
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 30)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()


async def _start_floor(spec: dict[str, Any]) -> tuple[asyncio.subprocess.Process, str]:
    """``benchmarks/bridge_floor.py`` on a free port; (process, base URL)."""
    argv = ["-m", "benchmarks.bridge_floor", spec["url"], spec["token"]]
    return await _spawn(argv, None, "listening on ", "the HTTP floor")


async def _latency(spec: dict[str, Any], http: Any, client: Any, url: str) -> dict[str, float]:
    character, n = spec["character_id"], spec["bridge_messages"]
    chat, _ = await client.chats.create(character)
    messages: list[dict[str, str]] = []
    ours, direct = [], []
    for i in range(n + 3):
        messages.append({"role": "user", "content": f"latency {i}"})
        took, text = await _ask(http, url, character, "latency", messages)
        messages.append({"role": "assistant", "content": text})
        took_direct = await _direct_first(client, chat, f"direct {i}")
        if i >= 3:  # warm-up
            ours.append(took)
            direct.append(took_direct)
    return {
        "lat_bridge_p50": _q(ours, 0.5), "lat_bridge_p99": _q(ours, 0.99),
        "lat_direct_p50": _q(direct, 0.5), "lat_direct_p99": _q(direct, 0.99),
    }  # fmt: skip


async def _batch(
    http: Any, urls: list[str], character: str, count: int, tag: str, pid: int = 0
) -> dict[str, Any]:
    """``count`` conversations: a first turn each (not measured), then all second turns at once."""
    firsts: dict[int, str] = {}

    async def first(i: int) -> None:
        _, firsts[i] = await _ask(
            http,
            urls[i % len(urls)],
            character,
            f"{tag}{i}",
            [{"role": "user", "content": f"{tag} first {i}"}],
        )

    await asyncio.gather(*(first(i) for i in range(count)))
    errors: list[str] = []
    misrouted = 0
    latencies: list[float] = []

    async def second(i: int) -> None:
        nonlocal misrouted
        text = f"{tag} second {i} please"
        messages = [
            {"role": "user", "content": f"{tag} first {i}"},
            {"role": "assistant", "content": firsts[i]},
            {"role": "user", "content": text},
        ]
        try:
            took, reply = await _ask(http, urls[i % len(urls)], character, f"{tag}{i}", messages)
        except Exception as exc:  # noqa: BLE001 - counted, the run fails on any
            errors.append(f"{type(exc).__name__}: {exc}")
            return
        latencies.append(took)
        misrouted += not reply.startswith(text)

    cpu = _cpu_of(pid) if pid else 0.0
    started = time.perf_counter()
    await asyncio.gather(*(second(i) for i in range(count)))
    wall = time.perf_counter() - started
    cpu = (_cpu_of(pid) - cpu) / count if pid else 0.0
    return {
        "bridge_cpu": cpu, "errors": errors[:5], "error_count": len(errors),
        "misrouted": misrouted, "wall": wall, "p50": _q(latencies, 0.5),
        "p99": _q(latencies, 0.99), "completed": len(latencies),
    }  # fmt: skip


async def _direct_batch(client: Any, character: str, count: int) -> dict[str, float]:
    chats = await asyncio.gather(*(client.chats.create(character) for _ in range(count)))
    cpu = time.process_time()
    started = time.perf_counter()

    async def one(chat: Any, i: int) -> None:
        async for _ in client.chats.stream(chat, f"direct {i}"):
            pass

    await asyncio.gather(*(one(chat, i) for i, (chat, _) in enumerate(chats)))
    return {
        "direct_cpu": (time.process_time() - cpu) / count,
        "direct_wall": time.perf_counter() - started,
    }


async def _postgres(spec: dict[str, Any], http: Any) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests"))
    from pg import PostgresServer

    with PostgresServer() as server:
        procs = [await _start_bridge(spec, server.url) for _ in range(2)]
        try:
            result = await _batch(
                http,
                [u for _, u in procs],
                spec["character_id"],
                spec["bridge_pg_conversations"],
                "pg",
            )
        finally:
            for proc, _ in procs:
                await _stop(proc)
    return {f"pg_{k}": v for k, v in result.items()}


async def bridge(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    from caiclient import AsyncClient, Endpoints

    folder = tempfile.mkdtemp(prefix="caiclient-bench-bridge-")
    proc, url = await _start_bridge(spec, f"sqlite:///{folder}/state.sqlite3")
    result: dict[str, Any] = {}
    try:
        limits = aiohttp.TCPConnector(limit=0)
        async with (
            aiohttp.ClientSession(
                connector=limits, timeout=aiohttp.ClientTimeout(total=300)
            ) as http,
            AsyncClient(spec["token"], endpoints=Endpoints.local(spec["url"])) as client,
        ):
            result.update(await _latency(spec, http, client, url))
            count = spec["bridge_conversations"]
            result.update(await _batch(http, [url], spec["character_id"], count, "c", proc.pid))
            result.update(await _direct_batch(client, spec["character_id"], count))
            floor, floor_url = await _start_floor(spec)
            try:
                run = await _batch(http, [floor_url], spec["character_id"], count, "f", floor.pid)
            finally:
                await _stop(floor)
            if run["error_count"] or run["misrouted"] or run["completed"] != count:
                raise RuntimeError(f"the HTTP floor failed: {run}")
            result.update({"floor_" + k: v for k, v in run.items()})
            if spec.get("bridge_pg"):
                result.update(await _postgres(spec, http))
    finally:
        await _stop(proc)
    return result


TASKS = {"bridge": bridge}


def rows(runs: list[dict[str, Any]], sizes: dict[str, Any], row: Any, at_most: Any) -> list[Any]:
    """The table rows of the harness (``row`` is harness.Row, ``at_most`` its judge)."""
    n = sizes["bridge_conversations"]
    out = [
        row("7. bridge: request to first delta p50", "ms", [r["lat_bridge_p50"] for r in runs],
            [r["lat_direct_p50"] for r in runs], "minus", "≤ +2 ms", at_most(0.002), scale=1e3),
        row("7. bridge: request to first delta p99", "ms", [r["lat_bridge_p99"] for r in runs],
            [r["lat_direct_p99"] for r in runs], "minus", "≤ +5 ms", at_most(0.005), scale=1e3),
        row(f"7. bridge: CPU per completion, {n} at once", "µs", [r["bridge_cpu"] for r in runs],
            [r["direct_cpu"] for r in runs], "ratio", "≤ 1.5×", at_most(1.5), scale=1e6),
        row(f"7. bridge: {n} concurrent completions, wall", "s", [r["wall"] for r in runs],
            [r["direct_wall"] for r in runs], "ratio"),
    ]  # fmt: skip
    floor = [r for r in runs if "floor_bridge_cpu" in r]
    if floor:
        out.append(
            row(f"7. HTTP floor (aiohttp.web + chats.stream): CPU per completion, {n} at once",
                "µs", [r["floor_bridge_cpu"] for r in floor], [r["direct_cpu"] for r in floor],
                "ratio", scale=1e6)
        )  # fmt: skip
    pg = [r for r in runs if "pg_wall" in r]
    if pg:
        m = sizes["bridge_pg_conversations"]
        out += [
            row(f"7. bridge: 2 processes on PostgreSQL, {m} at once", "req/s",
                [m / r["pg_wall"] for r in pg]),
            row("7. bridge on PostgreSQL: first delta p50", "ms", [r["pg_p50"] for r in pg],
                scale=1e3),
            row("7. bridge on PostgreSQL: first delta p99", "ms", [r["pg_p99"] for r in pg],
                scale=1e3),
        ]  # fmt: skip
    return out
