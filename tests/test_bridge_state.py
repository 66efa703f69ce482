"""The state stores: the same tests on SQLite and on a real PostgreSQL server; locks across
stores (processes); a database that goes away; two bridge processes on one PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge_util import bridge_on, texts
from caiclient.bridge import open_store
from caiclient.bridge import reconcile as rc
from caiclient.bridge.state import (
    Busy,
    ChatRecord,
    Reply,
    StateUnavailable,
    Store,
    decode_state,
    encode_state,
)
from caiclient.emulator import Emulator


async def fresh_pg(postgres: Any) -> str:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(postgres.url)
    try:
        await conn.execute("DROP TABLE IF EXISTS bridge_chats, bridge_keys, bridge_schema")
    finally:
        await conn.close()
    return str(postgres.url)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "state.sqlite3")
    return await fresh_pg(request.getfixturevalue("postgres"))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    s = open_store(store_url)
    await s.open()
    yield s
    await s.close()


def record(chat_id: str, conversation: str | None = None, text: str = "hello") -> ChatRecord:
    key = rc.digest(text)
    turns = (
        rc.MTurn("g", False, (rc.MCandidate("gc", (rc.digest("greeting"),)),), "gc"),
        rc.MTurn(None, True, (rc.MCandidate("", (key,)),)),
        rc.MTurn("r", False, (rc.MCandidate("rc", (rc.digest("reply"), key + "x")),), "rc"),
    )
    return ChatRecord(
        chat_id,
        "tenant\x1fchar",
        conversation,
        "char",
        rc.Mirror(turns, fresh=False),
        stale=True,
        reply=Reply("req", "r", ("rc",), delivered=False, done=True),
        last_used=1000.0 + len(chat_id),
    )


async def test_records_round_trip(store: Store, store_url: str) -> None:
    a, b = record("chat-a", "conv-1"), record("chat-bb", None, "other")
    await store.put(a)
    await store.put(b)
    assert await store.get("chat-a") == a
    assert await store.get("missing") is None
    assert await store.conversation("tenant\x1fchar", "conv-1") == [a]
    assert await store.matching("tenant\x1fchar", [rc.digest("other")]) == [b]  # ids only
    assert await store.matching("tenant\x1fchar", [rc.digest("nothing")]) == []
    await store.put(record("chat-a", "conv-1", "changed"))
    assert await store.matching("tenant\x1fchar", [rc.digest("hello")]) == []
    moved = record("chat-bb", None, "renamed")  # its keys change
    await store.put(moved)
    assert await store.matching("tenant\x1fchar", [rc.digest("other")]) == []
    # A new store on the same database (a restart) sees everything; migrations run once.
    await store.close()
    again = open_store(store_url)
    await again.open()
    try:
        assert await again.get("chat-bb") == moved
        assert [r.chat_id for r in await again.conversation("tenant\x1fchar", "conv-1")] == [
            "chat-a"
        ]
        # The key index as last written: the replaced keys are gone, the new ones found.
        assert await again.matching("tenant\x1fchar", [rc.digest("other")]) == []
        assert await again.matching("tenant\x1fchar", [rc.digest("renamed")]) == [moved]
    finally:
        await again.close()
    await store.open()


async def test_a_conversation_lists_its_chats_most_recently_used_first(
    store: Store, store_url: str
) -> None:
    # A conversation's branches: the engine continues the one used last when both fit.
    a, b = record("chat-a", "conv"), record("chat-b", "conv", "branch")
    await store.put(dataclasses.replace(a, last_used=1.0))
    await store.put(dataclasses.replace(b, last_used=2.0))
    order = [r.chat_id for r in await store.conversation("tenant\x1fchar", "conv")]
    assert order == ["chat-b", "chat-a"]
    await store.put(dataclasses.replace(a, last_used=3.0))  # used again
    order = [r.chat_id for r in await store.conversation("tenant\x1fchar", "conv")]
    assert order == ["chat-a", "chat-b"]
    await store.close()
    again = open_store(store_url)
    await again.open()
    try:
        found = await again.conversation("tenant\x1fchar", "conv")
        assert [(r.chat_id, r.last_used) for r in found] == [("chat-a", 3.0), ("chat-b", 2.0)]
    finally:
        await again.close()
    await store.open()


async def test_lock_is_exclusive_and_waits_end_at_their_deadline(store: Store) -> None:
    order: list[str] = []

    async def hold(name: str, seconds: float) -> None:
        async with store.lock("conv", 5):
            order.append(f"{name} in")
            await asyncio.sleep(seconds)  # holding the lock, as a generation would
            order.append(f"{name} out")

    await asyncio.gather(hold("a", 0.1), hold("b", 0.0))
    assert order == ["a in", "a out", "b in", "b out"]
    async with store.lock("conv", 5):
        with pytest.raises(Busy):
            async with store.lock("conv", 0.1):
                pass
        async with store.lock("other", 0.1):  # other conversations are not blocked
            pass


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


async def keep(store: Store, r: ChatRecord) -> None:
    """Record an update as the engine does (Engine._keep): batched where the store can."""
    if not store.defer(r):
        await store.put(r)


def mode_of(path: str) -> int:
    return Path(path).stat().st_mode & 0o777


async def test_a_second_store_on_the_same_database(store: Store, store_url: str) -> None:
    await store.put(record("chat-1", "conv"))
    second = open_store(store_url)
    if is_sqlite(store_url):  # one process per file: the second is refused, clearly
        with pytest.raises(StateUnavailable, match="in use by another process"):
            await second.open()
        assert mode_of(store_url.removeprefix("sqlite:///")) == 0o600
        return
    await second.open()  # shared: each sees what the other wrote
    try:
        assert await second.get("chat-1") == record("chat-1", "conv")
        await second.put(record("chat-2", None, "from the second"))
        assert await store.matching("tenant\x1fchar", [rc.digest("from the second")]) == [
            record("chat-2", None, "from the second")
        ]
    finally:
        await second.close()


# A record as the first version of the stores wrote it (turns as [id, human, primary, cands]).
_FIRST_VERSION_BLOB = (
    b'{"turns":[["g",false,"gc",[["gc",["3a5767fe3afb90153166c6b1"]]]],'
    b'[null,true,null,[["",["8ed7252f4b03f9e8376db5b2"]]]],'
    b'["r",false,"rc",[["rc",["f93abfefcafc4eda79fe2849","8ed7252f4b03f9e8376db5b2x"]]]]],'
    b'"stale":true,"reply":["req","r",["rc"],false,true]}'
)


def test_blobs_of_the_first_version_are_read() -> None:
    expected = record("chat-a", "c")
    got = decode_state("chat-a", expected.partition, "c", "char", _FIRST_VERSION_BLOB, 1006.0)
    assert got == expected
    assert decode_state("chat-a", got.partition, "c", "char", encode_state(got), 1006.0) == got


async def test_updates_are_read_at_once_and_after_a_restart(store: Store, store_url: str) -> None:
    # SQLite batches them (written together a little later, and at close); PostgreSQL,
    # shared by several processes, writes each at once.
    assert store.defer(record("chat-x")) is is_sqlite(store_url)
    # Even ones in a conversation, odd ones found by matching their messages.
    records = [record(f"chat-{i}", f"conv-{i}" if i % 2 == 0 else None, f"t{i}") for i in range(50)]
    for r in records:
        await keep(store, r)
    # Read back at once, including the key index for matching.
    assert await store.get("chat-7") == records[7]
    assert await store.matching("tenant\x1fchar", [rc.digest("t9")]) == [records[9]]
    assert await store.matching("tenant\x1fchar", [rc.digest("t8")]) == []  # it has an id
    assert await store.conversation("tenant\x1fchar", "conv-8") == [records[8]]
    await store.close()
    again = open_store(store_url)
    await again.open()
    try:
        assert [await again.get(r.chat_id) for r in records] == records
        assert await again.matching("tenant\x1fchar", [rc.digest("t9")]) == [records[9]]
    finally:
        await again.close()
    await store.open()


async def test_a_reply_being_generated_is_marked_until_it_ends(
    store: Store, store_url: str
) -> None:
    # Before a generation the engine marks its record (reply not done, stale), after it
    # records the final version. SQLite keeps the mark in memory only (the final version
    # follows, and a crash is caught by the file's open mark), PostgreSQL writes it at
    # once; on both, a store closed mid-generation leaves the mark.
    before = dataclasses.replace(record("chat-f", "conv"), stale=False)
    flying = dataclasses.replace(
        before, stale=True, reply=Reply("req2", None, (), delivered=False, done=False)
    )
    after = dataclasses.replace(before, reply=Reply("req2", "r2", ("c2",), True, True))
    await store.put(before)
    await keep(store, flying)
    assert await store.get("chat-f") == flying  # this process sees it at once
    await keep(store, after)
    await store.close()
    again = open_store(store_url)
    await again.open()
    assert await again.get("chat-f") == after  # the final version
    await keep(again, dataclasses.replace(after, stale=True, reply=flying.reply))
    await again.close()  # closed while "generating"
    third = open_store(store_url)
    await third.open()
    try:
        got = await third.get("chat-f")
        assert got is not None and got.stale and got.reply == flying.reply
    finally:
        await third.close()
    await store.open()


_CRASHING_PROCESS = """
import asyncio, dataclasses, os, signal, sys
sys.path.insert(0, sys.argv[2])
from test_bridge_state import keep, record
from caiclient.bridge import open_store
from caiclient.bridge.state import Reply

