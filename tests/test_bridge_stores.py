"""The bridge on each state store, SQLite and a real PostgreSQL server, the same tests on
both: a restart (clean or killed) in the middle of a conversation keeps it; a database that
goes away gives 503 in OpenAI's error shape and loses no binding once it is back; and a
database of the oldest schema the migrations know is brought up to date with its data.

How the SQLite database "goes away": the store holds its file open for its whole life
(``locking_mode=EXCLUSIVE``), so neither a folder made read-only (the open descriptors
still write, and root ignores modes anyway) nor another connection holding a lock (the
store holds the only one: others are refused, not it) can stop it. What does stop a file
that is already open is the kernel refusing the write, as on a full disk: the process's
file size limit (``RLIMIT_FSIZE``) set to the size the WAL has now makes every write that
grows it fail with EFBIG, SQLite's "disk I/O error" (reads still work, as on a full disk);
lifting it is the disk getting space back. It needs no privilege and touches no other
process (a small full filesystem would need a mount, i.e. root).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from bridge_util import Bridge, Ops, bridge_on, texts
from caiclient.bridge import open_store
from caiclient.bridge.state import ChatRecord, StateUnavailable, Store
from caiclient.bridge.state.sqlite import SQLiteStore
from caiclient.emulator import Emulator
from test_bridge_state import fresh_pg, record

CARD = {"role": "system", "content": "Write Echo's next reply in a fictional chat."}


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def reply(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


async def ask(
    b: Bridge, messages: list[dict[str, str]], conversation: str | None = None
) -> tuple[int, dict[str, str], Any]:
    """POST a completion: (status, headers, decoded body)."""
    headers = {"X-Conversation-Id": conversation} if conversation else None
    status, got, raw = await b.post({"model": b.echo, "messages": messages}, headers)
    return status, got, json.loads(raw)


def answer(body: Any) -> str:
    return str(body["choices"][0]["message"]["content"])


@pytest.fixture(params=["sqlite", "postgresql"])
async def state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "bridge.sqlite3")
    return await fresh_pg(request.getfixturevalue("postgres"))


def kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite:") else "postgresql"


async def chats_of(b: Bridge) -> dict[str, list[tuple[str, list[str]]]]:
    """Every chat of the account with Echo, by id: its turns as ``texts`` gives them."""
    return {
        c.chat_id: texts(await b.history(c.chat_id)) for c in await b.client.chats.recent(b.echo)
    }


# --- a restart in the middle of a conversation ---------------------------------------------------


async def test_clean_restart_keeps_each_conversation(
    emu: Emulator, state: str, caplog: pytest.LogCaptureFixture
) -> None:
    ops = Ops(caplog)
    named = [CARD, user("Named, first")]  # bound by X-Conversation-Id
    matched = [CARD, user("Matched, first")]  # found again by its messages
    async with bridge_on(emu, state) as first:
        status, got, body = await ask(first, named, "named")
        assert (status, got["X-Bridge-Action"]) == (200, "first_contact+new_turn")
        replaced = answer(body)
        status, got, body = await ask(first, named, "named")  # a swipe of that reply
        assert (status, got["X-Bridge-Action"]) == (200, "swipe")
        named += [reply(answer(body)), user("Named, second")]
        status, got, body = await ask(first, named, "named")
        assert (status, got["X-Bridge-Action"]) == (200, "new_turn")
        named.append(reply(answer(body)))
        status, got, body = await ask(first, matched)
        assert (status, got["X-Bridge-Action"]) == (200, "first_contact+new_turn")
        matched.append(reply(answer(body)))
        assert ops() == ["create", "stream", "regenerate", "stream", "create", "stream"]
        before = set(await chats_of(first))
    assert len(before) == 2

    async with bridge_on(emu, state) as second:
        named.append(user("Named, after"))
        status, got, body = await ask(second, named, "named")
        assert (status, got["X-Bridge-Action"]) == (200, "new_turn")
        named.append(reply(answer(body)))
        matched.append(user("Matched, after"))
        status, got, body = await ask(second, matched)
        assert (status, got["X-Bridge-Action"]) == (200, "new_turn")
        matched.append(reply(answer(body)))
        # Each went on in its own chat: no history read (the mirrors were written), no chat
        # made.
        assert ops() == ["stream", "stream"]
        status, got, body = await ask(second, matched[:-1])  # and a swipe still is one
        assert (status, got["X-Bridge-Action"]) == (200, "swipe")
        assert ops() == ["regenerate"]
        matched[-1] = reply(answer(body))
        after = await chats_of(second)
    assert set(after) == before
    by_opening = {turns[1][1][0]: turns for turns in after.values()}
    named_chat, matched_chat = by_opening["Named, first"], by_opening["Matched, first"]
    assert named_chat[1:] == [
        ("user", ["Named, first"]),
        ("char", [named[2]["content"], replaced]),  # the swipe is the chosen candidate
        ("user", ["Named, second"]),
        ("char", [named[4]["content"]]),
        ("user", ["Named, after"]),
        ("char", [named[6]["content"]]),
    ]
    assert [(who, t[0]) for who, t in matched_chat[1:]] == [
        ("user", "Matched, first"),
        ("char", matched[2]["content"]),
        ("user", "Matched, after"),
        ("char", matched[4]["content"]),
    ]
    assert len(matched_chat[4][1]) == 2


_BRIDGE_PROCESS = """
import asyncio, sys
from caiclient import AsyncClient, Endpoints
from caiclient.bridge import serve

