"""Where the bridge keeps what must survive a restart: which chat serves which conversation,
the mirror of every chat (turns and candidates as hashes), and the last reply of each chat
(for client retries). One interface, two stores:

- :class:`~caiclient.bridge.state.sqlite.SQLiteStore`, the default: a file under the user
  data directory, used by one process at a time (the file is locked while open);
- :class:`~caiclient.bridge.state.postgres.PostgresStore` (``postgresql://…``, needs
  asyncpg): several bridge processes share it; a conversation is handled by one process
  at a time through PostgreSQL advisory locks.

:func:`open_store` picks one from a URL. Every failure of the database surfaces as
:class:`StateUnavailable` (HTTP 503); waiting for a busy conversation ends at its deadline
with :class:`Busy` (HTTP 429 with Retry-After).
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
from collections import deque
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import msgspec

from ...errors import RateLimited, TransportError, ValidationError
from ..reconcile import MCandidate, Mirror, MTurn

__all__ = [
    "Busy",
    "ChatRecord",
    "Reply",
    "StateUnavailable",
    "Store",
    "default_state_url",
    "open_store",
]

# The keys of a chat's last turns are indexed, for matching requests that name no conversation.
INDEXED_TURNS = 6


class StateUnavailable(TransportError):
    """The state database cannot be reached or refused the operation (HTTP 503)."""


class Busy(RateLimited):
    """The conversation stayed busy (another request is generating in it) until the deadline."""


@dataclass(frozen=True)
class Reply:
    """The last request answered in a chat: its key, the reply turn and candidates, and
    whether the client received the whole answer (``delivered``). ``done`` is False while
    the generation runs (a record left so by a crash means the mirror is unreliable);
    ``aborted``: the client left mid-stream and the generation was stopped, so the last
    candidate is cut short and is never replayed."""

    request_key: str
    turn_id: str | None
    candidate_ids: tuple[str, ...]
    delivered: bool
    done: bool
    aborted: bool = False


@dataclass(frozen=True)
class ChatRecord:
    """One c.ai chat the bridge serves.

    ``partition`` separates bridge users and characters; ``conversation`` is the client's
    conversation id (None: the chat is found by matching messages); ``stale`` means the
    mirror may lag behind c.ai (an interrupted reply) and is read again before use.
    """

    chat_id: str
    partition: str
    conversation: str | None
    character_id: str
    mirror: Mirror
    stale: bool = False
    reply: Reply | None = None
    last_used: float = 0.0

    def keys(self) -> set[str]:
        """The keys indexed for matching: every candidate key of the last turns."""
        found: set[str] = set()
        for turn in self.mirror.turns[-INDEXED_TURNS:]:
            for candidate in turn.candidates:
                found.update(candidate.keys)
        return found


# --- the stored form (compact JSON arrays) ----------------------------------------------------


class _Reply(msgspec.Struct, array_like=True):
    request_key: str
    turn_id: str | None
    candidate_ids: tuple[str, ...]
    delivered: bool
    done: bool
    aborted: bool = False


class _OldTurn(msgspec.Struct, array_like=True):
    """A turn as the first version wrote it (``[id, human, primary, candidates]``)."""

    id: str | None
    human: bool
    primary: str | None
    candidates: tuple[MCandidate, ...]


class _State(msgspec.Struct, omit_defaults=True):
    # The mirror's turns, stored as they are (MTurn is array-like): one call each way.
    t: tuple[MTurn, ...] = ()
    fresh: bool = False
    stale: bool = False
    reply: _Reply | None = None
    turns: tuple[_OldTurn, ...] | None = None  # Read only: blobs of the first version.


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_State)


def encode_state(record: ChatRecord) -> bytes:
    r = record.reply
    reply = (
        None
        if r is None
        else _Reply(r.request_key, r.turn_id, r.candidate_ids, r.delivered, r.done, r.aborted)
    )
    return _encoder.encode(_State(record.mirror.turns, record.mirror.fresh, record.stale, reply))


def decode_state(
    chat_id: str,
    partition: str,
    conversation: str | None,
    character_id: str,
    blob: bytes,
    last_used: float,
) -> ChatRecord:
    state = _decoder.decode(blob)
    turns = state.t
    if state.turns is not None:
        turns = tuple(MTurn(t.id, t.human, t.candidates, t.primary) for t in state.turns)
    r = state.reply
    reply = (
        None
        if r is None
        else Reply(r.request_key, r.turn_id, r.candidate_ids, r.delivered, r.done, r.aborted)
    )
    return ChatRecord(
        chat_id,
        partition,
        conversation,
        character_id,
        Mirror(turns, fresh=state.fresh),
        stale=state.stale,
        reply=reply,
        last_used=last_used,
    )


def lock_id(key: str) -> int:
    """A signed 64-bit number for a lock key (PostgreSQL advisory locks take bigints)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


