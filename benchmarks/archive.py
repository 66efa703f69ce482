"""Benchmark 8: the archive (issue 14). Section ``archive`` of ``python -m benchmarks``.

- Export speed and memory: a generator writes an archive of ``archive_turns`` turns (and a
  small one of ``archive_small_turns``); fresh worker processes export each to ``native``
  and ``sillytavern``. Turns/s over the whole export (files written); peak RSS
  (``ru_maxrss``) of the big export minus that of the small one.
- Backup speed: ``backup_chats`` chats of ``backup_messages`` messages each in an emulator
  at zero chunk delay, then one ``archive.sync`` with the default concurrency and no rate
  limit. Turns/s, and the archive file's bytes per turn.
- An unchanged sync of that complete archive: the requests it makes, against the minimum
  that can detect "no change" (6 account-level calls: account, personas, rooms, recent
  chats, recent characters, your characters; 3 per character; 1 per chat and per room).

Workers run as ``python -m benchmarks.worker`` with ``impl: "archive"`` (``TASKS`` below).
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .harness import Suite

__all__ = ["TASKS", "run"]

_WORDS = (
    "the",
    "lighthouse",
    "keeper",
    "counted",
    "ships",
    "as",
    "evening",
    "fell",
    "over",
    "a",
    "quiet",
    "harbour",
    "and",
    "the",
    "gulls",
    "argued",
    "about",
    "bread",
    "while",
    "the",
    "tide",
    "went",
    "out",
    "past",
    "the",
    "old",
    "stone",
    "pier",
)


def _text(n: int, length: int) -> str:
    return " ".join(_WORDS[(n + i) % len(_WORDS)] for i in range(length))


async def generate(spec: dict[str, Any]) -> dict[str, Any]:
    return _generate(spec)


def _generate(spec: dict[str, Any]) -> dict[str, Any]:
    """Write an archive of ``turns`` turns over ``chats`` chats (every third character turn
    with three swipes), through the store as a sync would."""
    from datetime import datetime, timedelta, timezone

    from caiclient import Author, Candidate, Chat, Turn, TurnKey
    from caiclient.archive.store import Store

    started = time.perf_counter()
    per_chat = spec["turns"] // spec["chats"]
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    user = Author(author_id="474480773", name="bench_user", is_human=True)
    with Store.open(spec["path"]) as store:
        for c in range(spec["chats"]):
            character = f"char{c % 20:02d}" + "x" * 37
            chat_id = f"{c:08x}-0000-4000-8000-000000000000"
            store.put_chat(Chat(chat_id=chat_id, character_id=character, create_time=t0), "Bench")
            bot = Author(author_id=character, name=f"Character {c % 20}")
            newer = None
            for start in range(per_chat, 0, -1000):  # newest page first, as served
                page = []
                for n in range(start - 1, max(start - 1000, 0) - 1, -1):
                    at = t0 + timedelta(seconds=n)
                    swipes = 3 if n % 6 == 1 else 1
                    cands = [
                        Candidate(
                            candidate_id=f"{chat_id[:8]}-{n:07d}-{k}",
                            raw_content=_text(n + k, 18),
                            create_time=at,
                            is_final=True,
                        )
                        for k in range(swipes)
                    ]
                    page.append(
                        Turn(
                            turn_key=TurnKey(chat_id=chat_id, turn_id=f"{chat_id[:8]}-{n:07d}"),
                            author=user if n % 2 == 0 else bot,
                            candidates=cands,
                            primary_candidate_id=cands[0].candidate_id,
                            create_time=at,
                            last_update_time=at,
                        )
                    )
                newer = store.put_turns(chat_id, page, newer).last_pos
            store.set_chat_complete(chat_id, True)
    return {"seconds": time.perf_counter() - started, "bytes": os.path.getsize(spec["path"])}


async def export(spec: dict[str, Any]) -> dict[str, Any]:
    return _export(spec)


def _export(spec: dict[str, Any]) -> dict[str, Any]:
    """Export the archive at ``path`` to ``format``; wall time, turns and peak RSS."""
    from caiclient.archive import Archive

    out = Path(spec["out"])
    with Archive(spec["path"], readonly=True) as archive:
        started = time.perf_counter()
        result = archive.export(spec["format"], out)
        took = time.perf_counter() - started
    written = sum(p.stat().st_size for p in result.files)
    shutil.rmtree(out, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "seconds": took,
        "turns": result.turns,
        "files": len(result.files),
        "bytes": written,
        "peak_rss": peak,
    }


async def backup(spec: dict[str, Any]) -> dict[str, Any]:
    """Fill the emulator, back it up once (timed), then sync again (requests counted)."""
    from caiclient import AsyncClient, Endpoints
    from caiclient.archive import AsyncArchive

    path = Path(spec["path"])
    async with AsyncClient(spec["token"], endpoints=Endpoints.local(spec["url"])) as client:
        await _fill(client, spec["character_ids"], spec["chats"], spec["messages"])
        async with AsyncArchive(path) as archive:
            started = time.perf_counter()
            first = await archive.sync(client, rate=None)
            took = time.perf_counter() - started
            again = await archive.sync(client, rate=None)
        size = await asyncio.to_thread(os.path.getsize, path)
    turns = first.turns_new
    return {
        "seconds": took,
        "turns": turns,
        "chats": first.chats_new,
        "ok": first.ok and again.ok,
        "bytes_per_turn": size / turns if turns else 0.0,
        "unchanged_requests": again.requests,
        "unchanged_chats": again.chats_unchanged,
        "characters": again.characters,
        "minimum_requests": 6 + 3 * again.characters + again.chats_unchanged,
    }


async def _fill(client: Any, characters: list[str], chats: int, messages: int) -> None:
    made = [await client.chats.create(characters[i % len(characters)]) for i in range(chats)]

    async def talk(chat: Any) -> None:
        for i in range(messages):
            await client.chats.send(chat, f"message {i}")

    await asyncio.gather(*(talk(chat) for chat, _ in made))


TASKS = {"generate": generate, "export": export, "backup": backup}


# --- the harness section ----------------------------------------------------------------


def run(suite: Suite) -> None:
    """Measure and add the rows of benchmark 8 to ``suite``."""
    from .harness import Row, _at_least, _at_most, emulator, run_worker

    s = suite.sizes
    timeout = s["worker_timeout"]
    work = Path(tempfile.mkdtemp(prefix="caiclient-bench-archive-"))
    try:
        sizes = {"big": s["archive_turns"], "small": s["archive_small_turns"]}
        for name, turns in sizes.items():
            spec = {"impl": "archive", "task": "generate", "turns": turns}
            spec.update(chats=max(turns // 1000, 1), path=str(work / f"{name}.cai"))
            made = run_worker(spec, max(timeout, 1800.0))
            suite.log(f"  archive generate {name}: {turns:,} turns in {made['seconds']:.1f} s")
        runs: dict[str, list[dict[str, Any]]] = {}
        for repeat in range(s["repeats"]):
            for fmt in ("native", "sillytavern"):
                for name in ("small", "big"):
                    spec = {"impl": "archive", "task": "export", "format": fmt}
                    spec.update(path=str(work / f"{name}.cai"), out=str(work / f"out-{fmt}"))
                    result = run_worker(spec, timeout)
                    runs.setdefault(f"{fmt}/{name}", []).append(result)
                    suite.log(f"  archive export {fmt}/{name} #{repeat + 1}: {result}")
                    if result["turns"] != sizes[name]:
                        suite.problems.append(f"export {fmt}/{name}: {result['turns']} turns")
        backups = []
        for repeat in range(s["repeats"]):
            with emulator() as target:
                spec = {**target.spec(), "impl": "archive", "task": "backup"}
                spec.update(
                    character_ids=_cast(target),
                    chats=s["backup_chats"],
                    messages=s["backup_messages"],
                    path=str(work / f"backup-{repeat}.cai"),
                )
                result = run_worker(spec, timeout)
            backups.append(result)
            suite.log(f"  archive backup #{repeat + 1}: {result}")
            if not result["ok"] or result["chats"] != s["backup_chats"]:
                suite.problems.append(f"archive backup: {result}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    suite.raw["archive"] = {"export": runs, "backup": backups}
    big = f"{s['archive_turns']:,}"
    mb = 1 / 2**20
    for fmt in ("native", "sillytavern"):
        rates = [r["turns"] / r["seconds"] for r in runs[f"{fmt}/big"]]
        suite.rows.append(
            Row(
                f"8. export {big} turns, {fmt}",
                "turns/s",
                rates,
                [],
                "",
                "≥ 100,000/s",
                _at_least(100_000),
                "ours",
            )
        )
        growth = [
            b["peak_rss"] - a["peak_rss"]
            for a, b in zip(runs[f"{fmt}/small"], runs[f"{fmt}/big"], strict=True)
        ]
        suite.rows.append(
            Row(
                f"8. export peak RSS, {fmt}: {big} minus {s['archive_small_turns']:,} turns",
                "MB",
                growth,
                [],
                "",
                "≤ 50 MB",
                _at_most(50 * 2**20),
                "ours",
                scale=mb,
            )
        )
    chats, messages = s["backup_chats"], s["backup_messages"]
    suite.rows += [
        Row(
            f"8. backup from the emulator ({chats} chats × {2 * messages + 1} turns)",
            "turns/s",
            [r["turns"] / r["seconds"] for r in backups],
            [],
            "",
            "≥ 5,000/s",
            _at_least(5000),
            "ours",
        ),
        Row("8. archive size per turn", "B", [r["bytes_per_turn"] for r in backups]),
        Row(
            f"8. unchanged sync of {chats} chats: requests",
            "",
            [r["unchanged_requests"] for r in backups],
            [],
            "",
            "= 6 + 3/character + 1/chat",
            None,
        ),
    ]
    for r in backups:
        if r["unchanged_requests"] != r["minimum_requests"]:
            suite.problems.append(
                f"unchanged sync: {r['unchanged_requests']} requests, not {r['minimum_requests']}"
            )


def _cast(target: Any) -> list[str]:
    """The emulator's seed characters (their ids), read from its public catalogue."""
    import json
    import urllib.request

    request = urllib.request.Request(
        f"{target.url}/neo/recommendation/v1/featured",
        headers={"Authorization": f"Token {target.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return [c["external_id"] for c in json.load(response)["characters"]]