async def main():
    url, token, state = sys.argv[1:4]
    async with AsyncClient(token, endpoints=Endpoints.local(url)) as client:
        await serve(client, port=0, state=state, started=lambda u: print(u, flush=True))

asyncio.run(main())
"""


@asynccontextmanager
async def bridge_process(emu: Emulator, state: str) -> AsyncIterator[tuple[str, Any]]:
    """A bridge in a process of its own: (its URL, the process)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _BRIDGE_PROCESS, emu.url, emu.token, state,
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        url = line.decode().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield url, process
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), 30)


async def reply_recorded(state: str, lock: str) -> None:
    """Wait until the other process released conversation ``lock`` (PostgreSQL advisory
    lock), which it does once the reply's last record is written."""
    watcher = open_store(state)
    await watcher.open()
    try:
        async with watcher.lock(lock, 30):
            pass
    finally:
        await watcher.close()


async def test_killed_bridge_leaves_each_conversation_to_the_next(
    emu: Emulator, state: str, caplog: pytest.LogCaptureFixture
) -> None:
    ops = Ops(caplog)
    messages = [CARD, user("Before the kill")]
    echo = emu.character("Echo").id
    async with bridge_process(emu, state) as (url, process), aiohttp.ClientSession() as http:
        body = {"model": echo, "messages": messages}
        headers = {"X-Conversation-Id": "killed"}
        async with http.post(url + "/v1/chat/completions", json=body, headers=headers) as r:
            assert (r.status, r.headers["X-Bridge-Action"]) == (200, "first_contact+new_turn")
            messages.append(reply((await r.json())["choices"][0]["message"]["content"]))
        if kind(state) == "postgresql":
            await reply_recorded(state, f"c\x1fdefault\x1f{echo}\x1fkilled")
        process.send_signal(signal.SIGKILL)  # no clean close: no flush, no open mark removed
        assert await asyncio.wait_for(process.wait(), 30) == -signal.SIGKILL
    async with bridge_on(emu, state) as b:
        messages.append(user("After the kill"))
        status, got, body = await ask(b, messages, "killed")
        assert (status, got["X-Bridge-Action"]) == (200, "new_turn")
        # SQLite found the open mark of the killed process: every record is stale, so the
        # chat's history is read first (its last updates may not have been written). The
        # PostgreSQL store writes each update at once: nothing to re-read.
        expected = {"sqlite": ["history", "stream"], "postgresql": ["stream"]}[kind(state)]
        assert ops() == expected
        chats = await chats_of(b)
        assert len(chats) == 1
        (turns,) = chats.values()
        assert [(who, t[0]) for who, t in turns][1:] == [
            ("user", "Before the kill"),
            ("char", messages[2]["content"]),
            ("user", "After the kill"),
            ("char", answer(body)),
        ]