# --- the interface ------------------------------------------------------------------------------


class _LocalLocks:
    """A first-come-first-served lock per key inside one process, with deadlines."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}

    async def acquire(self, key: str, timeout: float) -> None:
        queue = self._queues.get(key)
        if queue is None:
            self._queues[key] = deque()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            if waiter.done() and not waiter.cancelled():
                self.release(key)  # Handed over just as we gave up: pass it on.
            else:
                waiter.cancel()
                queue.remove(waiter)
            if isinstance(exc, asyncio.TimeoutError):
                raise Busy("the conversation is busy with another request", retry_after=1) from None
            raise

    def release(self, key: str) -> None:
        queue = self._queues[key]
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        del self._queues[key]


class _Held:
    """``async with`` a key of :class:`_LocalLocks` (a class, not a generator-based context
    manager: every request takes one)."""

    __slots__ = ("_key", "_locks", "_timeout")

    def __init__(self, locks: _LocalLocks, key: str, timeout: float) -> None:
        self._locks = locks
        self._key = key
        self._timeout = timeout

    async def __aenter__(self) -> None:
        await self._locks.acquire(self._key, self._timeout)

    async def __aexit__(self, *exc_info: object) -> None:
        self._locks.release(self._key)


class Store(abc.ABC):
    """The bridge's persistent state. Every method may raise StateUnavailable."""

    def __init__(self) -> None:
        self._local = _LocalLocks()

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date (migrations)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def conversation(self, partition: str, conversation: str) -> list[ChatRecord]:
        """The chats of an explicit conversation (its branches), most recently used first."""

    @abc.abstractmethod
    async def matching(self, partition: str, keys: Sequence[str]) -> list[ChatRecord]:
        """Chats without a conversation id whose last turns answer to any of ``keys``."""

    @abc.abstractmethod
    async def get(self, chat_id: str) -> ChatRecord | None: ...

    @abc.abstractmethod
    async def put(self, record: ChatRecord) -> None:
        """Insert or replace a chat's record (binding, mirror, reply) atomically; it is
        written when this returns."""

    def defer(self, record: ChatRecord) -> bool:
        """Take a mirror or reply update to be written a little later, batched with
        others; False if this store does not (then :meth:`put` it). Only a store used by
        one process can, and only if it can tell after a crash which records may lag
        behind c.ai: a store shared by several processes must write at once, since another
        process may take the conversation as soon as its lock is released."""
        return False

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StateUnavailable unless the database answers."""

    def lock(self, key: str, timeout: float) -> AbstractAsyncContextManager[None]:
        """Hold conversation ``key`` exclusively (in this process; stores shared by several
        processes extend it to all of them). Raises Busy after ``timeout`` seconds."""
        return _Held(self._local, key, timeout)


def default_state_url() -> str:
    """``sqlite:///<user data dir>/caiclient/bridge.sqlite3``."""
    import platformdirs

    return "sqlite:///" + str(Path(platformdirs.user_data_dir("caiclient")) / "bridge.sqlite3")


def open_store(url: str | None = None) -> Store:
    """The store for ``url``: ``sqlite:///path`` (or a plain path), ``postgresql://…``.
    Call ``await store.open()`` before use."""
    url = url or default_state_url()
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url)
    if url.startswith("sqlite:"):
        # As SQLAlchemy spells it: sqlite:///relative/path, sqlite:////absolute/path.
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
        if not path:
            raise ValidationError(f"state URL {url!r}: use sqlite:///path/to/file.sqlite3")
        from .sqlite import SQLiteStore

        return SQLiteStore(path)
    if "://" in url:
        raise ValidationError(f"state URL {url!r}: use sqlite:///… or postgresql://…")
    from .sqlite import SQLiteStore

    return SQLiteStore(url)