async def main():
    store = open_store(sys.argv[1])
    await store.open()
    clean = record("chat-clean", "conv", "before the crash")
    await store.put(dataclasses.replace(clean, stale=False))
    flying = dataclasses.replace(
        record("chat-flying", "other", "generating"),
        stale=True, reply=Reply("req", None, (), delivered=False, done=False),
    )
    await keep(store, flying)  # a generation under way
    os.kill(os.getpid(), signal.SIGKILL)  # no clean close

asyncio.run(main())
"""


async def test_after_a_crash_what_may_lag_is_read_again(store: Store, store_url: str) -> None:
    await store.close()
    tests = str(Path(__file__).parent)
    crashed = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CRASHING_PROCESS, store_url, tests
    )
    assert await asyncio.wait_for(crashed.wait(), 30) == -9
    await store.open()
    flying = await store.get("chat-flying")
    clean = await store.get("chat-clean")
    assert clean is not None
    if is_sqlite(store_url):
        # The file's open mark was left: every record may lag behind c.ai (its last
        # updates were batched), so each is stale; the one generating was never written.
        assert flying is None
        assert clean.stale
    else:
        # Each update was written at once: the one generating carries its mark, the
        # other is as it was.
        assert flying is not None and flying.stale and flying.reply is not None
        assert not flying.reply.done
        assert not clean.stale
    await store.put(dataclasses.replace(clean, stale=False))  # re-read: clean again
    await store.close()
    again = open_store(store_url)
    await again.open()  # closed cleanly this time: nothing is marked
    try:
        got = await again.get("chat-clean")
        assert got is not None and not got.stale
    finally:
        await again.close()
    await store.open()


async def test_postgres_locks_hold_across_stores(postgres: Any) -> None:
    url = await fresh_pg(postgres)
    one, two = open_store(url), open_store(url)
    await one.open()
    await two.open()
    try:
        async with one.lock("shared", 5):
            with pytest.raises(Busy):
                async with two.lock("shared", 0.2):
                    pass
        async with two.lock("shared", 0.5):  # released by one: two gets it at once
            pass
    finally:
        await one.close()
        await two.close()


_OTHER_PROCESS = """
import asyncio, sys
from caiclient import AsyncClient, Endpoints
from caiclient.bridge import serve