# --- a database that goes away ----------------------------------------------------------------


@contextmanager
def writes_refused(path: str) -> Iterator[None]:
    """No file of this process may grow past the size SQLite file ``path``'s WAL has now
    (RLIMIT_FSIZE), so the next transaction, appended to the WAL, fails with EFBIG, as on
    a full disk. SIGXFSZ, which would kill the process, is ignored meanwhile."""
    limit = os.path.getsize(path + "-wal")
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@asynccontextmanager
async def database_gone(state: str, store: Store, postgres: Any) -> AsyncIterator[None]:
    """The store's database is unusable inside the block and back afterwards."""
    if kind(state) == "postgresql":
        postgres.pause()  # the server stops at once (pg_ctl -m immediate), data kept
        try:
            yield
        finally:
            postgres.resume()
        return
    assert isinstance(store, SQLiteStore)
    await store.flush()  # nothing pending: a clean cut
    path = str(store.path)
    with writes_refused(path):
        yield


def openai_error(body: Any, code: str) -> None:
    """``body`` is an error in OpenAI's shape (what openai-python reads) with ``code``."""
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("api_error", None, code)
    assert isinstance(error["message"], str) and error["message"]


async def test_database_going_away_is_503_and_loses_no_binding(
    emu: Emulator,
    state: str,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    postgres = request.getfixturevalue("postgres") if kind(state) == "postgresql" else None
    ops = Ops(caplog)
    kept = [CARD, user("Before")]
    fresh = [CARD, user("A new conversation meanwhile")]
    store = open_store(state)
    async with bridge_on(emu, store) as b:
        status, got, body = await ask(b, kept, "kept")
        assert (status, got["X-Bridge-Action"]) == (200, "first_contact+new_turn")
        kept.append(reply(answer(body)))
        assert ops() == ["create", "stream"]
        # The reply's last record is written before the conversation's lock is released
        # (after the response went out): the outage starts once it is.
        async with store.lock(f"c\x1fdefault\x1f{b.echo}\x1fkept", 30):
            pass
        async with database_gone(state, store, postgres):
            # A conversation the bridge has not seen: its binding cannot be written. The
            # official client sees the 503 as InternalServerError with the bridge's code.
            async with openai.AsyncOpenAI(base_url=b.v1, api_key="-", max_retries=0) as oa:
                with pytest.raises(openai.InternalServerError) as caught:
                    await oa.chat.completions.create(
                        model=b.echo,
                        messages=fresh,  # type: ignore[arg-type]
                        extra_headers={"X-Conversation-Id": "fresh"},
                    )
            failure = caught.value
            assert (failure.status_code, failure.code, failure.type) == (
                503, "state_unavailable", "api_error",
            )  # fmt: skip
            got, body = dict(failure.response.headers), failure.response.json()
            openai_error(body, "state_unavailable")
            during = [*kept, user("During")]
            status, got_kept, body_kept = await ask(b, during, "kept")
            if kind(state) == "postgresql":
                # Nothing can be locked or read: refused before anything is changed.
                assert ops() == []
                assert "x-should-retry" not in {k.lower() for k in got}
                assert status == 503
                openai_error(body_kept, "state_unavailable")
            else:
                # The chat was made on c.ai before its binding failed to be written: the
                # 503 says not to retry blindly. The known conversation is answered from
                # the records in memory; its updates wait to be written.
                assert ops() == ["create", "stream"]
                assert got["x-should-retry"] == "false"
                assert (status, got_kept["X-Bridge-Action"]) == (200, "new_turn")
                kept = [*during, reply(answer(body_kept))]
                assert "disk I/O error" in body["error"]["message"]
    # Back, and the bridge restarted at once: what waited to be written (SQLite: the
    # binding made during the outage, the known conversation's last updates) was written
    # at close. The new conversation, asked again, gets one chat (on SQLite, the one made
    # during the outage); the known one goes on without a history read.
    async with bridge_on(emu, state) as b:
        status, got, body = await ask(b, fresh, "fresh")
        assert (status, got["X-Bridge-Action"]) == (200, "first_contact+new_turn")
        fresh.append(reply(answer(body)))
        kept.append(user("After"))
        status, got_kept, body = await ask(b, kept, "kept")
        assert (status, got_kept["X-Bridge-Action"]) == (200, "new_turn")
        kept.append(reply(answer(body)))
        expected = {"sqlite": ["stream", "stream"], "postgresql": ["create", "stream", "stream"]}
        assert ops() == expected[kind(state)]
    # Every binding was written once the database was back: a restart finds both.
    async with bridge_on(emu, state) as again:
        for messages, conversation in ((kept, "kept"), (fresh, "fresh")):
            messages.append(user("After the restart"))
            status, got, body = await ask(again, messages, conversation)
            assert (status, got["X-Bridge-Action"]) == (200, "new_turn")
            messages.append(reply(answer(body)))
        assert ops() == ["stream", "stream"]
        chats = await chats_of(again)
    assert len(chats) == 2
    for turns in chats.values():
        sent = kept if turns[1][1][0] == "Before" else fresh
        assert [t[0] for _, t in turns[1:]] == [m["content"] for m in sent[1:]]


class _Logged(logging.Handler):
    """Sets ``event`` when a record whose message contains ``text`` is logged."""

    def __init__(self, text: str, event: asyncio.Event) -> None:
        super().__init__()
        self.text, self.event = text, event

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


async def test_sqlite_a_binding_refused_meanwhile_is_tried_again_by_itself(
    tmp_path: Path,
) -> None:
    # The engine writes a new binding with put(); when that fails (503), the SQLite store
    # keeps it in memory. It must not wait for some later write or the close to be tried
    # again: a crash before either would lose it, and the chat made for it.
    path = tmp_path / "refused.sqlite3"
    store = SQLiteStore(path)
    await store.open()
    retried = asyncio.Event()
    watch = _Logged("bridge state not written (trying again in 0.10 s)", retried)
    logger = logging.getLogger("caiclient.bridge")
    logger.addHandler(watch)
    try:
        await store.put(record("chat-before", "conv"))
        await store.ping()
        with writes_refused(str(path)):
            with pytest.raises(StateUnavailable, match="disk I/O error"):
                await store.put(record("chat-new", "conv", "made meanwhile"))
            assert await store.get("chat-new") == record("chat-new", "conv", "made meanwhile")
            # Tried again in the background, unasked, and waiting longer each time (the
            # first background try waits 0.05 s, the second 0.10 s).
            await asyncio.wait_for(retried.wait(), 10)
            with pytest.raises(StateUnavailable, match="writes are failing"):
                await store.ping()  # /health reports it, though reads still work
    finally:
        logger.removeHandler(watch)
        await store.close()
    again = SQLiteStore(path)
    await again.open()
    try:
        assert not again.crashed
        found = await again.conversation("tenant\x1fchar", "conv")
        assert sorted(r.chat_id for r in found) == ["chat-before", "chat-new"]
    finally:
        await again.close()


# --- migrations: a database of the oldest schema, opened by the current store ---------------------

# What the first version of each store created (schema version 1), written out here as it
# was: the test must not follow later edits of the migration code.
_OLDEST_SCHEMA = {
    "sqlite": (
        """CREATE TABLE bridge_chats (
            chat_id TEXT PRIMARY KEY,
            partition TEXT NOT NULL,
            conversation TEXT,
            character_id TEXT NOT NULL,
            state BLOB NOT NULL,
            last_used REAL NOT NULL
        )""",
        "CREATE INDEX bridge_chats_conversation ON bridge_chats (partition, conversation)",
        """CREATE TABLE bridge_keys (
            partition TEXT NOT NULL,
            key TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            PRIMARY KEY (partition, key, chat_id)
        )""",
        "CREATE INDEX bridge_keys_chat ON bridge_keys (chat_id)",
        "CREATE TABLE bridge_schema (version INTEGER NOT NULL)",
        "INSERT INTO bridge_schema VALUES (1)",
    ),
    "postgresql": (
        """CREATE TABLE bridge_chats (
            chat_id TEXT PRIMARY KEY,
            partition TEXT NOT NULL,
            conversation TEXT,
            character_id TEXT NOT NULL,
            state BYTEA NOT NULL,
            last_used DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX bridge_chats_conversation ON bridge_chats (partition, conversation)",
        """CREATE TABLE bridge_keys (
            partition TEXT NOT NULL,
            key TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            PRIMARY KEY (partition, key, chat_id)
        )""",
        "CREATE INDEX bridge_keys_chat ON bridge_keys (chat_id)",
        "CREATE TABLE bridge_schema (version INTEGER NOT NULL)",
        "INSERT INTO bridge_schema VALUES (1)",
    ),
}
_CURRENT_VERSION = {"sqlite": 2, "postgresql": 1}


def first_version_blob(record: ChatRecord) -> bytes:
    """``record``'s state as the first version wrote it: turns as ``[id, human, primary,
    [[candidate id, [keys]], ...]]``, the reply without ``aborted``, defaults left out."""
    state: dict[str, Any] = {
        "turns": [
            [t.turn_id, t.human, t.primary, [[c.candidate_id, list(c.keys)] for c in t.candidates]]
            for t in record.mirror.turns
        ]
    }
    if record.mirror.fresh:
        state["fresh"] = True
    if record.stale:
        state["stale"] = True
    r = record.reply
    if r is not None:
        assert not r.aborted  # (the first version had no such field)
        state["reply"] = [r.request_key, r.turn_id, list(r.candidate_ids), r.delivered, r.done]
    return json.dumps(state, separators=(",", ":")).encode()


Rows = list[tuple[Any, ...]]


def sqlite_schema(path: str) -> tuple[Rows, Rows]:
    with closing(sqlite3.connect(path)) as db:
        tables = db.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        return tables, db.execute("SELECT version FROM bridge_schema").fetchall()


def sqlite_downgrade(path: str, records: list[ChatRecord], keys: Rows) -> None:
    """Replace the file by one of the oldest schema holding ``records`` and ``keys``."""
    for name in (path, path + "-wal", path + "-shm"):
        Path(name).unlink(missing_ok=True)
    with closing(sqlite3.connect(path)) as db, db:
        for statement in _OLDEST_SCHEMA["sqlite"]:
            db.execute(statement)
        db.executemany("INSERT INTO bridge_chats VALUES (?, ?, ?, ?, ?, ?)", old_rows(records))
        db.executemany("INSERT INTO bridge_keys VALUES (?, ?, ?)", keys)


def sqlite_keys(path: str) -> Rows:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT partition, key, chat_id FROM bridge_keys").fetchall()


def old_rows(records: list[ChatRecord]) -> Rows:
    return [
        (
            r.chat_id, r.partition, r.conversation, r.character_id, first_version_blob(r),
            r.last_used,
        )
        for r in records
    ]  # fmt: skip


async def pg_schema(url: str) -> tuple[Rows, Rows]:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(url)
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_name LIKE 'bridge_%'"
            " ORDER BY table_name, ordinal_position"
        )
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename LIKE 'bridge_%'"
            " ORDER BY indexname"
        )
        version = await conn.fetch("SELECT version FROM bridge_schema")
    finally:
        await conn.close()
    return [tuple(r) for r in columns] + [tuple(r) for r in indexes], [tuple(r) for r in version]


async def pg_downgrade(url: str, records: list[ChatRecord]) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        keys = [
            tuple(r) for r in await conn.fetch("SELECT partition, key, chat_id FROM bridge_keys")
        ]
        await conn.execute("DROP TABLE bridge_chats, bridge_keys, bridge_schema")
        async with conn.transaction():
            for statement in _OLDEST_SCHEMA["postgresql"]:
                await conn.execute(statement)
            await conn.executemany(
                "INSERT INTO bridge_chats VALUES ($1, $2, $3, $4, $5, $6)", old_rows(records)
            )
            await conn.executemany("INSERT INTO bridge_keys VALUES ($1, $2, $3)", keys)
    finally:
        await conn.close()


async def schema_of(state: str) -> tuple[Rows, Rows]:
    if kind(state) == "sqlite":
        return sqlite_schema(state.removeprefix("sqlite:///"))
    return await pg_schema(state)


async def records_of(state: str, chat_ids: list[str]) -> list[ChatRecord]:
    store = open_store(state)
    await store.open()
    try:
        found = [await store.get(chat_id) for chat_id in chat_ids]
    finally:
        await store.close()
    assert None not in found
    return [r for r in found if r is not None]


async def test_oldest_schema_is_migrated_with_its_data(
    emu: Emulator, state: str, caplog: pytest.LogCaptureFixture
) -> None:
    ops = Ops(caplog)
    named = [CARD, user("Named, before the upgrade")]
    matched = [CARD, user("Matched, before the upgrade")]
    async with bridge_on(emu, state) as b:
        for messages, conversation in ((named, "named"), (matched, None)):
            status, got, body = await ask(b, messages, conversation)
            assert (status, got["X-Bridge-Action"]) == (200, "first_contact+new_turn")
            messages.append(reply(answer(body)))
        chat_ids = sorted(c.chat_id for c in await b.client.chats.recent(b.echo))
    assert ops() == ["create", "stream", "create", "stream"]
    current = await schema_of(state)  # made from nothing by the current store
    assert current[1] == [(_CURRENT_VERSION[kind(state)],)]
    records = await records_of(state, chat_ids)
    assert {r.conversation for r in records} == {"named", None}

    # The same data in a database of the oldest schema, blobs in the first version's form.
    if kind(state) == "sqlite":
        path = state.removeprefix("sqlite:///")
        sqlite_downgrade(path, records, sqlite_keys(path))
    else:
        await pg_downgrade(state, records)
    assert (await schema_of(state))[1] == [(1,)]

    # The current bridge opens it: the schema is brought up to date, every record is read
    # as it was, and both conversations go on in their chats.
    async with bridge_on(emu, state) as b:
        for messages, conversation in ((named, "named"), (matched, None)):
            messages.append(user("After the upgrade"))
            status, got, body = await ask(b, messages, conversation)
            assert (status, got["X-Bridge-Action"]) == (200, "new_turn")
            messages.append(reply(answer(body)))
        assert ops() == ["stream", "stream"]  # no history read, no chat made
        chats = await chats_of(b)
    assert await schema_of(state) == current  # (read once the SQLite file is free)
    assert sorted(chats) == chat_ids
    for turns in chats.values():
        sent = named if turns[1][1][0] == named[1]["content"] else matched
        assert [t[0] for _, t in turns[1:]] == [m["content"] for m in sent[1:]]
    # What the first version stored is read back unchanged (before the turns just added).
    upgraded = open_store(state)
    await upgraded.open()
    try:
        for before in records:
            after = await upgraded.get(before.chat_id)
            assert after is not None
            assert after.mirror.turns[: len(before.mirror.turns)] == before.mirror.turns
            assert (after.partition, after.conversation, after.character_id) == (
                before.partition, before.conversation, before.character_id,
            )  # fmt: skip
    finally:
        await upgraded.close()
