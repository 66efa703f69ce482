"""The archive's Python API: :class:`AsyncArchive` and its blocking twin :class:`Archive`.

Both open one archive file, ``sync`` it from a client, iterate what it holds (characters,
chats, group chats, turns: streamed from the file, never a whole chat in memory) and
``export`` it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from ..protocol.retry import Backoff
from ._rows import (
    StoredAccount,
    StoredCharacter,
    StoredChat,
    StoredRoom,
    StoredTurn,
    StoredV1History,
)
from ._source import source_for
from .events import Event, SyncSummary
from .export import ExportResult, export
from .store import Store
from .sync import SyncOptions, run_sync

__all__ = ["Archive", "AsyncArchive"]

T = TypeVar("T")
_UNSET: Any = object()


def _options(**given: Any) -> SyncOptions:
    """SyncOptions from keyword arguments, leaving out the ones not given."""
    return SyncOptions(**{k: v for k, v in given.items() if v is not _UNSET})


class _Base:
    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = True,
        readonly: bool = False,
        lock_timeout: float = 10.0,
    ) -> None:
        self._store = Store.open(path, create=create, readonly=readonly, lock_timeout=lock_timeout)

    @property
    def path(self) -> Path:
        return self._store.path

    @property
    def store(self) -> Store:
        """The underlying store (for exporters and tools; its API is lower level)."""
        return self._store

    def _export(
        self,
        format: str,
        out: str | Path,
        characters: Iterable[str] | None,
        chats: Iterable[str] | None,
        force: bool,
    ) -> ExportResult:
        # Exports read through their own read-only connection, so they may run in a
        # worker thread while this object stays usable.
        with Store.open(self._store.path, readonly=True) as reader:
            return export(reader, format, out, characters=characters, chats=chats, force=force)


class AsyncArchive(_Base):
    """An archive file, async: ``async with AsyncArchive("backup.cai") as archive:``.

    Opening raises ArchiveCorrupt, ArchiveTooNew, ArchiveWriteError or ArchiveLocked (see
    :mod:`caiclient.archive.errors`); ``readonly=True`` opens for reading and exporting.
    Local reads are short SQLite queries run on the loop; exports run in a thread.
    """

    async def sync(
        self,
        client: Any,
        *,
        full: bool = _UNSET,
        characters: Iterable[str] | None = _UNSET,
        chats: Iterable[str] | None = _UNSET,
        since: datetime | None = _UNSET,
        v1: bool = _UNSET,
        avatars: bool = _UNSET,
        rate: float | None = _UNSET,
        concurrency: int = _UNSET,
        recheck_pages: int = _UNSET,
        rate_limit_backoff: Backoff = _UNSET,
        block_backoff: Backoff = _UNSET,
        progress: Callable[[Event], None] | None = None,
    ) -> SyncSummary:
        """Bring the archive up to date from ``client`` (an :class:`~caiclient.AsyncClient`).

        Options are those of :class:`~caiclient.archive.SyncOptions`. ``progress`` is called
        with each event. Returns the summary (``summary.ok``); raises ArchiveError if the
        file cannot be written. Cancelling is safe: the archive keeps every finished step,
        and the next sync resumes.
        """
        options = _options(
            full=full,
            characters=_listed(characters),
            chats=_listed(chats),
            since=since,
            v1=v1,
            avatars=avatars,
            rate=rate,
            concurrency=concurrency,
            recheck_pages=recheck_pages,
            rate_limit_backoff=rate_limit_backoff,
            block_backoff=block_backoff,
        )
        return await run_sync(self._store, source_for(client), options, progress)

    async def account(self) -> StoredAccount | None:
        """The account the archive was made with (None before the first sync)."""
        return self._store.account()

    def characters(self, ids: Iterable[str] | None = None) -> AsyncIterator[StoredCharacter]:
        """The archived characters (``.character`` decodes the info), by name."""
        return _aiter(self._store.characters(None if ids is None else list(ids)))

    def chats(
        self,
        *,
        characters: Iterable[str] | None = None,
        chats: Iterable[str] | None = None,
        include_removed: bool = True,
    ) -> AsyncIterator[StoredChat]:
        """The archived chats; ``removed`` ones are gone from the server but kept here.
        Unknown ids raise CharacterNotFound / ChatNotFound at the first step."""
        rows = self._store.chats(
            character_ids=_listed(characters),
            chat_ids=_listed(chats),
            include_removed=include_removed,
        )
        return _aiter(rows)

    def rooms(
        self,
        *,
        characters: Iterable[str] | None = None,
        rooms: Iterable[str] | None = None,
        include_removed: bool = True,
    ) -> AsyncIterator[StoredRoom]:
        """The archived group chats (only ``rooms``, or those whose cast has one of
        ``characters``), by title; ``removed`` ones are gone from the server (or left).
        An unknown room id raises ChatNotFound at the first step."""
        rows = self._store.rooms(
            character_ids=_listed(characters),
            room_ids=_listed(rooms),
            include_removed=include_removed,
        )
        return _aiter(rows)

    def turns(self, chat_id: str, *, include_removed: bool = False) -> AsyncIterator[StoredTurn]:
        """A chat's (or group chat's) turns oldest first, every candidate in
        ``.turn.candidates``."""
        return _aiter(self._store.turns(chat_id, include_removed=include_removed))

    def v1_histories(self, character_id: str | None = None) -> AsyncIterator[StoredV1History]:
        return _aiter(self._store.v1_histories(character_id))

    async def export(
        self,
        format: str,
        out: str | Path,
        *,
        characters: Iterable[str] | None = None,
        chats: Iterable[str] | None = None,
        force: bool = False,
    ) -> ExportResult:
        """Write ``format`` (see :data:`caiclient.archive.FORMATS`) to ``out``; see
        :func:`caiclient.archive.export.export`. Runs in a worker thread."""
        return await asyncio.to_thread(self._export, format, out, characters, chats, force)

    async def aclose(self) -> None:
        self._store.close()

    async def __aenter__(self) -> AsyncArchive:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class Archive(_Base):
    """An archive file, blocking: ``with Archive("backup.cai") as archive:``.

    The same methods as :class:`AsyncArchive`, without ``await``. ``sync`` takes a
    :class:`~caiclient.Client` and runs the engine on a private thread (each client call in
    a worker thread); ``progress`` is called from that thread.
    """

    def sync(
        self,
        client: Any,
        *,
        full: bool = _UNSET,
        characters: Iterable[str] | None = _UNSET,
        chats: Iterable[str] | None = _UNSET,
        since: datetime | None = _UNSET,
        v1: bool = _UNSET,
        avatars: bool = _UNSET,
        rate: float | None = _UNSET,
        concurrency: int = _UNSET,
        recheck_pages: int = _UNSET,
        rate_limit_backoff: Backoff = _UNSET,
        block_backoff: Backoff = _UNSET,
        progress: Callable[[Event], None] | None = None,
    ) -> SyncSummary:
        """Bring the archive up to date from ``client``; see :meth:`AsyncArchive.sync`."""
        options = _options(
            full=full,
            characters=_listed(characters),
            chats=_listed(chats),
            since=since,
            v1=v1,
            avatars=avatars,
            rate=rate,
            concurrency=concurrency,
            recheck_pages=recheck_pages,
            rate_limit_backoff=rate_limit_backoff,
            block_backoff=block_backoff,
        )
        source = source_for(client)
        summary: SyncSummary = _in_thread(lambda: run_sync(self._store, source, options, progress))
        return summary

    def account(self) -> StoredAccount | None:
        return self._store.account()

    def characters(self, ids: Iterable[str] | None = None) -> Iterator[StoredCharacter]:
        return self._store.characters(None if ids is None else list(ids))

    def chats(
        self,
        *,
        characters: Iterable[str] | None = None,
        chats: Iterable[str] | None = None,
        include_removed: bool = True,
    ) -> Iterator[StoredChat]:
        return self._store.chats(
            character_ids=_listed(characters),
            chat_ids=_listed(chats),
            include_removed=include_removed,
        )

    def rooms(
        self,
        *,
        characters: Iterable[str] | None = None,
        rooms: Iterable[str] | None = None,
        include_removed: bool = True,
    ) -> Iterator[StoredRoom]:
        return self._store.rooms(
            character_ids=_listed(characters),
            room_ids=_listed(rooms),
            include_removed=include_removed,
        )

    def turns(self, chat_id: str, *, include_removed: bool = False) -> Iterator[StoredTurn]:
        return self._store.turns(chat_id, include_removed=include_removed)

    def v1_histories(self, character_id: str | None = None) -> Iterator[StoredV1History]:
        return self._store.v1_histories(character_id)

    def export(
        self,
        format: str,
        out: str | Path,
        *,
        characters: Iterable[str] | None = None,
        chats: Iterable[str] | None = None,
        force: bool = False,
    ) -> ExportResult:
        return self._export(format, out, characters, chats, force)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _listed(ids: Any) -> Any:
    if ids is _UNSET or ids is None:
        return ids
    if isinstance(ids, str):
        return [ids]
    return list(ids)


async def _aiter(rows: Iterator[T]) -> AsyncIterator[T]:
    for row in rows:
        yield row


def _in_thread(make: Callable[[], Any]) -> Any:
    """Run a coroutine to completion on a fresh loop in a private thread.

    An interruption of the waiting caller (Ctrl-C) cancels the run, waits for it to stop
    (each step commits whole, so the archive stays consistent) and is then re-raised.
    """
    loop = asyncio.new_event_loop()
    box: dict[str, Any] = {}

    def main() -> None:
        try:
            box["task"] = task = loop.create_task(make())
            box["result"] = loop.run_until_complete(task)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            box["error"] = exc
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="caiclient-archive-sync", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.1)
    except BaseException:
        task = box.get("task")
        if task is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(task.cancel)
        thread.join(30)
        raise
    if "error" in box:
        raise box["error"]
    return box["result"]
