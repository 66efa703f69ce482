"""The default state store: one SQLite file, one process.

All SQLite work runs on one private thread, one whole transaction per call, so the event
loop never blocks on the disk and each store operation costs one thread hop (aiosqlite
costs one per statement). The file is opened in WAL mode with ``locking_mode=EXCLUSIVE``:
while a bridge has it open, another process gets a clear error instead of a second,
unsynchronised writer. Because this process is then the only writer, records are cached
in memory (write-through) and reading a known conversation costs nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from . import ChatRecord, StateUnavailable, Store, decode_state, encode_state

__all__ = ["SQLiteStore"]

T = TypeVar("T")

# Each migration is applied once, in order, in one transaction; bridge_schema holds the count.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
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
    ),
)
_COLUMNS = "chat_id, partition, conversation, character_id, state, last_used"


def _record(row: tuple[Any, ...]) -> ChatRecord:
    chat_id, partition, conversation, character_id, blob, last_used = row
    return decode_state(
        str(chat_id),
        str(partition),
        None if conversation is None else str(conversation),
        str(character_id),
        bytes(blob),
        float(last_used),
    )


class SQLiteStore(Store):
    """State in the SQLite file at ``path`` (created, mode 0600, with its folder)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path).expanduser()
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._records: dict[str, ChatRecord] = {}
        self._conversations: dict[tuple[str, str], list[str]] = {}

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        thread, db = self._thread, self._db
        if thread is None or db is None:
            raise StateUnavailable("the SQLite state store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(thread, work, db)
        except sqlite3.Error as exc:
            raise StateUnavailable(f"SQLite state {self.path}: {exc}") from exc

    async def open(self) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="caiclient-bridge-sqlite")
        loop = asyncio.get_running_loop()
        try:
            self._db = await loop.run_in_executor(self._thread, self._connect)
        except (sqlite3.Error, OSError) as exc:
            self._thread.shutdown(wait=False)
            self._thread = None
            if "locked" in str(exc):
                raise StateUnavailable(
                    f"SQLite state {self.path} is in use by another process; one process "
                    "per SQLite file (use a postgresql:// state for several)"
                ) from exc
            raise StateUnavailable(f"SQLite state {self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
        try:
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")  # Takes the file's lock now, not at the first write.
            db.execute("CREATE TABLE IF NOT EXISTS bridge_schema (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM bridge_schema").fetchone()
            version = 0 if row is None else int(row[0])
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    db.execute(statement)
            db.execute("DELETE FROM bridge_schema")
            db.execute("INSERT INTO bridge_schema VALUES (?)", (len(MIGRATIONS),))
            db.execute("COMMIT")
        except BaseException:
            db.close()
            raise
        return db

    async def close(self) -> None:
        thread, db = self._thread, self._db
        self._thread = self._db = None
        self._records.clear()
        self._conversations.clear()
        if thread is not None and db is not None:
            await asyncio.get_running_loop().run_in_executor(thread, db.close)
        if thread is not None:
            thread.shutdown(wait=True)

    async def conversation(self, partition: str, conversation: str) -> list[ChatRecord]:
        ids = self._conversations.get((partition, conversation))
        if ids is None:

            def load(db: sqlite3.Connection) -> list[ChatRecord]:
                rows = db.execute(
                    f"SELECT {_COLUMNS} FROM bridge_chats WHERE partition = ? AND conversation = ?",
                    (partition, conversation),
                ).fetchall()
                return [_record(row) for row in rows]

            records = await self._run(load)
            for record in records:
                self._records.setdefault(record.chat_id, record)
            ids = [r.chat_id for r in records]
            self._conversations[(partition, conversation)] = ids
        found = [self._records[i] for i in ids if i in self._records]
        return sorted(found, key=lambda r: r.last_used, reverse=True)

    async def matching(self, partition: str, keys: Sequence[str]) -> list[ChatRecord]:
        if not keys:
            return []

        def load(db: sqlite3.Connection) -> list[str]:
            marks = ",".join("?" * len(keys))
            rows = db.execute(
                "SELECT DISTINCT chat_id FROM bridge_keys"
                f" WHERE partition = ? AND key IN ({marks})",
                (partition, *keys),
            ).fetchall()
            return [str(row[0]) for row in rows]

        found = []
        for chat_id in await self._run(load):
            record = await self.get(chat_id)
            if record is not None and record.conversation is None:
                found.append(record)
        return sorted(found, key=lambda r: r.last_used, reverse=True)

    async def get(self, chat_id: str) -> ChatRecord | None:
        record = self._records.get(chat_id)
        if record is not None:
            return record

        def load(db: sqlite3.Connection) -> ChatRecord | None:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM bridge_chats WHERE chat_id = ?", (chat_id,)
            ).fetchone()
            return None if row is None else _record(row)

        record = await self._run(load)
        if record is not None:
            self._records[chat_id] = record
        return record

    async def put(self, record: ChatRecord) -> None:
        if not record.last_used:
            record = dataclasses.replace(record, last_used=time.time())
        blob = encode_state(record)
        keys = sorted(record.keys())
        last_used = record.last_used

        def save(db: sqlite3.Connection) -> None:
            db.execute("BEGIN")
            try:
                db.execute(
                    f"INSERT OR REPLACE INTO bridge_chats ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.chat_id,
                        record.partition,
                        record.conversation,
                        record.character_id,
                        blob,
                        last_used,
                    ),
                )
                db.execute("DELETE FROM bridge_keys WHERE chat_id = ?", (record.chat_id,))
                db.executemany(
                    "INSERT OR IGNORE INTO bridge_keys VALUES (?, ?, ?)",
                    [(record.partition, key, record.chat_id) for key in keys],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await self._run(save)
        self._remember(record)

    def _remember(self, record: ChatRecord) -> None:
        self._records[record.chat_id] = record
        if record.conversation is not None:
            ids = self._conversations.get((record.partition, record.conversation))
            if ids is not None and record.chat_id not in ids:
                ids.append(record.chat_id)

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())
