"""The shared state store: PostgreSQL through asyncpg, for several bridge processes.

Records live in the same two tables as in SQLite (one row per chat, its mirror one compact
blob; an index of recent candidate keys). Nothing is cached: another process may have
changed a record since.

One conversation is handled by one process at a time through PostgreSQL session advisory
locks. Every lock this process holds is taken on one dedicated connection
(``pg_try_advisory_lock``), so locks cost no pooled connection however many
conversations are generating; when that connection dies (the process crashed, or the
database went away) PostgreSQL releases them all at once. Releasing a lock sends a
``NOTIFY`` that wakes the processes waiting for it; a waiter also polls, so a missed
notification only costs a little time. Every wait ends at its deadline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from ...errors import ValidationError
from . import Busy, ChatRecord, StateUnavailable, Store, decode_state, encode_state, lock_id

__all__ = ["PostgresStore"]

T = TypeVar("T")
CHANNEL = "caiclient_bridge_unlock"
# Serialises migrations of several processes starting at once.
_MIGRATION_LOCK = 0x6361_6962_7264_6731
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
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
    ),
)
_COLUMNS = "chat_id, partition, conversation, character_id, state, last_used"


def _record(row: Any) -> ChatRecord:
    return decode_state(
        row["chat_id"],
        row["partition"],
        row["conversation"],
        row["character_id"],
        bytes(row["state"]),
        float(row["last_used"]),
    )


class PostgresStore(Store):
    """State in the PostgreSQL database at ``url`` (``postgresql://user@host:port/db``)."""

    def __init__(self, url: str, *, pool_size: int = 10, timeout: float = 10.0) -> None:
        super().__init__()
        try:
            import asyncpg  # type: ignore[import-untyped]
        except ImportError:
            raise ValidationError(
                "a postgresql:// state needs asyncpg: pip install 'caiclient[postgresql]'"
            ) from None
        self._asyncpg = asyncpg
        self.url = url
        self._pool_size = pool_size
        self._timeout = timeout
        self._pool: Any = None
        self._lock_conn: Any = None
        self._lock_guard = asyncio.Lock()
        self._wakeups: dict[int, asyncio.Event] = {}

    async def _run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        if self._pool is None:
            raise StateUnavailable("the PostgreSQL state store is not open")
        try:
            async with self._pool.acquire(timeout=self._timeout) as conn:
                return await work(conn)
        except (OSError, asyncio.TimeoutError, self._asyncpg.PostgresError) as exc:
            raise StateUnavailable(f"PostgreSQL state: {exc}") from exc
        except self._asyncpg.InterfaceError as exc:
            raise StateUnavailable(f"PostgreSQL state: {exc}") from exc

    async def open(self) -> None:
        try:
            self._pool = await self._asyncpg.create_pool(
                self.url, min_size=1, max_size=self._pool_size, timeout=self._timeout
            )
        except (OSError, asyncio.TimeoutError, self._asyncpg.PostgresError) as exc:
            raise StateUnavailable(f"PostgreSQL state: {exc}") from exc
        await self._run(self._migrate)

    async def _migrate(self, conn: Any) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS bridge_schema (version INTEGER NOT NULL)"
            )
            version = await conn.fetchval("SELECT version FROM bridge_schema") or 0
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    await conn.execute(statement)
            await conn.execute("DELETE FROM bridge_schema")
            await conn.execute("INSERT INTO bridge_schema VALUES ($1)", len(MIGRATIONS))

    async def close(self) -> None:
        conn, pool = self._lock_conn, self._pool
        self._lock_conn = self._pool = None
        if conn is not None and not conn.is_closed():
            await conn.close(timeout=self._timeout)
        if pool is not None:
            await pool.close()

    async def conversation(self, partition: str, conversation: str) -> list[ChatRecord]:
        async def load(conn: Any) -> list[ChatRecord]:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM bridge_chats WHERE partition = $1 AND conversation = $2"
                " ORDER BY last_used DESC",
                partition,
                conversation,
            )
            return [_record(row) for row in rows]

        return await self._run(load)

    async def matching(self, partition: str, keys: Sequence[str]) -> list[ChatRecord]:
        async def load(conn: Any) -> list[ChatRecord]:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM bridge_chats WHERE conversation IS NULL AND chat_id IN"
                " (SELECT chat_id FROM bridge_keys WHERE partition = $1 AND key = ANY($2))"
                " ORDER BY last_used DESC",
                partition,
                list(keys),
            )
            return [_record(row) for row in rows]

        return await self._run(load) if keys else []

    async def get(self, chat_id: str) -> ChatRecord | None:
        async def load(conn: Any) -> ChatRecord | None:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM bridge_chats WHERE chat_id = $1", chat_id
            )
            return None if row is None else _record(row)

        return await self._run(load)

    async def put(self, record: ChatRecord) -> None:
        if not record.last_used:
            record = dataclasses.replace(record, last_used=time.time())
        blob = encode_state(record)
        keys = sorted(record.keys())

        async def save(conn: Any) -> None:
            async with conn.transaction():
                await conn.execute(
                    f"INSERT INTO bridge_chats ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
                    " ON CONFLICT (chat_id) DO UPDATE SET partition = EXCLUDED.partition,"
                    " conversation = EXCLUDED.conversation,"
                    " character_id = EXCLUDED.character_id, state = EXCLUDED.state,"
                    " last_used = EXCLUDED.last_used",
                    record.chat_id,
                    record.partition,
                    record.conversation,
                    record.character_id,
                    blob,
                    record.last_used,
                )
                await conn.execute("DELETE FROM bridge_keys WHERE chat_id = $1", record.chat_id)
                await conn.executemany(
                    "INSERT INTO bridge_keys VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    [(record.partition, key, record.chat_id) for key in keys],
                )

        await self._run(save)

    async def ping(self) -> None:
        await self._run(lambda conn: conn.fetchval("SELECT 1"))

    # --- advisory locks on one connection -----------------------------------------------------

    async def _on_lock_conn(self, query: str, *args: object) -> Any:
        async with self._lock_guard:
            conn = self._lock_conn
            try:
                if conn is None or conn.is_closed():
                    conn = self._lock_conn = await self._asyncpg.connect(
                        self.url, timeout=self._timeout
                    )
                    await conn.add_listener(CHANNEL, self._notified)
                return await conn.fetchval(query, *args, timeout=self._timeout)
            except (OSError, asyncio.TimeoutError, self._asyncpg.PostgresError) as exc:
                raise StateUnavailable(f"PostgreSQL state (locks): {exc}") from exc
            except self._asyncpg.InterfaceError as exc:
                raise StateUnavailable(f"PostgreSQL state (locks): {exc}") from exc

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        event = self._wakeups.get(int(payload))
        if event is not None:
            event.set()

    async def _acquire(self, number: int, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        pause = 0.005
        event = self._wakeups.setdefault(number, asyncio.Event())
        try:
            while not await self._on_lock_conn("SELECT pg_try_advisory_lock($1)", number):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise Busy("the conversation is busy in another bridge process", retry_after=1)
                event.clear()
                try:
                    await asyncio.wait_for(event.wait(), min(pause, remaining))
                except asyncio.TimeoutError:
                    pause = min(pause * 2, 0.2)
        finally:
            self._wakeups.pop(number, None)

    async def _release(self, number: int) -> None:
        query = "SELECT pg_advisory_unlock($1), pg_notify($2, $3)"
        conn = self._lock_conn
        if conn is None or conn.is_closed():
            return  # The connection is gone, and with it every lock it held.
        await self._on_lock_conn(query, number, CHANNEL, str(number))

    @asynccontextmanager
    async def lock(self, key: str, timeout: float) -> AsyncIterator[None]:
        """Hold conversation ``key`` in every process sharing this database."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        number = lock_id(key)
        async with super().lock(key, timeout):
            await self._acquire(number, deadline)
            try:
                yield
            finally:
                await asyncio.shield(self._release(number))
