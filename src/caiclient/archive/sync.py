"""The sync engine: bring an archive up to date from the account (docs/archive.md).

A run enumerates what the account can read (the account, personas, the characters of
recent chats, your own characters and every character already archived; for each one its
info, avatar, every Chat V2 chat including archived ones, and its legacy V1 histories),
then walks each chat's history newest page first and stores every page as it arrives.

Incremental rule: a chat whose history is complete in the archive is re-read from its
newest page back until ``recheck_pages`` pages have been read *and* the page just read
reaches turns already archived. New turns, and swipes, edits, pins and deletions inside
that window, are found; older changes only by ``full=True``. A chat interrupted half-way
is marked incomplete before its walk begins, so the next run walks it whole.

Every request goes through one :class:`Pacer`: a concurrency cap, a minimum spacing
(``rate`` per second) and a shared pause after ``RateLimited`` (its ``retry_after``) or
``BlockedError`` (growing backoff). An error on one chat is recorded and the run goes on;
an authentication error or a block that outlasts the backoff stops the run (``fatal``).

Rooms (group chats, docs/protocol.md §9): the schema holds them, but there is no
``client.rooms`` to read them with yet. FOLLOW-UP: sync them once issue 13 lands.
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
    ValidationError,
)
from ..models import Chat, Turn, V1History
from ..protocol.retry import Backoff
from ._source import Source
from .errors import ArchiveError
from .events import (
    ChatDone,
    ChatFailed,
    Counters,
    Event,
    Paused,
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


_RATE_LIMIT_BACKOFF = Backoff(initial=5.0, max_delay=120.0, jitter=0.2, attempts=6)
_BLOCK_BACKOFF = Backoff(initial=30.0, max_delay=300.0, jitter=0.2, attempts=3)


@dataclass(frozen=True)
class SyncOptions:
    """How a sync runs. Defaults are polite to the live service.

    - ``characters`` / ``chats``: only these (ids); default every chat of the account.
    - ``since``: skip chats with no activity since then (their newest turn is older).
    - ``full``: re-read every page of every chat, not just the re-check window.
    - ``v1``: also archive legacy Chat V1 histories.
    - ``rate``: at most this many requests per second (None: no limit).
    - ``concurrency``: requests in flight at once.
    - ``recheck_pages``: newest pages re-read in every archived chat (swipes, edits, pins).
    - ``rate_limit_backoff`` / ``block_backoff``: waits after ``RateLimited`` without a
      ``retry_after``, and after ``BlockedError``; when they run out the error stands.
    """

    characters: Sequence[str] | None = None
    chats: Sequence[str] | None = None
    since: datetime | None = None
    full: bool = False
    v1: bool = True
    avatars: bool = True
    rate: float | None = 4.0
    concurrency: int = 4
    recheck_pages: int = 1
    rate_limit_backoff: Backoff = _RATE_LIMIT_BACKOFF
    block_backoff: Backoff = _BLOCK_BACKOFF

    def __post_init__(self) -> None:
        if self.rate is not None and not self.rate > 0:
            raise ValidationError("rate must be a positive number of requests per second, or None")
        if not 1 <= self.concurrency <= 64:
            raise ValidationError("concurrency must be between 1 and 64")
        if self.recheck_pages < 1:
            raise ValidationError("recheck_pages must be at least 1")
        if self.characters is not None and self.chats is not None:
            raise ValidationError("give characters or chats, not both")
        for value in (*(self.characters or ()), *(self.chats or ())):
            if not isinstance(value, str) or not value.strip():
                raise ValidationError(f"not an id: {value!r}")
        if self.since is not None and not isinstance(self.since, datetime):
            raise ValidationError("since must be a datetime")

    @property
    def mode(self) -> str:
        return "full" if self.full else "incremental"


class _Budget:
    """The retries one logical request may still spend on rate limits and blocks."""

    def __init__(self, options: SyncOptions) -> None:
        self._rate = options.rate_limit_backoff.delays()
        self._block = options.block_backoff.delays()

    def wait_for(self, exc: Exception) -> tuple[float, str] | None:
        if isinstance(exc, BlockedError):
            wait = next(self._block, None)
            return None if wait is None else (wait, "blocked")
        planned = next(self._rate, None)
        if planned is None:
            return None
        retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
        return (planned if retry_after is None else retry_after), "rate limited"


class Pacer:
    """Every request of a run: a concurrency cap, a minimum spacing, a shared pause."""

    def __init__(self, options: SyncOptions, counters: Counters, emit: Progress) -> None:
        self._options = options
        self._counters = counters
        self._emit = emit
        self._slots = asyncio.Semaphore(options.concurrency)
        self._interval = 1.0 / options.rate if options.rate else 0.0
        self._next = 0.0
        self._resume_at = 0.0

    async def _turn(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            wait = max(self._resume_at, self._next) - loop.time()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        self._next = loop.time() + self._interval

    async def once(self, call: Callable[[], Awaitable[T]]) -> T:
        """One request, when the cap, the spacing and any pause allow."""
        async with self._slots:
            await self._turn()
            self._counters.requests += 1
            return await call()

    async def call(self, call: Callable[[], Awaitable[T]], budget: _Budget | None = None) -> T:
        """One request, retried after rate limits and blocks while the budget lasts."""
        budget = budget or _Budget(self._options)
        while True:
            try:
                return await self.once(call)
            except (RateLimited, BlockedError) as exc:
                self.back_off(exc, budget)

    def back_off(self, exc: RateLimited | BlockedError, budget: _Budget) -> None:
        """Pause every request for the budget's next wait, or re-raise ``exc`` if spent."""
        planned = budget.wait_for(exc)
        if planned is None:
            raise exc
        wait, reason = planned
        loop = asyncio.get_running_loop()
        self._resume_at = max(self._resume_at, loop.time() + wait)
        self._emit(Paused(self._counters, wait, reason))


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
    chat: Chat | None
    history: V1History | None
    character_id: str
    status: str


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
            work = await self._plan()
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
            user = await self._request(self.source.me)
        except CaiError as exc:
            self.store.record_error(self.run_id, "account", None, exc)
            raise _Fatal(SyncIssue("account", None, type(exc).__name__, str(exc))) from exc
        self.store.put_account(user)
        if self.options.characters is None and self.options.chats is None:
            try:
                self.store.put_personas(await self._request(self.source.personas))
            except CaiError as exc:
                self._step_failed("personas", None, exc)

    async def _plan(self) -> list[_Work]:
        """Which characters to visit, then each one's chats and histories."""
        if self.options.chats is not None:
            return await self._plan_chats(self.options.chats)
        ids = list(self.options.characters or await self._discover())
        work: list[_Work] = []

        async def visit(character_id: str) -> None:
            work.extend(await self._character(character_id))

        await _pool(ids, visit, self.options.concurrency)
        self.summary.characters = len(ids)
        self._planned(work, len(ids))
        return sorted(work, key=lambda w: (w.character_id, w.status, _work_id(w)))

    def _planned(self, work: list[_Work], characters: int) -> None:
        self.counters.chats_total = len(work)
        legacy = sum(1 for w in work if w.history is not None)
        self.emit(Planned(self.counters, characters, legacy))

    async def _discover(self) -> list[str]:
        """Every character worth visiting: recent chats, your own, everything archived."""
        found: dict[str, None] = {}
        for step, call in (
            ("recent chats", self.source.recent_chats),
            ("my characters", self.source.my_characters),
        ):
            try:
                items: Sequence[Any] = await self._request(call)
            except CaiError as exc:
                self._step_failed(step, None, exc)
                continue
            for item in items:
                found[item.character_id if isinstance(item, Chat) else item.id] = None
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
            character = await self._request(lambda: self.source.character(character_id))
        except CharacterNotFound as exc:
            # Deleted or made private: its chats may still be readable; keep what we have.
            self.store.put_character_stub(character_id, "")
            self.store.character_unavailable(character_id, str(exc))
            return
        except CaiError as exc:
            self._step_failed("character", character_id, exc)
            return
        self.store.put_character(character)
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
            _Work(chat, None, character_id, self.store.put_chat(chat))
            for chat in chats
            if only is None or chat.chat_id in only
        ]
        listed = {chat.chat_id for chat in chats}
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
        self.store.mark_v1_removed(character_id, {h.external_id for h in histories})
        return [
            _Work(None, history, character_id, self.store.put_v1_history(history))
            for history in histories
        ]

    async def _plan_chats(self, chat_ids: Sequence[str]) -> list[_Work]:
        """``chats=[…]``: each chat's character, then only those chats of its list."""
        wanted: dict[str, set[str]] = {}
        for chat_id in dict.fromkeys(chat_ids):
            chat = await self._selected_chat(chat_id)
            if chat is not None:
                wanted.setdefault(chat.character_id, set()).add(chat_id)
        work: list[_Work] = []
        for character_id, only in sorted(wanted.items()):
            await self._character_info(character_id)
            work += await self._chats_of(character_id, only)
        self.summary.characters = len(wanted)
        self._planned(work, len(wanted))
        return work

    async def _selected_chat(self, chat_id: str) -> Chat | None:
        """A chat named by id, or None (recorded: unknown; or marked removed if archived)."""
        try:
            return await self._request(lambda: self.source.chat(chat_id))
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

    # --- one chat --------------------------------------------------------------------------

    async def _do(self, work: _Work) -> None:
        try:
            if work.chat is not None:
                await self._chat(work.chat, work.status)
            elif work.history is not None:
                await self._history(work.history, work.status)
        except CaiError as exc:
            issue = self._fail("chat", _work_id(work), exc)
            self.emit(
                ChatFailed(
                    self.counters, _work_id(work), work.character_id, issue.error, issue.message
                )
            )
        finally:
            self.counters.chats_done += 1

    async def _chat(self, chat: Chat, meta: str) -> None:
        chat_id = chat.chat_id
        was_complete = self.store.chat_complete(chat_id)
        full_pass = self.options.full or not was_complete
        self.store.set_chat_complete(chat_id, False)
        walk, budget = _Walk(), _Budget(self.options)
        while True:
            try:
                await self._walk(chat_id, full_pass, walk)
                break
            except (RateLimited, BlockedError) as exc:
                self.pacer.back_off(exc, budget)
        if walk.skipped:
            self.store.set_chat_complete(chat_id, was_complete)
            self.summary.chats_skipped += 1
            self.emit(
                ChatDone(
                    self.counters, chat_id, chat.character_id, "skipped", 0, 0, 0, walk.requests
                )
            )
            return
        removed = self.store.remove_missing_turns(
            chat_id, walk.seen, None if walk.exhausted else walk.oldest
        )
        self.store.set_chat_complete(chat_id, True)
        self._count_chat(chat, meta, walk, removed)

    def _count_chat(self, chat: Chat, meta: str, walk: _Walk, removed: int) -> None:
        changed = walk.changed - walk.new
        if meta == "new":
            status = "new"
        elif meta == "changed" or walk.new or changed or removed:
            status = "changed"
        else:
            status = "unchanged"
        s = self.summary
        s.chats_new += status == "new"
        s.chats_changed += status == "changed"
        s.chats_unchanged += status == "unchanged"
        s.turns_new += len(walk.new)
        s.turns_changed += len(changed)
        s.turns_removed += removed
        self.emit(
            ChatDone(
                self.counters,
                chat.chat_id,
                chat.character_id,
                status,
                len(walk.new),
                len(changed),
                removed,
                walk.requests,
            )
        )

    async def _walk(self, chat_id: str, full_pass: bool, walk: _Walk) -> None:
        """Read pages newest first, storing each; stop where the rule says (module doc)."""
        pages = self.source.pages(chat_id)
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
                if number == 1 and self._too_old(page):
                    walk.skipped = True
                    return
                write = self.store.put_turns(chat_id, page, newer)
                newer = walk.oldest = write.last_pos
                walk.seen.update(write.ids)
                walk.new.update(write.new)
                walk.changed.update(write.changed)
                self.counters.turns += len(page)
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
        if self._before_since(history.last_interaction):
            s.chats_skipped += 1
            self.emit(
                ChatDone(
                    self.counters, history.external_id, character_id, "skipped", 0, 0, 0, 0, True
                )
            )
            return
        if status == "unchanged" and not self.options.full:
            s.v1_histories_unchanged += 1
            self.emit(
                ChatDone(self.counters, history.external_id, character_id, status, 0, 0, 0, 0, True)
            )
            return
        messages = await self._request(lambda: self.source.v1_messages(history))
        changed, removed = self.store.put_v1_messages(history.external_id, messages)
        if status == "unchanged" and (changed or removed):
            status = "changed"
        s.v1_histories_new += status == "new"
        s.v1_histories_changed += status == "changed"
        s.v1_histories_unchanged += status == "unchanged"
        s.v1_messages += changed
        self.counters.turns += len(messages)
        self.emit(
            ChatDone(
                self.counters,
                history.external_id,
                character_id,
                status,
                changed,
                0,
                removed,
                1,
                True,
            )
        )


def _work_id(work: _Work) -> str:
    if work.chat is not None:
        return work.chat.chat_id
    assert work.history is not None
    return work.history.external_id


async def run_sync(
    store: Store, source: Source, options: SyncOptions, progress: Progress | None = None
) -> SyncSummary:
    """Bring ``store`` up to date from ``source``; see the module docstring for the rules.

    Returns the summary (``summary.ok`` is False if anything failed). Raises ArchiveError
    when the archive itself cannot be written (disk full, read-only): everything committed
    before stays. Cancelling is safe: each step commits whole or not at all.
    """
    return await _Run(store, source, options, progress).execute()