async def main():
    url, token, state = sys.argv[1:4]
    async with AsyncClient(token, endpoints=Endpoints.local(url)) as client:
        await serve(client, port=0, state=state, started=lambda u: print(u, flush=True))

asyncio.run(main())
"""


async def test_two_bridge_processes_share_one_postgres(emu: Emulator, postgres: Any) -> None:
    url = await fresh_pg(postgres)
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _OTHER_PROCESS, emu.url, emu.token, url,
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert other.stdout is not None
        line = await asyncio.wait_for(other.stdout.readline(), 30)
        other_url = line.decode().strip()
        assert other_url.startswith("http://127.0.0.1:")
        async with bridge_on(emu, url) as here, aiohttp.ClientSession() as http:

            async def ask(base: str, messages: list[dict[str, str]]) -> tuple[str, str]:
                body = {"model": here.echo, "messages": messages}
                headers = {"X-Conversation-Id": "shared"}
                async with http.post(
                    base + "/v1/chat/completions", json=body, headers=headers
                ) as r:
                    assert r.status == 200, await r.text()
                    data = await r.json()
                    return r.headers["X-Bridge-Action"], data["choices"][0]["message"]["content"]

            first = [{"role": "user", "content": "Both at once"}]
            results = await asyncio.gather(ask(here.url, first), ask(other_url, first))
            assert sorted(action for action, _ in results) == ["first_contact+new_turn", "swipe"]
            history = texts(await here.history())
            assert [who for who, _ in history] == ["char", "user", "char"]  # no duplicated turn
            assert len(history[2][1]) == 2  # the second request became a swipe of it
            messages = [*first, {"role": "assistant", "content": history[2][1][0]}]
            for i, base in enumerate([other_url, here.url, other_url]):
                messages.append({"role": "user", "content": f"Turn {i}"})
                action, text = await ask(base, messages)
                assert action == "new_turn"
                messages.append({"role": "assistant", "content": text})
            assert len(await here.client.chats.recent(here.echo)) == 1  # one binding
            assert len(texts(await here.history())) == 9
    finally:
        other.terminate()
        await asyncio.wait_for(other.wait(), 30)
