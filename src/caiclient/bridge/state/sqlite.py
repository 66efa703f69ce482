"""The default state store: one SQLite file, one process.

The file is opened in WAL mode with ``locking_mode=EXCLUSIVE``: while a bridge has it open,
another process gets a clear error instead of a second, unsynchronised writer. Because this
process is then the only writer, every record it has read or written is kept in memory
(reads of a known conversation cost nothing) and so is the index of candidate keys used to
match requests without a conversation id (loaded once, at open).

Writes are batched. ``put(record)`` returns once the record is committed; ``defer(record)``
(mirror and reply updates, two per generation) only marks it dirty, and the dirty records
are written together, each in its latest version only, in one transaction at most
``flush_interval`` seconds later. All SQLite work runs on one private thread, so the
event loop never waits for the disk. A crash can lose the last unwritten updates; to make
that harmless, the file records that a process has it open, and a process that finds that
mark at start (the last one did not close cleanly) marks every record stale, so that each
chat's history is read again from c.ai before it is used (docs/bridge.md, "State stores").
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from . import INDEXED_TURNS, ChatRecord, StateUnavailable, Store, decode_state, encode_state

__all__ = ["SQLiteStore"]

T = TypeVar("T")
log = logging.getLogger("caiclient.bridge")

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
    (
        # 1 when the record may lag behind c.ai because a process crashed (see above).
        "ALTER TABLE bridge_chats ADD COLUMN unsure INTEGER NOT NULL DEFAULT 0",
        # A row while a process has the file open; left behind by a crash.
        "CREATE TABLE bridge_open (pid INTEGER NOT NULL, since REAL NOT NULL)",
    ),
)
_COLUMNS = "chat_id, partition, conversation, character_id, state, last_used, unsure"
# An upsert, not INSERT OR REPLACE: that deletes the row and inserts it again, updating
# every index, about a third more work per record (SQLite >= 3.24).
_UPSERT = (
    f"INSERT INTO bridge_chats ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 0) "
    "ON CONFLICT (chat_id) DO UPDATE SET partition = excluded.partition, "
    "conversation = excluded.conversation, character_id = excluded.character_id, "
    "state = excluded.state, last_used = excluded.last_used, unsure = 0"
)


def _record(row: tuple[Any, ...]) -> ChatRecord:
    chat_id, partition, conversation, character_id, blob, last_used, unsure = row
    record = decode_state(
        str(chat_id),
        str(partition),
        None if conversation is None else str(conversation),
        str(character_id),
        bytes(blob),
        float(last_used),
    )
    return dataclasses.replace(record, stale=True) if unsure else record


def _migrate(db: sqlite3.Connection) -> bool:
    """Bring the schema up to date and take the open mark. True if the last process to
    have the file open did not close it cleanly (its records may lag behind c.ai)."""
    db.execute("CREATE TABLE IF NOT EXISTS bridge_schema (version INTEGER NOT NULL)")
    row = db.execute("SELECT version FROM bridge_schema").fetchone()
    version = 0 if row is None else int(row[0])
    for statements in MIGRATIONS[version:]:
        for statement in statements:
            db.execute(statement)
    db.execute("DELETE FROM bridge_schema")
    db.execute("INSERT INTO bridge_schema VALUES (?)", (len(MIGRATIONS),))
    crashed = db.execute("SELECT count(*) FROM bridge_open").fetchone()[0] > 0
    if crashed:
        db.execute("UPDATE bridge_chats SET unsure = 1")
    db.execute("DELETE FROM bridge_open")
    db.execute("INSERT INTO bridge_open VALUES (?, ?)", (os.getpid(), time.time()))
    return bool(crashed)


RETRY_MAX = 5.0  # Seconds: the longest wait between tries of a failing write.


class SQLiteStore(Store):
    """State in the SQLite file at ``path`` (created, mode 0600, with its folder).

    ``flush_interval``: at most this many seconds between a deferred write and its
    transaction.
    """

    def __init__(self, path: str | os.PathLike[str], *, flush_interval: float = 0.05) -> None:
        super().__init__()
        self.path = Path(path).expanduser()
        self.flush_interval = flush_interval
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._records: dict[str, ChatRecord] = {}
        self._conversations: dict[tuple[str, str], list[str]] = {}
        # The key index, all of it: partition -> key -> chat ids; and each chat's keys.
        self._index: dict[str, dict[str, set[str]]] = {}
        self._keys: dict[str, frozenset[str]] = {}
        self._written: dict[str, frozenset[str]] = {}  # The keys as in bridge_keys.
        self._dirty: dict[str, ChatRecord] = {}
        self._flying: dict[str, ChatRecord] = {}  # Replies being generated (not written).
        self._flushing = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._background: asyncio.Task[None] | None = None
        # After a failed write: the error (reported by ping) and the wait before the next
        # try, doubled per failure up to RETRY_MAX, so an outage is not retried 20 times a
        # second nor logged as often.
        self._failing: StateUnavailable | None = None
        self._retry_in = flush_interval
        self.crashed = False

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        thread, db = self._thread, self._db
        if thread is None or db is None:
            raise StateUnavailable("the SQLite state store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(thread, work, db)
        except sqlite3.Error as exc:
            raise StateUnavailable(f"SQLite state {self.path}: {exc}") from exc

    # --- opening and closing ------------------------------------------------------------------

    async def open(self) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="caiclient-bridge-sqlite")
        loop = asyncio.get_running_loop()
        try:
            self._db, keys = await loop.run_in_executor(self._thread, self._connect)
        except (sqlite3.Error, OSError) as exc:
            self._thread.shutdown(wait=False)
            self._thread = None
            if "locked" in str(exc):
                raise StateUnavailable(
                    f"SQLite state {self.path} is in use by another process; one process "
                    "per SQLite file (use a postgresql:// state for several)"
                ) from exc
            raise StateUnavailable(f"SQLite state {self.path}: {exc}") from exc
        if self.crashed:
            log.warning(
                "the last bridge process did not close %s cleanly: each chat's history "
                "will be read again before it is used",
                self.path,
            )
        found: dict[str, set[str]] = {}
        for partition, key, chat_id in keys:
            self._index.setdefault(partition, {}).setdefault(key, set()).add(chat_id)
            found.setdefault(chat_id, set()).add(key)
        self._keys = {chat_id: frozenset(k) for chat_id, k in found.items()}
        self._written = dict(self._keys)

    def _connect(self) -> tuple[sqlite3.Connection, list[tuple[str, str, str]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)
        try:
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")  # Takes the file's lock now, not at the first write.
            self.crashed = _migrate(db)
            db.execute("COMMIT")
            keys = db.execute("SELECT partition, key, chat_id FROM bridge_keys").fetchall()
        except BaseException:
            db.close()
            raise
        return db, keys

    async def close(self) -> None:
        if self._db is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        clean = True
        self._dirty.update(self._flying)  # Still generating: written as stale (see defer).
        self._flying.clear()
        try:
            await self.flush()
        except StateUnavailable as exc:
            clean = False  # The open mark stays: the next start re-reads every chat.
            log.error("bridge state not fully written at close: %s", exc)
        thread, db = self._thread, self._db
        self._thread = self._db = None
        self._forget()
        assert thread is not None and db is not None

        def finish(db: sqlite3.Connection) -> None:
            if clean:
                db.execute("DELETE FROM bridge_open")
            db.close()

        await asyncio.get_running_loop().run_in_executor(thread, finish, db)
        thread.shutdown(wait=True)

    def _forget(self) -> None:
        for held in (self._records, self._conversations, self._index, self._keys, self._dirty):
            held.clear()
        self._written.clear()

    # --- reading ------------------------------------------------------------------------------

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
            ids += [
                r.chat_id
                for r in self._dirty.values()
                if (r.partition, r.conversation) == (partition, conversation)
                and r.chat_id not in ids
            ]
            self._conversations[(partition, conversation)] = ids
        found = [self._records[i] for i in ids if i in self._records]
        return sorted(found, key=lambda r: r.last_used, reverse=True)

    async def matching(self, partition: str, keys: Sequence[str]) -> list[ChatRecord]:
        index = self._index.get(partition)
        if not index:
            return []
        ids: set[str] = set()
        for key in keys:
            ids.update(index.get(key, ()))
        found = []
        for chat_id in ids:
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
            record = self._records.setdefault(chat_id, record)
        return record

    # --- writing ------------------------------------------------------------------------------

    async def put(self, record: ChatRecord) -> None:
        self._take(record)
        try:
            await self.flush()
        except StateUnavailable:
            self._flush_later()  # Kept dirty: tried again in the background, as deferred ones.
            raise

    def defer(self, record: ChatRecord) -> bool:
        if record.reply is not None and not record.reply.done:
            # A reply being generated: kept in memory only. Its final version follows (the
            # engine records it even if the request is cancelled), and should the process
            # die first, the open mark makes every record stale at the next start.
            record = self._stamped(record)
            self._remember(record)
            self._flying[record.chat_id] = record  # (Written if the store closes first.)
            return True
        self._take(record)
        self._flush_later()
        return True

    def _flush_later(self) -> None:
        if self._timer is None and self._background is None and self._db is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.flush_interval, self._flush_soon)

    def _take(self, record: ChatRecord) -> None:
        record = self._stamped(record)
        self._remember(record)
        self._flying.pop(record.chat_id, None)
        self._dirty[record.chat_id] = record

    def _stamped(self, record: ChatRecord) -> ChatRecord:
        if self._db is None:
            raise StateUnavailable("the SQLite state store is not open")
        if not record.last_used:
            record = dataclasses.replace(record, last_used=time.time())
        return record

    def _remember(self, record: ChatRecord) -> None:
        old_record = self._records.get(record.chat_id)
        self._records[record.chat_id] = record
        if record.conversation is not None:
            ids = self._conversations.get((record.partition, record.conversation))
            if ids is not None and record.chat_id not in ids:
                ids.append(record.chat_id)
        tail = record.mirror.turns[-INDEXED_TURNS:]
        if old_record is not None and old_record.mirror.turns[-INDEXED_TURNS:] == tail:
            return  # The indexed turns are the same objects: so are their keys.
        keys = frozenset(record.keys())
        old = self._keys.get(record.chat_id, frozenset())
        if keys != old:
            index = self._index.setdefault(record.partition, {})
            for key in old - keys:
                holders = index.get(key)
                if holders is not None:
                    holders.discard(record.chat_id)
                    if not holders:
                        del index[key]
            for key in keys - old:
                index.setdefault(key, set()).add(record.chat_id)
            self._keys[record.chat_id] = keys

    def _flush_soon(self) -> None:
        self._timer = None
        self._background = asyncio.get_running_loop().create_task(
            self._flush_in_background(), name="caiclient-bridge-sqlite-flush"
        )

    async def _flush_in_background(self) -> None:
        delay = self.flush_interval
        try:
            await self.flush()
        except StateUnavailable as exc:
            # Kept dirty: written with the next flush (or reported by the next durable put).
            delay = self._retry_in
            self._retry_in = min(delay * 2, RETRY_MAX)
            log.error("bridge state not written (trying again in %.2f s): %s", delay, exc)
        finally:
            self._background = None
        if self._dirty and self._db is not None and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(delay, self._flush_soon)

    async def flush(self, timeout: float = 30.0) -> None:
        """Write every dirty record now, in one transaction. Raises StateUnavailable,
        also when an earlier flush still holds the file after ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._flushing.acquire(), timeout)
        except asyncio.TimeoutError:
            raise StateUnavailable(f"SQLite state {self.path}: writing is stuck") from None
        try:
            await self._write_dirty()
        finally:
            self._flushing.release()

    async def _write_dirty(self) -> None:
        batch, self._dirty = self._dirty, {}
        if not batch:
            return
        rows = [
            (r.chat_id, r.partition, r.conversation, r.character_id, encode_state(r), r.last_used)
            for r in batch.values()
        ]
        keys: dict[str, frozenset[str]] = {}
        added: list[tuple[str, str, str]] = []
        dropped: list[tuple[str, str, str]] = []
        for chat_id, record in batch.items():
            held = self._keys.get(chat_id, frozenset())
            written = self._written.get(chat_id, frozenset())
            if held != written:  # Only the rows that changed are written.
                keys[chat_id] = held
                added += [(record.partition, key, chat_id) for key in sorted(held - written)]
                dropped += [(record.partition, key, chat_id) for key in written - held]
        try:
            await self._run(lambda db: _save(db, rows, added, dropped))
        except BaseException as exc:
            for chat_id, record in batch.items():
                self._dirty.setdefault(chat_id, record)  # Newer versions win.
            if isinstance(exc, StateUnavailable):
                self._failing = exc
            raise
        self._written.update(keys)
        self._failing, self._retry_in = None, self.flush_interval

    async def ping(self) -> None:
        """Raises StateUnavailable when the file cannot be read, or while writes fail (a
        read alone succeeds on a full disk)."""
        await self._run(lambda db: db.execute("SELECT 1").fetchone())
        if self._failing is not None and self._dirty:
            raise StateUnavailable(f"writes are failing: {self._failing}")


def _save(
    db: sqlite3.Connection,
    rows: list[tuple[Any, ...]],
    added: list[tuple[str, str, str]],
    dropped: list[tuple[str, str, str]],
) -> None:
    """One transaction: the records, and the rows of the key index that changed."""
    db.execute("BEGIN")
    try:
        db.executemany(_UPSERT, rows)
        if dropped:
            db.executemany(
                "DELETE FROM bridge_keys WHERE partition = ? AND key = ? AND chat_id = ?", dropped
            )
        if added:
            db.executemany("INSERT OR IGNORE INTO bridge_keys VALUES (?, ?, ?)", added)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # A failed COMMIT (disk full, I/O error) has rolled back.
            db.execute("ROLLBACK")
        raise
