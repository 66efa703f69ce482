"""``kill -9`` of a backup at random points, then a re-run: exactly the uninterrupted archive."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path

import pytest

from caiclient import AsyncClient, Endpoints
from caiclient.archive import AsyncArchive
from caiclient.emulator import Emulator

CHILD = """
import asyncio, os, sys
from caiclient import AsyncClient, Endpoints
from caiclient.archive import AsyncArchive

async def main():
    endpoints = Endpoints.local(os.environ["URL"])
    async with AsyncClient(os.environ["CAI_TOKEN"], endpoints=endpoints) as c:
        async with AsyncArchive(sys.argv[1]) as archive:
            print("ready", flush=True)
            summary = await archive.sync(
                c, rate=float(sys.argv[2]), progress=lambda e: print(e.kind, flush=True)
            )
            print("ok" if summary.ok else "failed", flush=True)

asyncio.run(main())
"""


async def run_child(
    emu: Emulator, archive: Path, *, rate: float, kill_after: float | None
) -> tuple[bool, list[str]]:
    """Run a backup process; SIGKILL it ``kill_after`` s after it is ready. Returns
    (whether it was killed before finishing, the lines it printed)."""
    env = {**os.environ, "CAI_TOKEN": emu.token, "URL": emu.url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(archive), str(rate),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        first = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert first.decode().strip() == "ready", (first, await proc.stderr.read())  # type: ignore[union-attr]
        if kill_after is not None:
            await asyncio.sleep(kill_after)  # a random moment of the run, not a wait for it
            killed = proc.returncode is None
            if killed:
                proc.send_signal(signal.SIGKILL)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        lines = out.decode().split()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if kill_after is None:
        assert proc.returncode == 0 and lines[-1] == "ok", err.decode()[-2000:]
        return False, lines
    return killed and "finished" not in lines, lines


@pytest.mark.timeout(180)
async def test_kill_9_at_random_points_then_resume_gives_the_uninterrupted_archive(
    tmp_path: Path, emu: Emulator
) -> None:
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as client:
        for name in ("Sage", "Echo", "Captain Byte", "Nova"):
            for _ in range(2):
                chat, _ = await client.chats.create(emu.character(name).id)
                replies = [await client.chats.send(chat, f"message {i}") for i in range(30)]
                await client.chats.regenerate(replies[-1])
                await client.chats.pin(replies[5])
        history = await client.v1.create(emu.character("Sage").id)
        await client.v1.send(history, "legacy")
        room = await client.rooms.create([emu.character(n).id for n in ("Echo", "Sage")])
        for i in range(30):
            await client.rooms.send(room, f"room message {i}")
            reply = await client.rooms.generate(room)
        await client.rooms.regenerate(reply)

    reference = tmp_path / "reference.cai"
    await run_child(emu, reference, rate=1000.0, kill_after=None)
    async with AsyncArchive(reference) as archive:
        expected = list(archive.store.canonical())
    assert sum(line.startswith("turns ") for line in expected) == 8 * 61
    assert sum(line.startswith("room_turns ") for line in expected) == 2 + 60  # two pages

    resumed = tmp_path / "resumed.cai"
    rng = random.Random(14)
    mid_run = 0
    for _ in range(12):
        # ~40 requests at 40/s: a run lasts about 1 s; kill anywhere in it.
        killed, _lines = await run_child(emu, resumed, rate=40.0, kill_after=rng.uniform(0, 1.0))
        mid_run += killed
    assert mid_run >= 10, f"only {mid_run} kills landed during a sync"
    await run_child(emu, resumed, rate=1000.0, kill_after=None)
    async with AsyncArchive(resumed) as archive:
        assert list(archive.store.canonical()) == expected
        assert archive.store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
