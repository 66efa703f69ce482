"""The sync engine: bring an archive up to date from the account (docs/archive.md).

A run enumerates what the account can read: the account, personas, the group chats
(rooms) you are in, and the characters of your recent chats, of every chat
(``characters.recent``, which also names characters whose chats are all archived), your
own, the casts of your rooms and every character already archived; for each character its
info, avatar, every Chat V2 chat including archived ones, and its legacy V1 histories.
Then it walks each chat's and room's history newest page first and stores every page as it
arrives, each object with the JSON the service sent (``raw``, see :mod:`._source`).

Incremental rule: a chat (or room) whose history is complete in the archive is re-read
from its newest page back until ``recheck_pages`` pages have been read *and* the page just
read reaches turns already archived. New turns, and swipes, edits, pins and deletions
inside that window, are found; older changes only by ``full=True``. A chat interrupted
half-way is marked incomplete before its walk begins, so the next run walks it whole.

Every request goes through one :class:`Pacer`. An error on one chat is recorded and the
run goes on; an authentication error or a block that outlasts the backoff stops the run
(``fatal``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

import msgspec

from ..errors import (
    AuthError,
    BlockedError,
    CaiError,
    CharacterNotFound,
    ChatNotFound,
    RateLimited,
    RoomNotFound,
)
from ..models import Chat, Room, Turn, V1History
from ._pacing import Budget, Pacer, SyncOptions
from ._source import Source
from .errors import ArchiveError
from .events import (
    ChatDone,
    ChatFailed,
    Counters,
    Event,
    Planned,
    StepFailed,
    SyncFinished,
    SyncIssue,
    SyncStarted,
    SyncSummary,
)
from .store import Store

__all__ = ["Pacer", "SyncOptions", "run_sync"]

T = TypeVar("T")
Progress = Callable[[Event], None]


@dataclass
class _Walk:
    seen: set[str] = field(default_factory=set)
    new: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    oldest: int | None = None
    exhausted: bool = False
    skipped: bool = False
    requests: int = 0


@dataclass(frozen=True)
class _Work:
    """One thing to archive: a chat, a V1 history or a room (exactly one is set)."""

    chat: Chat | None
    history: V1History | None
    character_id: str
    status: str
    room: Room | None = None

    @property
    def id(self) -> str:
        if self.chat is not None:
            return self.chat.chat_id
        if self.room is not None:
            return self.room.id
        assert self.history is not None
        return self.history.external_id


class _Fatal(Exception):
    def __init__(self, issue: SyncIssue) -> None:
        self.issue = issue
        super().__init__(issue.message)


def _activity(turn: Turn) -> datetime | None:
    stamp = turn.last_update_time or turn.create_time
    if stamp is not None and stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp


async def _aclose(iterator: AsyncIterator[Any]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


async def _pool(items: Iterable[T], work: Callable[[T], Awaitable[None]], size: int) -> None:
    """Run ``work`` over ``items`` with ``size`` workers; the first exception stops all."""
    queue = iter(items)

    async def worker() -> None:
        for item in queue:
            await work(item)

    tasks = [asyncio.ensure_future(worker()) for _ in range(size)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _Run:
    """One sync run over one store and one source."""

    def __init__(
        self, store: Store, source: Source, options: SyncOptions, progress: Progress | None
    ) -> None:
        self.store = store
        self.source = source
        self.options = options
        self.progress = progress
        self.counters = Counters()
        self.summary = SyncSummary(mode=options.mode)
        self.pacer = Pacer(options, self.counters, self.emit)
        self.run_id = 0
        self._started = time.monotonic()
        # Room ids the server listed (None: the listing failed): never looked up as chats.
        self._listed_rooms: set[str] | None = None

    def emit(self, event: Event) -> None:
        self.counters.elapsed = time.monotonic() - self._started
        if self.progress is not None:
            self.progress(event)

    # --- failures --------------------------------------------------------------------------

    def _fail(self, scope: str, object_id: str | None, exc: BaseException) -> SyncIssue:
        """Record a failure; raise _Fatal for the ones that make going on pointless, and
        the archive's own errors (disk full …) as they are: nothing more can be stored."""
        if isinstance(exc, ArchiveError):
            raise exc
        issue = SyncIssue(scope, object_id, type(exc).__name__, str(exc))
        self.store.record_error(self.run_id, scope, object_id, exc)
        if isinstance(exc, (AuthError, BlockedError)):
            raise _Fatal(issue) from exc
        self.summary.errors.append(issue)
        return issue

    def _step_failed(self, step: str, object_id: str | None, exc: BaseException) -> None:
        issue = self._fail(step, object_id, exc)
        self.emit(StepFailed(self.counters, step, object_id, issue.error, issue.message))

    # --- the run ---------------------------------------------------------------------------

    async def execute(self) -> SyncSummary:
        self.run_id = self.store.start_run(self.options.mode)
        self.emit(SyncStarted(self.counters, self.options.mode, str(self.store.path)))
        status = "ok"
        try:
            await self._account()
            rooms = await self._rooms()
            work = await self._plan(rooms)
            await _pool(work, self._do, self.options.concurrency)
        except _Fatal as fatal:
            self.summary.fatal = fatal.issue
            status = "fatal"
        except ArchiveError:
            with contextlib.suppress(ArchiveError):
                self.store.finish_run(self.run_id, "failed", b"{}")
            raise
        finally:
            self.summary.requests = self.counters.requests
            self.summary.seconds = round(time.monotonic() - self._started, 3)
        if status == "ok" and self.summary.errors:
            status = "errors"
        self.store.finish_run(self.run_id, status, msgspec.json.encode(self.summary.as_dict()))
        self.emit(SyncFinished(self.counters, self.summary))
        return self.summary

    async def _request(self, call: Callable[[], Awaitable[T]]) -> T:
        return await self.pacer.call(call)

    async def _account(self) -> None:
        try:
            user, raw = await self._request(self.source.me)
        except CaiError as exc:
            self.store.record_error(self.run_id, "account", None, exc)
            raise _Fatal(SyncIssue("account", None, type(exc).__name__, str(exc))) from exc
        self.store.put_account(user, raw)
        if self.options.characters is None and self.options.chats is None:
            try:
                personas = await self._request(self.source.personas)
            except CaiError as exc:
                self._step_failed("personas", None, exc)
            else:
                self.store.put_personas(personas.items, personas.raws)

    async def _plan(self, rooms: list[_Work]) -> list[_Work]:
        """Which characters to visit, then each one's chats and histories; and the rooms."""
        if self.options.chats is not None:
            return await self._plan_chats(self.options.chats, rooms)
        ids = list(self.options.characters or await self._discover(rooms))
        work: list[_Work] = []

        async def visit(character_id: str) -> None:
            work.extend(await self._character(character_id))

        await _pool(ids, visit, self.options.concurrency)
        self.summary.characters = len(ids)
        work = sorted(work, key=lambda w: (w.character_id, w.status, w.id)) + rooms
        self._planned(work, len(ids))
        return work

    def _planned(self, work: list[_Work], characters: int) -> None:
        self.counters.chats_total = len(work)
        legacy = sum(1 for w in work if w.history is not None)
        self.emit(Planned(self.counters, characters, legacy))

    async def _discover(self, rooms: list[_Work]) -> list[str]:
        """Every character worth visiting: those of recent chats and of every chat, your
        own, the casts of your rooms, and everything archived."""
        found: dict[str, None] = {}
        for step, call in (
            ("recent chats", self.source.recent_chats),
            ("recent characters", self.source.recent_characters),
            ("my characters", self.source.my_characters),
        ):
            try:
                items: Sequence[Any] = await self._request(call)
            except CaiError as exc:
                self._step_failed(step, None, exc)
                continue
            for item in items:
                found[item.character_id if isinstance(item, Chat) else item.id] = None
        for work in rooms:
            assert work.room is not None
            found.update(dict.fromkeys(work.room.character_ids))
        for character_id in self.store.known_character_ids():
            found[character_id] = None
        return sorted(found)

    async def _character(self, character_id: str) -> list[_Work]:
        await self._character_info(character_id)
        work = await self._chats_of(character_id)
        if self.options.v1:
            work += await self._histories_of(character_id)
        return work

    async def _character_info(self, character_id: str) -> None:
        try:
            character, raw = await self._request(lambda: self.source.character(character_id))
        except CharacterNotFound as exc:
            # Deleted or made private: its chats may still be readable; keep what we have.
            self.store.put_character_stub(character_id, "")
            self.store.character_unavailable(character_id, str(exc))
            return
        except CaiError as exc:
            self._step_failed("character", character_id, exc)
            return
        self.store.put_character(character, raw)
        name = character.avatar_file_name
        if not self.options.avatars or not name or self.store.has_avatar(name):
            return
        try:
            data = await self._request(lambda: self.source.avatar(character))
        except CaiError as exc:
            self._step_failed("avatar", character_id, exc)
            return
        if data:
            self.store.put_avatar(name, data)

    async def _chats_of(self, character_id: str, only: set[str] | None = None) -> list[_Work]:
        try:
            chats = await self._request(lambda: self.source.chats_of(character_id))
        except CaiError as exc:
            self._step_failed("chats", character_id, exc)
            return []
        work = [
            _Work(chat, None, character_id, self.store.put_chat(chat, raw=raw))
            for chat, raw in zip(chats.items, chats.raws, strict=True)
            if only is None or chat.chat_id in only
        ]
        listed = {chat.chat_id for chat in chats.items}
        if only is None:
            missing = [c for c in self.store.chat_ids_of(character_id) if c not in listed]
        else:
            missing = sorted(only - listed)
        for chat_id in missing:
            await self._vanished(chat_id, character_id)
        return work

    async def _vanished(self, chat_id: str, character_id: str) -> None:
        """A chat archived before but not listed now: gone from the server, or not?"""
        try:
            await self._request(lambda: self.source.chat(chat_id))
        except ChatNotFound:
            self.store.mark_chat_removed(chat_id)
            self.summary.chats_removed += 1
            self.emit(ChatDone(self.counters, chat_id, character_id, "removed", 0, 0, 0, 1))
            return
        except CaiError as exc:
            self._fail("chat", chat_id, exc)
            return
        # Still there though not listed (the list is not guaranteed complete): leave it.

    async def _histories_of(self, character_id: str) -> list[_Work]:
        try:
            histories = await self._request(lambda: self.source.v1_histories(character_id))
        except CaiError as exc:
            self._step_failed("v1 histories", character_id, exc)
            return []
        self.store.mark_v1_removed(character_id, {h.external_id for h in histories.items})
        return [
            _Work(None, history, character_id, self.store.put_v1_history(history, raw))
            for history, raw in zip(histories.items, histories.raws, strict=True)
        ]

    async def _plan_chats(self, chat_ids: Sequence[str], rooms: list[_Work]) -> list[_Work]:
        """``chats=[…]``: rooms among them as listed; for the others each chat's character,
        then only those chats of its list."""
        wanted: dict[str, set[str]] = {}
        for chat_id in dict.fromkeys(chat_ids):
            if self._is_room(chat_id):
                continue
            chat = await self._selected_chat(chat_id)
            if chat is not None:
                wanted.setdefault(chat.character_id, set()).add(chat_id)
        work: list[_Work] = []
        for character_id, only in sorted(wanted.items()):
            await self._character_info(character_id)
            work += await self._chats_of(character_id, only)
        work += rooms
        self.summary.characters = len(wanted)
        self._planned(work, len(wanted))
        return work

    def _is_room(self, chat_id: str) -> bool:
        listed = self._listed_rooms
        return (listed is not None and chat_id in listed) or self.store.is_room(chat_id)

    async def _selected_chat(self, chat_id: str) -> Chat | None:
        """A chat named by id, or None (recorded: unknown; or marked removed if archived)."""
        try:
            chat, _ = await self._request(lambda: self.source.chat(chat_id))
            return chat
        except ChatNotFound as exc:
            if not self._archived(chat_id):
                self._fail("chat", chat_id, exc)
                return None
            self.store.mark_chat_removed(chat_id)
            self.summary.chats_removed += 1
        except CaiError as exc:
            self._fail("chat", chat_id, exc)
        return None

    def _archived(self, chat_id: str) -> bool:
        try:
            return any(True for _ in self.store.chats(chat_ids=[chat_id]))
        except ChatNotFound:
            return False

    # --- rooms ----------------------------------------------------------------------------

    async def _rooms(self) -> list[_Work]:
        """The group chats to visit (docs/protocol.md §9), their metadata stored as listed;
        archived ones the server no longer lists (deleted, or left) are marked removed."""
        try:
            listed = await self._request(self.source.rooms)
        except CaiError as exc:
            self._step_failed("rooms", None, exc)
            return []
        self._listed_rooms = {room.id for room in listed.items}
        work = [
            _Work(None, None, "", self.store.put_room(room, raw), room=room)
            for room, raw in zip(listed.items, listed.raws, strict=True)
            if self._room_selected(room.id, room.character_ids)
        ]
        for stored in self.store.rooms(include_removed=False):
            cast = [character_id for character_id, _ in stored.characters]
            if stored.id not in self._listed_rooms and self._room_selected(stored.id, cast):
                self.store.mark_chat_removed(stored.id, room=True)
                self.summary.rooms_removed += 1
                self.emit(ChatDone(self.counters, stored.id, "", "removed", 0, 0, 0, 0, room=True))
        return sorted(work, key=lambda w: w.id)

    def _room_selected(self, room_id: str, cast: Iterable[str]) -> bool:
        if self.options.chats is not None:
            return room_id in self.options.chats
        if self.options.characters is not None:
            return bool(set(cast) & set(self.options.characters))
        return True

    # --- one chat --------------------------------------------------------------------------

    async def _do(self, work: _Work) -> None:
        try:
            if work.chat is not None:
                await self._chat(work.chat.chat_id, work.character_id, work.status)
            elif work.room is not None:
                await self._chat(work.room.id, "", work.status, room=True)
            elif work.history is not None:
                await self._history(work.history, work.status)
        except RoomNotFound:
            # Deleted (or left) between the listing and its history: kept, marked removed.
            self.store.mark_chat_removed(work.id, room=True)
            self.summary.rooms_removed += 1
            self.emit(ChatDone(self.counters, work.id, "", "removed", 0, 0, 0, 1, room=True))
        except CaiError as exc:
            issue = self._fail("room" if work.room else "chat", work.id, exc)
            self.emit(
                ChatFailed(self.counters, work.id, work.character_id, issue.error, issue.message)
            )
        finally:
            self.counters.chats_done += 1

    async def _chat(
        self, chat_id: str, character_id: str, meta: str, *, room: bool = False
    ) -> None:
        was_complete = self.store.chat_complete(chat_id, room=room)
        full_pass = self.options.full or not was_complete
        self.store.set_chat_complete(chat_id, False, room=room)
        walk, budget = _Walk(), Budget(self.options)
        while True:
            try:
                await self._walk(chat_id, full_pass, walk, room)
                break
            except (RateLimited, BlockedError) as exc:
                self.pacer.back_off(exc, budget)
        if walk.skipped:
            self.store.set_chat_complete(chat_id, was_complete, room=room)
            if room:
                self.summary.rooms_skipped += 1
            else:
                self.summary.chats_skipped += 1
            counts = (0, 0, 0, walk.requests)
            self.emit(ChatDone(self.counters, chat_id, character_id, "skipped", *counts, room=room))
            return
        removed = self.store.remove_missing_turns(
            chat_id, walk.seen, None if walk.exhausted else walk.oldest, room=room
        )
        self.store.set_chat_complete(chat_id, True, room=room)
        self._count_chat(chat_id, character_id, meta, walk, removed, room)

    def _count_chat(
        self, chat_id: str, character_id: str, meta: str, walk: _Walk, removed: int, room: bool
    ) -> None:
        changed = walk.changed - walk.new
        if meta == "new":
            status = "new"
        elif meta == "changed" or walk.new or changed or removed:
            status = "changed"
        else:
            status = "unchanged"
        s = self.summary
        if room:
            s.rooms_new += status == "new"
            s.rooms_changed += status == "changed"
            s.rooms_unchanged += status == "unchanged"
        else:
            s.chats_new += status == "new"
            s.chats_changed += status == "changed"
            s.chats_unchanged += status == "unchanged"
        s.turns_new += len(walk.new)
        s.turns_changed += len(changed)
        s.turns_removed += removed
        counts = (len(walk.new), len(changed), removed, walk.requests)
        self.emit(ChatDone(self.counters, chat_id, character_id, status, *counts, room=room))

    async def _walk(self, chat_id: str, full_pass: bool, walk: _Walk, room: bool) -> None:
        """Read pages newest first, storing each; stop where the rule says (module doc)."""
        pages = self.source.room_pages(chat_id) if room else self.source.pages(chat_id)
        newer: int | None = None
        walk.seen.clear()
        try:
            for number in range(1, 1 << 30):
                walk.requests += 1
                try:
                    page = await self.pacer.once(pages.__anext__)
                except StopAsyncIteration:
                    walk.exhausted = True
                    return
                if number == 1 and self._too_old(page.items):
                    walk.skipped = True
                    return
                write = self.store.put_turns(chat_id, page.items, newer, page.raws, room=room)
                newer = walk.oldest = write.last_pos
                walk.seen.update(write.ids)
                walk.new.update(write.new)
                walk.changed.update(write.changed)
                self.counters.turns += len(page.items)
                if not full_pass and number >= self.options.recheck_pages and write.oldest_known:
                    return
        finally:
            await _aclose(pages)

    def _too_old(self, page: list[Turn]) -> bool:
        return bool(page) and self._before_since(_activity(page[0]))

    def _before_since(self, stamp: datetime | None) -> bool:
        since = self.options.since
        if since is None or stamp is None:
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        return stamp < since

    async def _history(self, history: V1History, status: str) -> None:
        s = self.summary
        character_id = history.character_id
        history_id = history.external_id
        if self._before_since(history.last_interaction):
            s.chats_skipped += 1
            self.emit(
                ChatDone(self.counters, history_id, character_id, "skipped", 0, 0, 0, 0, True)
            )
            return
        if status == "unchanged" and not self.options.full:
            s.v1_histories_unchanged += 1
            self.emit(ChatDone(self.counters, history_id, character_id, status, 0, 0, 0, 0, True))
            return
        messages = await self._request(lambda: self.source.v1_messages(history))
        changed, removed = self.store.put_v1_messages(history_id, messages.items, messages.raws)
        if status == "unchanged" and (changed or removed):
            status = "changed"
        s.v1_histories_new += status == "new"
        s.v1_histories_changed += status == "changed"
        s.v1_histories_unchanged += status == "unchanged"
        s.v1_messages += changed
        self.counters.turns += len(messages.items)
        self.emit(
            ChatDone(self.counters, history_id, character_id, status, changed, 0, removed, 1, True)
        )


async def run_sync(
    store: Store, source: Source, options: SyncOptions, progress: Progress | None = None
) -> SyncSummary:
    """Bring ``store`` up to date from ``source``; see the module docstring for the rules.

    Returns the summary (``summary.ok`` is False if anything failed). Raises ArchiveError
    when the archive itself cannot be written (disk full, read-only): everything committed
    before stays. Cancelling is safe: each step commits whole or not at all.
    """
    return await _Run(store, source, options, progress).execute()
